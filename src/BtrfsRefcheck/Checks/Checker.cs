using System.Diagnostics;
using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Trees;
using BtrfsRefcheck.Volume;

namespace BtrfsRefcheck.Checks;

/// <summary>Runs the named check phases over an opened volume. Every pass gets this explicit context;
/// nothing is global.</summary>
public sealed class CheckContext(BtrfsVolume volume, FindingBag findings)
{
    public BtrfsVolume Volume { get; } = volume;
    public FindingBag Findings { get; } = findings;
    public CheckStats Stats { get; } = new();
    public List<TreeRoot> Roots { get; set; } = [];

    /// <summary>Worker threads for the scan (null: one per core).</summary>
    public int? DegreeOfParallelism { get; init; }
}

public static class Checker
{
    /// <summary>With BTRFS_REFCHECK_MEMTRACE=1, phase boundaries print the GC heap and peak working set to stderr
    /// (used when tuning memory; see scripts/bench.sh).</summary>
    internal static void MemTrace(string where)
    {
        if (Environment.GetEnvironmentVariable("BTRFS_REFCHECK_MEMTRACE") != "1") return;
        var p = System.Diagnostics.Process.GetCurrentProcess();
        var gc = GC.GetGCMemoryInfo(); // as of the last collection
        Console.Error.WriteLine($"memtrace {where} at {(DateTime.Now - p.StartTime).TotalMilliseconds:F0} ms: heap {GC.GetTotalMemory(false) >> 20} MiB, working set {p.WorkingSet64 >> 20} MiB, peak {p.PeakWorkingSet64 >> 20} MiB, GCs {GC.CollectionCount(0)}/{GC.CollectionCount(1)}/{GC.CollectionCount(2)}; at the last GC: committed {gc.TotalCommittedBytes >> 20} MiB, free inside the heap {gc.FragmentedBytes >> 20} MiB");
    }

    /// <summary>Phase names, in order, as progress reports them.</summary>
    public static readonly string[] PhaseNames = ["superblock and devices", "chunks", "roots", "trees and references", "summary"];

    public static CheckReport Run(BtrfsVolume volume, FindingBag findings, Action<int, string>? onPhase = null)
    {
        var ctx = new CheckContext(volume, findings);
        var timings = new List<PhaseTiming>();
        var sw = Stopwatch.StartNew();
        void Phase(int i, Action body)
        {
            onPhase?.Invoke(i, PhaseNames[i]);
            sw.Restart();
            body();
            timings.Add(new PhaseTiming(PhaseNames[i], sw.Elapsed));
        }

        Phase(0, () => { /* done while opening: superblock copies, fields and device assembly */ });
        Phase(1, () => { /* done while opening: sys_chunk_array and chunk tree */ });
        Phase(2, () =>
        {
            ctx.Roots = TreeRoots.Enumerate(volume, findings, out bool rootTreeComplete);
            TreeRoots.CheckRequired(volume, ctx.Roots, rootTreeComplete, findings);
        });
        Phase(3, () => new ReferencePass(ctx).Run());
        Phase(4, () => { });
        return new CheckReport(findings, ctx.Stats, timings);
    }
}
