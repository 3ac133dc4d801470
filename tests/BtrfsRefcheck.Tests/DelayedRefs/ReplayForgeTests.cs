using BtrfsRefcheck.DelayedRefs;
using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Forge;
using BtrfsRefcheck.Tests.Forge;
using ImageForge = BtrfsRefcheck.Forge.Forge;

namespace BtrfsRefcheck.Tests.DelayedRefs;

/// <summary><c>replay --forge OUT --base IMG</c> on the committed kernel image: OUT gets the end state, the base is
/// untouched, and the checker reports exactly the planned findings (dup: 500; count: 503), the same as the test
/// forge's <see cref="DelayedRefsForge.ReplayEndState"/> on the same state.</summary>
public class ReplayForgeTests
{
    [Theory]
    [InlineData("seed-2015", "regressed-4.2", "dup", 500)]
    [InlineData("seed-2015", "regressed-4.2", "count", 503)]
    [InlineData("shared-2024", "cmp-bug-6.10", "dup", 500)]
    [InlineData("shared-2024", "cmp-bug-6.10", "count", 503)]
    public void ForgedEndStateIsFound(string scenario, string mode, string onBug, int code)
    {
        if (!ForgeFixtures.Available("kernel-snapshots")) return; // ForgeFixturesTests fails instead
        string baseImg = ForgeFixtures.Images("kernel-snapshots")[0];
        var before = File.GetLastWriteTimeUtc(baseImg);
        long baseLen = new FileInfo(baseImg).Length;
        string outImg = Path.Combine(ForgeFixtures.TempDir, $"replay-{scenario}-{onBug}-{Guid.NewGuid():N}.img");
        try
        {
            var (o, e) = (new StringWriter(), new StringWriter());
            Assert.Equal(1, BtrfsRefcheck.Cli.Program.Run(["replay", scenario, "--mode", mode, "--on-bug", onBug, "--forge", outImg, "--base", baseImg, "--json"], o, e));
            Assert.Equal("", e.ToString());
            using var doc = System.Text.Json.JsonDocument.Parse(o.ToString());
            ulong bytenr = doc.RootElement.GetProperty("forge").GetProperty("bytenr").GetUInt64();
            Assert.Equal(before, File.GetLastWriteTimeUtc(baseImg));
            Assert.Equal(baseLen, new FileInfo(outImg).Length);

            var bad = ReplayPropertyTests.CheckImage([outImg]).Where(f => f.IsProblem()).ToList();
            var f = Assert.Single(bad);
            Assert.Equal(((FindingCode)code, bytenr), (f.Code, f.Bytenr!.Value));
            (o, e) = (new StringWriter(), new StringWriter());
            Assert.Equal(1, BtrfsRefcheck.Cli.Program.Run([outImg, "-q"], o, e));

            // the test forge, on the same state, plans the same block and the same finding
            var replay = Replay.Run(Script.Parse(Scenarios.All[scenario]), ModeNames.ParseMode(mode)!.Value, ModeNames.ParseOnBug(onBug)!.Value);
            using var img = ImageForge.CopyAll(ForgeFixtures.Images("kernel-snapshots"), ForgeFixtures.TempDir);
            var defect = img.ReplayEndState(replay);
            Assert.Equal(((FindingCode)code, bytenr), (defect.Expected, defect.Bytenr));
            Assert.Empty(defect.AlsoExpected);
            var bad2 = ReplayPropertyTests.CheckImage(img.Paths).Where(x => x.IsProblem()).ToList();
            Assert.Equal(((FindingCode)code, bytenr), (Assert.Single(bad2).Code, bad2[0].Bytenr!.Value));
        }
        finally { if (File.Exists(outImg)) File.Delete(outImg); }
    }

    [Fact]
    public void ForgeRefusesToWriteTheBase()
    {
        if (!ForgeFixtures.Available("kernel-snapshots")) return;
        string baseImg = ForgeFixtures.Images("kernel-snapshots")[0];
        var (o, e) = (new StringWriter(), new StringWriter());
        Assert.Equal(2, BtrfsRefcheck.Cli.Program.Run(["replay", "seed-2015", "--on-bug", "dup", "--forge", baseImg, "--base", baseImg], o, e));
        Assert.Contains("OUT must not be the base image", e.ToString());
    }
}
