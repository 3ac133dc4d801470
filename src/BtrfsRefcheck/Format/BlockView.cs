namespace BtrfsRefcheck.Format;

/// <summary>View of a whole tree block (leaf or node). Item and pointer accessors are bounds-checked
/// against the block and throw <see cref="BtrfsFormatException"/> when the image lies.</summary>
public readonly ref struct BlockView
{
    private readonly ReadOnlySpan<byte> _b;

    public BlockView(ReadOnlySpan<byte> block)
    {
        if (block.Length < Header.Size) Throw.Truncated("tree block", Header.Size, block.Length);
        _b = block;
    }

    public ReadOnlySpan<byte> Bytes => _b;
    public Header Header => new(_b);
    public bool IsLeaf => Header.Level == 0;
    public int Length => _b.Length;

    /// <summary>Most items a leaf of this size can hold (each needs at least a 25-byte header).</summary>
    public int MaxLeafItems => (_b.Length - Format.Header.Size) / Format.ItemHeader.Size;

    /// <summary>Most key pointers a node of this size can hold.</summary>
    public int MaxNodePtrs => (_b.Length - Format.Header.Size) / Format.KeyPtr.Size;

    /// <summary>nritems, capped to what fits in the block.</summary>
    public int Count => (int)Math.Min(Header.NrItems, (uint)(IsLeaf ? MaxLeafItems : MaxNodePtrs));

    public ItemHeader ItemHeader(int slot)
    {
        if ((uint)slot >= (uint)MaxLeafItems) Throw.OutOfBounds("item header", Format.Header.Size + (long)slot * Format.ItemHeader.Size, Format.ItemHeader.Size, _b.Length);
        return new ItemHeader(_b.Slice(Format.Header.Size + slot * Format.ItemHeader.Size, Format.ItemHeader.Size));
    }

    public BtrfsKey ItemKey(int slot) => ItemHeader(slot).Key;

    /// <summary>The data of item <paramref name="slot"/>; throws when it does not lie inside the block.</summary>
    public ReadOnlySpan<byte> ItemData(int slot)
    {
        var h = ItemHeader(slot);
        ulong start = (ulong)Format.Header.Size + h.DataOffset;
        if (start + h.DataSize > (ulong)_b.Length) Throw.OutOfBounds($"item {slot} data", (long)start, h.DataSize, _b.Length);
        return _b.Slice((int)start, (int)h.DataSize);
    }

    public KeyPtr KeyPtr(int slot)
    {
        if ((uint)slot >= (uint)MaxNodePtrs) Throw.OutOfBounds("key pointer", Format.Header.Size + (long)slot * Format.KeyPtr.Size, Format.KeyPtr.Size, _b.Length);
        return new KeyPtr(_b.Slice(Format.Header.Size + slot * Format.KeyPtr.Size, Format.KeyPtr.Size));
    }

    /// <summary>First key of the block (item 0 or pointer 0); null when the block is empty.</summary>
    public BtrfsKey? FirstKey => Count == 0 ? null : IsLeaf ? ItemKey(0) : KeyPtr(0).Key;
}
