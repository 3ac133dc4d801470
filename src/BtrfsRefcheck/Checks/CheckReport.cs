using BtrfsRefcheck.Diagnostics;

namespace BtrfsRefcheck.Checks;

/// <summary>Counts the summary prints. Each is what this run actually looked at.</summary>
public sealed class CheckStats
{
    public long Trees;
    public long TreeBlocks;
    public long Nodes;
    public long Leaves;
    public long Items;
    public long ExtentItems;
    public long MetadataExtentItems;
    public long DataExtentItems;
    public long InlineRefs;
    public long KeyedRefs;
    public long TreeBlockRefs;
    public long SharedBlockRefs;
    public long ExtentDataRefs;
    public long SharedDataRefs;
    public long ExtentOwnerRefs;
    public long FileExtents;
    public long BlockGroups;
    public long UnreadableBlocks;

    /// <summary>Subvolume trees whose names the subvolume pass verified by their fingerprints (its fast path), and those
    /// it decided by the exact join (the fast path could not verify them, or was not used).</summary>
    public long SubvolumeTreesFast;
    public long SubvolumeTreesJoined;

    /// <summary>Data bytes read and verified against the csum tree (every copy; only with VerifyDataChecksums), and the
    /// sectors found bad.</summary>
    public long DataBytesVerified;
    public long DataSectorsBad;

    /// <summary>Adds the per-worker counters of the extent tree and file extent passes.</summary>
    public void Add(CheckStats o)
    {
        ExtentItems += o.ExtentItems; MetadataExtentItems += o.MetadataExtentItems; DataExtentItems += o.DataExtentItems;
        InlineRefs += o.InlineRefs; KeyedRefs += o.KeyedRefs; TreeBlockRefs += o.TreeBlockRefs; SharedBlockRefs += o.SharedBlockRefs;
        ExtentDataRefs += o.ExtentDataRefs; SharedDataRefs += o.SharedDataRefs; ExtentOwnerRefs += o.ExtentOwnerRefs;
        FileExtents += o.FileExtents; BlockGroups += o.BlockGroups;
    }
}

/// <summary>One pass as it ran: its name, its real time, and the finding codes it reported (for the test that every
/// pass reports only what it declares).</summary>
public sealed record PhaseTiming(string Name, TimeSpan Elapsed, IReadOnlyList<FindingCode> Emitted);

/// <summary>One block group as the check saw it, for a picture of the volume: its logical range, type and profile
/// bits, and used bytes (null for a chunk with no BLOCK_GROUP_ITEM, or when the extent tree could not be read).</summary>
public readonly record struct BlockGroupSummary(ulong Start, ulong Length, Format.BlockGroupFlags Flags, ulong? Used)
{
    public ulong End => Start + Length;
    public bool Contains(ulong logical) => logical >= Start && logical - Start < Length;

    /// <summary>The scan's block group items, in address order, and every chunk that has none (used unknown).</summary>
    internal static BlockGroupSummary[] From(TreeScanFacts scan)
    {
        var list = new List<BlockGroupSummary>(scan.BlockGroups.Length);
        var starts = new HashSet<ulong>();
        foreach (var bg in scan.BlockGroups)
            if (starts.Add(bg.Start)) list.Add(new(bg.Start, bg.Length, (Format.BlockGroupFlags)bg.Flags, bg.Used));
        foreach (var c in scan.Chunks.Chunks)
            if (!starts.Contains(c.Logical)) list.Add(new(c.Logical, c.Length, c.Type, null));
        list.Sort((a, b) => a.Start.CompareTo(b.Start));
        return list.ToArray();
    }
}

public sealed class CheckReport(FindingBag findings, CheckStats stats, IReadOnlyList<PhaseTiming> phases)
{
    public FindingBag Findings { get; } = findings;
    public CheckStats Stats { get; } = stats;
    public IReadOnlyList<PhaseTiming> Phases { get; } = phases;

    /// <summary>Every block group (and chunk without one) of the generation checked, by address.</summary>
    public IReadOnlyList<BlockGroupSummary> BlockGroups { get; init; } = [];

    // Counted in the bag: Items copies and sorts every stored finding, which a count does not need.
    public long Errors => Findings.Count(Severity.Error);
    public long Warnings => Findings.Count(Severity.Warning) - Findings.Count(Severity.Error);
    /// <summary>Notes (severity Info), exact past the per-code cap of stored findings.</summary>
    public long Notes => Findings.Count(Severity.Info) - Findings.Count(Severity.Warning);
    public bool Clean => Errors == 0;

    /// <summary>The superblock of the filesystem checked (its features bound the kernels that wrote it).</summary>
    public Format.Superblock? Super { get; init; }

    private LikelyCauseReport? _likely;
    /// <summary>Known kernel bugs whose on-disk signature the findings match (<see cref="KnownBugs"/>), judged against the
    /// superblock's features. Computed on first use, from the findings as they then stand.</summary>
    public LikelyCauseReport LikelyCauses => _likely ??= Super == null ? new LikelyCauseReport([], []) : KnownBugs.Match(Super, Findings.Items);
}
