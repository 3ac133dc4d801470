using System.Text.RegularExpressions;
using Xunit.Abstractions;
using BtrfsRefcheck.Cli;
using BtrfsRefcheck.Tests.Oracle;

namespace BtrfsRefcheck.Tests.Differential;

/// <summary>
/// Our <c>dump-tree</c> verb's text against <c>btrfs inspect-internal dump-tree</c>'s, line for line where the two share
/// a format: block header lines (<c>leaf|node N ...</c>, the flags line), <c>fs uuid</c>, <c>chunk uuid</c>, every item
/// line (<c>item N key (...) itemoff N itemsize N</c>: key names, objectids and offsets as progs prints them) and every
/// node pointer line; and, against v6.19 (v6.2 does not print it), <c>checksum stored</c> (ours adds <c>(copy N)</c>).
/// Item bodies use our own field names (see <see cref="ItemValues"/> and <see cref="DumpTreeDifferentialTests"/> for
/// their values). Progs prints trees breadth-first, ours depth-first: the lines are compared as multisets.
/// </summary>
public class DumpTreeTextDifferentialTests(ITestOutputHelper output)
{
    private static readonly Regex Shared = new(
        @"^((leaf|node) \d+ (items|level|flags) |fs uuid |chunk uuid |checksum stored |\titem \d+ key \(|\tkey \()", RegexOptions.CultureInvariant);

    private static readonly Regex CopySuffix = new(@"^(checksum stored [0-9a-f]+) \(copy \d+\)$", RegexOptions.CultureInvariant);

    [ProgsTheory]
    [MemberData(nameof(DiffFixtures.All), MemberType = typeof(DiffFixtures))]
    public void SharedLinesMatch62(string fixture) => SharedLinesMatch(fixture, Progs.V62);

    [Progs619Theory]
    [MemberData(nameof(DiffFixtures.All619), MemberType = typeof(DiffFixtures))]
    public void SharedLinesMatch619(string fixture) => SharedLinesMatch(fixture, Progs.V619);

    private void SharedLinesMatch(string fixture, ProgsOracle oracle)
    {
        var images = DiffFixtures.Images(fixture);
        var ours = OurTexts.GetOrAdd(fixture, _ => new Lazy<string>(() =>
            OurText(images, CheckDifferentialTests.OurKnownFindings619.GetValueOrDefault(fixture, [])))).Value;
        string? progsText = null;
        if (!DiffFixtures.WithProgsDevices(fixture, oracle, devices => progsText = oracle.DumpTree(devices[0])))
        {
            output.WriteLine($"{fixture}: {DiffFixtures.Progs(fixture, oracle).How}");
            return;
        }
        var progs = SharedLines(progsText!);
        bool progsPrintsChecksums = progs.Any(l => l.StartsWith("checksum stored ", StringComparison.Ordinal));
        Assert.Equal(oracle.Name == "6.19", progsPrintsChecksums);
        var mine = SharedLines(ours).Select(l => CopySuffix.Replace(l, "$1"))
            .Where(l => progsPrintsChecksums || !l.StartsWith("checksum stored ", StringComparison.Ordinal)).ToList();
        Assert.True(progs.Count > 50, $"only {progs.Count} lines from {oracle}");

        var diffs = Difference(progs, mine, $"{oracle} prints") .Concat(Difference(mine, progs, "we print")).ToList();
        Assert.True(diffs.Count == 0, DiffFixtures.Report($"{fixture}: our dump-tree vs {oracle} dump-tree ({progs.Count} lines)", diffs));
    }

    /// <summary>Our text per fixture, shared by the v6.2 and v6.19 rows.</summary>
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, Lazy<string>> OurTexts = new(StringComparer.Ordinal);

    /// <summary>The comparison must notice one changed key line.</summary>
    [ProgsFact]
    public void Comparison_DetectsAChangedLine()
    {
        var text = OurText(DiffFixtures.Images("mkfs:crc32c"));
        var lines = SharedLines(text);
        var item = lines.First(l => l.StartsWith("\titem ", StringComparison.Ordinal));
        var changed = lines.Select(l => l == item ? l.Replace(" itemoff ", " itemoff 1") : l).ToList();
        Assert.Single(Difference(lines, changed, "x"));
    }

    /// <summary>Our <c>dump-tree</c> of the images, run in-process: exit 0, or 1 with only the <paramref name="known"/>
    /// findings of a checker rule still to fix (<see cref="CheckDifferentialTests.OurKnownFindings619"/>) on stderr.</summary>
    internal static string OurText(IReadOnlyList<string> images, BtrfsRefcheck.Diagnostics.FindingCode[]? known = null)
    {
        var stdout = new StringWriter { NewLine = "\n" };
        var stderr = new StringWriter();
        int exit = Program.Run(["dump-tree", .. images], stdout, stderr);
        var problems = stderr.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList();
        bool onlyKnown = known is { Length: > 0 } && problems.Count > 0 &&
                         problems.All(l => known.Any(c => l.StartsWith($"[{(int)c} {c}]", StringComparison.Ordinal)));
        Assert.True(exit == 0 || (exit == 1 && onlyKnown), $"dump-tree exited {exit}: {stderr}");
        return stdout.ToString();
    }

    private static List<string> SharedLines(string text) =>
        text.Split('\n').Select(l => l.TrimEnd('\r', ' ')).Where(l => Shared.IsMatch(l)).ToList();

    /// <summary>Lines of <paramref name="a"/> not matched one for one in <paramref name="b"/>.</summary>
    private static IEnumerable<string> Difference(IReadOnlyList<string> a, IReadOnlyList<string> b, string who)
    {
        var counts = b.GroupBy(l => l, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);
        foreach (var l in a)
        {
            if (counts.TryGetValue(l, out var c) && c > 0) counts[l] = c - 1;
            else yield return $"only {who}: {l.Replace("\t", "\\t")}";
        }
    }
}
