namespace BtrfsRefcheck.Format.Items;

/// <summary>btrfs_extent_owner_ref (simple quotas): root_id u64. The kernel writes it only as an inline ref of an
/// EXTENT_ITEM (see <see cref="InlineRefEnumerator"/>); this view reads a keyed item of that type should one appear.</summary>
public readonly ref struct ExtentOwnerRef
{
    public const int Size = RootIdAt + 8; // 8
    private const int RootIdAt = 0;

    private readonly ReadOnlySpan<byte> _d;

    public ExtentOwnerRef(ReadOnlySpan<byte> d)
    {
        if (d.Length < Size) Throw.Truncated("extent owner ref", Size, d.Length);
        _d = d;
    }

    public ulong RootId => Le.U64(_d, RootIdAt);
}
