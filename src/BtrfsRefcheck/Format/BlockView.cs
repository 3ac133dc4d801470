using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

namespace BtrfsRefcheck.Format;

/// <summary>View of a whole tree block (leaf or node). Item and pointer accessors are bounds-checked
/// against the block and throw <see cref="BtrfsFormatException"/> when the image lies; the <c>Try</c> forms
/// return false instead.</summary>
/// <remarks>The per-slot accessors run several times for every item of every block, so each is small enough to
/// inline (in Native AOT too): one overflow-safe range check, no division, fields read straight from the block, the
/// throw in a separate helper.</remarks>
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
    public bool IsLeaf => _b[Format.Header.LevelAt] == 0;
    public int Length => _b.Length;

    /// <summary>Most items a leaf of this size can hold (each needs at least a 25-byte header).</summary>
    public int MaxLeafItems => (_b.Length - Format.Header.Size) / Format.ItemHeader.Size;

    /// <summary>Most key pointers a node of this size can hold.</summary>
    public int MaxNodePtrs => (_b.Length - Format.Header.Size) / Format.KeyPtr.Size;

    /// <summary>nritems, capped to what fits in the block.</summary>
    public int Count => (int)Math.Min(BinaryPrimitives.ReadUInt32LittleEndian(_b.Slice(Format.Header.NrItemsAt, 4)),
        (uint)(IsLeaf ? MaxLeafItems : MaxNodePtrs));

    /// <summary>Offset of item header <paramref name="slot"/> in the block; throws when the header does not fit
    /// (the same as slot &gt;= <see cref="MaxLeafItems"/>, without the division).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int ItemHeaderAt(int slot)
    {
        if (!TryItemHeaderAt(slot, out int at)) ItemHeaderOutOfBounds(slot, _b.Length);
        return at;
    }

    /// <summary>Offset of item header <paramref name="slot"/>; false (and <paramref name="at"/> meaningless) when the
    /// header does not fit in the block.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool TryItemHeaderAt(int slot, out int at)
    {
        ulong a = Format.Header.Size + (ulong)(uint)slot * Format.ItemHeader.Size;
        at = (int)a;
        return a + Format.ItemHeader.Size <= (ulong)_b.Length;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ItemHeader ItemHeader(int slot) => new(_b.Slice(ItemHeaderAt(slot), Format.ItemHeader.Size));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public BtrfsKey ItemKey(int slot) => BtrfsKey.Read(_b.Slice(ItemHeaderAt(slot), BtrfsKey.Size));

    /// <summary>The data of item <paramref name="slot"/>; throws when it does not lie inside the block.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ReadOnlySpan<byte> ItemData(int slot)
    {
        int at = ItemHeaderAt(slot);
        if (!TryItemData(at, out var data)) ItemDataOutOfBounds(_b, slot, at);
        return data;
    }

    /// <summary>Key and data of item <paramref name="slot"/>; false (and nothing read) when the item header or its
    /// data does not lie inside the block.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryGetItem(int slot, out BtrfsKey key, out ReadOnlySpan<byte> data)
    {
        if (!TryItemHeaderAt(slot, out int at) || !TryItemData(at, out data))
        {
            key = default;
            data = default;
            return false;
        }
        key = BtrfsKey.Read(_b.Slice(at, BtrfsKey.Size));
        return true;
    }

    /// <summary>Key of item <paramref name="slot"/>; false when its header does not lie inside the block.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryItemKey(int slot, out BtrfsKey key)
    {
        if (!TryItemHeaderAt(slot, out int at))
        {
            key = default;
            return false;
        }
        key = BtrfsKey.Read(_b.Slice(at, BtrfsKey.Size));
        return true;
    }

    /// <summary>The data range the item header at <paramref name="at"/> (known to fit) names, when it lies inside the block.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool TryItemData(int at, out ReadOnlySpan<byte> data)
    {
        var h = _b.Slice(at, Format.ItemHeader.Size);
        ulong start = Format.Header.Size + (ulong)BinaryPrimitives.ReadUInt32LittleEndian(h[Format.ItemHeader.DataOffsetAt..]);
        uint size = BinaryPrimitives.ReadUInt32LittleEndian(h[Format.ItemHeader.DataSizeAt..]);
        if (start + size > (ulong)_b.Length)
        {
            data = default;
            return false;
        }
        data = _b.Slice((int)start, (int)size);
        return true;
    }

    /// <summary>In a node: the slot whose subtree holds <paramref name="key"/> — the last pointer whose key is at most
    /// <paramref name="key"/>, or 0 when every key is larger (the kernel's search descends there too).</summary>
    public int SlotHolding(BtrfsKey key)
    {
        int slot = 0;
        for (int i = 1; i < Count && KeyPtr(i).Key <= key; i++) slot = i;
        return slot;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public KeyPtr KeyPtr(int slot)
    {
        ulong at = Format.Header.Size + (ulong)(uint)slot * Format.KeyPtr.Size;
        if (at + Format.KeyPtr.Size > (ulong)_b.Length) KeyPtrOutOfBounds(slot, _b.Length);
        return new KeyPtr(_b.Slice((int)at, Format.KeyPtr.Size));
    }

    /// <summary>First key of the block (item 0 or pointer 0); null when the block is empty.</summary>
    public BtrfsKey? FirstKey => Count == 0 ? null : IsLeaf ? ItemKey(0) : KeyPtr(0).Key;

    // Static, taking values: an instance helper would take the view's address and keep its span out of registers
    // in every loop that reads items.

    [DoesNotReturn]
    private static void ItemHeaderOutOfBounds(int slot, int length) =>
        Throw.OutOfBounds("item header", Format.Header.Size + (long)slot * Format.ItemHeader.Size, Format.ItemHeader.Size, length);

    [DoesNotReturn]
    private static void ItemDataOutOfBounds(ReadOnlySpan<byte> b, int slot, int at)
    {
        var h = b.Slice(at, Format.ItemHeader.Size);
        long start = Format.Header.Size + (long)BinaryPrimitives.ReadUInt32LittleEndian(h[Format.ItemHeader.DataOffsetAt..]);
        Throw.OutOfBounds($"item {slot} data", start, BinaryPrimitives.ReadUInt32LittleEndian(h[Format.ItemHeader.DataSizeAt..]), b.Length);
    }

    [DoesNotReturn]
    private static void KeyPtrOutOfBounds(int slot, int length) =>
        Throw.OutOfBounds("key pointer", Format.Header.Size + (long)slot * Format.KeyPtr.Size, Format.KeyPtr.Size, length);
}
