using System.Text.Json;
using System.Text.RegularExpressions;
using BtrfsRefcheck.Checks;
using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Forge;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Tests.Forge;
using BtrfsRefcheck.Tests.Oracle;
using BtrfsRefcheck.Tests.Sources;
using BtrfsRefcheck.Volume;
using Xunit.Abstractions;
using ImageForge = BtrfsRefcheck.Forge.Forge;
using CliProgram = BtrfsRefcheck.Cli.Program;

namespace BtrfsRefcheck.Tests.ChecksTests;

/// <summary>"Likely cause": the known-bugs table (Checks/KnownBugs/known-bugs.json) matched against findings and judged
/// against the superblock's features, in <c>check</c>'s text and JSON.</summary>
public class LikelyCauseTests(ITestOutputHelper output)
{
    private JsonElement CheckJson(IReadOnlyList<string> paths, int wantExit)
    {
        var (o, e) = (new StringWriter(), new StringWriter());
        int exit = CliProgram.Run(["check", "--json", .. paths], o, e);
        Assert.True(exit == wantExit, $"exit {exit}: {e}");
        return JsonDocument.Parse(o.ToString()).RootElement.Clone();
    }

    private string CheckText(IReadOnlyList<string> paths)
    {
        var (o, e) = (new StringWriter(), new StringWriter());
        CliProgram.Run(["check", .. paths], o, e);
        output.WriteLine(o.ToString());
        return o.ToString();
    }

    private static JsonElement Cause(JsonElement check, string id) =>
        check.GetProperty("likely_causes").EnumerateArray().Single(c => c.GetProperty("id").GetString() == id);

    /// <summary>The seed signature on the kernel-written snapshots image names the 4.2/4.3 regression with its fix,
    /// and the 6.10 comparator bug; its FREE_SPACE_TREE and COMPRESS_ZSTD need newer kernels but can be added to an old
    /// filesystem, so the regression is "unlikely", not ruled out. btrfs check 6.19 fails the same image.</summary>
    [Fact]
    public void SeedSignatureNamesTheDelayedRefRegression()
    {
        using var img = ImageForge.CopyAll(ForgeFixtures.Images("kernel-snapshots"), ForgeFixtures.TempDir);
        var defect = Defects.Get("duplicate-tree-block-ref").Apply(img);
        var j = CheckJson(img.Paths, 1);
        var regression = Cause(j, "delayed-ref-merge-4.2");
        Assert.Equal("2c3cf7d5f610", regression.GetProperty("fix_commit").GetString());
        Assert.Equal("Btrfs: fix regression when running delayed references", regression.GetProperty("fix_title").GetString());
        Assert.Equal(defect.Bytenr, regression.GetProperty("example_bytenr").GetUInt64());
        Assert.Equal("unlikely", regression.GetProperty("verdict").GetString());
        Assert.Contains("COMPRESS_ZSTD", regression.GetProperty("why").GetString());
        var cmp = Cause(j, "delayed-ref-comparator-6.10");
        Assert.Equal("7d493a5ecc26", cmp.GetProperty("fix_commit").GetString());
        Assert.Contains("6.11.10", cmp.GetProperty("fixed_in").GetString());
        Assert.Equal(2, j.GetProperty("likely_causes").GetArrayLength());
        Assert.Contains(j.GetProperty("kernel_bounds").EnumerateArray(), b => b.GetProperty("feature").GetString() == "FREE_SPACE_TREE");

        string text = CheckText(img.Paths);
        Assert.Contains("likely cause", text);
        Assert.Contains("2c3cf7d5f610 \"Btrfs: fix regression when running delayed references\"", text);
        Assert.True(text.IndexOf("likely cause", StringComparison.Ordinal) < text.IndexOf("summary:", StringComparison.Ordinal));
        if (Progs.V619.Available) Assert.NotEqual(0, Progs.V619.CheckReadonly(img.Path).ExitCode);
    }

    /// <summary>A zoned filesystem exists only from mkfs and needs kernel 5.12: the 4.2/4.3 regression is ruled out.</summary>
    [Fact]
    public void ZonedFeatureRulesOutThe42Regression()
    {
        using var img = ImageForge.CopyAll(SourceFixtures.Images("mkfs619-zoned"), ForgeFixtures.TempDir);
        Defects.Get("duplicate-tree-block-ref").Apply(img);
        var j = CheckJson(img.Paths, 1);
        var regression = Cause(j, "delayed-ref-merge-4.2");
        Assert.Equal("ruled out", regression.GetProperty("verdict").GetString());
        Assert.Contains("ZONED", regression.GetProperty("why").GetString());
        Assert.NotEqual("ruled out", Cause(j, "delayed-ref-comparator-6.10").GetProperty("verdict").GetString()); // 6.10 is newer than 5.12
        Assert.Contains("ruled out", CheckText(img.Paths));
    }

    /// <summary>Other forged signatures on the kernel-written snapshots image name their bug: a block group's used
    /// above its extents (the 6.2 block group item bug) and overlapping extent items (the 5.12 double allocation); no
    /// feature of that image is newer than those kernels, so each stays a candidate. btrfs check 6.19 fails each image.</summary>
    [Theory]
    [InlineData("block-group-used-mismatch", "block-group-used-6.2", "675dfe1223a6")]
    [InlineData("extent-overlap", "space-cache-double-alloc-5.12", "ced8ecf026fd")]
    public void ForgedSignaturesNameTheirBug(string defectName, string bug, string fix)
    {
        using var img = ImageForge.CopyAll(ForgeFixtures.Images("kernel-snapshots"), ForgeFixtures.TempDir);
        Defects.Get(defectName).Apply(img);
        var j = CheckJson(img.Paths, 1);
        var cause = Cause(j, bug);
        Assert.Equal(fix, cause.GetProperty("fix_commit").GetString());
        Assert.Equal("candidate", cause.GetProperty("verdict").GetString());
        Assert.Single(j.GetProperty("likely_causes").EnumerateArray());
        if (Progs.V619.Available) Assert.NotEqual(0, Progs.V619.CheckReadonly(img.Path).ExitCode);
    }

    /// <summary>Clean images name nothing: no section in the text, an empty array in JSON.</summary>
    [Fact]
    public void CleanImageNamesNothing()
    {
        var paths = ForgeFixtures.Images("kernel-snapshots");
        var j = CheckJson(paths, 0);
        Assert.Equal(0, j.GetProperty("likely_causes").GetArrayLength());
        Assert.DoesNotContain("likely cause", CheckText(paths));
    }

    /// <summary>Each entry's conditions decide: 309 in a log tree names the 5.18 log bug and not the 5.2 one unless the
    /// block is older than its pointer; 702 names the 6.2 bug only when the item's used is above the extents' sum.</summary>
    [Fact]
    public void SignaturesAndTheirConditions()
    {
        using var vol = BtrfsVolume.Open(ForgeFixtures.Images("kernel-snapshots"));
        Finding F(FindingCode code, ulong? tree, string expected, string found) => new(code, Severity.Error, "x", Bytenr: 4096, Tree: tree, Expected: expected, Found: found);
        List<string> Ids(params Finding[] fs) => KnownBugs.Match(vol.Super, fs).Causes.Select(c => c.Id).ToList();

        Assert.Equal(["log-rename-transid-5.18"], Ids(F(FindingCode.TreeBlockGenerationMismatch, ObjectIds.TreeLog, "20", "21")));
        Assert.Equal(["unwritten-extent-buffers-5.2", "log-rename-transid-5.18"], Ids(F(FindingCode.TreeBlockGenerationMismatch, ObjectIds.TreeLog, "21", "20")));
        Assert.Equal(["unwritten-extent-buffers-5.2"], Ids(F(FindingCode.TreeBlockGenerationMismatch, ObjectIds.FsTree, "21", "20")));
        Assert.Empty(Ids(F(FindingCode.TreeBlockGenerationMismatch, ObjectIds.FsTree, "20", "21")));
        Assert.Equal(["block-group-used-6.2"], Ids(F(FindingCode.BlockGroupUsedMismatch, ObjectIds.ExtentTree, "0", "32768")));
        Assert.Empty(Ids(F(FindingCode.BlockGroupUsedMismatch, ObjectIds.ExtentTree, "32768", "0")));
        Assert.Equal(["space-cache-double-alloc-5.12"], Ids(F(FindingCode.ExtentOverlap, ObjectIds.ExtentTree, "start >= 1", "0")));
        Assert.Equal(["inode-cache-mount-option"], Ids(F(FindingCode.DeprecatedInodeCache, ObjectIds.FsTree, "", "")));
        Assert.Empty(Ids(F(FindingCode.TreeBlockChecksumMismatch, ObjectIds.FsTree, "", "")));
        // kernel-snapshots' newest feature is COMPRESS_ZSTD (4.14): a 5.2 bug stays a candidate, the 4.2 one does not
        var c = KnownBugs.Match(vol.Super, [F(FindingCode.TreeBlockGenerationMismatch, ObjectIds.FsTree, "21", "20")]).Causes.Single();
        Assert.Equal("candidate", c.Verdict);
        Assert.Equal("unlikely", KnownBugs.Match(vol.Super, [F(FindingCode.DuplicateTreeBlockRef, ObjectIds.ExtentTree, "1", "2")]).Causes[0].Verdict);
    }

    /// <summary>The data file holds up: every bug names its codes (real finding codes), a fix commit (hex, at least 12
    /// digits), versions that parse, and at least one source; every feature names a bit this version knows.</summary>
    [Fact]
    public void TheKnownBugsTableIsComplete()
    {
        var root = KnownBugs.Root;
        var bugs = root.GetProperty("bugs").EnumerateArray().ToList();
        Assert.True(bugs.Count >= 6);
        var ids = new HashSet<string>();
        foreach (var b in bugs)
        {
            Assert.True(ids.Add(b.GetProperty("id").GetString()!));
            Assert.All(b.GetProperty("codes").EnumerateArray(), c => Assert.True(Enum.IsDefined((FindingCode)c.GetInt32())));
            Assert.Matches(new Regex("^[0-9a-f]{12,40}$"), b.GetProperty("fix_commit").GetString());
            KnownBugs.Version(b.GetProperty("last_affected").GetString()!);
            var sources = b.GetProperty("sources").EnumerateArray().Select(s => s.GetString()!).ToList();
            Assert.Contains(sources, s => s.StartsWith("https://", StringComparison.Ordinal));
            Assert.False(string.IsNullOrWhiteSpace(b.GetProperty("note").GetString()));
        }
        foreach (var f in root.GetProperty("features").EnumerateArray())
        {
            KnownBugs.Version(f.GetProperty("min_kernel").GetString()!);
            Assert.StartsWith("https://", f.GetProperty("source").GetString());
            if (f.TryGetProperty("incompat", out var i)) Assert.Equal(i.GetUInt64(), i.GetUInt64() & Features.KnownIncompat);
            if (f.TryGetProperty("compat_ro", out var c)) Assert.Equal(c.GetUInt64(), c.GetUInt64() & Features.KnownCompatRo);
        }
    }
}
