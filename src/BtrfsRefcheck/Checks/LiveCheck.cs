using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Volume;

namespace BtrfsRefcheck.Checks;

public sealed class LiveOptions
{
    /// <summary>How many times the check is rerun when a commit lands while it reads (the first run not counted).</summary>
    public int MaxReverifications { get; init; } = 3;
}

/// <summary>What checking a mounted filesystem involved (JSON <c>live</c>, docs/json.md).</summary>
public sealed class LiveReport
{
    public required IReadOnlyList<MountedPath> Mounts { get; init; }
    /// <summary>Every device was read with O_DIRECT.</summary>
    public bool DirectIo { get; init; }
    /// <summary>Devices that refused O_DIRECT (read buffered), one reason each.</summary>
    public IReadOnlyList<string> DirectIoRefused { get; init; } = [];
    /// <summary>Superblock generations seen, in order: each run's start and, when it moved, its end.</summary>
    public IReadOnlyList<ulong> Generations { get; init; } = [];
    public int Runs { get; init; }
    public int Reverifications => Runs - 1;
    public int MaxReverifications { get; init; }
    /// <summary>Findings (warnings and errors, distinct by identity) seen in a run but not kept: they came from
    /// reading while a commit overwrote what the run had started from.</summary>
    public long TransientDropped { get; init; }
    /// <summary>A run read one committed state from start to end (the superblock did not move). False: every run
    /// saw a commit; the result then holds only the findings seen in every run.</summary>
    public bool Settled { get; init; }
    public IReadOnlyList<TimeSpan> RunTimes { get; init; } = [];
}

public sealed class LiveCheckResult(BtrfsVolume volume, CheckReport report, LiveReport live) : IDisposable
{
    /// <summary>The volume of the last run (open: the caller renders from it, then disposes this).</summary>
    public BtrfsVolume Volume { get; } = volume;
    public CheckReport Report { get; } = report;
    public LiveReport Live { get; } = live;
    public void Dispose() => Volume.Dispose();
}

/// <summary>Checks a mounted filesystem: every device read with O_DIRECT, the superblock noted at the start and read
/// again (O_DIRECT) at the end. A commit in between may have overwritten blocks of the state the run started from
/// (the kernel reuses the previous state's freed blocks as soon as the next superblock is written), so the run's
/// findings may be artefacts: the volume is reopened at the newest committed state and the whole check rerun, at
/// most <see cref="LiveOptions.MaxReverifications"/> times.
/// <list type="bullet">
/// <item>The first run during which the superblock did not move read one consistent committed state: its findings are
/// the result, and findings of earlier runs it does not have are counted as transient.</item>
/// <item>If every run saw a commit, only findings present in every run are kept (<see cref="LiveReport.Settled"/>
/// false), so an error is reported only when every state showed it.</item>
/// </list>
/// Findings are matched by <see cref="Identity"/>: code, bytenr, tree, key, device, copy.</summary>
public static class LiveCheck
{
    public static LiveCheckResult Run(IReadOnlyList<string> paths, VolumeOptions options, IReadOnlyList<MountedPath> mounts,
        LiveOptions? live = null, ICheckObserver? observer = null)
    {
        live ??= new LiveOptions();
        observer ??= NullCheckObserver.Instance;
        int max = Math.Max(0, live.MaxReverifications);
        var direct = new VolumeOptions
        {
            SuperMirror = options.SuperMirror, BackupRoot = options.BackupRoot, CacheBlocks = options.CacheBlocks, DirectIo = true,
        };
        var runs = new List<CheckReport>();
        var gens = new List<ulong>();
        var times = new List<TimeSpan>();
        for (int run = 0; ; run++)
        {
            var sw = System.Diagnostics.Stopwatch.StartNew();
            var findings = new FindingBag();
            BtrfsVolume vol;
            try { vol = BtrfsVolume.Open(paths, direct, findings); }
            catch (VolumeException e) when (run < max)
            {
                observer.LiveRerunning(new LiveRerun(run, run + 1, max, 0, 0, e.Message));
                continue;
            }
            try
            {
                var start = States(vol.AllCopies);
                gens.Add(vol.Super.Generation);
                observer.LiveRunStarted(new LiveRunStart(run, vol.Super.Fsid, vol.Super.Generation, vol.Devices.All(d => d.DirectIo),
                    vol.Devices.Where(d => d.DirectIoRefused != null).Select(d => d.DirectIoRefused!).ToList(), vol.Notes));
                var report = Checker.Run(vol, findings, observer);
                var end = States(vol.AllCopies.Select(c => SuperblockCopy.Read(c.Device, c.Mirror)).ToList());
                times.Add(sw.Elapsed);
                runs.Add(report);
                bool settled = end.SequenceEqual(start);
                ulong endGen = end.Where(x => x != null).Select(x => x!.Value.Generation).DefaultIfEmpty(vol.Super.Generation).Max();
                if (!settled && endGen != vol.Super.Generation) gens.Add(endGen);
                if (settled || run == max)
                {
                    var (final, dropped) = settled ? Settle(runs) : Persistent(runs);
                    var lr = new LiveReport
                    {
                        Mounts = mounts,
                        DirectIo = vol.Devices.All(d => d.DirectIo),
                        DirectIoRefused = vol.Devices.Where(d => d.DirectIoRefused != null).Select(d => d.DirectIoRefused!).ToList(),
                        Generations = gens.Distinct().ToList(),
                        Runs = run + 1,
                        MaxReverifications = max,
                        TransientDropped = dropped,
                        Settled = settled,
                        RunTimes = times,
                    };
                    return new LiveCheckResult(vol, final, lr);
                }
                observer.LiveRerunning(new LiveRerun(run, run + 1, max, vol.Super.Generation, endGen));
            }
            catch
            {
                vol.Dispose();
                throw;
            }
            vol.Dispose();
        }
    }

    /// <summary>What says the committed state moved: a new generation, or a new root, chunk root or log root (an
    /// fsync writes the log root into the superblock without a new generation), in any superblock copy of any
    /// device. Every copy counts: a commit writes them one after the other, and a run that opened between two of
    /// those writes saw copies that disagree (a transient 104).</summary>
    private readonly record struct State(ulong Generation, ulong Root, ulong ChunkRoot, ulong LogRoot)
    {
        public static State Of(Superblock s) => new(s.Generation, s.Root, s.ChunkRoot, s.LogRoot);
    }

    /// <summary>One entry per copy (null where it does not verify). At the end each copy is read again through the
    /// same O_DIRECT descriptor.</summary>
    private static List<State?> States(IReadOnlyList<SuperblockCopy> copies) =>
        copies.Select(c => c.IsValid ? State.Of(c.Superblock!) : (State?)null).ToList();

    /// <summary>How a finding is matched across runs: not by message or slot, which a commit may shift.</summary>
    public readonly record struct Identity(FindingCode Code, ulong? Bytenr, ulong? Tree, BtrfsKey? Key, string? Device, int? Mirror)
    {
        public static Identity Of(Finding f) => new(f.Code, f.Bytenr, f.Tree, f.Key, f.Device, f.Mirror);
    }

    private static HashSet<Identity> Ids(CheckReport r) =>
        r.Findings.Items.Where(f => f.Severity >= Severity.Warning).Select(Identity.Of).ToHashSet();

    /// <summary>The last run read a settled state: it stands; what earlier runs saw and it does not is transient.</summary>
    internal static (CheckReport Final, long Dropped) Settle(IReadOnlyList<CheckReport> runs)
    {
        var last = runs[^1];
        var kept = Ids(last);
        var gone = new HashSet<Identity>();
        foreach (var r in runs.Take(runs.Count - 1))
            foreach (var id in Ids(r))
                if (!kept.Contains(id)) gone.Add(id);
        return (last, gone.Count);
    }

    /// <summary>No run settled: keep the last run's findings that every run saw (notes are kept as they are).</summary>
    internal static (CheckReport Final, long Dropped) Persistent(IReadOnlyList<CheckReport> runs)
    {
        var last = runs[^1];
        if (runs.Count == 1) return (last, 0);
        var sets = runs.Select(Ids).ToList();
        var everywhere = new HashSet<Identity>(sets[0]);
        foreach (var s in sets.Skip(1)) everywhere.IntersectWith(s);
        var bag = new FindingBag();
        foreach (var f in last.Findings.Items)
            if (f.Severity < Severity.Warning || everywhere.Contains(Identity.Of(f))) bag.Add(f);
        long dropped = sets.SelectMany(s => s).Distinct().Count(id => !everywhere.Contains(id));
        return (new CheckReport(bag, last.Stats, last.Phases) { BlockGroups = last.BlockGroups, Super = last.Super }, dropped);
    }
}
