namespace BtrfsRefcheck.Format.Items;

/// <summary>btrfs_inode_item.flags (BTRFS_INODE_*).</summary>
[Flags]
public enum InodeFlags : ulong
{
    None = 0,
    NoDataSum = 1UL << 0,
    NoDataCow = 1UL << 1,
    ReadOnly = 1UL << 2,
    NoCompress = 1UL << 3,
    Prealloc = 1UL << 4,
    Sync = 1UL << 5,
    Immutable = 1UL << 6,
    Append = 1UL << 7,
    NoDump = 1UL << 8,
    NoAtime = 1UL << 9,
    DirSync = 1UL << 10,
    Compress = 1UL << 11,
    RootItemInit = 1UL << 31,
}

/// <summary>View of an INODE_ITEM (160 bytes), also embedded at the start of every ROOT_ITEM.</summary>
public readonly ref struct InodeItem
{
    public const int Size = OtimeAt + Timespec.Size; // 160
    private const int GenerationAt = 0;
    private const int TransidAt = GenerationAt + 8;
    private const int SizeAt = TransidAt + 8;
    private const int NbytesAt = SizeAt + 8;
    private const int BlockGroupAt = NbytesAt + 8;
    private const int NlinkAt = BlockGroupAt + 8;
    private const int UidAt = NlinkAt + 4;
    private const int GidAt = UidAt + 4;
    private const int ModeAt = GidAt + 4;
    private const int RdevAt = ModeAt + 4;
    public const int FlagsAt = RdevAt + 8;
    private const int SequenceAt = FlagsAt + 8;
    private const int ReservedAt = SequenceAt + 8;
    private const int AtimeAt = ReservedAt + 4 * 8;
    private const int CtimeAt = AtimeAt + Timespec.Size;
    private const int MtimeAt = CtimeAt + Timespec.Size;
    private const int OtimeAt = MtimeAt + Timespec.Size;

    private static readonly (ulong, string)[] FlagTable =
    [
        ((ulong)InodeFlags.NoDataSum, "NODATASUM"), ((ulong)InodeFlags.NoDataCow, "NODATACOW"),
        ((ulong)InodeFlags.ReadOnly, "READONLY"), ((ulong)InodeFlags.NoCompress, "NOCOMPRESS"),
        ((ulong)InodeFlags.Prealloc, "PREALLOC"), ((ulong)InodeFlags.Sync, "SYNC"),
        ((ulong)InodeFlags.Immutable, "IMMUTABLE"), ((ulong)InodeFlags.Append, "APPEND"),
        ((ulong)InodeFlags.NoDump, "NODUMP"), ((ulong)InodeFlags.NoAtime, "NOATIME"),
        ((ulong)InodeFlags.DirSync, "DIRSYNC"), ((ulong)InodeFlags.Compress, "COMPRESS"),
        ((ulong)InodeFlags.RootItemInit, "ROOT_ITEM_INIT"),
    ];

    private readonly ReadOnlySpan<byte> _d;

    public InodeItem(ReadOnlySpan<byte> d)
    {
        if (d.Length < Size) Throw.Truncated("inode item", Size, d.Length);
        _d = d;
    }

    public ulong Generation => Le.U64(_d, GenerationAt);
    public ulong Transid => Le.U64(_d, TransidAt);
    public ulong FileSize => Le.U64(_d, SizeAt);
    public ulong Nbytes => Le.U64(_d, NbytesAt);
    public ulong BlockGroup => Le.U64(_d, BlockGroupAt);
    public uint Nlink => Le.U32(_d, NlinkAt);
    public uint Uid => Le.U32(_d, UidAt);
    public uint Gid => Le.U32(_d, GidAt);
    public uint Mode => Le.U32(_d, ModeAt);
    public ulong Rdev => Le.U64(_d, RdevAt);
    public InodeFlags Flags => (InodeFlags)Le.U64(_d, FlagsAt);
    public ulong Sequence => Le.U64(_d, SequenceAt);
    public Timespec Atime => new(_d.Slice(AtimeAt, Timespec.Size));
    public Timespec Ctime => new(_d.Slice(CtimeAt, Timespec.Size));
    public Timespec Mtime => new(_d.Slice(MtimeAt, Timespec.Size));
    public Timespec Otime => new(_d.Slice(OtimeAt, Timespec.Size));

    /// <summary>"NODATASUM|NODATACOW"; unknown bits as hex; empty for no flags.</summary>
    public static string FlagNames(ulong flags) => ItemText.FlagNames(flags, FlagTable);
}
