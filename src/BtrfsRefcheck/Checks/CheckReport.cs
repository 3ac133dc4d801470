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

public sealed class CheckReport(FindingBag findings, CheckStats stats, IReadOnlyList<PhaseTiming> phases)
{
    public FindingBag Findings { get; } = findings;
    public CheckStats Stats { get; } = stats;
    public IReadOnlyList<PhaseTiming> Phases { get; } = phases;

    // Counted in the bag: Items copies and sorts every stored finding, which a count does not need.
    public long Errors => Findings.Count(Severity.Error);
    public long Warnings => Findings.Count(Severity.Warning) - Findings.Count(Severity.Error);
    /// <summary>Notes (severity Info), exact past the per-code cap of stored findings.</summary>
    public long Notes => Findings.Count(Severity.Info) - Findings.Count(Severity.Warning);
    public bool Clean => Errors == 0;
}
