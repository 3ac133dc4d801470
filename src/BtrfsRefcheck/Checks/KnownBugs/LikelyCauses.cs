using System.Text.Json;
using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;

namespace BtrfsRefcheck.Checks;

/// <summary>A known kernel bug whose on-disk signature the findings match, and how plausible it is for this filesystem.</summary>
/// <param name="Verdict">"candidate", "unlikely" (a feature normally set at mkfs, or the bug's own note, speaks against it)
/// or "ruled out" (a feature that exists only from mkfs needs a kernel newer than the bug).</param>
public sealed record LikelyCause(string Id, string Title, IReadOnlyList<int> Codes, string? IntroducedIn, string? IntroducedBy, string LastAffected,
    string FixedIn, string FixCommit, string FixTitle, IReadOnlyList<string> Sources, string Note, long Findings, ulong? ExampleBytenr,
    string Verdict, string Why);

/// <summary>A superblock feature that only kernels from <paramref name="MinKernel"/> on can write; <paramref name="AddedLater"/>
/// says how it can appear on an older filesystem (null: only mkfs sets it).</summary>
public sealed record KernelBound(string Feature, string MinKernel, string? AddedLater, string Source);

/// <summary>What the findings and the superblock say about the likely cause.</summary>
public sealed record LikelyCauseReport(IReadOnlyList<LikelyCause> Causes, IReadOnlyList<KernelBound> Bounds)
{
    /// <summary>The newest kernel every feature set at mkfs implies (null: no such feature).</summary>
    public string? CertainMinKernel => Max(Bounds.Where(b => b.AddedLater == null));
    /// <summary>The newest kernel any feature implies (a feature added later implies it only from then on).</summary>
    public string? MinKernel => Max(Bounds);
    private static string? Max(IEnumerable<KernelBound> b) => b.Select(x => x.MinKernel).OrderBy(KnownBugs.Version).LastOrDefault();
}

/// <summary>The known-bugs table (<c>Checks/KnownBugs/known-bugs.json</c>, embedded: the one data file) and the matcher.
/// The superblock records no kernel version; its features only give lower bounds on the kernels that wrote the
/// filesystem, and only from the moment each feature was set.</summary>
public static class KnownBugs
{
    private static readonly Lazy<JsonDocument> Table = new(() =>
    {
        using var s = typeof(KnownBugs).Assembly.GetManifestResourceStream("known-bugs.json")
            ?? throw new InvalidOperationException("known-bugs.json is not embedded");
        return JsonDocument.Parse(s);
    });

    /// <summary>The table's root (for tests and docs).</summary>
    public static JsonElement Root => Table.Value.RootElement;

    /// <summary>"6.11" -> (6, 11).</summary>
    public static (int, int) Version(string v)
    {
        var parts = v.Split('.');
        return (int.Parse(parts[0]), parts.Length > 1 ? int.Parse(parts[1]) : 0);
    }

    /// <summary>Features of <paramref name="super"/> that need a kernel newer than the oldest btrfs.</summary>
    public static List<KernelBound> Bounds(Superblock super)
    {
        var list = new List<KernelBound>();
        foreach (var f in Root.GetProperty("features").EnumerateArray())
        {
            bool has = (f.TryGetProperty("incompat", out var i) && (super.IncompatFlags & i.GetUInt64()) != 0)
                    || (f.TryGetProperty("compat_ro", out var c) && (super.CompatRoFlags & c.GetUInt64()) != 0)
                    || (f.TryGetProperty("csum_type", out var t) && super.CsumTypeRaw == t.GetUInt16());
            if (!has) continue;
            var later = f.GetProperty("added_later");
            list.Add(new KernelBound(f.GetProperty("name").GetString()!, f.GetProperty("min_kernel").GetString()!,
                later.ValueKind == JsonValueKind.Null ? null : later.GetString(), f.GetProperty("source").GetString()!));
        }
        return list;
    }

    /// <summary>The known bugs whose signature the findings match, each judged against the superblock's features.</summary>
    public static LikelyCauseReport Match(Superblock super, IReadOnlyList<Finding> findings)
    {
        var bounds = Bounds(super);
        var causes = new List<LikelyCause>();
        foreach (var b in Root.GetProperty("bugs").EnumerateArray())
        {
            var codes = b.GetProperty("codes").EnumerateArray().Select(x => x.GetInt32()).ToList();
            ulong? tree = b.TryGetProperty("tree", out var tr) ? tr.GetUInt64() : null;
            bool below = b.TryGetProperty("found_below_expected", out var fb) && fb.GetBoolean();
            bool above = b.TryGetProperty("found_above_expected", out var fa) && fa.GetBoolean();
            var hits = findings.Where(f => codes.Contains((int)f.Code) && f.Severity >= Severity.Warning
                && (tree == null || f.Tree == tree)
                && (!below || Compare(f) < 0) && (!above || Compare(f) > 0)).ToList();
            if (hits.Count == 0) continue;
            string last = b.GetProperty("last_affected").GetString()!;
            var (verdict, why) = Judge(bounds, last, b.TryGetProperty("aborts_before_commit", out var ab) && ab.GetBoolean());
            causes.Add(new LikelyCause(
                b.GetProperty("id").GetString()!, b.GetProperty("title").GetString()!, codes,
                Str(b, "introduced_in"), Str(b, "introduced_by"), last, b.GetProperty("fixed_in").GetString()!,
                b.GetProperty("fix_commit").GetString()!, b.GetProperty("fix_title").GetString()!,
                b.GetProperty("sources").EnumerateArray().Select(s => s.GetString()!).ToList(), b.GetProperty("note").GetString()!,
                hits.Count, hits[0].Bytenr, verdict, why));
        }
        return new LikelyCauseReport(causes, bounds);
    }

    private static string? Str(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    /// <summary>Found against expected, when both are numbers: the sign of found - expected (0 when not comparable).</summary>
    private static int Compare(Finding f) =>
        ulong.TryParse(f.Found, out ulong found) && ulong.TryParse(f.Expected, out ulong expected) ? found.CompareTo(expected) : 0;

    private static (string Verdict, string Why) Judge(List<KernelBound> bounds, string lastAffected, bool abortsBeforeCommit)
    {
        var last = Version(lastAffected);
        var certain = bounds.Where(b => b.AddedLater == null && Version(b.MinKernel).CompareTo(last) > 0).OrderBy(b => Version(b.MinKernel)).LastOrDefault();
        if (certain != null)
            return ("ruled out", $"{certain.Feature} is set only by mkfs and needs kernel {certain.MinKernel} or newer; the bug's last affected release is {lastAffected}");
        var newer = bounds.Where(b => Version(b.MinKernel).CompareTo(last) > 0).OrderBy(b => Version(b.MinKernel)).ToList();
        if (newer.Count > 0)
            return ("unlikely", $"{string.Join(", ", newer.Select(b => $"{b.Feature} needs kernel {b.MinKernel}"))} or newer (last affected: {lastAffected}); " +
                                "possible only if the damage predates the feature, which can be added to an existing filesystem (" +
                                string.Join("; ", newer.Select(b => $"{b.Feature}: {b.AddedLater}")) + ")");
        if (abortsBeforeCommit)
            return ("unlikely", "these kernels detect the duplicate and abort the transaction before committing it");
        return ("candidate", bounds.Count == 0
            ? "no feature of this filesystem needs a kernel newer than the bug (the superblock records no kernel version)"
            : $"the features present need at most kernel {bounds.Select(x => x.MinKernel).OrderBy(Version).Last()}, not newer than the bug");
    }
}
