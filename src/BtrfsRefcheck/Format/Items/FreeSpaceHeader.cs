namespace BtrfsRefcheck.Format.Items;

/// <summary>View of a free space cache (v1) header in the root tree, keyed (FREE_SPACE, 0, block group start):
/// the location key of the cache inode, generation, num_entries, num_bitmaps (41 bytes).</summary>
public readonly ref struct FreeSpaceHeader
{
    public const int Size = NumBitmapsAt + 8; // 41
    private const int LocationAt = 0;
    private const int GenerationAt = LocationAt + BtrfsKey.Size;
    private const int NumEntriesAt = GenerationAt + 8;
    private const int NumBitmapsAt = NumEntriesAt + 8;

    private readonly ReadOnlySpan<byte> _d;

    public FreeSpaceHeader(ReadOnlySpan<byte> d)
    {
        if (d.Length < Size) Throw.Truncated("free space header", Size, d.Length);
        _d = d;
    }

    public BtrfsKey Location => BtrfsKey.Read(_d[LocationAt..]);
    public ulong Generation => Le.U64(_d, GenerationAt);
    public ulong NumEntries => Le.U64(_d, NumEntriesAt);
    public ulong NumBitmaps => Le.U64(_d, NumBitmapsAt);
}
