using BtrfsRefcheck.DelayedRefs;
using BtrfsRefcheck.Tests.Oracle;

namespace BtrfsRefcheck.Tests.DelayedRefs;

/// <summary>The bundled scenarios' traces, pinned by golden files (golden/SCENARIO.MODE.ONBUG.txt, compared exactly),
/// and the outcomes issue 16 asks for, asserted on the model itself.</summary>
public class ReplayGoldenTests
{
    private static readonly string GoldenDir = Path.Combine(KernelFixtures.RepoRoot, "tests", "BtrfsRefcheck.Tests", "DelayedRefs", "golden");

    public static IEnumerable<object[]> Goldens =>
        Directory.GetFiles(GoldenDir, "*.txt").Select(Path.GetFileName).Order(StringComparer.Ordinal).Select(f => new object[] { f! });

    [Theory]
    [MemberData(nameof(Goldens))]
    public void TraceMatchesGolden(string file)
    {
        var parts = Path.GetFileNameWithoutExtension(file).Split('.');
        // SCENARIO.MODE.ONBUG with MODE holding a dot (regressed-4.2): scenario, then mode as two parts, then on-bug
        string scenario = parts[0], onBug = parts[^1], mode = string.Join('.', parts[1..^1]);
        var (o, e) = (new StringWriter(), new StringWriter());
        int exit = BtrfsRefcheck.Cli.Program.Run(["replay", scenario, "--mode", mode, "--on-bug", onBug], o, e);
        Assert.Equal("", e.ToString());
        string golden = File.ReadAllText(Path.Combine(GoldenDir, file));
        Assert.Equal(golden, o.ToString());
        Assert.Equal(golden.Contains("\nresult: no BUG\n") ? 0 : 1, exit);
    }

    [Fact]
    public void EveryBundledScenarioAndModeHasAGolden()
    {
        foreach (var s in Scenarios.All.Keys)
            foreach (var (m, _) in ModeNames.Modes)
                Assert.True(File.Exists(Path.Combine(GoldenDir, $"{s}.{m}.halt.txt")), $"{s}.{m}.halt.txt");
    }

    private static Replay Run(string scenario, Mode mode, OnBug onBug = OnBug.Halt) => Replay.Run(Script.Parse(Scenarios.All[scenario]), mode, onBug);

    [Fact]
    public void SeedBugsIn42AtTheThirdRefAndNowhereElse()
    {
        var r = Run("seed-2015", Mode.Regressed42);
        Assert.NotNull(r.FirstBug);
        Assert.Equal((BugKind.Bug, "insert_inline_extent_backref"), (r.FirstBug!.Kind, r.FirstBug.Where));
        var ev = r.Events[r.FirstBug.Event - 1];
        Assert.StartsWith("run R3 A TBR root=5 lvl=0 ADD seq=2", ev.Text);
        Assert.True(r.Halted);
        foreach (var m in new[] { Mode.Fixed43, Mode.CmpBug610, Mode.Current })
        {
            var ok = Run("seed-2015", m);
            Assert.Null(ok.FirstBug);
            Assert.Empty(ok.CheckFinal());
            Assert.Empty(ok.InvariantViolations);
        }
    }

    [Fact]
    public void HolderDelaysTheSeedBugButDoesNotPreventIt()
    {
        Assert.Equal(BugKind.Bug, Run("seed-2015-holder", Mode.Regressed42).FirstBug?.Kind);
        foreach (var m in new[] { Mode.Fixed43, Mode.CmpBug610, Mode.Current })
            Assert.Empty(Run("seed-2015-holder", m).CheckFinal());
    }

    [Fact]
    public void LyakasVariantIsLegalInEveryMode()
    {
        foreach (var (_, m) in ModeNames.Modes)
        {
            var r = Run("lyakas-2015", m);
            Assert.Null(r.FirstBug);
            Assert.Equal([new RefKey(RefType.TreeBlockRef, 257)], r.Extents["A"].Inline);
        }
    }

    [Fact]
    public void Shared2024ReachesEucleanOnlyWithTheBuggyComparator()
    {
        var r = Run("shared-2024", Mode.CmpBug610);
        Assert.Equal((BugKind.Euclean, "insert_inline_extent_backref"), (r.FirstBug!.Kind, r.FirstBug.Where));
        Assert.Contains("adding refs to an existing tree ref", r.FirstBug.Reason);
        Assert.Empty(r.InvariantViolations);
        var cur = Run("shared-2024", Mode.Current);
        Assert.Null(cur.FirstBug);
        Assert.Empty(cur.CheckFinal());
        Assert.Equal(BugKind.Bug, Run("shared-2024", Mode.Regressed42).FirstBug?.Kind); // the DROP is not the tail
        Assert.Null(Run("shared-2024", Mode.Fixed43).FirstBug);
    }

    [Fact]
    public void OnBugDupAndCountLeaveTheDocumentedStateAtTheFailurePoint()
    {
        var dup = Run("seed-2015", Mode.Regressed42, OnBug.Dup);
        Assert.Equal(2ul, dup.BugExtents!["A"].Refs);
        Assert.Equal([new RefKey(RefType.TreeBlockRef, 5), new RefKey(RefType.TreeBlockRef, 5)], dup.BugExtents["A"].Inline);
        Assert.Empty(dup.CheckFinal()); // Ref2 then removes one copy: the run ends where it should
        var count = Run("seed-2015", Mode.Regressed42, OnBug.Count);
        Assert.Equal(2ul, count.BugExtents!["A"].Refs);
        Assert.Single(count.BugExtents["A"].Inline);
        Assert.Equal(1ul, count.Extents["A"].Refs); // and after Ref2: refs 1, no back-ref left
        Assert.Empty(count.Extents["A"].Inline);
    }

    [Fact]
    public void JsonCarriesTheBugAndTheEvents()
    {
        var (o, e) = (new StringWriter(), new StringWriter());
        Assert.Equal(1, BtrfsRefcheck.Cli.Program.Run(["replay", "shared-2024", "--mode", "cmp-bug-6.10", "--json"], o, e));
        using var doc = System.Text.Json.JsonDocument.Parse(o.ToString());
        var root = doc.RootElement;
        Assert.Equal("btrfs-refcheck.replay", root.GetProperty("format").GetString());
        Assert.Equal("-EUCLEAN", root.GetProperty("bug").GetProperty("kind").GetString());
        Assert.Equal(7, root.GetProperty("bug").GetProperty("event").GetInt32());
        Assert.Equal(7, root.GetProperty("events").GetArrayLength()); // halted at #7
        Assert.Equal("R2(R3(R4*,-),R1)", root.GetProperty("events")[4].GetProperty("heads")[0].GetProperty("tree").GetString());
    }
}
