using System.Text.Json;
using System.Text.RegularExpressions;
using BtrfsRefcheck.Checks;
using BtrfsRefcheck.Cli.Rendering;
using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Tests.Forge;
using Xunit.Abstractions;
using ImageForge = BtrfsRefcheck.Forge.Forge;

namespace BtrfsRefcheck.Tests.Cli;

/// <summary><c>check --report FILE.html</c>: the Hilbert layout, escaping, findings anchored to their block group's
/// cell, and the page of a damaged image (verdict, every code, one cell per block group, nothing loaded from outside).</summary>
public class HtmlReportTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(4)]
    [InlineData(8)]
    [InlineData(64)]
    public void HilbertLayoutCoversEveryCellOnceAlongNeighbours(int side)
    {
        var seen = new HashSet<(int, int)>();
        (int X, int Y)? prev = null;
        for (int d = 0; d < side * side; d++)
        {
            var c = HilbertLayout.Cell(side, d);
            Assert.InRange(c.X, 0, side - 1);
            Assert.InRange(c.Y, 0, side - 1);
            Assert.True(seen.Add(c), $"cell {c} placed twice (d={d})");
            if (prev is { } p) Assert.Equal(1, Math.Abs(p.X - c.X) + Math.Abs(p.Y - c.Y)); // a curve: each step to a neighbour
            prev = c;
        }
        Assert.Equal(side * side, seen.Count);
        Assert.Equal((0, side - 1), HilbertLayout.Cell(side, 0)); // the lowest address at the bottom left, as btrfs-heatmap
        if (side > 1) Assert.Equal((side - 1, side - 1), HilbertLayout.Cell(side, side * side - 1)); // ... and it ends bottom right
    }

    [Theory]
    [InlineData(0, 1)]
    [InlineData(1, 1)]
    [InlineData(2, 2)]
    [InlineData(4, 2)]
    [InlineData(5, 4)]
    [InlineData(16, 4)]
    [InlineData(17, 8)]
    [InlineData(10_000, 128)]
    public void SideIsTheSmallestPowerOfTwoThatHoldsTheCells(int cells, int side) => Assert.Equal(side, HilbertLayout.Side(cells));

    private static readonly BlockGroupSummary[] Groups =
    [
        new(1 << 20, 4 << 20, BlockGroupFlags.System | BlockGroupFlags.Dup, 16384),
        new(5 << 20, 8 << 20, BlockGroupFlags.Metadata | BlockGroupFlags.Dup, 1 << 20),
        new(13 << 20, 8 << 20, BlockGroupFlags.Data, 8 << 20),
        new(21 << 20, 64 << 20, BlockGroupFlags.Data, null), // a chunk without block group item
    ];

    private static CheckReport Report(params Finding[] findings)
    {
        var bag = new FindingBag();
        foreach (var f in findings) bag.Add(f);
        return new CheckReport(bag, new CheckStats(), []) { BlockGroups = Groups };
    }

    private static string Page(CheckReport r, string verdict = "verdict: ERRORS FOUND (1)")
    {
        var w = new StringWriter();
        HtmlReport.Render(w, new HtmlReportInput(["/img"], "fsid", 7, r, verdict));
        return w.ToString();
    }

    [Fact]
    public void FindingsAreAnchoredToTheCellOfTheirBlockGroup()
    {
        var inMeta = new Finding(FindingCode.MissingTreeBlockRef, Severity.Error, "in metadata", Bytenr: (5 << 20) + 16384);
        var atDataEnd = new Finding(FindingCode.ExtentOverlap, Severity.Error, "at the data group's last byte", Bytenr: (21UL << 20) - 1);
        var atEnd = new Finding(FindingCode.DataExtentNoExtentItem, Severity.Error, "past every group", Bytenr: 85UL << 20); // end of the last: half-open
        var superCopy = new Finding(FindingCode.SuperblockBadChecksum, Severity.Error, "superblock copy", Bytenr: (5 << 20) + 4096); // physical, not logical
        var superBytes = new Finding(FindingCode.SuperBytesUsedMismatch, Severity.Error, "bytes_used", Bytenr: 5 << 20);
        var r = Report(inMeta, atDataEnd, atEnd, superCopy, superBytes);

        Assert.Equal(1, HtmlReport.GroupOf(inMeta, Groups));
        Assert.Equal(2, HtmlReport.GroupOf(atDataEnd, Groups));
        Assert.Equal(-1, HtmlReport.GroupOf(atEnd, Groups));
        Assert.Equal(-1, HtmlReport.GroupOf(superCopy, Groups));
        Assert.Equal(-1, HtmlReport.GroupOf(superBytes, Groups));
        Assert.Equal(-1, HtmlReport.GroupOf(new Finding(FindingCode.ExtentOverlap, Severity.Error, "below the first", Bytenr: 4096), Groups));

        string page = Page(r);
        var hits = Regex.Matches(page, "<rect id=\"cell-(\\d+)\" class=\"cell hit\"").Select(m => ulong.Parse(m.Groups[1].Value)).ToList();
        Assert.Equal([5UL << 20, 13UL << 20], hits);
        Assert.Contains($"<a href=\"#bg-{5 << 20}\"><rect id=\"cell-{5 << 20}\"", page);
        // the block group's section links to the finding's row, and the row back to the cell
        var items = r.Findings.Items.ToList();
        int k = items.IndexOf(inMeta);
        var section = Regex.Match(page, $"<section id=\"bg-{5 << 20}\">(.*?)</section>", RegexOptions.Singleline).Groups[1].Value;
        Assert.Contains($"href=\"#f-{k}\"", section);
        Assert.DoesNotContain($"href=\"#f-{items.IndexOf(atDataEnd)}\"", section);
        Assert.Matches($"<tr id=\"f-{k}\"[^>]*>.*<a href=\"#cell-{5 << 20}\">", page);
        // one cell per block group (and chunk without one)
        Assert.Equal(Groups.Length, Regex.Matches(page, "<rect id=\"cell-").Count);
        Assert.Contains("fill=\"#555\"", page); // the chunk without block group item
    }

    [Fact]
    public void TextFromTheImageIsEscaped()
    {
        const string name = "<script>alert('x')</script>&\"\u0001<img src=x onerror=y>";
        var f = new Finding(FindingCode.DirItemInvalid, Severity.Error, $"dir item name {name}", Bytenr: 5 << 20, Expected: "<b>", Found: "</td>", Device: "/dev/<x>");
        string page = Page(Report(f), verdict: "verdict: <i>x</i>");
        Assert.DoesNotContain("<script", page, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("<img", page, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("<i>x", page);
        Assert.DoesNotContain("<b>", page);
        Assert.DoesNotContain("\u0001", page);
        Assert.Contains("dir item name &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;\\x01&lt;img src=x onerror=y&gt;", page);
        Assert.Contains("&lt;/td&gt; / &lt;b&gt;", page);
        Assert.Contains("device /dev/&lt;x&gt;", page);
        Assert.Equal("a\uFFFDb", HtmlReport.Esc("a\uD800b")); // a lone surrogate
        Assert.Equal("\U0001F600", HtmlReport.Esc("\U0001F600"));
    }

    [Fact]
    public void EveryCodeHasItsMeaningFromTheDocument()
    {
        foreach (var c in Enum.GetValues<FindingCode>())
        {
            var row = FindingMeanings.Of(c);
            Assert.True(row != null, $"code {(int)c} {c}: no meaning in the embedded docs/findings.md");
            Assert.Equal(c.ToString(), row.Name);
            Assert.False(string.IsNullOrWhiteSpace(row.Meaning));
        }
        Assert.Equal("A block group&#39;s <code>used</code> differs from the sum of its extents. <code>expected</code> is the sum.",
            HtmlReport.MarkdownInline(FindingMeanings.Of(FindingCode.BlockGroupUsedMismatch)!.Meaning));
    }

    /// <summary>No reference to anything outside the page: no URL, no external source, stylesheet, script or font.</summary>
    internal static void AssertSelfContained(string page)
    {
        Assert.DoesNotMatch("(?i)https?:", page);
        Assert.DoesNotMatch("(?i)\\bsrc\\s*=", page);
        Assert.DoesNotMatch("(?i)<(script|link|iframe|object|embed|img)\\b", page);
        Assert.DoesNotMatch("(?i)url\\(|@import", page);
        Assert.DoesNotMatch("(?i)href=\"(?!#)", page); // every link is an anchor inside the page
    }

    /// <summary>The page of a damaged image: its verdict, every code found (with its meaning), one cell per block group,
    /// the damaged block's group marked, and nothing from outside.</summary>
    [Fact]
    public void DamagedImagePage()
    {
        var (page, json) = DamagedReport(output);
        AssertSelfContained(page);
        using var doc = JsonDocument.Parse(json);
        var root = doc.RootElement;
        long errors = root.GetProperty("summary").GetProperty("errors").GetInt64();
        Assert.True(errors > 0);
        Assert.Contains($"<h1 id=\"verdict\">verdict: ERRORS FOUND ({errors})</h1>", page);
        Assert.Contains($"<title>btrfs-refcheck: verdict: ERRORS FOUND ({errors})</title>", page);
        foreach (var code in root.GetProperty("counts_by_code").EnumerateObject())
        {
            var c = (FindingCode)int.Parse(code.Name);
            Assert.Contains($"<section class=\"code\" id=\"code-{code.Name}\"><h3>", page);
            Assert.Contains($"{code.Name} {c}: {code.Value.GetInt64()} finding", page);
            Assert.Contains(HtmlReport.MarkdownInline(FindingMeanings.Of(c)!.Meaning), page);
        }
        // one cell per block group: the block group items the check counted (a healthy chunk tree: every chunk has one)
        long groups = root.GetProperty("summary").GetProperty("block_groups").GetInt64();
        Assert.Equal(groups, Regex.Matches(page, "<rect id=\"cell-\\d+\"").Count);
        // the damaged leaf's block group is marked and links to the findings about it
        ulong damaged = root.GetProperty("findings").EnumerateArray().First(f => f.GetProperty("code").GetInt32() == 300).GetProperty("bytenr").GetUInt64();
        var cells = Regex.Matches(page, "<rect id=\"cell-(\\d+)\" class=\"cell( hit)?\"[^>]*><title>[^<]*\\[(\\d+), (\\d+)\\)")
            .Select(m => (Start: ulong.Parse(m.Groups[1].Value), Hit: m.Groups[2].Success, End: ulong.Parse(m.Groups[4].Value))).ToList();
        var holder = Assert.Single(cells, c => damaged >= c.Start && damaged < c.End);
        Assert.True(holder.Hit, $"the cell of block group {holder.Start} holding damaged block {damaged} is not marked");
        Assert.Contains($"<a href=\"#bg-{holder.Start}\"><rect id=\"cell-{holder.Start}\"", page);
        Assert.Contains($"<section id=\"bg-{holder.Start}\">", page);
    }

    /// <summary>kernel-snapshots with a leaf's checksum broken and a block group's used changed: run
    /// <c>check --report</c> and <c>check --json</c> in-process; returns the page and the JSON.</summary>
    internal static (string Page, string Json) DamagedReport(ITestOutputHelper output, string? htmlPath = null)
    {
        var img = ImageForge.CopyAll(ForgeFixtures.Images("kernel-snapshots"), ForgeFixtures.TempDir);
        try
        {
            output.WriteLine(BtrfsRefcheck.Forge.Defects.Get("tree-block-checksum-mismatch").Apply(img).Description);
            output.WriteLine(BtrfsRefcheck.Forge.Defects.Get("block-group-used-mismatch").Apply(img).Description);
            string html = htmlPath ?? Path.Combine(ForgeFixtures.TempDir, $"report-{Guid.NewGuid():N}.html");
            var (o, e) = (new StringWriter(), new StringWriter());
            Assert.Equal(1, BtrfsRefcheck.Cli.Program.Run(["check", "--report", html, .. img.Paths], o, e));
            Assert.Equal("", e.ToString());
            Assert.Contains("verdict: ERRORS FOUND", o.ToString());
            var (jo, je) = (new StringWriter(), new StringWriter());
            Assert.Equal(1, BtrfsRefcheck.Cli.Program.Run(["check", "--json", .. img.Paths], jo, je));
            string page = File.ReadAllText(html);
            if (htmlPath == null) File.Delete(html);
            return (page, jo.ToString());
        }
        finally { img.Dispose(); }
    }

    /// <summary>With <c>--json</c> (or <c>-q</c>) the page is written all the same and stdout is exactly what it is
    /// without <c>--report</c>.</summary>
    [Theory]
    [InlineData("--json")]
    [InlineData("-q")]
    public void ReportLeavesStdoutAsItIs(string flag)
    {
        var image = ForgeFixtures.Images("kernel-snapshots");
        string html = Path.Combine(ForgeFixtures.TempDir, $"report-{Guid.NewGuid():N}.html");
        try
        {
            var (o1, e1) = (new StringWriter(), new StringWriter());
            Assert.Equal(0, BtrfsRefcheck.Cli.Program.Run(["check", flag, "--report", html, .. image], o1, e1));
            var (o2, e2) = (new StringWriter(), new StringWriter());
            Assert.Equal(0, BtrfsRefcheck.Cli.Program.Run(["check", flag, .. image], o2, e2));
            string Norm(string s) => Regex.Replace(s, @"(""ms"": *|phase '[^']+': )[0-9.]+", "$1<t>");
            Assert.Equal(Norm(o2.ToString()), Norm(o1.ToString()));
            Assert.Equal("", e1.ToString());
            string page = File.ReadAllText(html);
            Assert.Contains("<h1 id=\"verdict\">verdict: clean (no errors found)</h1>", page);
            // kernel-snapshots was made by mkfs 6.2: its two stale free-space keys are warnings (1102), nothing else
            Assert.Contains("<section id=\"findings\"><h2>Findings</h2>", page);
            Assert.DoesNotContain("class=\"error\"", page);
            Assert.Equal(["1102"], Regex.Matches(page, "<section class=\"code\" id=\"code-(\\d+)\"").Select(m => m.Groups[1].Value).ToArray());
            Assert.DoesNotContain("class=\"cell hit\"", page);
            if (flag == "--json")
            {
                // the subvolume pass's count of trees by how their names were decided, as the JSON gives it
                var summary = JsonDocument.Parse(o2.ToString()).RootElement.GetProperty("summary");
                long fast = summary.GetProperty("subvolume_trees_fast").GetInt64(), joined = summary.GetProperty("subvolume_trees_joined").GetInt64();
                Assert.True(fast > 0);
                Assert.Contains($"<tr><th>subvolume trees: names verified by fingerprint, by the exact join</th><td class=\"n\">{fast}, {joined}</td></tr>", page);
            }
            AssertSelfContained(page);
        }
        finally { File.Delete(html); }
    }

    /// <summary>A volume that cannot be read (exit 3) leaves no empty page behind.</summary>
    [Fact]
    public void NoPageWhenNothingCouldBeChecked()
    {
        string notBtrfs = Path.Combine(ForgeFixtures.TempDir, $"zeros-{Guid.NewGuid():N}.img");
        string html = Path.ChangeExtension(notBtrfs, ".html");
        File.WriteAllBytes(notBtrfs, new byte[1 << 20]);
        try
        {
            var (o, e) = (new StringWriter(), new StringWriter());
            Assert.Equal(BtrfsRefcheck.Cli.ExitCodes.CannotCheck, BtrfsRefcheck.Cli.Program.Run(["check", "--report", html, notBtrfs], o, e));
            Assert.False(File.Exists(html), "an empty report was left behind");
        }
        finally { File.Delete(notBtrfs); File.Delete(html); }
    }

    [Fact]
    public void UnwritableReportPathIsAUsageError()
    {
        var (o, e) = (new StringWriter(), new StringWriter());
        int rc = BtrfsRefcheck.Cli.Program.Run(["check", "--report", "/nonexistent-dir/x.html", .. ForgeFixtures.Images("kernel-snapshots")], o, e);
        Assert.Equal(BtrfsRefcheck.Cli.ExitCodes.Usage, rc);
        Assert.StartsWith("btrfs-refcheck: --report /nonexistent-dir/x.html: ", e.ToString());
        Assert.Equal("", o.ToString());
    }
}
