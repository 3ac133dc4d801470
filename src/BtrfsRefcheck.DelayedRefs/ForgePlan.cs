namespace BtrfsRefcheck.DelayedRefs;

/// <summary>A real tree block's extent item the forge may rewrite: inline TREE_BLOCK_REFs only, refs equal to their
/// number, no keyed back-refs. <paramref name="Roots"/> ascending.</summary>
public sealed record RealExtent(ulong Bytenr, ulong Refs, IReadOnlyList<ulong> Roots, int LeafFree, bool FsTreeLeaf);

/// <summary>What to write for one model block: the real block, its new refs and inline TREE_BLOCK_REF roots (kernel
/// order), how model roots map to real ones, and the findings the checker must report (code, bytenr).</summary>
public sealed record ForgePlan(string Block, ulong Bytenr, ulong NewRefs, IReadOnlyList<ulong> NewRoots, IReadOnlyDictionary<ulong, ulong> RootMap,
    IReadOnlyList<int> ExpectedCodes, string Description)
{
    /// <summary>Inline bytes the item grows by (negative: shrinks).</summary>
    public int Growth(RealExtent e) => 9 * (NewRoots.Count - e.Roots.Count);
}

/// <summary>Thrown when an end state cannot be written into the given image.</summary>
public sealed class ForgeStateException(string message) : Exception(message);

/// <summary>Maps a model end state onto a real tree block. The model's roots are names, not the image's, so the plan
/// keeps what the state *means*: the model's intended back-refs (the oracle) become the real block's own refs (root r
/// stands for model root m), and every difference between the model's item and the intended one is carried over:
/// a back-ref listed twice stays listed twice, a lost one is removed, one the intent lacks names a root that does not
/// use the block (csum tree 7, then dev tree 4), and refs moves by as much as the model's did. A block whose
/// TREE_BLOCK_REFs are exactly as many as the intended ones is preferred: then the whole item is the model's, renamed.</summary>
public static class ForgePlanner
{
    private static readonly ulong[] StaleRoots = [7, 4, 10];

    /// <summary>The block to forge: the one of the first failure point, else the first whose end state differs from
    /// the intent, else the first with an item.</summary>
    public static string PickBlock(Replay r)
    {
        if (r.FirstBug != null) return r.FirstBug.Block;
        foreach (var b in r.BlockNames)
            if (Differs(r.EndExtents.GetValueOrDefault(b), Intended(r.EndOracle, b))) return b;
        return r.BlockNames.FirstOrDefault(b => r.EndExtents.ContainsKey(b)) ?? throw new ForgeStateException("the replay leaves no extent item to write");
    }

    public static Dictionary<RefKey, int> Intended(Dictionary<string, Dictionary<RefKey, int>> oracle, string b) =>
        oracle.TryGetValue(b, out var o) ? o.Where(kv => kv.Value > 0).ToDictionary(kv => kv.Key, kv => kv.Value) : [];

    private static bool Differs(ExtentState? e, Dictionary<RefKey, int> want) =>
        e == null ? want.Count > 0 : e.Refs != (ulong)want.Values.Sum() || e.Inline.Count != want.Values.Sum()
            || e.Inline.GroupBy(k => k).Any(g => want.GetValueOrDefault(g.Key) != g.Count());

    public static ForgePlan Plan(Replay r, string block, IEnumerable<RealExtent> candidates)
    {
        var model = r.EndExtents.GetValueOrDefault(block)
                    ?? throw new ForgeStateException($"block {block} has no extent item in the end state (a missing item is not forged)");
        var want = Intended(r.EndOracle, block);
        if (want.Count == 0) throw new ForgeStateException($"block {block} has an item but no intended back-ref (a leaked item is not forged)");
        if (want.Keys.Concat(model.Inline).Any(k => k.Type != RefType.TreeBlockRef))
            throw new ForgeStateException($"block {block} has SHARED_BLOCK_REFs: only TREE_BLOCK_REF states are forged");
        if (want.Values.Any(v => v != 1)) throw new ForgeStateException($"block {block}: an intended tree ref counted twice");

        var have = model.Inline.GroupBy(k => k.Offset).ToDictionary(g => g.Key, g => g.Count());
        var intendedRoots = want.Keys.Select(k => k.Offset).OrderBy(x => x).ToList();
        var involved = intendedRoots.Where(m => have.GetValueOrDefault(m) != 1).ToList();
        var stale = have.Keys.Where(m => !want.ContainsKey(new RefKey(RefType.TreeBlockRef, m))).OrderBy(x => x).ToList();
        if (stale.Count > StaleRoots.Length) throw new ForgeStateException($"block {block}: more stale roots than the forge names");
        long refsDelta = (long)model.Refs - intendedRoots.Count;

        var list = candidates.ToList();
        RealExtent? pick = null;
        foreach (bool exact in new[] { true, false })
        {
            pick = list.Where(e => exact ? e.Roots.Count == intendedRoots.Count : e.Roots.Count >= Math.Max(1, involved.Count))
                       .Where(e => !e.Roots.Any(StaleRoots.Take(stale.Count).Contains))
                       .Where(e => (long)e.Refs + refsDelta >= 1)
                       .OrderBy(e => e.FsTreeLeaf ? 0 : 1).ThenBy(e => e.Bytenr)
                       .FirstOrDefault(e => e.LeafFree >= Math.Max(0, 9 * (Size(e, have, intendedRoots, involved, stale) - e.Roots.Count)));
            if (pick != null) break;
        }
        if (pick == null) throw new ForgeStateException($"no tree block in the image fits block {block}'s end state");

        var map = MapRoots(pick, intendedRoots, involved);
        var counts = new Dictionary<ulong, int>();
        foreach (ulong real in pick.Roots) counts[real] = 1; // real refs the model does not name stay as they are
        foreach (var (m, real) in map) counts[real] = have.GetValueOrDefault(m);
        for (int i = 0; i < stale.Count; i++) { map[stale[i]] = StaleRoots[i]; counts[StaleRoots[i]] = have[stale[i]]; }
        var roots = counts.Where(kv => kv.Value > 0).OrderByDescending(kv => kv.Key).SelectMany(kv => Enumerable.Repeat(kv.Key, kv.Value)).ToList();
        ulong newRefs = (ulong)((long)pick.Refs + refsDelta);

        var codes = new SortedSet<int>();
        if (counts.Values.Any(c => c >= 2)) codes.Add(500);
        if (stale.Count > 0) codes.Add(501);
        if (pick.Roots.Any(x => counts[x] == 0)) codes.Add(502);
        if (newRefs != (ulong)roots.Count) codes.Add(503);
        string mapText = string.Join(", ", map.OrderBy(kv => kv.Key).Select(kv => $"{kv.Key}->{kv.Value}"));
        string desc = $"block {block} -> tree block {pick.Bytenr}: refs {pick.Refs} -> {newRefs}, TREE_BLOCK_REF [{string.Join(", ", pick.Roots.OrderDescending())}] -> [{string.Join(", ", roots)}] (roots {mapText})";
        return new ForgePlan(block, pick.Bytenr, newRefs, roots, map, codes.ToList(), desc);
    }

    private static int Size(RealExtent e, Dictionary<ulong, int> have, List<ulong> intended, List<ulong> involved, List<ulong> stale)
    {
        var map = MapRoots(e, intended, involved);
        int n = e.Roots.Count - map.Count + map.Keys.Sum(m => have.GetValueOrDefault(m));
        return n + stale.Sum(s => have[s]);
    }

    /// <summary>Model roots that differ first, then the rest, onto the real roots in ascending order.</summary>
    private static Dictionary<ulong, ulong> MapRoots(RealExtent e, List<ulong> intended, List<ulong> involved)
    {
        var order = involved.Concat(intended.Except(involved)).Take(e.Roots.Count).ToList();
        var map = new Dictionary<ulong, ulong>();
        for (int i = 0; i < order.Count; i++) map[order[i]] = e.Roots[i];
        return map;
    }
}
