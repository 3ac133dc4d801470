namespace BtrfsRefcheck.Diagnostics;

/// <summary>What a check tells its caller while it runs: which pass starts and ends (with its real time), and named
/// points inside a pass (for a progress display or a memory trace). The library never writes to a console; the caller
/// decides what a terminal, a pipe or JSON gets. Every method has an empty default, so an observer implements only
/// what it uses. Called from the thread that runs the check (never from a scan worker), except
/// <see cref="Progress"/>, which workers may call concurrently.</summary>
public interface ICheckObserver
{
    /// <summary>Pass <paramref name="index"/> (0-based) of <paramref name="count"/> starts.</summary>
    void PassStarted(int index, int count, string name) { }

    /// <summary>The pass ended after <paramref name="elapsed"/>.</summary>
    void PassFinished(int index, int count, string name, TimeSpan elapsed) { }

    /// <summary>A point inside a pass (a scan level starts or ends, the scan's lists are merged): where a memory trace
    /// measures, or where a caller that prefers a smaller peak to speed may collect. <paramref name="released"/> is how
    /// many records the pass has just dropped (0: none worth a collection): the previous level's pointer lists, the
    /// workers' block lists.</summary>
    void Checkpoint(string pass, string where, long released) { }

    /// <summary>Work counted inside a pass: <paramref name="done"/> of <paramref name="total"/> <paramref name="unit"/>
    /// ("blocks", "extent leaves"). The total may be an estimate that grows (never below done); 0 when unknown. Raised
    /// where work is counted, at most every few dozen units and at the end of each stage, possibly concurrently from
    /// several workers and out of order (a smaller done after a larger one): an implementation keeps the largest and
    /// throttles its own output. Must be cheap and must not throw.</summary>
    void Progress(string pass, long done, long total, string unit) { }

    /// <summary>Checking a mounted filesystem (Checks.LiveCheck): a run opened the volume at the newest committed
    /// state and its passes start.</summary>
    void LiveRunStarted(LiveRunStart start) { }

    /// <summary>Checking a mounted filesystem: a commit landed while a run read (or the volume could not be opened
    /// meanwhile), so the check is run again.</summary>
    void LiveRerunning(LiveRerun rerun) { }
}

/// <summary>Run <see cref="Run"/> (0: the first) of a live check opened the volume at generation <see cref="Generation"/>:
/// every device with O_DIRECT (<see cref="DirectIo"/>) or not (one reason each in <see cref="DirectIoRefused"/>), and
/// the notes on choices made while opening.</summary>
public sealed record LiveRunStart(int Run, Guid Fsid, ulong Generation, bool DirectIo, IReadOnlyList<string> DirectIoRefused, IReadOnlyList<string> Notes);

/// <summary>A commit landed while run <see cref="Run"/> read: the superblock moved from <see cref="From"/> to
/// <see cref="To"/>, so the check is rerun (re-verification <see cref="Reverification"/> of at most <see cref="Max"/>).
/// <see cref="OpenFailed"/>: the run could not even open the volume (a commit moved the chunk tree between reading the
/// superblock and reading it); the reason, and the run is retried the same way.</summary>
public sealed record LiveRerun(int Run, int Reverification, int Max, ulong From, ulong To, string? OpenFailed = null);

/// <summary>An observer that ignores everything.</summary>
public sealed class NullCheckObserver : ICheckObserver
{
    public static readonly NullCheckObserver Instance = new();
}
