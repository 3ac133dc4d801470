using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;

namespace BtrfsRefcheck.Format.Items;

/// <summary>Extent item flags.</summary>
[Flags]
public enum ExtentFlags : ulong
{
    None = 0,
    Data = 1UL << 0,
    TreeBlock = 1UL << 1,
    FullBackref = 1UL << 8,
}

/// <summary>View of btrfs_extent_item_v0 (kernels before 2.6.31): refs u32 only. Shown by dump-tree, never checked.</summary>
public readonly ref struct ExtentItemV0
{
    public const int Size = RefsAt + 4; // 4
    public const int RefsAt = 0;

    private readonly ReadOnlySpan<byte> _d;

    public ExtentItemV0(ReadOnlySpan<byte> d)
    {
        if (d.Length < Size) Throw.Truncated("extent item v0", Size, d.Length);
        _d = d;
    }

    public uint Refs => Le.U32(_d, RefsAt);
}

/// <summary>View of an EXTENT_ITEM or METADATA_ITEM: refs, generation, flags, the optional tree_block_info
/// (EXTENT_ITEM of a tree block on a filesystem without skinny metadata), then inline back-refs.</summary>
public readonly ref struct ExtentItem
{
    public const int FixedSize = FlagsAt + 8; // 24
    public const int TreeBlockInfoSize = BtrfsKey.Size + 1; // 18
    private const int RefsAt = 0;
    private const int GenerationAt = RefsAt + 8;
    private const int FlagsAt = GenerationAt + 8;

    private readonly ReadOnlySpan<byte> _d;
    private readonly bool _isMetadataItem;

    /// <param name="data">The item's data.</param>
    /// <param name="keyType">EXTENT_ITEM or METADATA_ITEM: decides whether tree_block_info is present.</param>
    public ExtentItem(ReadOnlySpan<byte> data, ItemType keyType)
    {
        if (data.Length < FixedSize) Throw.Truncated("extent item", FixedSize, data.Length);
        _d = data;
        _isMetadataItem = keyType == ItemType.MetadataItem;
    }

    public ulong Refs => Le.U64(_d, RefsAt);
    public ulong Generation => Le.U64(_d, GenerationAt);
    public ExtentFlags Flags => (ExtentFlags)Le.U64(_d, FlagsAt);
    public bool IsTreeBlock => (Flags & ExtentFlags.TreeBlock) != 0;
    public bool IsData => (Flags & ExtentFlags.Data) != 0;
    public bool IsFullBackref => (Flags & ExtentFlags.FullBackref) != 0;

    /// <summary>True when a tree_block_info follows the fixed part.</summary>
    public bool HasTreeBlockInfo => IsTreeBlock && !_isMetadataItem;

    public BtrfsKey TreeBlockKey
    {
        get
        {
            if (!HasTreeBlockInfo) Throw.Invalid("extent item has no tree_block_info");
            if (_d.Length < FixedSize + TreeBlockInfoSize) Throw.Truncated("tree_block_info", FixedSize + TreeBlockInfoSize, _d.Length);
            return BtrfsKey.Read(_d[FixedSize..]);
        }
    }

    public byte TreeBlockLevel
    {
        get
        {
            if (!HasTreeBlockInfo) Throw.Invalid("extent item has no tree_block_info");
            if (_d.Length < FixedSize + TreeBlockInfoSize) Throw.Truncated("tree_block_info", FixedSize + TreeBlockInfoSize, _d.Length);
            return _d[FixedSize + BtrfsKey.Size];
        }
    }

    /// <summary>Offset of the first inline ref within the item.</summary>
    public int InlineRefsStart => FixedSize + (HasTreeBlockInfo ? TreeBlockInfoSize : 0);

    /// <summary>Enumerates inline refs. Stops with <see cref="InlineRefEnumerator.Error"/> set on a
    /// truncated or unknown ref instead of throwing.</summary>
    public InlineRefEnumerator InlineRefs => new(_d, InlineRefsStart);
}

/// <summary>One inline back-ref. Fields that do not apply to the type are zero.</summary>
public readonly record struct InlineRef(ItemType Type, int ItemOffset, ulong Root, ulong Parent, ulong ObjectId, ulong Offset, uint Count)
{
    /// <summary>The value the kernel sorts same-type refs by (root, parent, or the data ref hash).</summary>
    public ulong SortKey => Type == ItemType.ExtentDataRef ? ExtentDataRefs.Hash(Root, ObjectId, Offset) : (Root | Parent);

    /// <summary>How many references this ref stands for (EXTENT_OWNER_REF: none).</summary>
    public ulong RefCount => Type switch
    {
        ItemType.TreeBlockRef or ItemType.SharedBlockRef => 1,
        ItemType.ExtentDataRef or ItemType.SharedDataRef => Count,
        _ => 0,
    };
}

public ref struct InlineRefEnumerator
{
    private readonly ReadOnlySpan<byte> _d;
    private int _pos;

    private InlineRef _current;

    internal InlineRefEnumerator(ReadOnlySpan<byte> d, int start) { _d = d; _pos = start; _current = default; Error = null; }

    /// <summary>The ref <see cref="MoveNext"/> just read, by reference: a caller that reads its fields where they were
    /// just written, rather than copying the whole struct at once, does not stall on store forwarding.</summary>
    [System.Diagnostics.CodeAnalysis.UnscopedRef]
    public readonly ref readonly InlineRef Current => ref _current;

    /// <summary>Set when enumeration stopped early: the ref is truncated or of an unknown type.</summary>
    public string? Error { get; private set; }

    /// <summary>Type byte of the ref that could not be decoded (when <see cref="Error"/> is set).</summary>
    public byte ErrorType { get; private set; }

    public int ErrorOffset { get; private set; }

    public readonly InlineRefEnumerator GetEnumerator() => this;

    public static int SizeOf(ItemType type) => type switch
    {
        ItemType.TreeBlockRef or ItemType.SharedBlockRef or ItemType.ExtentOwnerRef => 1 + 8,
        ItemType.SharedDataRef => 1 + 8 + 4,
        ItemType.ExtentDataRef => 1 + ExtentDataRefs.Size,
        _ => -1,
    };

    public bool MoveNext()
    {
        if (Error != null || _pos >= _d.Length) return false;
        var type = (ItemType)_d[_pos];
        int size = SizeOf(type);
        if (size < 0) { Fail($"unknown inline ref type {(byte)type}", (byte)type); return false; }
        if (_pos + size > _d.Length) { Fail($"inline ref of type {ItemTypes.Name((byte)type)} truncated: needs {size} bytes at offset {_pos}, item has {_d.Length}", (byte)type); return false; }
        var r = _d.Slice(_pos + 1, size - 1);
        _current = type switch
        {
            ItemType.TreeBlockRef => new InlineRef(type, _pos, Le.U64(r, 0), 0, 0, 0, 1),
            ItemType.ExtentOwnerRef => new InlineRef(type, _pos, Le.U64(r, 0), 0, 0, 0, 0),
            ItemType.SharedBlockRef => new InlineRef(type, _pos, 0, Le.U64(r, 0), 0, 0, 1),
            ItemType.SharedDataRef => new InlineRef(type, _pos, 0, Le.U64(r, 0), 0, 0, Le.U32(r, 8)),
            _ => new InlineRef(type, _pos, Le.U64(r, 0), 0, Le.U64(r, 8), Le.U64(r, 16), Le.U32(r, 24)),
        };
        _pos += size;
        return true;
    }

    private void Fail(string message, byte type) { Error = message; ErrorType = type; ErrorOffset = _pos; }
}

/// <summary>The extent_data_ref payload (28 bytes), inline or as a keyed EXTENT_DATA_REF item, and its key hash.</summary>
public static class ExtentDataRefs
{
    public const int Size = 28;

    public static (ulong Root, ulong ObjectId, ulong Offset, uint Count) Read(ReadOnlySpan<byte> d)
    {
        if (d.Length < Size) Throw.Truncated("extent data ref", Size, d.Length);
        return (Le.U64(d, 0), Le.U64(d, 8), Le.U64(d, 16), Le.U32(d, 24));
    }

    /// <summary>hash_extent_data_ref: the key offset of a keyed EXTENT_DATA_REF and the inline sort order.</summary>
    public static ulong Hash(ulong root, ulong objectId, ulong offset)
    {
        // crc32c of each field's 8 little-endian bytes: the CRC32C instruction takes a ulong least significant byte first
        uint high = System.Numerics.BitOperations.Crc32C(~0u, root);
        uint low = System.Numerics.BitOperations.Crc32C(System.Numerics.BitOperations.Crc32C(~0u, objectId), offset);
        return ((ulong)high << 31) ^ low;
    }
}

