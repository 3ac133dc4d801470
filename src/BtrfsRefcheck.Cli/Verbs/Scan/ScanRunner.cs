using System.Diagnostics;
using BtrfsRefcheck.Checks;
using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Volume;

namespace BtrfsRefcheck.Cli.Verbs.Scan;

internal enum ScanVerdict { Clean, Errors, NotChecked, InternalError }

/// <summary>What checking one filesystem gave.</summary>
internal sealed class FsResult
{
    public required FsGroup Group { get; init; }
    public required ScanVerdict Verdict { get; init; }
    public Guid? Fsid { get; init; }
    /// <summary>Every device checked: the group's, then the seeds found for it.</summary>
    public IReadOnlyList<string> Devices => [.. Group.Devices, .. Group.SeedDevices];
    public long Errors { get; init; }
    public long Warnings { get; init; }
    public long Notes { get; init; }
    public TimeSpan Elapsed { get; init; }
    /// <summary>Why it was not checked (NotChecked, InternalError).</summary>
    public string? Reason { get; init; }
    public IReadOnlyList<Finding> Findings { get; init; } = [];
    public IReadOnlyDictionary<FindingCode, long> CountsByCode { get; init; } = new Dictionary<FindingCode, long>();
    /// <summary>The check's text report without the summary (findings by code and the verdict): JUnit's failure text.</summary>
    public string FindingsText { get; init; } = "";
    public IReadOnlyList<string> VolumeNotes { get; init; } = [];
    public IReadOnlyList<string> MountedAt { get; init; } = [];
    public long EstimatedMiB { get; init; }
}

internal sealed class ScanSettings
{
    public int Jobs { get; init; } = Environment.ProcessorCount;
    public long MemoryBudgetMiB { get; init; }
    public bool NoLive { get; init; }
    public int Reverify { get; init; } = 3;
    public bool Debug { get; init; }
}

/// <summary>Checks the filesystems concurrently: at most <see cref="ScanSettings.Jobs"/> at once, and a new one starts only
/// while the running checks' estimated memory plus its own stays within the budget (one larger than the whole budget runs
/// alone). Each filesystem is opened on the scheduling thread just before it starts (to find its seeds and estimate its
/// memory from its metadata chunks), then checked on its own thread by the library's <see cref="Checker"/> (or
/// <see cref="LiveCheck"/> when mounted), exactly as <c>check</c> would.</summary>
internal sealed class ScanRunner(ScanSettings settings, IReadOnlyList<ScanEntry> entries, Action<FsResult> finished, TextWriter stderr)
{
    /// <summary>Per check: the block cache (256 blocks of up to 64 KiB, 4 MiB at 16 KiB) and what the volume holds.</summary>
    public const long FixedMiB = 8;
    /// <summary>Peak memory per GiB of tree blocks (docs/benchmarks.md: 42-45 MiB net of the process's fixed cost).</summary>
    public const long MiBPerMetadataGiB = 45;

    private readonly object _gate = new();
    private int _running;
    private long _usedMiB;

    /// <summary>The most checks that ran at once, and the most estimated memory they held (for the tests).</summary>
    public int PeakRunning { get; private set; }
    public long PeakMiB { get; private set; }

    public List<FsResult> Run(IReadOnlyList<FsGroup> groups)
    {
        var results = new List<FsResult>();
        var tasks = new List<Task>();
        int jobs = Math.Max(1, Math.Min(settings.Jobs, groups.Count));
        int degree = Math.Max(1, Environment.ProcessorCount / jobs);
        foreach (var g in groups)
        {
            var sw = Stopwatch.StartNew();
            var prepared = Prepare(g, sw);
            if (prepared.Done is { } done)
            {
                Finish(done, results);
                continue;
            }
            sw.Stop(); // the time a filesystem waits for its turn is not its own
            lock (_gate)
            {
                while (_running > 0 && (_running >= jobs || _usedMiB + prepared.EstimatedMiB > settings.MemoryBudgetMiB))
                    Monitor.Wait(_gate);
                _running++;
                _usedMiB += prepared.EstimatedMiB;
                PeakRunning = Math.Max(PeakRunning, _running);
                PeakMiB = Math.Max(PeakMiB, _usedMiB);
            }
            tasks.Add(Task.Factory.StartNew(() =>
            {
                FsResult r;
                try
                {
                    prepared.Clock.Start();
                    r = Check(prepared, degree);
                }
                finally
                {
                    lock (_gate)
                    {
                        _running--;
                        _usedMiB -= prepared.EstimatedMiB;
                        Monitor.PulseAll(_gate);
                    }
                }
                Finish(r, results);
            }, TaskCreationOptions.LongRunning));
        }
        Task.WaitAll(tasks);
        return results;
    }

    private void Finish(FsResult r, List<FsResult> results)
    {
        lock (results)
        {
            results.Add(r);
            finished(r);
        }
    }

    private sealed class Prepared
    {
        public FsResult? Done;
        public required FsGroup Group;
        public required Stopwatch Clock;
        public BtrfsVolume? Volume;
        public FindingBag Findings = new();
        public IReadOnlyList<MountedPath> Mounts = [];
        public long EstimatedMiB;
    }

    /// <summary>Opens the filesystem: seeds found, memory estimated. A volume that cannot be opened is done here.</summary>
    private Prepared Prepare(FsGroup g, Stopwatch sw)
    {
        var p = new Prepared { Group = g, Clock = sw };
        if (g.CannotCheck != null)
        {
            p.Done = NotChecked(g, g.CannotCheck, sw);
            return p;
        }
        try
        {
            p.Mounts = MountDetector.Find(g.Devices);
            if (p.Mounts.Count > 0 && settings.NoLive)
            {
                p.Done = NotChecked(g, $"{CheckVerb.MountedLine(p.Mounts)}; not checked (--no-live)", sw);
                return p;
            }
            var vol = Open(g.Devices, p.Mounts.Count > 0, p.Findings);
            var seeds = ScanGroups.SeedsOf(vol.MissingDevices, entries);
            if (seeds.Count > 0)
            {
                vol.Dispose();
                g = p.Group = g with { SeedDevices = seeds };
                p.Mounts = MountDetector.Find([.. g.Devices, .. seeds]);
                p.Findings = new FindingBag();
                vol = Open([.. g.Devices, .. seeds], p.Mounts.Count > 0, p.Findings);
            }
            p.EstimatedMiB = Estimate(vol);
            if (p.Mounts.Count > 0) vol.Dispose(); // LiveCheck opens it again, at each committed state
            else p.Volume = vol;
        }
        catch (VolumeException e)
        {
            p.Done = NotChecked(p.Group, e.Message, sw);
        }
        catch (Exception e) when (!settings.Debug)
        {
            p.Done = Internal(p.Group, e, sw);
        }
        return p;
    }

    /// <summary>The one place the scan opens a volume (devices, or a btrfs-image dump, which BtrfsVolume.Open detects by its magic): the
    /// same options `check` uses with no flag given; O_DIRECT when mounted.</summary>
    private static BtrfsVolume Open(IReadOnlyList<string> paths, bool direct, FindingBag findings) =>
        BtrfsVolume.Open(paths, new VolumeOptions { DirectIo = direct }, findings);

    /// <summary>Estimated peak memory of checking <paramref name="vol"/>: its metadata and system chunks' size (what its
    /// tree blocks can occupy at most) at the measured cost per GiB, plus the fixed part.</summary>
    internal static long Estimate(BtrfsVolume vol)
    {
        ulong meta = 0;
        foreach (var c in vol.Chunks.Chunks)
            if ((c.Type & (BlockGroupFlags.Metadata | BlockGroupFlags.System)) != 0) meta += c.Length;
        return FixedMiB + (long)Math.Ceiling(meta / (double)(1UL << 30) * MiBPerMetadataGiB);
    }

    private FsResult Check(Prepared p, int degree)
    {
        var g = p.Group;
        try
        {
            CheckReport report;
            LiveReport? live = null;
            IReadOnlyList<string> notes;
            Guid fsid;
            var observer = new CheckObserver(TextWriter.Null, stderr, phaseLines: false);
            if (p.Volume is { } vol)
            {
                using (vol)
                {
                    report = Checker.Run(vol, p.Findings, observer, degree);
                    notes = vol.Notes.ToList();
                    fsid = vol.Super.Fsid;
                }
            }
            else
            {
                using var result = LiveCheck.Run([.. g.Devices, .. g.SeedDevices], new VolumeOptions(), p.Mounts,
                    new LiveOptions { MaxReverifications = settings.Reverify }, observer: observer);
                report = result.Report;
                live = result.Live;
                notes = [.. result.Volume.Notes, $"{CheckVerb.MountedLine(p.Mounts)}: checked at its last committed state (generation {result.Volume.Super.Generation})"];
                fsid = result.Volume.Super.Fsid;
            }
            var text = new StringWriter();
            CheckText.Write(text, report, quiet: true, live);
            return new FsResult
            {
                Group = g, Fsid = fsid, Verdict = report.Clean ? ScanVerdict.Clean : ScanVerdict.Errors,
                Errors = report.Errors, Warnings = report.Warnings, Notes = report.Notes, Elapsed = p.Clock.Elapsed,
                Findings = report.Findings.Items, CountsByCode = report.Findings.Counts, FindingsText = text.ToString(),
                VolumeNotes = notes, MountedAt = p.Mounts.SelectMany(m => m.MountPoints).Distinct().ToList(), EstimatedMiB = p.EstimatedMiB,
            };
        }
        catch (VolumeException e)
        {
            return NotChecked(g, e.Message, p.Clock);
        }
        catch (Exception e) when (!settings.Debug)
        {
            return Internal(g, e, p.Clock);
        }
    }

    private static FsResult NotChecked(FsGroup g, string reason, Stopwatch sw) =>
        new() { Group = g, Fsid = g.Fsid, Verdict = ScanVerdict.NotChecked, Reason = reason, Elapsed = sw.Elapsed };

    private static FsResult Internal(FsGroup g, Exception e, Stopwatch sw) =>
        new()
        {
            Group = g, Fsid = g.Fsid, Verdict = ScanVerdict.InternalError, Elapsed = sw.Elapsed,
            Reason = $"internal error: {e.GetType().Name}: {e.Message.ReplaceLineEndings(" ")} (rerun with --debug for the stack trace; please report it)",
        };
}
