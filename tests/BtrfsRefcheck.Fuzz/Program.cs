using System.Diagnostics;
using BtrfsRefcheck.Tests.Fuzz;

namespace BtrfsRefcheck.Fuzz;

/// <summary>btrfs-refcheck-fuzz: runs the fuzzer of tests/BtrfsRefcheck.FuzzLib/Fuzz for a number of minutes or cases,
/// prints progress and the totals, saves failing inputs. Case i uses seed S+i on fixture i mod (number of fixtures),
/// so any case is reproduced by <c>--fixture F --seed S+i --cases 1</c>. Exit 0 when no case failed, 1 otherwise.</summary>
public static class Program
{
    private const string Usage = """
        usage: btrfs-refcheck-fuzz [--minutes N] [--cases N] [--seed S] [--fixture NAME[,NAME...]] [--jobs N]
                                   [--kind KIND] [--all-formats] [--crash-dir DIR] [--time-limit SECONDS]
          --minutes N      stop after N minutes (default 1 when --cases is not given)
          --cases N        stop after N cases
          --seed S         seed of case 0 (default: from the clock; printed)
          --fixture LIST   fixtures to use (default: all): {0}
          --jobs N         parallel workers (default: number of cores)
          --kind KIND      only this mutation kind: {1}
          --all-formats    run every output format of every verb on each case
          --crash-dir DIR  where failing inputs are saved (default /tmp/fuzz-crashes)
          --time-limit S   seconds one verb run may take before it counts as a hang (default 20)
        """;

    public static int Main(string[] args)
    {
        double? minutes = null;
        long? cases = null;
        int seed = Environment.TickCount & 0x3FFFFFFF;
        var fixtures = FuzzFixtures.All.ToList();
        int jobs = Environment.ProcessorCount;
        MutationKind? kind = null;
        bool allFormats = false;
        string crashDir = "/tmp/fuzz-crashes";
        double timeLimit = 20;
        try
        {
            for (int i = 0; i < args.Length; i++)
            {
                string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
                switch (args[i])
                {
                    case "--minutes": minutes = double.Parse(Next()); break;
                    case "--cases": cases = long.Parse(Next()); break;
                    case "--seed": seed = int.Parse(Next()); break;
                    case "--fixture" or "--fixtures":
                        fixtures = Next().Split(',', StringSplitOptions.RemoveEmptyEntries).ToList();
                        foreach (var f in fixtures)
                            if (!FuzzFixtures.All.Contains(f)) throw new ArgumentException($"unknown fixture '{f}'");
                        break;
                    case "--jobs": jobs = Math.Max(1, int.Parse(Next())); break;
                    case "--kind": kind = Enum.Parse<MutationKind>(Next(), ignoreCase: true); break;
                    case "--all-formats": allFormats = true; break;
                    case "--crash-dir": crashDir = Next(); break;
                    case "--time-limit": timeLimit = double.Parse(Next()); break;
                    case "-h" or "--help":
                        Console.WriteLine(string.Format(Usage, string.Join(", ", FuzzFixtures.All), string.Join(", ", Enum.GetNames<MutationKind>())));
                        return 0;
                    default: throw new ArgumentException($"unknown argument '{args[i]}'");
                }
            }
        }
        catch (Exception e) when (e is ArgumentException or FormatException or OverflowException)
        {
            Console.Error.WriteLine($"btrfs-refcheck-fuzz: {e.Message} (see --help)");
            return 2;
        }
        if (minutes == null && cases == null) minutes = 1;

        var options = new FuzzOptions
        {
            TimeLimit = TimeSpan.FromSeconds(timeLimit), AllFormats = allFormats, CrashDir = crashDir, OnlyKind = kind,
        };
        Directory.CreateDirectory(crashDir);
        Console.WriteLine($"fuzzing {string.Join(", ", fixtures)}: seed {seed}, {jobs} job(s), " +
                          $"{(minutes is { } m ? $"{m} minute(s)" : "")}{(minutes != null && cases != null ? " or " : "")}{(cases is { } c ? $"{c} cases" : "")}; failing inputs go to {crashDir}");
        var total = Stopwatch.StartNew();
        var prep = Stopwatch.StartNew();
        foreach (var f in fixtures)
        {
            // make (mkfs) / expand every fixture before the clock starts; the pristine image must check clean
            FuzzFixture fx;
            try { fx = FuzzFixtures.Get(f); }
            catch (Exception e)
            {
                Console.Error.WriteLine($"btrfs-refcheck-fuzz: cannot prepare fixture {f}: {e}");
                return 2;
            }
            var outW = new StringWriter();
            var errW = new StringWriter();
            int exit = BtrfsRefcheck.Cli.Program.Run(["check", "--quiet", .. fx.Devices.Select(d => d.Path)], outW, errW);
            if (exit != 0)
                Console.WriteLine($"warning: fixture {f} does not check clean (exit {exit}); its no-change cases must give exit {exit} too:\n{outW}{errW}");
        }
        Console.WriteLine($"fixtures ready in {prep.Elapsed.TotalSeconds:F1} s");

        var stats = new FuzzStats();
        var deadline = minutes is { } mins ? DateTime.UtcNow.AddMinutes(mins) : DateTime.MaxValue;
        long next = -1;
        int hung = 0;
        var clock = Stopwatch.StartNew();
        using var stop = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) => { e.Cancel = true; stop.Cancel(); Console.WriteLine("interrupted: finishing the running cases"); };

        void Worker()
        {
            var sessions = new Dictionary<string, FuzzSession>();
            try
            {
                while (!stop.IsCancellationRequested && DateTime.UtcNow < deadline && Volatile.Read(ref hung) < jobs)
                {
                    long i = Interlocked.Increment(ref next);
                    if (cases is { } max && i >= max) break;
                    string name = fixtures[(int)(i % fixtures.Count)];
                    int caseSeed = unchecked(seed + (int)i);
                    CaseResult r;
                    try
                    {
                        if (!sessions.TryGetValue(name, out var s)) sessions[name] = s = new FuzzSession(FuzzFixtures.Get(name), options);
                        r = s.Run(caseSeed);
                    }
                    catch (Exception e)
                    {
                        Console.WriteLine($"FUZZER ERROR (not a checker bug) on {name} seed {caseSeed}: {e}");
                        continue;
                    }
                    stats.Add(r);
                    if (r.Failed)
                    {
                        Console.WriteLine(r.Describe());
                        if (r.Outcome == Outcome.Hang)
                        {
                            // The stuck thread keeps a core busy and reads this session's working copy: retire both.
                            Interlocked.Increment(ref hung);
                            sessions.Remove(name);
                        }
                    }
                }
            }
            finally
            {
                foreach (var s in sessions.Values) s.Dispose();
            }
        }

        var threads = Enumerable.Range(0, jobs).Select(j => new Thread(Worker) { Name = $"fuzz worker {j}" }).ToList();
        foreach (var t in threads) t.Start();
        while (threads.Any(t => t.IsAlive))
        {
            threads.First(t => t.IsAlive).Join(TimeSpan.FromSeconds(30));
            if (threads.Any(t => t.IsAlive))
                Console.WriteLine($"[{clock.Elapsed:hh\\:mm\\:ss}] {stats.Cases} cases, {stats.Cases / Math.Max(1, clock.Elapsed.TotalSeconds):F1}/s, failed {stats.Failed}");
        }
        if (Volatile.Read(ref hung) >= jobs) Console.WriteLine("stopped early: every worker met a hang");

        Console.WriteLine();
        Console.WriteLine($"fuzzing done in {clock.Elapsed:hh\\:mm\\:ss} (seed {seed}, fixtures {string.Join(",", fixtures)})");
        Console.Write(stats.Summary());
        Console.WriteLine($"failing inputs saved under {crashDir}");
        return stats.Failed == 0 ? 0 : 1;
    }
}
