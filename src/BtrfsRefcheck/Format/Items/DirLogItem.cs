namespace BtrfsRefcheck.Format.Items;

/// <summary>View of a DIR_LOG_ITEM / DIR_LOG_INDEX (tree-log only): the end of the logged index range, 8 bytes.</summary>
public readonly ref struct DirLogItem
{
    public const int Size = EndAt + 8; // 8
    private const int EndAt = 0;

    private readonly ReadOnlySpan<byte> _d;

    public DirLogItem(ReadOnlySpan<byte> d)
    {
        if (d.Length < Size) Throw.Truncated("dir log item", Size, d.Length);
        _d = d;
    }

    public ulong End => Le.U64(_d, EndAt);
}
