using BtrfsRefcheck.Diagnostics;

namespace BtrfsRefcheck.Cli.Verbs;

/// <summary>The CLI's side of the check's <see cref="ICheckObserver"/>: "[1/4] roots" lines on stdout for the text
/// report, and with BTRFS_REFCHECK_MEMTRACE=1 a memory trace on stderr at every pass end and checkpoint (used when
/// tuning memory; see scripts/bench.sh). A live progress display would plug in here.</summary>
internal sealed class CheckObserver(TextWriter stdout, TextWriter stderr, bool phaseLines) : ICheckObserver
{
    private readonly bool _memTrace = Environment.GetEnvironmentVariable("BTRFS_REFCHECK_MEMTRACE") == "1";

    public void PassStarted(int index, int count, string name)
    {
        if (phaseLines) stdout.WriteLine($"[{index + 1}/{count}] {name}");
    }

    public void PassFinished(int index, int count, string name, TimeSpan elapsed)
    {
        if (_memTrace) MemTrace($"after pass '{name}' ({elapsed.TotalMilliseconds:F0} ms)");
    }

    public void Checkpoint(string pass, string where)
    {
        if (_memTrace) MemTrace($"{pass}: {where}");
    }

    private void MemTrace(string where)
    {
        var p = System.Diagnostics.Process.GetCurrentProcess();
        var gc = GC.GetGCMemoryInfo(); // as of the last collection
        stderr.WriteLine($"memtrace {where} at {(DateTime.Now - p.StartTime).TotalMilliseconds:F0} ms: heap {GC.GetTotalMemory(false) >> 20} MiB, working set {p.WorkingSet64 >> 20} MiB, peak {p.PeakWorkingSet64 >> 20} MiB, GCs {GC.CollectionCount(0)}/{GC.CollectionCount(1)}/{GC.CollectionCount(2)}; at the last GC: committed {gc.TotalCommittedBytes >> 20} MiB, free inside the heap {gc.FragmentedBytes >> 20} MiB");
    }
}
