using System.Text;

namespace BtrfsRefcheck.DelayedRefs;

/// <summary>Renders a replay as the step-by-step text trace.</summary>
public static class TraceText
{
    public static string Render(Replay r, string name)
    {
        var sb = new StringBuilder();
        sb.Append($"replay {name}: mode {r.Mode.Name()}, on-bug {r.OnBug.Name()}\n");
        foreach (var e in r.Events)
        {
            sb.Append('#').Append(e.N).Append(' ').Append(e.Text);
            foreach (var n in e.Notes.Where(n => n.StartsWith('\u0001'))) sb.Append(n, 1, n.Length - 1);
            sb.Append('\n');
            foreach (var n in e.Notes.Where(n => !n.StartsWith('\u0001'))) sb.Append("   ").Append(n).Append('\n');
        }
        foreach (var line in Summary(r)) sb.Append(line).Append('\n');
        return sb.ToString();
    }

    public static IEnumerable<string> Summary(Replay r)
    {
        if (r.FirstBug is { } b)
            yield return $"result: {b.Kind.Name()} in {b.Where} at #{b.Event} (line {b.Line}): {b.Reason}" +
                         (r.Bugs.Count > 1 ? $" ({r.Bugs.Count} failure points in all)" : "");
        else yield return "result: no BUG";
        if (r.BugExtents != null && r.OnBug != OnBug.Halt)
            foreach (var line in Extents(r, r.BugExtents, "at the failure point")) yield return line;
        foreach (var line in Extents(r, r.Extents, r.Halted ? "when halted" : "final")) yield return line;
        foreach (var b2 in r.BlockNames)
        {
            var want = r.Oracle.TryGetValue(b2, out var o) ? o.Where(kv => kv.Value != 0).OrderBy(kv => kv.Key).ToList() : [];
            yield return $"intended {b2}: [{string.Join(", ", want.Select(kv => r.KeyName(kv.Key) + (kv.Value != 1 ? $" x{kv.Value}" : "")))}]";
        }
        if (r.Heads.Count > 0) yield return $"pending heads: {string.Join(", ", r.Heads.Values.Select(h => $"{h.Block} ({h.PendingCount} refs)"))}";
        foreach (var v in r.InvariantViolations) yield return $"invariant violated: {v}";
    }

    private static IEnumerable<string> Extents(Replay r, Dictionary<string, ExtentState> ex, string when)
    {
        foreach (var b in r.BlockNames)
            yield return ex.TryGetValue(b, out var e) ? $"extent {b} {when}: {e.Describe(r.KeyName)}" : $"extent {b} {when}: no item";
    }
}
