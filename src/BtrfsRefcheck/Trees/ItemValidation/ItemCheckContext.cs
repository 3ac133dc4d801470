using System.Runtime.CompilerServices;
using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;

namespace BtrfsRefcheck.Trees.ItemValidation;

/// <summary>What an item validator needs to know: filesystem constants from the superblock, where the item sits
/// (tree, leaf, slot, key) and the key before it in the same leaf. Small on purpose, so unit tests can build one
/// without a volume.</summary>
/// <param name="Owner">The leaf header's owner (the kernel's <c>check_prev_ino</c> looks at it, not at the tree walked).</param>
/// <param name="PrevKey">The key of slot - 1 in the same leaf; null for slot 0.</param>
/// <param name="FreeSpaceInfo">The last FREE_SPACE_INFO key before this item in the same leaf: the block group the
/// free-space extents and bitmaps after it belong to.</param>
/// <param name="NrGlobalRoots">The superblock's nr_global_roots (EXTENT_TREE_V2; 0: not known, as the kernel at mount).</param>
/// <param name="ChunkDecodeReported">The chunk map loader already reported this CHUNK_ITEM as unusable while loading
/// the chunk map (<see cref="Volume.BtrfsVolume.UnusableChunkItems"/>); its problem is not reported again.</param>
/// <remarks>Not readonly so that a leaf's walk builds one and only sets the per-item fields for each slot (a copy or
/// a fresh construction of the whole context per item showed in profiles); validators take it as <c>in</c>, and every
/// member that is not an auto-property is <c>readonly</c>, so they neither change it nor copy it.</remarks>
public record struct ItemCheckContext(
    uint SectorSize,
    uint NodeSize,
    int CsumSize,
    ulong SuperGeneration,
    ulong IncompatFlags,
    ulong Tree,
    bool IsLog,
    ulong Owner,
    ulong Block,
    int Slot,
    BtrfsKey Key,
    BtrfsKey? PrevKey = null,
    BtrfsKey? FreeSpaceInfo = null,
    bool ChunkDecodeReported = false,
    ulong SuperFlags = 0,
    ulong NrGlobalRoots = 0)
{
    /// <summary>btrfstune --csum is part-way (superblock CHANGING_DATA_CSUM or CHANGING_META_CSUM).</summary>
    public readonly bool ChangingCsum => (SuperFlags & (Superblock.FlagChangingDataCsum | Superblock.FlagChangingMetaCsum)) != 0;

    /// <summary>Newest generation or transid an item may record: the superblock's, plus one in log trees (written
    /// by the transaction after the last commit).</summary>
    public readonly ulong MaxGeneration => SuperGeneration + (IsLog ? 1UL : 0UL);

    /// <summary>Bytes of a leaf available to item headers and data (nodesize minus the 101-byte header).</summary>
    public readonly uint LeafDataSize => NodeSize - (uint)Header.Size;

    /// <summary>BTRFS_MAX_ITEM_SIZE: the largest item data a leaf can hold.</summary>
    public readonly uint MaxItemSize => LeafDataSize - (uint)ItemHeader.Size;

    public readonly bool Has(ulong incompatFeature) => (IncompatFlags & incompatFeature) != 0;

    /// <summary>A multiple of the sector size (a mask when it is a power of two, as every valid one is).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly bool Aligned(ulong value) =>
        uint.IsPow2(SectorSize) ? (value & (SectorSize - 1)) == 0 : SectorSize != 0 && value % SectorSize == 0;

    /// <summary>The kernel's <c>btrfs_is_fstree</c>: the fs tree and subvolume ids (not the data reloc tree, whose id is negative).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool KernelIsFsTree(ulong id) => id == ObjectIds.FsTree || (id >= ObjectIds.FirstFree && (id >> 48) == 0);
}

/// <summary>Adds findings about one item: the leaf, tree, slot and key come from the context; the message says
/// what is wrong, have versus expected, in the kernel tree-checker's words where it has them.</summary>
public readonly struct ItemReporter(FindingBag findings)
{
    /// <summary>The bag the findings go to (for rules whose findings another producer makes: chunk items).</summary>
    public FindingBag Findings => findings;

    public void Add(in ItemCheckContext c, FindingCode code, string what, string? expected = null, string? found = null,
        Severity severity = Severity.Error) =>
        findings.Add(new Finding(code, severity, $"{ItemTypes.Name(c.Key.Type)}: {what}",
            Bytenr: c.Block, Tree: c.Tree, Slot: c.Slot, Key: c.Key, Expected: expected, Found: found));

    /// <summary>A finding about the extent an extent-tree item records: <c>bytenr</c> is the extent (the key objectid),
    /// not the leaf, and <paramref name="message"/> is the whole message.</summary>
    public void AddAtExtent(in ItemCheckContext c, FindingCode code, string message) =>
        findings.Add(new Finding(code, Severity.Error, message, Bytenr: c.Key.ObjectId, Tree: c.Tree, Slot: c.Slot, Key: c.Key));

    /// <summary>A finding whose <paramref name="message"/> is the whole message (no item type prefix), at the leaf.</summary>
    public void AddWhole(in ItemCheckContext c, FindingCode code, string message, ulong? tree) =>
        findings.Add(new Finding(code, Severity.Error, message, Bytenr: c.Block, Tree: tree, Slot: c.Slot, Key: c.Key));

    // The checks below run for most items and inline into the validators; the messages are built out of line, so a
    // validator's frame does not carry (and zero on every call) the string builders of reports it almost never makes.

    /// <summary>Reports <see cref="FindingCode.ItemGenerationTooNew"/> when <paramref name="value"/> is newer than the context allows.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Generation(in ItemCheckContext c, string field, ulong value)
    {
        if (value > c.MaxGeneration) GenerationTooNew(c, field, value);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void GenerationTooNew(in ItemCheckContext c, string field, ulong value) =>
        Add(c, FindingCode.ItemGenerationTooNew,
            $"{field} {value} is newer than the superblock generation {c.SuperGeneration}{(c.IsLog ? " + 1 (log tree)" : "")}",
            $"<= {c.MaxGeneration}", value.ToString());

    /// <summary>Reports <paramref name="code"/> when <paramref name="value"/> is not a multiple of the sector size.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool Aligned(in ItemCheckContext c, FindingCode code, string field, ulong value)
    {
        if (c.Aligned(value)) return true;
        NotAligned(c, code, field, value);
        return false;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void NotAligned(in ItemCheckContext c, FindingCode code, string field, ulong value) =>
        Add(c, code, $"{field} {value} is not aligned to sectorsize {c.SectorSize}", $"multiple of {c.SectorSize}", value.ToString());
}
