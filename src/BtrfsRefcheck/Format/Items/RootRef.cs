namespace BtrfsRefcheck.Format.Items;

/// <summary>View of a ROOT_REF (parent tree → child subvolume) or ROOT_BACKREF (child → parent): dirid u64,
/// sequence u64, name_len u16, then the name of the directory entry that links the subvolume.</summary>
public readonly ref struct RootRef
{
    public const int HeaderSize = NameAt; // 18
    private const int DirIdAt = 0;
    private const int SequenceAt = DirIdAt + 8;
    private const int NameLenAt = SequenceAt + 8;
    private const int NameAt = NameLenAt + 2;

    private readonly ReadOnlySpan<byte> _d;

    public RootRef(ReadOnlySpan<byte> d)
    {
        if (d.Length < HeaderSize) Throw.Truncated("root ref", HeaderSize, d.Length);
        _d = d;
    }

    public ulong DirId => Le.U64(_d, DirIdAt);
    public ulong Sequence => Le.U64(_d, SequenceAt);
    public ushort NameLength => Le.U16(_d, NameLenAt);

    /// <summary>The name, capped to the bytes the item holds.</summary>
    public ReadOnlySpan<byte> Name => _d.Slice(NameAt, Math.Min(NameLength, _d.Length - NameAt));
    public bool IsNameTruncated => NameLength > _d.Length - NameAt;

    /// <summary>Size implied by name_len.</summary>
    public int ExpectedSize => HeaderSize + NameLength;
}
