namespace BtrfsRefcheck.Format.Items;

/// <summary>View of a BLOCK_GROUP_ITEM (24 bytes), keyed (start, BLOCK_GROUP_ITEM, length).</summary>
public readonly ref struct BlockGroupItem
{
    public const int Size = FlagsAt + 8; // 24
    public const int UsedAt = 0;
    public const int ChunkObjectIdAt = UsedAt + 8;
    public const int FlagsAt = ChunkObjectIdAt + 8;

    private readonly ReadOnlySpan<byte> _d;

    public BlockGroupItem(ReadOnlySpan<byte> d)
    {
        if (d.Length < Size) Throw.Truncated("block group item", Size, d.Length);
        _d = d;
    }

    public ulong Used => Le.U64(_d, UsedAt);
    public ulong ChunkObjectId => Le.U64(_d, ChunkObjectIdAt);
    public BlockGroupFlags Flags => (BlockGroupFlags)Le.U64(_d, FlagsAt);
}
