using System.Text.Json;
using System.Text.RegularExpressions;
using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Forge;
using BtrfsRefcheck.Tests.Forge;
using BtrfsRefcheck.Tests.Oracle;
using Xunit.Abstractions;
using ImageForge = BtrfsRefcheck.Forge.Forge;

namespace BtrfsRefcheck.Tests.Golden;

/// <summary>The <c>check</c> text output, pinned line by line on three images: the clean kernel-snapshots image, the
/// seed signature (the forge's duplicate-tree-block-ref on a copy of it: the forge picks the same block every time)
/// and a damaged copy (tree-block-checksum-mismatch). The golden files are <c>tests/BtrfsRefcheck.Tests/Golden/*.txt</c>.
/// Only what must vary is normalised: the image paths become <c>&lt;image&gt;</c> and phase timings <c>&lt;t&gt; ms</c>.
/// <para>When the output changes on purpose (new phase lines, a reworded message), regenerate the files with
/// <c>UPDATE_GOLDEN=1 dotnet test tests/BtrfsRefcheck.Tests -c Release --filter FullyQualifiedName~GoldenCheckTests</c>
/// and review the diff before committing it. With UPDATE_GOLDEN=1 the tests rewrite the files and pass.</para></summary>
public class GoldenCheckTests(ITestOutputHelper output)
{
    private const string Snapshots = "kernel-snapshots";

    public static string GoldenDir => Path.Combine(KernelFixtures.RepoRoot, "tests", "BtrfsRefcheck.Tests", "Golden");

    private static bool Update => Environment.GetEnvironmentVariable("UPDATE_GOLDEN") is "1" or "true";

    [Fact]
    public void CleanImage()
    {
        var paths = ForgeFixtures.Images(Snapshots);
        AssertGolden("check-clean.txt", paths, wantExit: 0);
    }

    [Fact]
    public void SeedSignature()
    {
        using var img = ImageForge.CopyAll(ForgeFixtures.Images(Snapshots), ForgeFixtures.TempDir);
        var defect = Defects.Get("duplicate-tree-block-ref").Apply(img);
        output.WriteLine(defect.Description);
        AssertGolden("check-seed-signature.txt", img.Paths, wantExit: 1);
    }

    [Fact]
    public void DamagedImage()
    {
        using var img = ImageForge.CopyAll(ForgeFixtures.Images(Snapshots), ForgeFixtures.TempDir);
        var defect = Defects.Get("tree-block-checksum-mismatch").Apply(img);
        output.WriteLine(defect.Description);
        AssertGolden("check-checksum-mismatch.txt", img.Paths, wantExit: 1);
    }

    /// <summary>The JSON totals agree with <c>counts_by_code</c>: <c>errors</c> is the sum of the counts of the codes
    /// reported as errors, <c>warnings</c> of those reported as warnings (each code here has one severity).</summary>
    [Fact]
    public void JsonTotalsEqualTheCountsByCode()
    {
        using var img = ImageForge.CopyAll(ForgeFixtures.Images(Snapshots), ForgeFixtures.TempDir);
        Defects.Get("tree-block-checksum-mismatch").Apply(img);
        var (o, e) = (new StringWriter(), new StringWriter());
        Assert.Equal(1, BtrfsRefcheck.Cli.Program.Run(["check", "--json", .. img.Paths], o, e));
        using var doc = JsonDocument.Parse(o.ToString());
        var root = doc.RootElement;
        var severityOf = root.GetProperty("findings").EnumerateArray()
            .GroupBy(f => f.GetProperty("code").GetInt32())
            .ToDictionary(g => g.Key, g => Assert.Single(g.Select(f => f.GetProperty("severity").GetString()).Distinct()));
        var counts = root.GetProperty("counts_by_code").EnumerateObject().ToDictionary(p => int.Parse(p.Name), p => p.Value.GetInt64());
        Assert.Equal(counts.Keys.Order(), severityOf.Keys.Order());
        long Sum(string severity) => counts.Where(kv => severityOf[kv.Key] == severity).Sum(kv => kv.Value);
        var summary = root.GetProperty("summary");
        Assert.True(Sum("error") > 0 && Sum("warning") > 0, "the damaged image has errors and warnings");
        Assert.Equal(Sum("error"), summary.GetProperty("errors").GetInt64());
        Assert.Equal(Sum("warning"), summary.GetProperty("warnings").GetInt64());
    }

    private void AssertGolden(string file, IReadOnlyList<string> paths, int wantExit)
    {
        var (o, e) = (new StringWriter(), new StringWriter());
        int exit = BtrfsRefcheck.Cli.Program.Run(["check", .. paths], o, e);
        string actual = Normalise(o.ToString(), paths);
        output.WriteLine(actual);
        Assert.True(exit == wantExit, $"exit {exit}, expected {wantExit}\n{o}\n{e}");
        Assert.Equal("", e.ToString());

        string golden = Path.Combine(GoldenDir, file);
        if (Update)
        {
            File.WriteAllText(golden, actual);
            return;
        }
        Assert.True(File.Exists(golden), $"{golden} is missing: run with UPDATE_GOLDEN=1 to create it");
        string expected = File.ReadAllText(golden).ReplaceLineEndings("\n");
        if (expected == actual) return;
        // Report the first differing line, not two whole outputs.
        var (want, have) = (expected.Split('\n'), actual.Split('\n'));
        int i = 0;
        while (i < Math.Min(want.Length, have.Length) && want[i] == have[i]) i++;
        Assert.Fail($"{file} differs at line {i + 1} (regenerate with UPDATE_GOLDEN=1 if the change is intended):\n" +
                    $"  expected: {(i < want.Length ? want[i] : "<end of file>")}\n" +
                    $"  actual:   {(i < have.Length ? have[i] : "<end of output>")}");
    }

    /// <summary>Image paths (temp copies or the expanded fixture) become <c>&lt;image&gt;</c>, the devices of a set
    /// <c>&lt;image1&gt;</c>, <c>&lt;image2&gt;</c>, ...; timings "N ms" become "&lt;t&gt; ms".</summary>
    public static string Normalise(string text, IReadOnlyList<string> paths)
    {
        text = text.ReplaceLineEndings("\n");
        for (int i = 0; i < paths.Count; i++)
            text = text.Replace(paths[i], paths.Count == 1 ? "<image>" : $"<image{i + 1}>", StringComparison.Ordinal);
        return Regex.Replace(text, @"\b\d+(\.\d+)? ms\b", "<t> ms");
    }
}
