using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Format.Items;
using BtrfsRefcheck.Volume;

namespace BtrfsRefcheck.Trees.ItemValidation;

/// <summary>CHUNK_ITEM: the kernel's check_leaf_chunk_item, <see cref="ChunkRules.CheckItem"/> (the rules and their
/// code, ChunkItemInvalid, are the chunk map loading's: one set of rules for the chunk tree, the sys_chunk_array and
/// the chunk map).</summary>
internal static class ChunkItemValidator
{
    public const ulong StripeLen = ChunkRules.StripeLen;
    public const ulong MaxLength = ChunkRules.MaxLength;

    public static void Validate(in ItemCheckContext c, ReadOnlySpan<byte> data, ItemReporter r) =>
        ChunkRules.CheckItem(r.Findings, c.Block, c.Tree, c.Slot, c.Key, data, c.SectorSize, c.IncompatFlags, c.ChunkDecodeReported);
}

/// <summary>DEV_ITEM: the kernel's check_dev_item (objectid, size, devid against the key, bytes_used within total_bytes).</summary>
internal static class DevItemValidator
{
    public static void Validate(in ItemCheckContext c, ReadOnlySpan<byte> data, ItemReporter r)
    {
        const FindingCode Code = FindingCode.DevItemInvalid;
        var key = c.Key;
        if (key.ObjectId != ObjectIds.DevItems)
            r.Add(c, Code, $"invalid key objectid {key.ObjectId}", $"{ObjectIds.DevItems} (DEV_ITEMS)", key.ObjectId.ToString());
        if (data.Length != DevItem.Size)
        {
            r.Add(c, Code, $"invalid item size {data.Length}", DevItem.Size.ToString(), data.Length.ToString());
            return;
        }
        var di = new DevItem(data);
        if (di.DevId != key.Offset)
            r.Add(c, Code, $"devid {di.DevId} differs from the key offset {key.Offset}", key.Offset.ToString(), di.DevId.ToString());
        if (di.BytesUsed > di.TotalBytes)
            r.Add(c, Code, $"bytes_used {di.BytesUsed} beyond total_bytes {di.TotalBytes}", $"<= {di.TotalBytes}", di.BytesUsed.ToString());
    }
}

/// <summary>DEV_EXTENT: the kernel's check_dev_extent_item (chunk tree and objectid, alignment), plus the size and a
/// zero length. Overlap with the previous dev extent is left to the device-extent pass (DevExtentOverlap).</summary>
internal static class DevExtentValidator
{
    public static void Validate(in ItemCheckContext c, ReadOnlySpan<byte> data, ItemReporter r)
    {
        const FindingCode Code = FindingCode.DevExtentInvalid;
        if (data.Length != DevExtent.Size)
        {
            r.Add(c, Code, $"invalid item size {data.Length}", DevExtent.Size.ToString(), data.Length.ToString());
            if (data.Length < DevExtent.Size) return;
        }
        var de = new DevExtent(data);
        if (de.ChunkTree != ObjectIds.ChunkTree)
            r.Add(c, Code, $"invalid chunk_tree {de.ChunkTree}", $"{ObjectIds.ChunkTree} (CHUNK_TREE)", de.ChunkTree.ToString());
        if (de.ChunkObjectId != ObjectIds.FirstChunkTree)
            r.Add(c, Code, $"invalid chunk_objectid {de.ChunkObjectId}", $"{ObjectIds.FirstChunkTree} (FIRST_CHUNK_TREE)", de.ChunkObjectId.ToString());
        r.Aligned(c, Code, "physical offset (key offset)", c.Key.Offset);
        r.Aligned(c, Code, "chunk_offset", de.ChunkOffset);
        if (de.Length == 0)
            r.Add(c, Code, "length 0", "> 0", "0");
        else
            r.Aligned(c, Code, "length", de.Length);
    }
}

/// <summary>BLOCK_GROUP_ITEM: the kernel's check_block_group_item (length, size, chunk_objectid, used within length,
/// at most one profile, a valid type).</summary>
internal static class BlockGroupItemValidator
{
    public static void Validate(in ItemCheckContext c, ReadOnlySpan<byte> data, ItemReporter r)
    {
        const FindingCode Code = FindingCode.BlockGroupItemInvalid;
        var key = c.Key;
        if (key.Offset == 0)
            r.Add(c, Code, "block group length (key offset) 0", "> 0", "0");
        if (data.Length != BlockGroupItem.Size)
        {
            // In the extent and block group trees the tree scan records block groups: one too short is undecodable.
            if (data.Length > BlockGroupItem.Size || c.Tree is not (ObjectIds.ExtentTree or ObjectIds.BlockGroupTree))
                r.Add(c, Code, $"invalid item size {data.Length}", BlockGroupItem.Size.ToString(), data.Length.ToString());
            else
                r.AddWhole(c, FindingCode.ItemUndecodable, $"BLOCK_GROUP_ITEM of {data.Length} bytes, expected {BlockGroupItem.Size}", null);
            return;
        }
        var bg = new BlockGroupItem(data);
        // With EXTENT_TREE_V2 the field holds a global root id: below the superblock's nr_global_roots (when known).
        if (c.Has(Features.IncompatExtentTreeV2))
        {
            if (c.NrGlobalRoots != 0 && bg.ChunkObjectId >= c.NrGlobalRoots)
                r.Add(c, Code, $"invalid global root id {bg.ChunkObjectId} (chunk_objectid, EXTENT_TREE_V2)", $"< {c.NrGlobalRoots} (nr_global_roots)", bg.ChunkObjectId.ToString());
        }
        else if (bg.ChunkObjectId != ObjectIds.FirstChunkTree)
            r.Add(c, Code, $"invalid chunk_objectid {bg.ChunkObjectId}", $"{ObjectIds.FirstChunkTree} (FIRST_CHUNK_TREE)", bg.ChunkObjectId.ToString());
        if (bg.Used > key.Offset)
            r.Add(c, Code, $"used {bg.Used} beyond the block group length {key.Offset}", $"<= {key.Offset}", bg.Used.ToString());
        var flags = bg.Flags;
        var profiles = flags & BlockGroupFlags.ProfileMask;
        if (ulong.PopCount((ulong)profiles) > 1)
            r.Add(c, Code, $"more than one profile in flags {flags.Describe()}", "at most one profile bit", $"0x{(ulong)flags:x}");
        var kind = flags & BlockGroupFlags.TypeMask;
        if (kind is not (BlockGroupFlags.Data or BlockGroupFlags.Metadata or BlockGroupFlags.System or (BlockGroupFlags.Data | BlockGroupFlags.Metadata)))
            r.Add(c, Code, $"invalid type in flags {flags.Describe()}", "DATA, METADATA, SYSTEM or DATA|METADATA", $"0x{(ulong)kind:x}");
    }
}
