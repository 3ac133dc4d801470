using BtrfsRefcheck.Checks;
using BtrfsRefcheck.DelayedRefs;
using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Forge;
using BtrfsRefcheck.Tests.Forge;
using BtrfsRefcheck.Tests.Oracle;
using BtrfsRefcheck.Volume;
using Xunit.Abstractions;
using ImageForge = BtrfsRefcheck.Forge.Forge;

namespace BtrfsRefcheck.Tests.DelayedRefs;

/// <summary>Seeded random scenarios (a fixed set of seeds in CI; the seed is in every failure message):
/// the fixed modes never fail and end where an oracle computed here from the script says; the regressed modes do fail,
/// and every failing scenario, shrunk by deleting steps, is forged with on-bug dup and count into the committed
/// kernel image and found by the checker with exactly the findings its state implies.</summary>
public class ReplayPropertyTests(ITestOutputHelper output)
{
    public const int FirstSeed = 1600, Seeds = 1000;
    private static readonly ulong[] Roots = [5, 256, 257, 258, 259, 2];

    // ------------------------------------------------------------------ generator

    private sealed class BlockState
    {
        public HashSet<ulong> Intended { get; } = [];
        public bool Fresh { get; set; } = true;
        public bool AllocatedNoRun { get; set; }
    }

    /// <summary>A well-formed scenario: never ADD a tree ref the block already has, never DROP one it lacks, alloc
    /// only a block never used, alloc! only a block allocated and dropped since the last run (caveat 1 of the notes),
    /// every holder released before the final <c>run all</c>.</summary>
    public static List<string> Generate(int seed)
    {
        var rng = new Random(seed);
        var lines = new List<string>();
        int nBlocks = rng.Next(1, 3);
        var names = Enumerable.Range(0, nBlocks).Select(i => ((char)('A' + i)).ToString()).ToList();
        var state = names.ToDictionary(n => n, _ => new BlockState());
        foreach (var n in names)
            if (rng.Next(2) == 0)
            {
                var roots = Roots.OrderBy(_ => rng.Next()).Take(rng.Next(1, 5)).ToList();
                lines.Add($"extent {n} level=0 refs={string.Join(",", roots.Select(r => $"root:{r}"))}");
                state[n].Fresh = false;
                foreach (var r in roots) state[n].Intended.Add(r);
            }
        var held = new List<string>();
        int holderId = 1;
        int steps = rng.Next(4, 17);
        for (int s = 0, tries = 0; s < steps && tries < 200; tries++)
        {
            string n = names[rng.Next(nBlocks)];
            var b = state[n];
            ulong root = Roots[rng.Next(Roots.Length)];
            string? line = rng.Next(15) switch
            {
                0 when b.Fresh => $"alloc {n} root={root} level=0",
                1 when b.AllocatedNoRun && b.Intended.Count == 0 => $"alloc! {n} root={root} level=0",
                2 or 3 or 4 or 5 when b.Intended.Count > 0 && !b.Intended.Contains(root) => $"inc {n} root={root} level=0",
                6 or 7 or 8 or 9 when b.Intended.Count > 0 => $"free {n} root={b.Intended.ElementAt(rng.Next(b.Intended.Count))} level=0",
                10 => $"hold H{holderId++}",
                11 when held.Count > 0 => $"release {held[rng.Next(held.Count)]}",
                12 => "bump",
                13 => $"run {rng.Next(1, 3)}",
                _ => null,
            };
            if (line == null) continue;
            if (!Apply(line, state, held)) throw new InvalidOperationException($"generator made an ill-formed step: {line}");
            lines.Add(line);
            s++;
        }
        foreach (var h in held.ToList()) { lines.Add($"release {h}"); held.Remove(h); }
        lines.Add("run all");
        return lines;
    }

    /// <summary>Applies one line to the abstract state; false if its precondition does not hold.</summary>
    private static bool Apply(string line, Dictionary<string, BlockState> state, List<string> held)
    {
        var w = line.Split(' ');
        ulong Root() => ulong.Parse(w[2]["root=".Length..]);
        switch (w[0])
        {
            case "extent": return true;
            case "alloc":
            {
                var b = state[w[1]];
                if (!b.Fresh) return false;
                b.Fresh = false; b.AllocatedNoRun = true; b.Intended.Add(Root());
                return true;
            }
            case "alloc!":
            {
                var b = state[w[1]];
                if (!b.AllocatedNoRun || b.Intended.Count != 0) return false;
                b.Intended.Add(Root());
                return true;
            }
            case "inc": { var b = state[w[1]]; return b.Intended.Count > 0 && b.Intended.Add(Root()); }
            case "free": return state[w[1]].Intended.Remove(Root());
            case "hold": if (held.Contains(w[1])) return false; held.Add(w[1]); return true;
            case "release": return held.Remove(w[1]);
            case "run":
                foreach (var b in state.Values) b.AllocatedNoRun = false;
                return true;
            default: return true; // bump
        }
    }

    /// <summary>Well-formed, and the intended back-refs per block at the end (the independent oracle).</summary>
    private static Dictionary<string, HashSet<ulong>>? Check(List<string> lines)
    {
        var state = new Dictionary<string, BlockState>();
        var held = new List<string>();
        foreach (var line in lines)
        {
            var w = line.Split(' ');
            if (w.Length > 1 && w[0] is "extent" or "alloc" or "alloc!" or "inc" or "free" && !state.ContainsKey(w[1])) state[w[1]] = new BlockState();
            if (w[0] == "extent")
            {
                var b = state[w[1]];
                if (!b.Fresh) return null;
                b.Fresh = false;
                foreach (var r in w[3]["refs=".Length..].Split(',')) b.Intended.Add(ulong.Parse(r["root:".Length..]));
            }
            else if (!Apply(line, state, held)) return null;
        }
        if (held.Count > 0 || lines.Count == 0 || lines[^1] != "run all") return null;
        return state.ToDictionary(kv => kv.Key, kv => kv.Value.Intended);
    }

    private static Replay Run(List<string> lines, Mode mode, OnBug onBug = OnBug.Halt) =>
        Replay.Run(Script.Parse(string.Join("\n", lines)), mode, onBug);

    /// <summary>Deletes steps (one at a time, then two at a time: a hold with its release) while the scenario stays
    /// well-formed and still fails in <paramref name="mode"/>; the final <c>run all</c> stays.</summary>
    public static List<string> Shrink(List<string> lines, Mode mode)
    {
        bool Fails(List<string> c)
        {
            if (Check(c) == null) return false;
            try { return Run(c, mode).FirstBug != null; }
            catch (ScriptException) { return false; }
        }
        bool changed = true;
        while (changed)
        {
            changed = false;
            for (int i = 0; i < lines.Count - 1 && !changed; i++)
            {
                var shorter = lines.Where((_, k) => k != i).ToList();
                if (Fails(shorter)) { lines = shorter; changed = true; }
            }
            for (int i = 0; i < lines.Count - 1 && !changed; i++)
                for (int j = i + 1; j < lines.Count - 1 && !changed; j++)
                {
                    var shorter = lines.Where((_, k) => k != i && k != j).ToList();
                    if (Fails(shorter)) { lines = shorter; changed = true; }
                }
        }
        return lines;
    }

    private static string Text(List<string> lines) => string.Join(" | ", lines);

    // ------------------------------------------------------------------ properties

    [Fact]
    public void FixedModesNeverFailAndEndAtTheOracle()
    {
        int checkedRuns = 0;
        for (int seed = FirstSeed; seed < FirstSeed + Seeds; seed++)
        {
            var lines = Generate(seed);
            var oracle = Check(lines) ?? throw new InvalidOperationException($"seed {seed}: generator produced an ill-formed scenario");
            foreach (var mode in new[] { Mode.Fixed43, Mode.Current })
            {
                var r = Run(lines, mode);
                string where = $"seed {seed}, {mode.Name()}: {Text(lines)}";
                Assert.True(r.FirstBug == null, $"{where}\n  {r.FirstBug?.Text}: {r.FirstBug?.Reason}");
                Assert.True(r.InvariantViolations.Count == 0, $"{where}\n  {string.Join("\n  ", r.InvariantViolations)}");
                Assert.True(r.CheckFinal().Count == 0, $"{where}\n  {string.Join("\n  ", r.CheckFinal())}");
                Assert.Empty(r.Heads);
                foreach (var (b, want) in oracle)
                {
                    var have = r.Extents.TryGetValue(b, out var e) ? e.Inline.Select(k => k.Offset).Order().ToList() : [];
                    Assert.True(have.SequenceEqual(want.Order()) && (e?.Refs ?? 0) == (ulong)want.Count,
                        $"{where}\n  {b}: have [{string.Join(",", have)}] refs {e?.Refs ?? 0}, oracle [{string.Join(",", want.Order())}]");
                }
                checkedRuns++;
            }
        }
        output.WriteLine($"{Seeds} scenarios (seeds {FirstSeed}..{FirstSeed + Seeds - 1}), {checkedRuns} fixed-mode runs: no failure point, every invariant held, final state = oracle");
    }

    /// <summary>The regressed modes' counterexamples: found, shrunk, and (every distinct shrunk one) forged with dup
    /// and count and found by the checker with exactly the planned codes at the planned bytenr.</summary>
    [Fact]
    public void RegressedModesYieldShrunkCounterexamplesTheCheckerFinds()
    {
        var distinct = new Dictionary<string, (Mode Mode, List<string> Lines, int Seed)>();
        foreach (var mode in new[] { Mode.Regressed42, Mode.CmpBug610 })
        {
            int found = 0, minSize = int.MaxValue, maxSize = 0, originalSum = 0, shrunkSum = 0;
            var kinds = new Dictionary<string, int>();
            for (int seed = FirstSeed; seed < FirstSeed + Seeds; seed++)
            {
                var lines = Generate(seed);
                var r = Run(lines, mode);
                string where = $"seed {seed}, {mode.Name()}: {Text(lines)}";
                Assert.True(r.InvariantViolations.Count == 0, $"{where}\n  {string.Join("\n  ", r.InvariantViolations)}");
                if (r.FirstBug == null)
                {
                    Assert.True(r.CheckFinal().Count == 0, $"{where}: no failure point but a wrong end state\n  {string.Join("\n  ", r.CheckFinal())}");
                    continue;
                }
                found++;
                kinds[r.FirstBug.Text] = kinds.GetValueOrDefault(r.FirstBug.Text) + 1;
                var shrunk = Shrink(lines, mode);
                Assert.NotNull(Run(shrunk, mode).FirstBug);
                originalSum += lines.Count;
                shrunkSum += shrunk.Count;
                minSize = Math.Min(minSize, shrunk.Count);
                maxSize = Math.Max(maxSize, shrunk.Count);
                distinct.TryAdd($"{mode.Name()}: {Text(shrunk)}", (mode, shrunk, seed));
            }
            Assert.True(found > 0, $"{mode.Name()}: no counterexample in {Seeds} seeds");
            output.WriteLine($"{mode.Name()}: {found}/{Seeds} scenarios fail ({string.Join(", ", kinds.Select(k => $"{k.Key} x{k.Value}"))}); " +
                             $"shrunk from {originalSum / (double)found:F1} to {shrunkSum / (double)found:F1} lines on average (min {minSize}, max {maxSize})");
        }
        output.WriteLine($"{distinct.Count} distinct shrunk counterexamples:");
        foreach (var k in distinct.Keys) output.WriteLine($"  {k}");

        if (!ForgeFixtures.Available("kernel-snapshots")) return; // ForgeFixturesTests fails instead
        // Every counterexample's end state, with dup and with count, is planned onto the real image; the plans are
        // exact (dup: 500 alone, count: 503 alone, at the planned bytenr). Identical plans write identical bytes, so
        // each distinct plan is forged once and checked: the checker's findings must be the plan's.
        var candidates = CandidatesOf(ForgeFixtures.Images("kernel-snapshots"));
        var plans = new Dictionary<string, (Replay R, string Where, ForgePlan Plan)>();
        int planned = 0;
        foreach (var (key, (mode, lines, seed)) in distinct)
            foreach (var onBug in new[] { OnBug.Dup, OnBug.Count })
            {
                var r = Run(lines, mode, onBug);
                string where = $"seed {seed}, {key}, on-bug {onBug.Name()}";
                ForgePlan plan;
                try { plan = ForgePlanner.Plan(r, ForgePlanner.PickBlock(r), candidates); }
                catch (ForgeStateException e) { throw new Xunit.Sdk.XunitException($"{where}: not forgeable: {e.Message}"); }
                Assert.True(plan.ExpectedCodes.SequenceEqual([onBug == OnBug.Dup ? 500 : 503]), $"{where}: {plan.Description} => {string.Join(" ", plan.ExpectedCodes)}");
                plans.TryAdd($"{plan.Bytenr} refs={plan.NewRefs} [{string.Join(",", plan.NewRoots)}]", (r, where, plan));
                planned++;
            }
        foreach (var (_, (r, where, plan)) in plans)
        {
            using var img = ImageForge.CopyAll(ForgeFixtures.Images("kernel-snapshots"), ForgeFixtures.TempDir);
            var defect = img.ReplayEndState(r);
            Assert.Equal(plan.Description, defect.Description);
            var bad = CheckImage(img.Paths).Where(f => f.IsProblem()).Select(f => $"{(int)f.Code}@{f.Bytenr}").Order().ToList();
            var want = defect.AllExpected.Select(e => $"{(int)e.Code}@{e.Bytenr}").Order().ToList();
            Assert.True(want.SequenceEqual(bad), $"{where}: {defect.Description}\n  expected {string.Join(" ", want)}\n  found {string.Join(" ", bad)}");
            output.WriteLine($"  forged: {defect.Description} => found {string.Join(" ", bad)}");
        }
        output.WriteLine($"{planned} end states (dup and count) planned onto kernel-snapshots; {plans.Count} distinct, each forged and found exactly");
    }

    internal static List<RealExtent> CandidatesOf(IReadOnlyList<string> paths)
    {
        using var vol = BtrfsVolume.Open(paths, null, new FindingBag());
        return EndStateWriter.Scan(vol).Values.Select(c => c.Real).ToList();
    }

    internal static List<Finding> CheckImage(IReadOnlyList<string> paths)
    {
        var findings = new FindingBag();
        using var vol = BtrfsVolume.Open(paths, null, findings);
        Checker.Run(vol, findings);
        return findings.Items.ToList();
    }
}
