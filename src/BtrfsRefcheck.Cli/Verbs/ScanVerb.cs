using System.Diagnostics;
using System.Globalization;
using BtrfsRefcheck.Cli.Verbs.Scan;
using BtrfsRefcheck.Diagnostics;
using CommandLine;

namespace BtrfsRefcheck.Cli.Verbs;

[Verb("scan", HelpText = "Find every btrfs filesystem under the paths (image files, block devices, directories searched recursively), group devices into filesystems by fsid and devid (seeds with their sprouts), check them concurrently; one line each.")]
public sealed class ScanOptions
{
    [Value(0, MetaName = "PATH", Required = true, HelpText = "Image files, block devices or directories (searched recursively).")]
    public IEnumerable<string> Paths { get; set; } = [];

    [Option("json", HelpText = "Write one JSON array to stdout: one object per filesystem and per skipped path (docs/json.md).")]
    public bool Json { get; set; }

    [Option("junit", MetaValue = "FILE", HelpText = "Also write a JUnit XML report to FILE: one test case per filesystem (its findings as the failure text), skipped paths as skipped test cases.")]
    public string? Junit { get; set; }

    [Option('j', "jobs", HelpText = "Check at most N filesystems at once (default: the number of cores).")]
    public int? Jobs { get; set; }

    [Option("memory-budget", MetaValue = "SIZE", HelpText = "Start a check only while the running checks' estimated memory stays within SIZE (MiB, or with a K, M, G or T suffix; default: half the memory available). A filesystem larger than the budget is checked alone.")]
    public string? MemoryBudget { get; set; }

    [Option("no-live", HelpText = "Do not check mounted filesystems: list them as not checked (exit 3). By default a mounted one is checked at its last committed state, as `check` does.")]
    public bool NoLive { get; set; }

    [Option("debug", HelpText = "On an internal error, print the stack trace.")]
    public bool Debug { get; set; }
}

/// <summary><c>scan</c>: every btrfs filesystem under the paths, checked concurrently; one line per filesystem as each
/// finishes, then a summary. Exit 1 if any has errors, else 3 if any could not be checked, else 0 (4 on an internal
/// error, which outranks both). Paths that are not btrfs are listed as skipped.</summary>
public static class ScanVerb
{
    public static int Run(ScanOptions o, TextWriter stdout, TextWriter stderr)
    {
        var roots = o.Paths.ToList();
        if (roots.Count == 0) throw new UsageException("no path given");
        if (o.Jobs is { } j && (j < 1 || j > 1024)) throw new UsageException($"--jobs {j}: between 1 and 1024");
        long budget = o.MemoryBudget is { } s ? ParseSize(s) : DefaultBudgetMiB();
        var clock = Stopwatch.StartNew();

        var entries = ScanInventory.Find(roots);
        var skipped = entries.OfType<SkippedPath>().ToList();
        bool text = !o.Json;
        if (text)
            foreach (var sk in skipped) stdout.WriteLine($"{"skipped",-11} {sk.Path}: {sk.Reason}");

        var groups = ScanGroups.Group(entries);
        var settings = new ScanSettings { Jobs = o.Jobs ?? Environment.ProcessorCount, MemoryBudgetMiB = budget, NoLive = o.NoLive, Debug = o.Debug };
        var results = new ScanRunner(settings, entries, r => { if (text) stdout.WriteLine(Line(r)); }, stderr).Run(groups);
        results = results.OrderBy(r => r.Devices[0], StringComparer.Ordinal).ToList();

        if (o.Junit != null) ScanReports.WriteJUnit(o.Junit, results, skipped, clock.Elapsed);
        if (o.Json) ScanReports.WriteJson(stdout, results, skipped);
        else stdout.WriteLine(Summary(results, skipped.Count, clock.Elapsed));
        return ExitCode(results);
    }

    /// <summary>1 if any filesystem has errors, else 3 if any could not be checked, else 0; 4 on an internal error.</summary>
    internal static int ExitCode(IReadOnlyList<FsResult> results) =>
        results.Any(r => r.Verdict == ScanVerdict.InternalError) ? ExitCodes.InternalError
        : results.Any(r => r.Verdict == ScanVerdict.Errors) ? ExitCodes.Findings
        : results.Any(r => r.Verdict == ScanVerdict.NotChecked) ? ExitCodes.CannotCheck
        : ExitCodes.Ok;

    /// <summary>"clean       FSID a.img: 0 errors, 0 warnings, 0.41 s"; "ERRORS      FSID a.img b.img: 2 errors, 1
    /// warning (110 DeviceMissing x1, ...), 0.30 s"; "NOT CHECKED FSID a.img: why".</summary>
    internal static string Line(FsResult r)
    {
        string devices = string.Join(' ', r.Group.Devices) + (r.Group.SeedDevices.Count > 0 ? $" + seed {string.Join(' ', r.Group.SeedDevices)}" : "");
        string fsid = r.Fsid?.ToString() ?? "-";
        if (r.Verdict is ScanVerdict.NotChecked or ScanVerdict.InternalError)
            return $"{"NOT CHECKED",-11} {fsid} {devices}: {r.Reason}";
        var codes = r.Findings.Where(f => f.Severity != Severity.Info).Select(f => f.Code).Distinct().Order()
            .Select(c => $"{(int)c} {c} x{r.CountsByCode.GetValueOrDefault(c)}").ToList();
        return $"{(r.Verdict == ScanVerdict.Clean ? "clean" : "ERRORS"),-11} {fsid} {devices}: {Count(r.Errors, "error")}, {Count(r.Warnings, "warning")}" +
               (codes.Count > 0 ? $" ({string.Join(", ", codes)})" : "") + $", {r.Elapsed.TotalSeconds.ToString("F2", CultureInfo.InvariantCulture)} s";
    }

    private static string Summary(IReadOnlyList<FsResult> results, int skipped, TimeSpan elapsed)
    {
        int clean = results.Count(r => r.Verdict == ScanVerdict.Clean), errors = results.Count(r => r.Verdict == ScanVerdict.Errors);
        int notChecked = results.Count - clean - errors;
        return $"scan: {Count(results.Count, "filesystem")} ({clean} clean, {errors} with errors, {notChecked} not checked), " +
               $"{Count(skipped, "path")} skipped, {elapsed.TotalSeconds.ToString("F2", CultureInfo.InvariantCulture)} s";
    }

    private static string Count(long n, string what) => $"{n} {what}{(n == 1 ? "" : "s")}";

    /// <summary>Half the memory this process may use (the machine's, or its cgroup limit), in MiB.</summary>
    private static long DefaultBudgetMiB() => Math.Max(64, GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / 2 >> 20);

    /// <summary>"512" (MiB), "512M", "4G", "1T", "65536K".</summary>
    internal static long ParseSize(string s)
    {
        string t = s.Trim();
        long shift = 20;
        if (t.Length > 0 && char.IsLetter(t[^1]))
        {
            shift = char.ToUpperInvariant(t[^1]) switch { 'K' => 10, 'M' => 20, 'G' => 30, 'T' => 40, _ => -1 };
            t = t[..^1];
        }
        if (shift < 0 || !long.TryParse(t, NumberStyles.None, CultureInfo.InvariantCulture, out long n) || n <= 0 || n > (1L << 50) >> (int)shift)
            throw new UsageException($"--memory-budget {s}: a size such as 512 (MiB), 512M, 4G");
        return Math.Max(1, (n << (int)shift) >> 20);
    }
}
