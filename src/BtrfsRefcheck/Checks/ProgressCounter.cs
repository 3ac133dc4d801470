using BtrfsRefcheck.Diagnostics;

namespace BtrfsRefcheck.Checks;

/// <summary>Counts a pass's work, from any number of workers (one interlocked add per call), and tells the observer
/// (<see cref="ICheckObserver.Progress"/>) once every <paramref name="every"/> units and at the end: the count, never
/// a call per unit.</summary>
internal sealed class ProgressCounter(ICheckObserver observer, string pass, string unit, long total, int every = 64)
{
    private long _done;

    public void Add(long n = 1)
    {
        long d = Interlocked.Add(ref _done, n);
        if (d / every != (d - n) / every) observer.Progress(pass, Math.Min(d, total), total, unit);
    }

    /// <summary>All of it is done (a worker may have counted a unit twice, or skipped some: the end is the total).</summary>
    public void Finish() => observer.Progress(pass, total, total, unit);
}
