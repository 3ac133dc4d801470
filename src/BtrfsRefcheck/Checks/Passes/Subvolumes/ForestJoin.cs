using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Trees;
using BtrfsRefcheck.Volume;

namespace BtrfsRefcheck.Checks;

/// <summary>Checks up to 64 subvolume trees together, so that what snapshots share is checked once:
/// 1. each tree's leaves, in key order, from its nodes (nodes only are read here, each once);
/// 2. each distinct leaf is summarised once (<see cref="LeafSummarizer"/>, both cores): its inodes wholly inside are
///    checked there, its names become records;
/// 3. per tree, the inodes whose items run across leaves are joined along the tree's leaf order and checked, once per
///    distinct run of leaves (a run two snapshots share is the same inode);
/// 4. every record carries the set of trees that hold its leaf (a 64-bit mask); the records of all trees are sorted
///    once and each inode's group is decided once per distinct subset some tree sees (<see cref="NameJoin.Evaluate"/>).
/// Memory: one record per name and inode of the distinct leaves (56 bytes, in the workers' segmented lists), plus one
/// range of inode numbers' copy while it is sorted; not per tree.</summary>
internal sealed class ForestJoin(BtrfsVolume volume, FindingBag findings, HashSet<ulong> broken, int degree)
{
    public const int MaxTrees = 64;

    /// <summary>Checks <paramref name="trees"/> (at most <see cref="MaxTrees"/>); returns the mask of trees that could not
    /// be read whole (their bits follow <paramref name="trees"/>' order) and adds the dir entries naming subvolumes.</summary>
    public ulong Run(IReadOnlyList<(TreeRoot Root, SubvolumeParams P)> trees, List<(ulong Tree, NameRec Entry)> subvolEntries)
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

        // 2. every distinct leaf once, on every core
        var distinct = treesOfLeaf.Keys.ToArray();
        Array.Sort(distinct); // on-disk order, near enough
        var sums = new LeafSummary?[distinct.Length];
        var summarizer = new LeafSummarizer(findings);
        int ns = (int)volume.NodeSize;
        var outputs = new System.Collections.Concurrent.ConcurrentBag<ChunkedList<NameRec>>();
        Parallel.For(0, distinct.Length, new ParallelOptions { MaxDegreeOfParallelism = degree }, () => (Buf: new byte[ns], Out: new ChunkedList<NameRec>()), (i, _, local) =>
        {
            var buf = local.Buf;
            // read into the worker's buffer (no block allocated per leaf); another copy only when copy 0 fails
            ulong at = distinct[i];
            var b = volume.VerifiedInPlace(at, volume.TryReadRun(at, 1, buf), buf, 0) ?? volume.ReadTreeBlockUncached(at).Block;
            // findings about the inodes inside a shared leaf name the first tree that holds it
            var p = trees[System.Numerics.BitOperations.TrailingZeroCount(treesOfLeaf[at])].P;
            if (b != null && b.View.IsLeaf) sums[i] = summarizer.OfLeaf(b, p, treesOfLeaf[at], local.Out);
            return local;
        }, local => outputs.Add(local.Out));
        var sumOf = new Dictionary<ulong, LeafSummary>(distinct.Length);
        for (int i = 0; i < distinct.Length; i++)
            if (sums[i] is { } s) sumOf[distinct[i]] = s;

        // 3. inodes across leaves, per tree, once per distinct run of leaves
        var runs = new Dictionary<string, int>();
        var boundary = new List<NameRec>();
        for (int t = 0; t < n; t++)
        {
            if ((live & (1UL << t)) == 0) continue;
            InodeAcc? open = null;
            var span = new List<ulong>();
            void Close()
            {
                if (open == null) return;
                string key = open.Ino + ":" + string.Join(',', span);
                if (runs.TryGetValue(key, out int at)) { var r = boundary[at]; r.Mask |= 1UL << t; boundary[at] = r; }
                else
                {
                    var r = open.Close(trees[t].P, findings);
                    r.Mask = 1UL << t;
                    runs[key] = boundary.Count;
                    boundary.Add(r);
                }
                open = null;
                span.Clear();
            }
            foreach (ulong leaf in leafOrder[t])
            {
                if (!sumOf.TryGetValue(leaf, out var s) || s.Head == null) continue;
                if (open != null && open.Ino == s.Head.Ino)
                {
                    open.Append(s.Head);
                    span.Add(leaf);
                    if (s.Tail != null) { Close(); open = s.Tail.Copy(); span.Add(leaf); }
                    continue;
                }
                Close();
                open = s.Head.Copy();
                span.Add(leaf);
                if (s.Tail != null) { Close(); open = s.Tail.Copy(); span.Add(leaf); }
            }
            Close();
        }

        // 4. all records, each with the trees that hold it, joined once
        var segments = new List<(NameRec[] Array, int Count)>();
        foreach (var o in outputs) segments.AddRange(o.TakeSegments());
        segments.Add((boundary.ToArray(), boundary.Count));
        boundary.Clear();
        sumOf.Clear();
        Array.Clear(sums);
        // names replaced by btrfs-image -s/-ss are not the same on both sides of a link: not matched (the volume says so)
        if (!volume.NamesSanitized) NameJoin.Evaluate(segments, trees.Select(x => x.P).ToList(), live, findings, subvolEntries);
        return brokenTrees;
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
