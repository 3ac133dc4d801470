using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Format.Items;
using BtrfsRefcheck.Volume;

namespace BtrfsRefcheck.Trees.ItemValidation;

/// <summary>CHUNK_ITEM: the kernel's check_leaf_chunk_item / btrfs_check_chunk_valid. What
/// <see cref="ChunkMap.Decode"/> rejects (the volume reports it as unusable while building the chunk map) is not
/// repeated; this adds the rules a usable chunk can still break.</summary>
internal static class ChunkItemValidator
{
    public const ulong StripeLen = 64 * 1024; // BTRFS_STRIPE_LEN
    public const ulong MaxLength = (ulong)uint.MaxValue << 16; // btrfs_stripe_nr_to_offset(U32_MAX)

    public static void Validate(in ItemCheckContext c, ReadOnlySpan<byte> data, ItemReporter r)
    {
        const FindingCode Code = FindingCode.ChunkItemInvalid;
        var key = c.Key;
        if (ChunkMap.Decode(key, data, out string? problem) == null)
        {
            if (!c.ChunkDecodeReported) r.Add(c, Code, $"chunk item unusable: {problem}");
            return;
        }
        var ci = new ChunkItem(data);
        if (ci.ImpliedSize != data.Length)
            r.Add(c, Code, $"item size {data.Length} does not match num_stripes {ci.NumStripes}",
                $"{ChunkItem.HeaderSize} + {ci.NumStripes} * {ChunkItem.StripeSize} = {ci.ImpliedSize}", data.Length.ToString());
        r.Aligned(c, Code, "chunk logical start (key offset)", key.Offset);
        if (ci.SectorSize != c.SectorSize)
            r.Add(c, Code, $"chunk sector_size {ci.SectorSize} differs from the filesystem's", c.SectorSize.ToString(), ci.SectorSize.ToString());
        r.Aligned(c, Code, "chunk length", ci.Length);
        if (ci.StripeLen != StripeLen)
            r.Add(c, Code, $"invalid stripe_len {ci.StripeLen}", StripeLen.ToString(), ci.StripeLen.ToString());
        if (ci.Length >= MaxLength)
            r.Add(c, Code, $"chunk length {ci.Length} too large", $"< {MaxLength}", ci.Length.ToString());

        var type = ci.Type;
        ulong unknown = (ulong)type & ~(ulong)(BlockGroupFlags.TypeMask | BlockGroupFlags.ProfileMask);
        if (unknown != 0)
            r.Add(c, Code, $"unknown chunk type bits 0x{unknown:x} in {type.Describe()}", "DATA, METADATA, SYSTEM and one profile", $"0x{(ulong)type:x}");
        var kind = type & BlockGroupFlags.TypeMask;
        if (kind == 0)
            r.Add(c, Code, $"chunk type {type.Describe()} has none of DATA, METADATA, SYSTEM", "at least one of DATA, METADATA, SYSTEM", $"0x{(ulong)type:x}");
        else if ((kind & BlockGroupFlags.System) != 0 && kind != BlockGroupFlags.System)
            r.Add(c, Code, $"SYSTEM chunk also typed {type.Describe()}", "SYSTEM alone", $"0x{(ulong)type:x}");
        else if (kind == (BlockGroupFlags.Data | BlockGroupFlags.Metadata) && !c.Has(Features.IncompatMixedGroups))
            r.Add(c, Code, $"mixed DATA|METADATA chunk on a filesystem without MIXED_GROUPS", "DATA or METADATA", type.Describe());

        var profile = type.Profile()!.Value;
        ushort n = ci.NumStripes, sub = ci.SubStripes;
        int? exact = profile switch
        {
            RaidProfile.Single => 1,
            RaidProfile.Dup or RaidProfile.Raid1 => 2,
            RaidProfile.Raid1C3 => 3,
            RaidProfile.Raid1C4 => 4,
            _ => null, // RAID0 any; RAID10, RAID5, RAID6: the minimum ChunkMap.Decode enforces
        };
        if (exact is { } e && n != e)
            r.Add(c, Code, $"{profile} chunk with num_stripes {n}", e.ToString(), n.ToString());
        // Other profiles ignore sub_stripes: the kernel writes 1, mkfs.btrfs leaves 0 in its first chunk.
        if (profile == RaidProfile.Raid10 && sub != 2)
            r.Add(c, Code, $"RAID10 chunk with sub_stripes {sub}", "2", sub.ToString());
    }
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
            // The reference pass already reports a short item in the extent and block group trees (ItemUndecodable).
            if (data.Length > BlockGroupItem.Size || c.Tree is not (ObjectIds.ExtentTree or ObjectIds.BlockGroupTree))
                r.Add(c, Code, $"invalid item size {data.Length}", BlockGroupItem.Size.ToString(), data.Length.ToString());
            return;
        }
        var bg = new BlockGroupItem(data);
        // With EXTENT_TREE_V2 the field holds a global root id, checked against nr_global_roots once they are loaded.
        if (!c.Has(Features.IncompatExtentTreeV2) && bg.ChunkObjectId != ObjectIds.FirstChunkTree)
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
