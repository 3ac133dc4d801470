using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;

namespace BtrfsRefcheck.Volume;

/// <summary>Receives the rules a chunk breaks (<see cref="ChunkRules.Check"/>): what, expected, found.</summary>
public interface IChunkRuleSink
{
    void Broken(string what, string? expected, string? found);
}

/// <summary>The kernel's <c>btrfs_check_chunk_valid</c> (tree-checker.c), shared by the chunk tree's CHUNK_ITEMs (the item
/// validator calls <see cref="CheckItem"/>) and the superblock's sys_chunk_array (the kernel runs it on both; read_one_chunk on the array). What
/// <see cref="ChunkMap.Decode"/> rejects (no stripes, zero length, overflow, several profiles, too few stripes) makes
/// the chunk unusable and is reported by the caller; these are the rules a usable chunk can still break.</summary>
public static class ChunkRules
{
    public const ulong StripeLen = 64 * 1024; // BTRFS_STRIPE_LEN
    public const ulong MaxLength = (ulong)uint.MaxValue << 16; // btrfs_stripe_nr_to_offset(U32_MAX)

    /// <summary>Checks chunk <paramref name="ci"/> at <paramref name="logical"/> (its key offset), already decoded by
    /// <see cref="ChunkMap.Decode"/>. A generic struct sink, so the caller's state travels without an allocation.</summary>
    public static void Check<TSink>(ulong logical, ChunkItem ci, uint sectorSize, ulong incompatFlags, ref TSink sink)
        where TSink : struct, IChunkRuleSink
    {
        if (!Aligned(logical, sectorSize))
            sink.Broken($"chunk logical start (key offset) {logical} is not aligned to sectorsize {sectorSize}", $"multiple of {sectorSize}", logical.ToString());
        if (ci.SectorSize != sectorSize)
            sink.Broken($"chunk sector_size {ci.SectorSize} differs from the filesystem's", sectorSize.ToString(), ci.SectorSize.ToString());
        if (!Aligned(ci.Length, sectorSize))
            sink.Broken($"chunk length {ci.Length} is not aligned to sectorsize {sectorSize}", $"multiple of {sectorSize}", ci.Length.ToString());
        if (ci.StripeLen != StripeLen)
            sink.Broken($"invalid stripe_len {ci.StripeLen}", StripeLen.ToString(), ci.StripeLen.ToString());
        if (ci.Length >= MaxLength)
            sink.Broken($"chunk length {ci.Length} too large", $"< {MaxLength}", ci.Length.ToString());

        var type = ci.Type;
        ulong unknown = (ulong)type & ~(ulong)(BlockGroupFlags.TypeMask | BlockGroupFlags.ProfileMask | BlockGroupFlags.Remapped);
        if (unknown != 0)
            sink.Broken($"unknown chunk type bits 0x{unknown:x} in {type.Describe()}", "DATA, METADATA, SYSTEM and one profile", $"0x{(ulong)type:x}");
        // REMAPPED is a type bit the kernel knows; its addresses are translated through the remap tree, which only a
        // REMAP_TREE filesystem has (the kernel's tree-checker does not look: it would fail to translate them).
        if ((type & BlockGroupFlags.Remapped) != 0 && (incompatFlags & Features.IncompatRemapTree) == 0)
            sink.Broken($"REMAPPED chunk ({type.Describe()}) on a filesystem without REMAP_TREE: nothing translates its addresses", "REMAP_TREE", "not set");
        var kind = type & BlockGroupFlags.TypeMask;
        if (kind == 0)
            sink.Broken($"chunk type {type.Describe()} has none of DATA, METADATA, SYSTEM", "at least one of DATA, METADATA, SYSTEM", $"0x{(ulong)type:x}");
        else if ((kind & BlockGroupFlags.System) != 0 && kind != BlockGroupFlags.System)
            sink.Broken($"SYSTEM chunk also typed {type.Describe()}", "SYSTEM alone", $"0x{(ulong)type:x}");
        else if (kind == (BlockGroupFlags.Data | BlockGroupFlags.Metadata) && (incompatFlags & Features.IncompatMixedGroups) == 0)
            sink.Broken("mixed DATA|METADATA chunk on a filesystem without MIXED_GROUPS", "DATA or METADATA", type.Describe());

        // a REMAPPED chunk's stripes are not its profile's (the kernel skips the count for it)
        if (type.Profile() is not { } profile || (type & BlockGroupFlags.Remapped) != 0) return;
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
            sink.Broken($"{profile} chunk with num_stripes {n}", e.ToString(), n.ToString());
        // Other profiles ignore sub_stripes (the kernel maps with its own table): it writes 1, mkfs.btrfs left 0 in its
        // first chunk before 5.4.
        if (profile == RaidProfile.Raid10 && sub != 2)
            sink.Broken($"RAID10 chunk with sub_stripes {sub}", "2", sub.ToString());
    }

    /// <summary>A CHUNK_ITEM in a tree leaf (the kernel's check_leaf_chunk_item, run by the item validator on every
    /// CHUNK_ITEM it meets): unusable (<see cref="ChunkMap.Decode"/> rejects it; not again when the chunk map loader
    /// already reported it, <paramref name="unusableReported"/>), an item size that does not match num_stripes, then
    /// <see cref="Check"/>. Reported as ChunkItemInvalid at the leaf.</summary>
    public static void CheckItem(FindingBag findings, ulong leaf, ulong tree, int slot, BtrfsKey key, ReadOnlySpan<byte> data,
        uint sectorSize, ulong incompatFlags, bool unusableReported)
    {
        var sink = new LeafItemSink(findings, leaf, tree, slot, key);
        if (ChunkMap.Decode(key, data, out string? problem) == null && problem != null)
        {
            if (!unusableReported) sink.Broken($"chunk item unusable: {problem}", null, null);
            return;
        }
        var ci = new ChunkItem(data);
        if (ci.NumStripes == 0) // fully REMAPPED (else unusable, above): the item still holds one stripe's room
        {
            if (data.Length < ChunkItem.HeaderSize + ChunkItem.StripeSize)
                sink.Broken($"item size {data.Length} is below one chunk with one stripe", $">= {ChunkItem.HeaderSize + ChunkItem.StripeSize}", data.Length.ToString());
        }
        else if (ci.ImpliedSize != data.Length)
            sink.Broken($"item size {data.Length} does not match num_stripes {ci.NumStripes}",
                $"{ChunkItem.HeaderSize} + {ci.NumStripes} * {ChunkItem.StripeSize} = {ci.ImpliedSize}", data.Length.ToString());
        Check(key.Offset, ci, sectorSize, incompatFlags, ref sink);
    }

    /// <summary>A broken rule of a CHUNK_ITEM in a leaf: 201 at the leaf, in the item validator's words.</summary>
    private readonly struct LeafItemSink(FindingBag findings, ulong leaf, ulong tree, int slot, BtrfsKey key) : IChunkRuleSink
    {
        public void Broken(string what, string? expected, string? found) =>
            findings.Add(new Finding(FindingCode.ChunkItemInvalid, Severity.Error, $"{ItemTypes.Name(key.Type)}: {what}",
                Bytenr: leaf, Tree: tree, Slot: slot, Key: key, Expected: expected, Found: found));
    }

    /// <summary>A multiple of the sector size; never true for a sector size of 0 (a damaged superblock is reported
    /// elsewhere, and unit tests build contexts without one).</summary>
    private static bool Aligned(ulong value, uint sectorSize) =>
        uint.IsPow2(sectorSize) ? (value & (sectorSize - 1)) == 0 : sectorSize != 0 && value % sectorSize == 0;
}
