using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Trees;
using BtrfsRefcheck.Volume;

namespace BtrfsRefcheck.Checks;

/// <summary>The one explicit context every pass reads and adds to; nothing is global. The volume and the finding bag
/// come from the caller; each pass fills in what it produces (its property says which pass), and later passes read it.
/// A new pass that produces facts for others adds one property here (e.g. the subvolume pass's per-tree inode facts,
/// which the csum and qgroup passes would read).</summary>
public sealed class CheckContext(BtrfsVolume volume, FindingBag findings, ICheckObserver? observer = null)
{
    public BtrfsVolume Volume { get; } = volume;
    public FindingBag Findings { get; } = findings;
    public ICheckObserver Observer { get; } = observer ?? NullCheckObserver.Instance;
    public CheckStats Stats { get; } = new();

    /// <summary>Read every data sector the csum tree covers and verify it (the data checksums pass); off by default.</summary>
    public bool VerifyDataChecksums { get; init; }

    /// <summary>The passes asked for (<see cref="ICheckPass.RunsOn"/>).</summary>
    public PassSelection Asked => new(VerifyDataChecksums);

    /// <summary>Worker threads for the scan (null: one per core).</summary>
    public int? DegreeOfParallelism { get; init; }

    /// <summary>The subvolume pass decides every tree's names by the exact join, without its fast path (tests compare the two).</summary>
    internal bool SubvolumeNamesExactOnly { get; init; }

    /// <summary>The subvolume pass's window of distinct leaves (null: <c>ForestJoin.WindowLeaves</c>; tests make it small so
    /// that small images cross many windows).</summary>
    internal int? SubvolumeWindowLeaves { get; init; }

    /// <summary>Every tree to check (added by the roots pass).</summary>
    public List<TreeRoot> Roots { get; set; } = [];

    /// <summary>False when a block of the root tree was unreadable or invalid (added by the roots pass).</summary>
    public bool RootTreeComplete { get; set; } = true;

    /// <summary>What the one walk over every tree recorded (added by the tree scan pass).</summary>
    internal TreeScanFacts Scan { get; set; } = new();
}
