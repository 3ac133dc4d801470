using BtrfsRefcheck.Diagnostics;

namespace BtrfsRefcheck.Cli.Verbs;

/// <summary>The CLI's side of the check's <see cref="ICheckObserver"/>: "[1/4] roots" lines on stdout for the text
/// report (and a live check's header and re-verification notes), and with BTRFS_REFCHECK_MEMTRACE=1 a memory trace on stderr
/// at every pass end and checkpoint (used when tuning memory; see scripts/bench.sh; BTRFS_REFCHECK_MEMTRACE=live collects
/// first, so that "heap" is the live heap), and when stderr is a terminal the
/// live progress line (<see cref="Rendering.ProgressLine"/>: erased before each phase line and at each pass's end).
/// <para>Where the check says it has just dropped many records (a scan level's pointer lists, the workers' block lists,
/// the extent join's expected back-refs, the csum claims) it collects, so the records allocated next reuse that memory instead of adding to the peak (4 MiB less peak RSS on
/// the 1/4 benchmark image; docs/benchmarks.md). The library never collects: this is the CLI's choice.</para></summary>
internal sealed class CheckObserver(TextWriter stdout, TextWriter stderr, bool phaseLines, Rendering.ProgressLine? progress = null) : ICheckObserver
{
    private readonly bool _memTrace = Environment.GetEnvironmentVariable("BTRFS_REFCHECK_MEMTRACE") is "1" or "live";
    private readonly bool _memLive = Environment.GetEnvironmentVariable("BTRFS_REFCHECK_MEMTRACE") == "live";

    public void PassStarted(int index, int count, string name)
    {
        progress?.PassStarted(index, count);
        if (phaseLines) stdout.WriteLine($"[{index + 1}/{count}] {name}");
    }

    public void PassFinished(int index, int count, string name, TimeSpan elapsed)
    {
        progress?.Clear();
        if (_memTrace) MemTrace($"after pass '{name}' ({elapsed.TotalMilliseconds:F0} ms)");
    }

    /// <summary>Below this many released records a collection costs more than it saves.</summary>
    private const long CollectAbove = 4096;

    public void Checkpoint(string pass, string where, long released)
    {
        // compacting: the survivors move together and the emptied regions serve the next pass's allocations (peak RSS
        // on the 1/4 benchmark image 68-72 MiB over five runs, against 68-83 MiB without compacting; no slower; also
        // compacting the large object heap cost 10-30% of the wall time and saved nothing)
        if (released >= CollectAbove) GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        if (_memTrace) { progress?.Clear(); MemTrace($"{pass}: {where}"); }
    }

    public void Progress(string pass, long done, long total, string unit) => progress?.Update(pass, done, total, unit);

    /// <summary>Checking a mounted filesystem: the devices named on the command line, and where it is mounted.</summary>
    public string? LiveDevices { get; init; }
    public string? LiveMounted { get; init; }

    /// <summary>The first run of a live check: which filesystem, that its last committed state is checked, and how it is read.</summary>
    public void LiveRunStarted(LiveRunStart s)
    {
        if (!phaseLines || s.Run > 0) return;
        progress?.Clear();
        stdout.WriteLine($"Checking filesystem on {LiveDevices}");
        stdout.WriteLine($"UUID: {s.Fsid}");
        stdout.WriteLine($"note: {LiveMounted}: checking its last committed state (generation {s.Generation}), " +
                         (s.DirectIo ? "reading with O_DIRECT" : "reading partly through the page cache (O_DIRECT refused)"));
        foreach (var d in s.DirectIoRefused) stdout.WriteLine($"note: {d}");
        foreach (var n in s.Notes) stdout.WriteLine($"note: {n}");
    }

    public void LiveRerunning(LiveRerun r)
    {
        progress?.Clear();
        if (phaseLines && r.OpenFailed != null)
            stdout.WriteLine($"note: could not open the filesystem while it committed ({r.OpenFailed}): retrying ({r.Reverification} of at most {r.Max})");
        else if (phaseLines)
            stdout.WriteLine($"note: the filesystem committed while it was read (generation {r.From} -> {r.To}): re-verifying at the newest committed state ({r.Reverification} of at most {r.Max})");
    }

    private void MemTrace(string where)
    {
        var p = System.Diagnostics.Process.GetCurrentProcess();
        var gc = GC.GetGCMemoryInfo(); // as of the last collection
        stderr.WriteLine($"memtrace {where} at {(DateTime.Now - p.StartTime).TotalMilliseconds:F0} ms: heap {GC.GetTotalMemory(_memLive) >> 20} MiB{(_memLive ? " live" : "")}, working set {p.WorkingSet64 >> 20} MiB, peak {p.PeakWorkingSet64 >> 20} MiB, allocated {GC.GetTotalAllocatedBytes() >> 20} MiB, GC pauses {GC.GetTotalPauseDuration().TotalMilliseconds:F0} ms, GCs {GC.CollectionCount(0)}/{GC.CollectionCount(1)}/{GC.CollectionCount(2)}; at the last GC: committed {gc.TotalCommittedBytes >> 20} MiB, free inside the heap {gc.FragmentedBytes >> 20} MiB");
    }
}
