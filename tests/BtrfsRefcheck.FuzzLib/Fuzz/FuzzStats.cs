using System.Text;

namespace BtrfsRefcheck.Tests.Fuzz;

/// <summary>Totals of a fuzz run: cases per kind, exit codes, failures by outcome, and detection rates — for the
/// must-detect rule, and per class for the changes the checker may or may not notice. Thread-safe.</summary>
public sealed class FuzzStats
{
    private readonly object _lock = new();
    private readonly Dictionary<string, long> _byKind = [];
    private readonly Dictionary<string, long> _byFixture = [];
    private readonly Dictionary<string, long> _exits = [];
    private readonly Dictionary<Outcome, long> _outcomes = [];
    private readonly Dictionary<string, (long Cases, long Detected)> _byClass = [];
    private readonly Dictionary<Expectation, (long Cases, long Detected)> _byExpect = [];
    private readonly Dictionary<string, (double MaxMs, long MaxAlloc, double TotalMs, long Runs)> _verbs = [];
    private readonly List<CaseResult> _failures = [];

    public long Cases { get; private set; }
    public long Failed { get; private set; }
    public IReadOnlyList<CaseResult> Failures { get { lock (_lock) return _failures.ToList(); } }

    public void Add(CaseResult r)
    {
        lock (_lock)
        {
            Cases++;
            Inc(_byKind, $"{r.Mutation.Kind}");
            Inc(_byFixture, r.Fixture);
            Inc(_outcomes, r.Outcome);
            foreach (var run in r.Runs)
            {
                string verb = VerbKey(run.Command);
                Inc(_exits, $"{verb}: {(run.TimedOut ? "timeout" : run.Exit.ToString())}");
                var v = _verbs.GetValueOrDefault(verb);
                _verbs[verb] = (Math.Max(v.MaxMs, run.Ms), Math.Max(v.MaxAlloc, run.Allocated), v.TotalMs + run.Ms, v.Runs + 1);
            }
            bool timedOut = r.Runs[0].TimedOut;
            if (!timedOut)
            {
                bool detected = r.Detected;
                var c = _byClass.GetValueOrDefault($"{r.Mutation.Expect}|{r.Mutation.Class}");
                _byClass[$"{r.Mutation.Expect}|{r.Mutation.Class}"] = (c.Cases + 1, c.Detected + (detected ? 1 : 0));
                var e = _byExpect.GetValueOrDefault(r.Mutation.Expect);
                _byExpect[r.Mutation.Expect] = (e.Cases + 1, e.Detected + (detected ? 1 : 0));
            }
            if (r.Failed)
            {
                Failed++;
                if (_failures.Count < 1000) _failures.Add(r);
            }
        }
    }

    private static string VerbKey(string command)
    {
        var parts = command.Split(' ');
        return string.Join(' ', parts.Where(p => p.StartsWith('-') || p is "check" or "dump-tree" or "dump-super"));
    }

    private static void Inc<TK>(Dictionary<TK, long> d, TK k) where TK : notnull => d[k] = d.GetValueOrDefault(k) + 1;

    public long Count(Outcome o) { lock (_lock) return _outcomes.GetValueOrDefault(o); }

    /// <summary>The end-of-run report.</summary>
    public string Summary()
    {
        lock (_lock)
        {
            var sb = new StringBuilder();
            sb.AppendLine($"cases run: {Cases}, clean (no bug): {Cases - Failed}, failed: {Failed}");
            sb.AppendLine($"  crashes {_outcomes.GetValueOrDefault(Outcome.Crash)}, hangs {_outcomes.GetValueOrDefault(Outcome.Hang)}, " +
                          $"memory {_outcomes.GetValueOrDefault(Outcome.Memory)}, stack traces {_outcomes.GetValueOrDefault(Outcome.StackTrace)}, " +
                          $"missed detections {_outcomes.GetValueOrDefault(Outcome.Missed)}, false positives {_outcomes.GetValueOrDefault(Outcome.FalsePositive)}");
            sb.AppendLine("cases per kind:");
            foreach (var (k, n) in _byKind.OrderBy(kv => kv.Key)) sb.AppendLine($"  {k,-14} {n,8}");
            sb.AppendLine("cases per fixture:");
            foreach (var (k, n) in _byFixture.OrderBy(kv => kv.Key)) sb.AppendLine($"  {k,-18} {n,8}");
            sb.AppendLine("exit codes observed:");
            foreach (var (k, n) in _exits.OrderBy(kv => kv.Key, StringComparer.Ordinal)) sb.AppendLine($"  {k,-36} {n,8}");
            sb.AppendLine("verb runs (max ms, mean ms, max MiB allocated):");
            foreach (var (k, v) in _verbs.OrderBy(kv => kv.Key, StringComparer.Ordinal))
                sb.AppendLine($"  {k,-28} {v.MaxMs,8:F0} {v.TotalMs / Math.Max(1, v.Runs),8:F0} {v.MaxAlloc >> 20,8}");
            sb.AppendLine("detection (check exit != 0; on a fixture that is not clean: error findings differ from the pristine image's):");
            foreach (var (k, v) in _byExpect.OrderByDescending(kv => kv.Key))
                sb.AppendLine($"  {k,-12} {v.Detected,7}/{v.Cases,-7} {Pct(v.Detected, v.Cases)}{(k == Expectation.MustBeClean ? "  (must be 0%)" : k == Expectation.MustDetect ? "  (must be 100%)" : "")}");
            sb.AppendLine("detection by class:");
            foreach (var (k, v) in _byClass.OrderBy(kv => kv.Key, StringComparer.Ordinal))
                sb.AppendLine($"  {k,-60} {v.Detected,6}/{v.Cases,-6} {Pct(v.Detected, v.Cases)}");
            var itemData = _byClass.Where(kv => kv.Key.Contains("|item-data:")).Select(kv => kv.Value).ToList();
            long idCases = itemData.Sum(x => x.Cases), idDet = itemData.Sum(x => x.Detected);
            sb.AppendLine($"item-data mutations (checksum recomputed) detected: {idDet}/{idCases} {Pct(idDet, idCases)}");
            return sb.ToString();
        }
    }

    private static string Pct(long a, long b) => b == 0 ? "  -" : $"{100.0 * a / b,5:F1}%";
}
