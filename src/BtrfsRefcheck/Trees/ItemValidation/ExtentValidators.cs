using System.Runtime.CompilerServices;
using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Format.Items;

namespace BtrfsRefcheck.Trees.ItemValidation;

/// <summary>How much of an extent item can be decoded (<see cref="ExtentItemValidator.ShapeOf"/>).</summary>
public enum ExtentItemShape : byte
{
    /// <summary>Shorter than the 24-byte fixed part (or a v0 extent item).</summary>
    TooShort,
    /// <summary>An EXTENT_ITEM of a tree block too short for its tree_block_info.</summary>
    NoTreeBlockInfo,
    /// <summary>The fixed part and tree_block_info are there; the inline refs decode up to their first error.</summary>
    Decodable,
}

/// <summary>The kernel's check_extent_item. In the extent tree an extent item is the record of its extent, and what
/// keeps it from being decoded (too short, a truncated tree_block_info or inline ref, flags without exactly one of
/// DATA / TREE_BLOCK, a METADATA_ITEM without TREE_BLOCK) is reported at the extent (<c>bytenr</c> = the extent); the
/// extent references pass decodes by the same <see cref="ShapeOf"/> and reports only what it decides (unknown inline
/// ref types and their order: 507, 508). ExtentRefsMismatch covers refs below the inline refs, ExtentTypeMismatch an
/// EXTENT_ITEM tree block whose length is not the nodesize, and ExtentOverlap overlapping extents.</summary>
internal static class ExtentItemValidator
{
    private const FindingCode Code = FindingCode.ExtentItemMalformed;

    /// <summary>How much of the extent item (<paramref name="key"/>, <paramref name="data"/>) can be decoded: the one
    /// rule the item validator reports by and the extent references pass's decoder reads by.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ExtentItemShape ShapeOf(BtrfsKey key, ReadOnlySpan<byte> data) =>
        data.Length < ExtentItem.FixedSize ? ExtentItemShape.TooShort
        : data.Length < ExtentItem.FixedSize + ExtentItem.TreeBlockInfoSize && new ExtentItem(data, key.ItemType).HasTreeBlockInfo ? ExtentItemShape.NoTreeBlockInfo
        : ExtentItemShape.Decodable;

    public static void Validate(in ItemCheckContext c, ReadOnlySpan<byte> data, ItemReporter r)
    {
        var key = c.Key;
        bool meta = key.ItemType == ItemType.MetadataItem;
        bool extentTree = c.Tree == ObjectIds.ExtentTree;
        if (meta && !c.Has(Features.IncompatSkinnyMetadata))
            r.Add(c, Code, "METADATA_ITEM on a filesystem without SKINNY_METADATA", "EXTENT_ITEM", "METADATA_ITEM");
        r.Aligned(c, Code, "extent bytenr (key objectid)", key.ObjectId);
        if (meta && key.Offset >= Header.MaxLevel) Report(c, r, Problem.KeyLevel, key.Offset);
        var shape = ShapeOf(key, data);
        if (shape == ExtentItemShape.TooShort)
        {
            if (extentTree) Undecodable(c, r, Problem.TooShort, (ulong)data.Length);
            return;
        }

        var ei = new ExtentItem(data, key.ItemType);
        if (extentTree) Flags(c, r, shape, ei, meta, data.Length);
        r.Generation(c, "extent generation", ei.Generation);
        if (ei.Refs == 0)
            r.Add(c, Code, "refs 0: an extent item exists only while something references it", ">= 1", "0");
        if (ei.IsTreeBlock == ei.IsData)
        {
            // reported above; the type-specific rules cannot apply, but the inline refs are still read
            if (extentTree && shape == ExtentItemShape.Decodable) InlineRefError(c, r, ei);
            return;
        }
        if (ei.IsData)
        {
            if (!meta)
            {
                if (key.Offset == 0)
                    Report(c, r, Problem.DataLengthZero, 0);
                else
                    r.Aligned(c, Code, "data extent length (key offset)", key.Offset);
            }
            if (ei.IsFullBackref) Report(c, r, Problem.DataFullBackref, (ulong)ei.Flags);
        }
        else if (shape == ExtentItemShape.Decodable && ei.HasTreeBlockInfo && ei.TreeBlockLevel >= Header.MaxLevel)
            Report(c, r, Problem.TreeBlockLevel, ei.TreeBlockLevel);

        var refs = ei.InlineRefs;
        while (refs.MoveNext())
        {
            var x = refs.Current;
            switch (x.Type)
            {
                case ItemType.SharedBlockRef or ItemType.SharedDataRef:
                    if (x.Parent == 0 || !c.Aligned(x.Parent)) Report(c, r, Problem.InlineParent, 0, x);
                    if (x.Type == ItemType.SharedDataRef && x.Count == 0) Report(c, r, Problem.InlineCountZero, 0, x);
                    break;
                case ItemType.ExtentDataRef:
                    DataRefFields(c, r, Code, "inline EXTENT_DATA_REF", x.ItemOffset, x.Root, x.ObjectId, x.Offset, x.Count);
                    break;
                case ItemType.ExtentOwnerRef when !c.Has(Features.IncompatSimpleQuota):
                    Report(c, r, Problem.OwnerRefWithoutSquota, 0, x);
                    break;
            }
        }
        // An unknown inline ref type is the extent references pass's (508); a truncated one is this item's.
        if (refs.Error != null && extentTree && shape == ExtentItemShape.Decodable) TruncatedInlineRef(c, r, refs.Error, refs.ErrorType);
    }

    /// <summary>In the extent tree: the flags rules the decoder of the extent references pass also reads by.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Flags(in ItemCheckContext c, ItemReporter r, ExtentItemShape shape, in ExtentItem ei, bool meta, int size)
    {
        if (shape == ExtentItemShape.NoTreeBlockInfo) { Undecodable(c, r, Problem.NoTreeBlockInfo, (ulong)size); return; }
        if (meta && !ei.IsTreeBlock) Undecodable(c, r, Problem.MetadataNotTreeBlock, (ulong)ei.Flags);
        if (ei.IsTreeBlock == ei.IsData) Undecodable(c, r, Problem.FlagsNotOneType, (ulong)ei.Flags);
    }

    /// <summary>The inline refs of an extent item whose flags are reported: only their first error is looked for.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void InlineRefError(in ItemCheckContext c, ItemReporter r, in ExtentItem ei)
    {
        var refs = ei.InlineRefs;
        while (refs.MoveNext()) { }
        if (refs.Error != null) TruncatedInlineRef(c, r, refs.Error, refs.ErrorType);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void TruncatedInlineRef(in ItemCheckContext c, ItemReporter r, string error, byte type)
    {
        if (InlineRefEnumerator.SizeOf((ItemType)type) < 0) return; // unknown type: 508, the extent references pass's
        r.AddAtExtent(c, Code, $"extent {c.Key.ObjectId}: {error}; the inline refs after it are not checked");
    }

    /// <summary>What keeps an extent-tree extent item from being decoded, at the extent.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Undecodable(in ItemCheckContext c, ItemReporter r, Problem problem, ulong value)
    {
        string at = $"extent tree leaf {c.Block}: ";
        r.AddAtExtent(c, Code, problem switch
        {
            Problem.TooShort => $"{at}{ItemTypes.Name(c.Key.Type)} of {value} bytes, need at least {ExtentItem.FixedSize} (v0 extent items are not supported)",
            Problem.NoTreeBlockInfo => $"{at}EXTENT_ITEM of a tree block has {value} bytes, too short for tree_block_info",
            Problem.MetadataNotTreeBlock => $"{at}METADATA_ITEM without the TREE_BLOCK flag (flags 0x{value:x})",
            _ => $"{at}extent flags 0x{value:x} must have exactly one of DATA and TREE_BLOCK",
        });
    }

    private enum Problem { TooShort, NoTreeBlockInfo, MetadataNotTreeBlock, FlagsNotOneType, KeyLevel, DataLengthZero, DataFullBackref, TreeBlockLevel, InlineParent, InlineCountZero, OwnerRefWithoutSquota }

    /// <summary>The messages, out of line: Validate runs for every extent item and reports almost never.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Report(in ItemCheckContext c, ItemReporter r, Problem problem, ulong value, in InlineRef x = default)
    {
        switch (problem)
        {
            case Problem.KeyLevel:
                r.Add(c, Code, $"invalid tree level {value} in the key offset", $"0..{Header.MaxLevel - 1}", value.ToString());
                break;
            case Problem.DataLengthZero:
                r.Add(c, Code, "data extent length (key offset) 0", $"a non-zero multiple of {c.SectorSize}", "0");
                break;
            case Problem.DataFullBackref:
                r.Add(c, Code, "data extent with FULL_BACKREF set (only tree blocks have it)", "DATA without FULL_BACKREF", $"0x{value:x}");
                break;
            case Problem.TreeBlockLevel:
                r.Add(c, Code, $"invalid level {value} in tree_block_info", $"0..{Header.MaxLevel - 1}", value.ToString());
                break;
            case Problem.InlineParent:
                r.Add(c, Code, $"{Inline(x)} names parent {x.Parent}", $"a non-zero multiple of {c.SectorSize}", x.Parent.ToString());
                break;
            case Problem.InlineCountZero:
                r.Add(c, Code, $"{Inline(x)} has count 0", ">= 1", "0");
                break;
            case Problem.OwnerRefWithoutSquota:
                r.Add(c, Code, $"{Inline(x)} on a filesystem without SIMPLE_QUOTA (the kernel warns)", "no EXTENT_OWNER_REF", $"owner root {x.Root}",
                    Severity.Warning);
                break;
        }
    }

    private static string Inline(in InlineRef x) => $"inline {ItemTypes.Name((byte)x.Type)} at item offset {x.ItemOffset}";

    /// <summary>is_valid_dref_root: data is referenced by subvolume trees, the data reloc tree and (v1 space cache) the root tree.</summary>
    public static bool ValidDataRefRoot(ulong root) =>
        ItemCheckContext.KernelIsFsTree(root) || root == ObjectIds.DataRelocTree || root == ObjectIds.RootTree;

    /// <summary>The fields of an extent_data_ref, inline or keyed: root, inode number, file offset alignment, count.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void DataRefFields(in ItemCheckContext c, ItemReporter r, FindingCode code, string what, int pos, ulong root, ulong objectId, ulong offset, uint count)
    {
        if (!(ValidDataRefRoot(root) && ValidDataRefInode(objectId) && c.Aligned(offset) && count != 0))
            BadDataRefFields(c, r, code, what, pos, root, objectId, offset, count);
    }

    /// <summary>A file's inode number, or FREE_INO: the old inode cache kept its data in a file of that number (its
    /// presence is reported once per tree as <see cref="FindingCode.DeprecatedInodeCache"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool ValidDataRefInode(ulong objectId) =>
        (objectId >= ObjectIds.FirstFree && objectId <= ObjectIds.LastFree) || objectId == ObjectIds.FreeIno;

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void BadDataRefFields(in ItemCheckContext c, ItemReporter r, FindingCode code, string what, int pos, ulong root, ulong objectId, ulong offset, uint count)
    {
        string at = $"{what} at item offset {pos}";
        if (!ValidDataRefRoot(root))
            r.Add(c, code, $"{at} names root {ObjectIds.TreeName(root)}, which holds no file data", "a subvolume, DATA_RELOC_TREE or ROOT_TREE", root.ToString());
        if (!ValidDataRefInode(objectId))
            r.Add(c, code, $"{at} names inode {objectId}", "[256, 18446744073709551360] or FREE_INO (the old inode cache)", objectId.ToString());
        if (!c.Aligned(offset))
            r.Add(c, code, $"{at} has file offset {offset} not aligned to sectorsize {c.SectorSize}", $"multiple of {c.SectorSize}", offset.ToString());
        if (count == 0)
            r.Add(c, code, $"{at} has count 0", ">= 1", "0");
    }
}

/// <summary>Keyed TREE_BLOCK_REF, SHARED_BLOCK_REF, SHARED_DATA_REF and EXTENT_DATA_REF: the kernel's
/// check_simple_keyed_refs and check_extent_data_ref, plus a zero root or parent in the key. In the extent tree a keyed
/// ref is a record of its extent: data in a block ref, or a data ref too short to decode (<see cref="Decodable"/>, which
/// the extent references pass decodes by), is a malformed extent (ExtentItemMalformed, at the extent); anywhere else
/// a wrong size is KeyedBackrefInvalid. The EXTENT_DATA_REF hash is the pass's (KeyedDataRefHashMismatch).</summary>
internal static class KeyedRefValidator
{
    /// <summary>Whether a keyed ref of <paramref name="type"/> with <paramref name="size"/> bytes can be decoded.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool Decodable(ItemType type, int size) => type switch
    {
        ItemType.SharedDataRef => size >= SharedDataRef.Size,
        ItemType.ExtentDataRef => size >= ExtentDataRefs.Size,
        _ => true,
    };

    public static void Validate(in ItemCheckContext c, ReadOnlySpan<byte> data, ItemReporter r)
    {
        const FindingCode Code = FindingCode.KeyedBackrefInvalid;
        var key = c.Key;
        bool extentTree = c.Tree == ObjectIds.ExtentTree;
        r.Aligned(c, Code, "extent bytenr (key objectid)", key.ObjectId);
        switch (key.ItemType)
        {
            case ItemType.TreeBlockRef:
            case ItemType.SharedBlockRef:
                if (data.Length != 0)
                {
                    if (extentTree) Malformed(c, r, $"keyed {ItemTypes.Name(key.Type)} has {data.Length} bytes of data, expected 0");
                    else r.Add(c, Code, $"invalid item size {data.Length}", "0", data.Length.ToString());
                }
                if (key.ItemType == ItemType.TreeBlockRef)
                {
                    if (key.Offset == 0) r.Add(c, Code, "root id (key offset) 0", "a tree id", "0");
                }
                else Parent(c, r, key.Offset);
                break;
            case ItemType.SharedDataRef:
                Parent(c, r, key.Offset);
                if (data.Length != SharedDataRef.Size)
                {
                    if (data.Length > SharedDataRef.Size || !extentTree)
                        r.Add(c, Code, $"invalid item size {data.Length}", SharedDataRef.Size.ToString(), data.Length.ToString());
                    if (!Decodable(key.ItemType, data.Length))
                    {
                        if (extentTree) Malformed(c, r, $"keyed SHARED_DATA_REF has {data.Length} bytes, expected {SharedDataRef.Size}");
                        return;
                    }
                }
                if (new SharedDataRef(data).Count == 0)
                    r.Add(c, Code, "shared data ref count 0", ">= 1", "0");
                break;
            case ItemType.ExtentDataRef:
                // Hash collisions may put several extent_data_refs in one item: any multiple of 28 bytes is valid.
                if (data.Length % ExtentDataRefs.Size != 0 || data.Length == 0)
                {
                    if (data.Length > ExtentDataRefs.Size || !extentTree)
                        r.Add(c, Code, $"invalid item size {data.Length}", $"a non-zero multiple of {ExtentDataRefs.Size}", data.Length.ToString());
                    if (!Decodable(key.ItemType, data.Length))
                    {
                        if (extentTree) Malformed(c, r, $"keyed EXTENT_DATA_REF has {data.Length} bytes, expected {ExtentDataRefs.Size}");
                        return;
                    }
                }
                for (int pos = 0; pos + ExtentDataRefs.Size <= data.Length; pos += ExtentDataRefs.Size)
                {
                    var (root, objectId, offset, count) = ExtentDataRefs.Read(data[pos..]);
                    ExtentItemValidator.DataRefFields(c, r, Code, "extent_data_ref", pos, root, objectId, offset, count);
                }
                break;
        }
    }

    /// <summary>An extent-tree keyed ref that is no record of its extent: ExtentItemMalformed, at the extent.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Malformed(in ItemCheckContext c, ItemReporter r, string what) =>
        r.AddAtExtent(c, FindingCode.ExtentItemMalformed, $"extent {c.Key.ObjectId}: {what}");

    private static void Parent(in ItemCheckContext c, ItemReporter r, ulong parent)
    {
        if (parent == 0 || !c.Aligned(parent))
            r.Add(c, FindingCode.KeyedBackrefInvalid, $"parent block (key offset) {parent}", $"a non-zero multiple of {c.SectorSize}", parent.ToString());
    }
}
