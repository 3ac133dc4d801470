using System.Runtime.CompilerServices;
using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Format.Items;

namespace BtrfsRefcheck.Trees.ItemValidation;

/// <summary>What the kernel's check_extent_item checks that the reference pass does not. The reference pass already
/// reports: an item shorter than 24 bytes, flags without exactly one of DATA / TREE_BLOCK, a METADATA_ITEM without
/// TREE_BLOCK, a truncated tree_block_info or inline ref, unknown inline ref types, inline ref order (507, 508, 509);
/// ExtentRefsMismatch covers refs below the inline refs, ExtentTypeMismatch an EXTENT_ITEM tree block whose length
/// is not the nodesize, and ExtentOverlap overlapping extents.</summary>
internal static class ExtentItemValidator
{
    private const FindingCode Code = FindingCode.ExtentItemMalformed;

    public static void Validate(in ItemCheckContext c, ReadOnlySpan<byte> data, ItemReporter r)
    {
        var key = c.Key;
        bool meta = key.ItemType == ItemType.MetadataItem;
        if (meta && !c.Has(Features.IncompatSkinnyMetadata))
            r.Add(c, Code, "METADATA_ITEM on a filesystem without SKINNY_METADATA", "EXTENT_ITEM", "METADATA_ITEM");
        r.Aligned(c, Code, "extent bytenr (key objectid)", key.ObjectId);
        if (meta && key.Offset >= Header.MaxLevel) Report(c, r, Problem.KeyLevel, key.Offset);
        if (data.Length < ExtentItem.FixedSize) return; // reported by the reference pass

        var ei = new ExtentItem(data, key.ItemType);
        r.Generation(c, "extent generation", ei.Generation);
        if (ei.Refs == 0)
            r.Add(c, Code, "refs 0: an extent item exists only while something references it", ">= 1", "0");
        if (ei.IsTreeBlock == ei.IsData) return; // reported by the reference pass; the type-specific rules cannot apply
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
        else if (ei.HasTreeBlockInfo && data.Length >= ExtentItem.FixedSize + ExtentItem.TreeBlockInfoSize && ei.TreeBlockLevel >= Header.MaxLevel)
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
        // refs.Error (truncated or unknown inline ref) is reported by the reference pass.
    }

    private enum Problem { KeyLevel, DataLengthZero, DataFullBackref, TreeBlockLevel, InlineParent, InlineCountZero, OwnerRefWithoutSquota }

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
/// check_simple_keyed_refs and check_extent_data_ref, plus a zero root or parent in the key. Sizes the reference
/// pass reports (a short SHARED_DATA_REF / EXTENT_DATA_REF, data in a block ref; ExtentItemMalformed) are not
/// repeated, nor the EXTENT_DATA_REF hash (KeyedDataRefHashMismatch).</summary>
internal static class KeyedRefValidator
{
    public static void Validate(in ItemCheckContext c, ReadOnlySpan<byte> data, ItemReporter r)
    {
        const FindingCode Code = FindingCode.KeyedBackrefInvalid;
        var key = c.Key;
        bool refPass = c.Tree == ObjectIds.ExtentTree; // the reference pass reads keyed refs of the extent tree only
        r.Aligned(c, Code, "extent bytenr (key objectid)", key.ObjectId);
        switch (key.ItemType)
        {
            case ItemType.TreeBlockRef:
            case ItemType.SharedBlockRef:
                if (data.Length != 0 && !refPass)
                    r.Add(c, Code, $"invalid item size {data.Length}", "0", data.Length.ToString());
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
                    if (data.Length > SharedDataRef.Size || !refPass)
                        r.Add(c, Code, $"invalid item size {data.Length}", SharedDataRef.Size.ToString(), data.Length.ToString());
                    if (data.Length < SharedDataRef.Size) return;
                }
                if (new SharedDataRef(data).Count == 0)
                    r.Add(c, Code, "shared data ref count 0", ">= 1", "0");
                break;
            case ItemType.ExtentDataRef:
                // Hash collisions may put several extent_data_refs in one item: any multiple of 28 bytes is valid.
                if (data.Length % ExtentDataRefs.Size != 0 || data.Length == 0)
                {
                    if (data.Length > ExtentDataRefs.Size || !refPass)
                        r.Add(c, Code, $"invalid item size {data.Length}", $"a non-zero multiple of {ExtentDataRefs.Size}", data.Length.ToString());
                    if (data.Length < ExtentDataRefs.Size) return;
                }
                for (int pos = 0; pos + ExtentDataRefs.Size <= data.Length; pos += ExtentDataRefs.Size)
                {
                    var (root, objectId, offset, count) = ExtentDataRefs.Read(data[pos..]);
                    ExtentItemValidator.DataRefFields(c, r, Code, "extent_data_ref", pos, root, objectId, offset, count);
                }
                break;
        }
    }

    private static void Parent(in ItemCheckContext c, ItemReporter r, ulong parent)
    {
        if (parent == 0 || !c.Aligned(parent))
            r.Add(c, FindingCode.KeyedBackrefInvalid, $"parent block (key offset) {parent}", $"a non-zero multiple of {c.SectorSize}", parent.ToString());
    }
}
