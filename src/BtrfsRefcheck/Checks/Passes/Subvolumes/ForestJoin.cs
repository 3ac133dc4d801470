using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Trees;
using BtrfsRefcheck.Volume;

namespace BtrfsRefcheck.Checks;

/// <summary>Checks up to 64 subvolume trees together, so that what snapshots share is checked once:
/// 1. each tree's leaves, in key order, from its nodes (nodes only are read here, each once);
/// 2. each distinct leaf is summarised once (<see cref="LeafSummarizer"/>, both cores; adjacent leaves read together):
///    its inodes wholly inside are checked there; its names become, on the fast path, the leaf's share of the trees'
///    name fingerprints (<see cref="NameFingerprint"/>), else records;
/// 3. per tree, the inodes whose items run across leaves are joined along the tree's leaf order and checked, once per
///    distinct run of leaves (a run two snapshots share is the same inode);
/// 4. fast path: each tree whose sums are zero and whose inodes passed the local rules is verified; the others are
///    returned, for a second run without the fast path. Exact join: every record carries the set of trees that hold its
///    leaf (a 64-bit mask); the records of all trees are sorted once and each inode's group is decided once per
///    distinct subset some tree sees (<see cref="NameJoin.Evaluate"/>).
/// Memory: the fast path keeps a summary per distinct leaf (sums, its two open inodes); the exact join one record per
/// name and inode of the distinct leaves (56 bytes, in the workers' segmented lists), plus one range of inode numbers'
/// copy while it is sorted; not per tree.</summary>
internal sealed class ForestJoin(BtrfsVolume volume, FindingBag findings, HashSet<ulong> broken, int degree)
{
    public const int MaxTrees = 64;
    /// <summary>Adjacent leaves read with one request, at most.</summary>
    private const int MaxRun = 16;

    /// <summary>Where the exact join's findings go (by default with the others): the fallback after the fast path sends
    /// the leaves' and inodes' findings, already made, to a bag of its own.</summary>
    public FindingBag? NameFindings { get; init; }

    /// <summary>Checks <paramref name="trees"/> (at most <see cref="MaxTrees"/>) and adds the dir entries naming subvolumes.
    /// <paramref name="fast"/>: names by the fingerprints (<see cref="NameFingerprint"/>), no records; else by the exact join.
    /// Returns the mask of trees that could not be read whole (their bits follow <paramref name="trees"/>' order) and, on
    /// the fast path, the mask of the other trees whose names it could not verify (for <see cref="NameJoin"/> to decide).</summary>
    public (ulong Broken, ulong Unverified) Run(IReadOnlyList<(TreeRoot Root, SubvolumeParams P)> trees, List<(ulong Tree, NameRec Entry)> subvolEntries,
        bool fast)
    {
        int n = trees.Count;
        var leafOrder = new List<ulong>[n];
        ulong brokenTrees = 0;
        var treesOfLeaf = new Dictionary<ulong, ulong>();
        var nodeChildren = new Dictionary<ulong, ulong[]>(); // each node read once
        for (int t = 0; t < n; t++)
        {
            var leaves = new List<ulong>();
            if (!Leaves(trees[t].Root.Bytenr, trees[t].Root.Level, leaves, nodeChildren) || EmptyRootLeaf(trees[t].Root)) brokenTrees |= 1UL << t;
            leafOrder[t] = leaves;
            foreach (ulong l in leaves) treesOfLeaf[l] = treesOfLeaf.GetValueOrDefault(l) | (1UL << t);
        }
        nodeChildren.Clear();
        ulong live = (n == 64 ? ulong.MaxValue : (1UL << n) - 1) & ~brokenTrees;
        // the fast path knows one root directory for all: trees with another one are decided by the exact join
        ulong rootDir = trees[0].P.RootDirId;
        ulong unverified = 0;
        if (fast)
            for (int t = 0; t < n; t++)
                if (trees[t].P.RootDirId != rootDir) unverified = live;

        // 2. every distinct leaf once, on every core
        var distinct = treesOfLeaf.Keys.ToArray();
        Array.Sort(distinct); // on-disk order, near enough
        var sums = new LeafSummary?[distinct.Length];
        var summarizer = new LeafSummarizer(findings, fast ? rootDir : null);
        int ns = (int)volume.NodeSize;
        var outputs = new System.Collections.Concurrent.ConcurrentBag<ChunkedList<NameRec>>();
        // adjacent leaves are read together (one request per run)
        var runStarts = new List<int>();
        for (int i = 0; i < distinct.Length; i++)
            if (i == 0 || distinct[i] != distinct[i - 1] + (ulong)ns || i - runStarts[^1] >= MaxRun) runStarts.Add(i);
        Parallel.For(0, runStarts.Count, new ParallelOptions { MaxDegreeOfParallelism = degree }, () => (Buf: new byte[ns * MaxRun], Out: fast ? null : new ChunkedList<NameRec>()), (r, _, local) =>
        {
            var buf = local.Buf;
            int from = runStarts[r], to = r + 1 < runStarts.Count ? runStarts[r + 1] : distinct.Length;
            // read into the worker's buffer (no block allocated per leaf); another copy only when copy 0 fails
            bool readOk = volume.TryReadRun(distinct[from], to - from, buf);
            for (int i = from; i < to; i++)
            {
                ulong at = distinct[i];
                var b = volume.VerifiedInPlace(at, readOk, buf, (i - from) * ns) ?? volume.ReadTreeBlockUncached(at).Block;
                // findings about the inodes inside a shared leaf name the first tree that holds it
                var p = trees[System.Numerics.BitOperations.TrailingZeroCount(treesOfLeaf[at])].P;
                if (b != null && b.View.IsLeaf) sums[i] = summarizer.OfLeaf(b, p, treesOfLeaf[at], local.Out);
            }
            return local;
        }, local => { if (local.Out != null) outputs.Add(local.Out); });
        var sumOf = new Dictionary<ulong, LeafSummary>(distinct.Length);
        for (int i = 0; i < distinct.Length; i++)
            if (sums[i] is { } s) sumOf[distinct[i]] = s;

        // 3. inodes across leaves, per tree, once per distinct run of leaves; on the fast path, each tree's sums
        var runs = new Dictionary<string, int>(); // runs of more than two leaves
        var shortRuns = new Dictionary<(ulong Ino, ulong A, ulong B), int>(); // of one or two (B 0 for one)
        var boundary = new List<NameRec>();
        var verdicts = new List<NameFingerprint.Verdict>();
        var runMask = new List<ulong>();
        var sumItem = new ulong[n];
        var sumIndex = new ulong[n];
        for (int t = 0; t < n; t++)
        {
            ulong bit = 1UL << t;
            if ((live & bit) == 0) continue;
            InodeAcc? open = null;
            bool owned = false; // open is a copy of a leaf's accumulator, not the leaf's own (copied when appended to)
            var span = new List<ulong>();
            void Close()
            {
                if (open == null) return;
                string? key = span.Count > 2 ? open.Ino + ":" + string.Join(',', span) : null;
                var shortKey = (open.Ino, span[0], span.Count == 2 ? span[1] : 0);
                if (!(key != null ? runs.TryGetValue(key, out int at) : shortRuns.TryGetValue(shortKey, out at)))
                {
                    at = runMask.Count;
                    if (key != null) runs[key] = at;
                    else shortRuns[shortKey] = at;
                    runMask.Add(0);
                    var r = open.Close(trees[t].P, findings);
                    if (fast) verdicts.Add(NameFingerprint.Close(open, rootDir));
                    else boundary.Add(r);
                }
                runMask[at] |= bit;
                if (fast)
                {
                    var v = verdicts[at];
                    sumItem[t] += v.Item;
                    sumIndex[t] += v.Index;
                }
                open = null;
                span.Clear();
            }
            ulong lastIno = 0;
            foreach (ulong leaf in leafOrder[t])
            {
                if (!sumOf.TryGetValue(leaf, out var s)) { unverified |= bit; continue; }
                if (fast)
                {
                    sumItem[t] += s.SumItem;
                    sumIndex[t] += s.SumIndex;
                    if (s.Why != null || (s.FirstIno != 0 && (s.FirstIno < lastIno || (s.HeadClosed && s.FirstIno == lastIno)))) unverified |= bit;
                    if (s.LastIno != 0) lastIno = s.LastIno;
                }
                if (s.Head == null) continue;
                if (open != null && open.Ino == s.Head.Ino)
                {
                    if (!owned) { open = open.Copy(); owned = true; }
                    open.Append(s.Head);
                    span.Add(leaf);
                    if (s.Tail != null) { Close(); open = s.Tail; owned = false; span.Add(leaf); }
                    continue;
                }
                Close();
                open = s.Head;
                owned = false;
                span.Add(leaf);
                if (s.Tail != null) { Close(); open = s.Tail; owned = false; span.Add(leaf); }
            }
            Close();
        }

        if (fast)
        {
            unverified |= FastVerdict(sumOf, verdicts, runMask, sumItem, sumIndex, live, subvolEntries, trees);
            return (brokenTrees, unverified & live);
        }
        for (int i = 0; i < boundary.Count; i++) { var r = boundary[i]; r.Mask = runMask[i]; boundary[i] = r; }

        // 4. all records, each with the trees that hold it, joined once
        var segments = new List<(NameRec[] Array, int Count)>();
        foreach (var o in outputs) segments.AddRange(o.TakeSegments());
        segments.Add((boundary.ToArray(), boundary.Count));
        boundary.Clear();
        sumOf.Clear();
        Array.Clear(sums);
        // names replaced by btrfs-image -s/-ss are not the same on both sides of a link: not matched (the volume says so)
        if (!volume.NamesSanitized) NameJoin.Evaluate(segments, trees.Select(x => x.P).ToList(), live, NameFindings ?? findings, subvolEntries);
        return (brokenTrees, 0);
    }

    /// <summary>The fast path's decision, per live tree: its fingerprint sums are zero, no leaf or inode of it needs the
    /// exact join, its root directory was seen and is right, and each of its inodes with nlink 0 has an ORPHAN_ITEM in it.
    /// A directory with nlink 0 anywhere sends every tree to the exact join (which leaves its entries out for all).
    /// Returns the trees not verified; adds the dir entries naming subvolumes.</summary>
    private static ulong FastVerdict(Dictionary<ulong, LeafSummary> sumOf, List<NameFingerprint.Verdict> verdicts, List<ulong> runMask,
        ulong[] sumItem, ulong[] sumIndex, ulong live, List<(ulong Tree, NameRec Entry)> subvolEntries,
        IReadOnlyList<(TreeRoot Root, SubvolumeParams P)> trees)
    {
        ulong unverified = 0, rootDirOk = 0;
        var orphans = new Dictionary<ulong, ulong>(); // inode -> trees holding its ORPHAN_ITEM
        var unlinked = new List<(ulong Ino, ulong Trees)>();
        foreach (var s in sumOf.Values)
        {
            ulong m = s.Mask & live;
            if (m == 0) continue;
            if (s.DeadDir) unverified = live;
            if (s.RootDirOk) rootDirOk |= m;
            if (s.Orphans != null) foreach (ulong o in s.Orphans) orphans[o] = orphans.GetValueOrDefault(o) | m;
            if (s.Unlinked != null) foreach (ulong u in s.Unlinked) unlinked.Add((u, m));
            if (s.SubvolEntries != null)
                foreach (var r in s.SubvolEntries)
                    for (ulong k = m; k != 0; k &= k - 1) subvolEntries.Add((trees[System.Numerics.BitOperations.TrailingZeroCount(k)].P.Tree, r));
        }
        for (int at = 0; at < verdicts.Count; at++)
        {
            var v = verdicts[at];
            ulong m = runMask[at];
            if (v.Why != null) unverified |= m;
            if (v.DeadDir) unverified = live;
            if (v.RootDirOk) rootDirOk |= m;
            if (v.Unlinked) unlinked.Add((v.Ino, m));
        }
        foreach (var (ino, m) in unlinked) unverified |= m & ~orphans.GetValueOrDefault(ino);
        unverified |= live & ~rootDirOk;
        for (int t = 0; t < trees.Count; t++)
            if (sumItem[t] != 0 || sumIndex[t] != 0) unverified |= 1UL << t;
        return unverified & live;
    }

    /// <summary>A root leaf without items: the tree-block validator's 305 (a subvolume tree is never empty); its root
    /// directory's absence is that, not another finding.</summary>
    private bool EmptyRootLeaf(TreeRoot root) =>
        root.Level == 0 && volume.ReadTreeBlock(root.Bytenr).Block is { } b && b.View.Count == 0;

    /// <summary>The tree's leaves under <paramref name="bytenr"/>, in key order; false when a block is unreadable, invalid
    /// (the scan reported it) or not at its level.</summary>
    private bool Leaves(ulong bytenr, int level, List<ulong> leaves, Dictionary<ulong, ulong[]> nodeChildren)
    {
        if (level == 0)
        {
            if (broken.Contains(bytenr)) return false;
            leaves.Add(bytenr);
            return true;
        }
        if (!nodeChildren.TryGetValue(bytenr, out var children))
        {
            if (broken.Contains(bytenr)) return false;
            var read = volume.ReadTreeBlock(bytenr);
            if (read.Block is not { } b) return false;
            var view = b.View;
            if (view.Header.Level != level || view.IsLeaf || view.Header.NrItems > (uint)view.MaxNodePtrs) return false;
            children = new ulong[view.Count];
            for (int i = 0; i < children.Length; i++) children[i] = view.KeyPtr(i).BlockPtr;
            nodeChildren[bytenr] = children;
        }
        bool ok = true;
        foreach (ulong c in children) ok &= Leaves(c, level - 1, leaves, nodeChildren);
        return ok;
    }
}
