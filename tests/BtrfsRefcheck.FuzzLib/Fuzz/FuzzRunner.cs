using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;
using BtrfsRefcheck.Cli;
using BtrfsRefcheck.Tests.Oracle;

namespace BtrfsRefcheck.Tests.Fuzz;

/// <summary>Bounds and switches of a fuzz run.</summary>
public sealed class FuzzOptions
{
    /// <summary>Per verb run; a run that takes longer is a hang (the clean fixtures take well under a second).</summary>
    public TimeSpan TimeLimit { get; init; } = TimeSpan.FromSeconds(20);

    /// <summary>Bytes one verb run may allocate (measured on its own thread).</summary>
    public long AllocationLimit { get; init; } = 1L << 30;

    /// <summary>Process working set the run may reach.</summary>
    public long WorkingSetLimit { get; init; } = 2L << 30;

    /// <summary>Run every output format of every verb (check, check --json, dump-tree, dump-tree --json,
    /// dump-super --all, dump-super --all --json) instead of one format of each dump verb chosen by the seed.</summary>
    public bool AllFormats { get; init; }

    /// <summary>Where failing inputs are saved (null: not saved).</summary>
    public string? CrashDir { get; init; }

    /// <summary>At most this many saved images per outcome and mutation class.</summary>
    public int MaxSavedPerClass { get; init; } = 3;

    /// <summary>Restrict cases to one mutation kind.</summary>
    public MutationKind? OnlyKind { get; init; }
}

/// <summary>How a case ended. Everything but <see cref="Ok"/> is a bug of the checker.</summary>
public enum Outcome { Ok, Crash, Hang, Memory, StackTrace, Missed, FalsePositive, Nondeterministic }

/// <summary>One in-process run of one command line on the mutated image.</summary>
public sealed record VerbRun(string Command, int Exit, double Ms, long Allocated, bool TimedOut, string? Exception, string Stderr)
{
    /// <summary>Captured standard output (only for the <c>check --json</c> run the verdict is read from).</summary>
    public string? Stdout { get; init; }

    public override string ToString() => $"{Command}: exit {(TimedOut ? "TIMEOUT" : Exit.ToString())}, {Ms:F0} ms, {Allocated >> 20} MiB allocated";
}

public sealed record CaseResult(string Fixture, int Seed, Mutation Mutation, IReadOnlyList<VerbRun> Runs, Outcome Outcome, string? Problem, string? SavedTo,
    bool Detected)
{
    public int CheckExit => Runs[0].Exit;
    public bool Failed => Outcome != Outcome.Ok;

    /// <summary>Everything needed to reproduce and understand a failure.</summary>
    public string Describe()
    {
        var sb = new StringBuilder();
        sb.AppendLine($"{Outcome}: fixture {Fixture} seed {Seed}: {Problem}");
        sb.AppendLine($"  mutation: {Mutation}");
        foreach (var r in Runs) sb.AppendLine($"  {r}");
        if (SavedTo != null) sb.AppendLine($"  saved: {SavedTo}");
        sb.AppendLine($"  reproduce: scripts/fuzz.sh --fixture {Fixture} --seed {Seed} --cases 1");
        return sb.ToString();
    }
}

/// <summary>A fixture's working copy plus its fuzzer: runs cases one after another (not thread-safe; use one
/// session per worker).</summary>
public sealed class FuzzSession : IDisposable
{
    private static readonly Regex StackFrame = new(@"^\s*at [\w.`<>\[\],|]+\(", RegexOptions.Multiline | RegexOptions.Compiled);
    private static readonly Dictionary<string, int> s_saved = [];
    private static int s_sessions;

    private readonly FuzzOptions _options;
    private readonly WorkImage _work;
    private readonly Fuzzer _fuzzer;

    public FuzzFixture Fixture { get; }

    /// <summary>Opens <paramref name="fixture"/> (shared, read-only) and makes a private working copy of it.</summary>
    public FuzzSession(FuzzFixture fixture, FuzzOptions options)
    {
        Fixture = fixture;
        _options = options;
        var dir = Path.Combine(FuzzFixtures.WorkRoot, $"{fixture.Name}-{Interlocked.Increment(ref s_sessions)}");
        _work = new WorkImage(fixture, dir);
        _fuzzer = new Fuzzer(fixture, _work);
        var baseline = RunVerb(["check", "--json", .. _work.Paths], options, captureStdout: true);
        if (baseline.Exit is not (ExitCodes.Ok or ExitCodes.Findings) || baseline.Stdout == null)
            throw new InvalidOperationException($"fixture {fixture.Name}: check of the pristine copy failed: {baseline}\n{baseline.Stderr}");
        BaselineExit = baseline.Exit;
        BaselineErrors = ErrorFindings(baseline.Stdout);
        fixture.BaselineCheckExit = baseline.Exit;
    }

    /// <summary>Exit code of <c>check</c> on the unchanged working copy (0 when the fixture is clean).</summary>
    public int BaselineExit { get; }

    /// <summary>The error findings of <c>check</c> on the unchanged working copy ("code|message"; empty when clean).</summary>
    public IReadOnlySet<string> BaselineErrors { get; }

    /// <summary>"code|message" of every error finding in <c>check --json</c> output, plus "count code n" lines for the
    /// per-code totals (findings past the storage cap are counted, not stored).</summary>
    public static HashSet<string> ErrorFindings(string checkJson)
    {
        var set = new HashSet<string>(StringComparer.Ordinal);
        using var doc = System.Text.Json.JsonDocument.Parse(checkJson);
        foreach (var f in doc.RootElement.GetProperty("findings").EnumerateArray())
            if (f.GetProperty("severity").GetString() == "error")
                set.Add($"{f.GetProperty("code").GetInt32()}|{f.GetProperty("message").GetString()}");
        foreach (var c in doc.RootElement.GetProperty("counts_by_code").EnumerateObject())
            set.Add($"count {c.Name} {c.Value.GetInt64()}");
        return set;
    }

    /// <summary>Working image paths (for the self-test of restore).</summary>
    public WorkImage Work => _work;

    /// <summary>Mutates the working copy with <paramref name="seed"/>, runs the verbs, judges, restores.</summary>
    public CaseResult Run(int seed)
    {
        if (_work.Dirty) _work.Restore();
        Mutation m;
        try
        {
            m = _fuzzer.Mutate(seed, _options.OnlyKind);
        }
        catch
        {
            _work.Restore();
            throw;
        }
        try
        {
            var paths = _work.Paths;
            var cmds = new List<string[]>();
            cmds.Add(["check", "--json", .. paths]);
            if (_options.AllFormats)
            {
                cmds.Add(["check", .. paths]);
                cmds.Add(["dump-tree", .. paths]);
                cmds.Add(["dump-tree", "--json", .. paths]);
                cmds.Add(["dump-super", "--all", .. paths]);
                cmds.Add(["dump-super", "--all", "--json", .. paths]);
            }
            else
            {
                if ((seed & 4) == 0) cmds.Add(["check", .. paths]);
                cmds.Add((seed & 1) == 0 ? ["dump-tree", "--json", .. paths] : ["dump-tree", .. paths]);
                cmds.Add((seed & 2) == 0 ? ["dump-super", "--all", .. paths] : ["dump-super", "--all", "--json", .. paths]);
            }
            // Less travelled paths, a few cases each: the check from a backup root or another superblock copy, the
            // dump of the mutated block alone, and a second check whose output must be identical (the scan is parallel).
            switch ((uint)seed % 8)
            {
                case 3: cmds.Add(["check", "--backup-root", ((uint)seed / 8 % 4).ToString(), .. paths]); break;
                case 5: cmds.Add(["check", "--super", "1", .. paths]); break;
                case 1 or 6 when m.Block is { } blk: cmds.Add(["dump-tree", "--block", blk.ToString(), .. ((uint)seed % 2 == 0 ? new[] { "--json" } : []), .. paths]); break;
                case 0 or 4: cmds.Add(["check", "--json", .. paths]); break;
                case 7 when paths.Count > 1: cmds.Add(["check", paths[(int)((uint)seed / 8 % (uint)paths.Count)]]); break; // a device missing
            }
            var runs = new List<VerbRun>();
            foreach (var c in cmds)
            {
                bool again = runs.Count > 0 && c.SequenceEqual(cmds[0]);
                var r = RunVerb(c, _options, captureStdout: runs.Count == 0 || again);
                runs.Add(r);
                if (r.TimedOut) break; // the stuck thread still reads the image; do not pile more on it
            }
            var (outcome, problem) = Judge(m, runs);
            bool detected = Detected(runs[0]);
            string? saved = null;
            if (outcome != Outcome.Ok && _options.CrashDir != null && ShouldSave(outcome, m))
            {
                var dir = Path.Combine(_options.CrashDir, $"{Fixture.Name}-seed{seed}-{outcome}".ToLowerInvariant());
                _work.SaveTo(dir);
                saved = dir;
                var result0 = new CaseResult(Fixture.Name, seed, m, runs, outcome, problem, saved, detected);
                File.WriteAllText(Path.Combine(dir, "case.txt"), result0.Describe() + Environment.NewLine +
                    string.Join(Environment.NewLine, runs.Where(r => r.Exception != null).Select(r => $"--- {r.Command}\n{r.Exception}")) +
                    Environment.NewLine + string.Join(Environment.NewLine, runs.Select(r => $"--- stderr of {r.Command}\n{Head(r.Stderr, 4000)}")));
            }
            return new CaseResult(Fixture.Name, seed, m, runs, outcome, problem, saved, detected);
        }
        finally
        {
            _work.Restore();
        }
    }

    private static bool ShouldSave(Outcome o, Mutation m)
    {
        lock (s_saved)
        {
            string key = $"{o}/{m.Kind}/{m.Class}";
            int n = s_saved.GetValueOrDefault(key);
            if (o is Outcome.Missed or Outcome.FalsePositive && n >= 3) return false;
            s_saved[key] = n + 1;
            return true;
        }
    }

    /// <summary>The verdict on one case: the first bound broken, else the detection rule on the <c>check</c> run (runs[0]).</summary>
    public (Outcome Outcome, string? Problem) Judge(Mutation m, IReadOnlyList<VerbRun> runs)
    {
        foreach (var r in runs)
        {
            if (r.TimedOut) return (Outcome.Hang, $"'{r.Command}' did not finish within {_options.TimeLimit.TotalSeconds:F0} s");
            if (r.Exit == ExitCodes.InternalError || r.Exception != null)
                return (Outcome.Crash, $"'{r.Command}' exit {r.Exit}: {FirstLine(r.Exception ?? r.Stderr)}");
            if (r.Exit == ExitCodes.Usage) return (Outcome.Crash, $"'{r.Command}' exit 2 (usage) on a valid command line: {FirstLine(r.Stderr)}");
            if (StackFrame.IsMatch(r.Stderr)) return (Outcome.StackTrace, $"'{r.Command}' printed a stack trace: {FirstLine(r.Stderr)}");
            if (r.Allocated > _options.AllocationLimit) return (Outcome.Memory, $"'{r.Command}' allocated {r.Allocated >> 20} MiB (limit {_options.AllocationLimit >> 20} MiB)");
        }
        var repeat = runs.Skip(1).FirstOrDefault(r => r.Command == runs[0].Command);
        if (repeat != null && (repeat.Exit != runs[0].Exit || StripTimings(repeat.Stdout) != StripTimings(runs[0].Stdout)))
            return (Outcome.Nondeterministic, $"two runs of '{runs[0].Command}' on the same image differ (exit {runs[0].Exit} vs {repeat.Exit}): {FirstDifference(StripTimings(runs[0].Stdout), StripTimings(repeat.Stdout))}");
        long ws = Environment.WorkingSet;
        if (ws > _options.WorkingSetLimit) return (Outcome.Memory, $"process working set {ws >> 20} MiB (limit {_options.WorkingSetLimit >> 20} MiB)");
        int exit = runs[0].Exit;
        bool detected = Detected(runs[0]);
        if (m.Expect == Expectation.MustDetect && !detected)
            return (Outcome.Missed, BaselineExit == ExitCodes.Ok
                ? $"check exit 0 on a really changed image ({m.Class})"
                : $"check reports the pristine image's findings unchanged on a really changed image ({m.Class})");
        if (m.Expect == Expectation.MustBeClean && detected)
            return (Outcome.FalsePositive, $"check exit {exit} (pristine image: {BaselineExit}) although nothing the filesystem uses changed ({m.Class}): {FirstLine(NewFinding(runs[0]))}");
        return (Outcome.Ok, null);
    }

    /// <summary>Did <c>check</c> notice the change? Exit 3 (cannot check), or error findings other than the pristine
    /// image's. On a clean fixture that is exactly "exit != 0".</summary>
    private bool Detected(VerbRun check)
    {
        if (check.TimedOut) return false;
        if (check.Exit is not (ExitCodes.Ok or ExitCodes.Findings)) return true; // 3: cannot check; 2 and 4 are failures anyway
        if (BaselineExit == ExitCodes.Ok || check.Stdout == null) return check.Exit != ExitCodes.Ok;
        try { return !ErrorFindings(check.Stdout).SetEquals(BaselineErrors); }
        catch (System.Text.Json.JsonException) { return true; }
    }

    private string NewFinding(VerbRun check)
    {
        if (check.Stdout == null || check.Exit != ExitCodes.Findings) return check.Stderr;
        try { return ErrorFindings(check.Stdout).Except(BaselineErrors).FirstOrDefault() ?? "(a pristine finding vanished)"; }
        catch (System.Text.Json.JsonException) { return "(check --json output is not JSON)"; }
    }

    /// <summary>Runs one command line in-process on a worker thread with the time bound; measures what it allocates.
    /// On exit 4 it runs again with --debug to capture the exception and stack trace.</summary>
    public static VerbRun RunVerb(string[] args, FuzzOptions options, bool captureStdout = false)
    {
        var r = RunOnce(args, options, captureStdout);
        if (r.Exit == ExitCodes.InternalError && r.Exception == null && !r.TimedOut)
        {
            var again = RunOnce([.. args, "--debug"], options, false);
            r = r with { Exception = again.Exception ?? $"(the --debug rerun did not throw: exit {again.Exit})" };
        }
        return r;
    }

    private static VerbRun RunOnce(string[] args, FuzzOptions options, bool captureStdout)
    {
        TextWriter stdout = captureStdout ? new StringWriter() : new CountingWriter();
        var stderr = new StringWriter();
        int exit = -1;
        string? exception = null;
        long allocated = 0;
        var sw = Stopwatch.StartNew();
        var t = new Thread(() =>
        {
            long a0 = GC.GetAllocatedBytesForCurrentThread();
            try { exit = Program.Run(args, stdout, stderr); }
            catch (Exception e) { exception = e.ToString(); }
            allocated = GC.GetAllocatedBytesForCurrentThread() - a0;
        }, 16 << 20) { IsBackground = true, Name = "fuzz " + args[0] };
        t.Start();
        bool done = t.Join(options.TimeLimit);
        string cmd = string.Join(' ', args.Select(a => a.Contains('/') ? Path.GetFileName(a) : a));
        return new VerbRun(cmd, done ? exit : -1, sw.Elapsed.TotalMilliseconds, allocated, !done, exception, done ? stderr.ToString() : "")
        {
            Stdout = done && captureStdout ? stdout.ToString() : null,
        };
    }

    /// <summary>check --json without its phase timings (the only part allowed to differ between two runs).</summary>
    public static string StripTimings(string? json)
    {
        if (json == null) return "";
        try
        {
            var node = System.Text.Json.Nodes.JsonNode.Parse(json);
            if (node is System.Text.Json.Nodes.JsonObject o) o.Remove("phases");
            return node?.ToJsonString() ?? "";
        }
        catch (System.Text.Json.JsonException) { return json; }
    }

    private static string FirstDifference(string a, string b)
    {
        int i = 0;
        while (i < a.Length && i < b.Length && a[i] == b[i]) i++;
        int from = Math.Max(0, i - 80);
        return $"at char {i}: '{a[from..Math.Min(a.Length, i + 80)]}' vs '{b[from..Math.Min(b.Length, i + 80)]}'";
    }

    private static string FirstLine(string s)
    {
        var line = s.Split('\n', 2)[0].Trim();
        return line.Length > 300 ? line[..300] + "..." : line;
    }

    private static string Head(string s, int n) => s.Length <= n ? s : s[..n] + "\n...";

    public void Dispose() => _work.Dispose();
}

/// <summary>A TextWriter that only counts what is written (dump-tree of a real image is tens of MB).</summary>
public sealed class CountingWriter : TextWriter
{
    public long Chars { get; private set; }
    public override Encoding Encoding => Encoding.UTF8;
    public override void Write(char value) => Chars++;
    public override void Write(char[] buffer, int index, int count) => Chars += count;
    public override void Write(ReadOnlySpan<char> buffer) => Chars += buffer.Length;
    public override void Write(string? value) => Chars += value?.Length ?? 0;
}

/// <summary>Fixture names the fuzzer knows and how to open them: every mkfs fixture (made by mkfs.btrfs at first use)
/// and the committed kernel-written images (the RAID1 pair as one two-device fixture).</summary>
public static class FuzzFixtures
{
    private static readonly Lazy<string> workRoot = new(() => TempDirs.CreateForProcess("btrfs-refcheck-fuzz"));
    private static readonly Dictionary<string, Lazy<FuzzFixture>> opened = [];

    /// <summary>The committed kernel images (<c>testdata/*.img.gz</c>), a multi-device set (<c>NAME-devN</c>) as one fixture.</summary>
    public static IReadOnlyList<string> KernelNames =>
        KernelFixtures.Present()
            .Select(f => Regex.Replace(f[..^".img.gz".Length], "-dev[0-9]+$", ""))
            .Distinct().Order(StringComparer.Ordinal).ToList();

    /// <summary>Every fixture name: the mkfs specs, then the kernel images.</summary>
    public static IReadOnlyList<string> All => [.. MkfsFixtures.All.Select(s => s.Name), .. KernelNames];

    /// <summary>Temporary directory of this process's working copies (removed at exit).</summary>
    public static string WorkRoot => workRoot.Value;

    /// <summary>Pristine device paths of fixture <paramref name="name"/> (created or expanded on first use).</summary>
    public static IReadOnlyList<string> Paths(string name)
    {
        if (!name.StartsWith("kernel-", StringComparison.Ordinal)) return [MkfsFixtures.Get(name)];
        if (KernelFixtures.Exists(name)) return [KernelFixtures.Expand(name)];
        var devs = new List<string>();
        for (int i = 1; KernelFixtures.Exists($"{name}-dev{i}"); i++) devs.Add(KernelFixtures.Expand($"{name}-dev{i}"));
        if (devs.Count == 0) throw new FileNotFoundException($"no committed image testdata/{name}.img.gz or {name}-dev1.img.gz");
        return devs;
    }

    /// <summary>The shared, read-only fixture (opened once per process).</summary>
    public static FuzzFixture Get(string name)
    {
        Lazy<FuzzFixture> lazy;
        lock (opened)
        {
            if (!opened.TryGetValue(name, out lazy!))
                opened[name] = lazy = new Lazy<FuzzFixture>(() => FuzzFixture.Open(name, Paths(name)), LazyThreadSafetyMode.ExecutionAndPublication);
        }
        return lazy.Value;
    }
}
