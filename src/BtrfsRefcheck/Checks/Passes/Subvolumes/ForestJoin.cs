using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Trees;
using BtrfsRefcheck.Volume;

namespace BtrfsRefcheck.Checks;

/// <summary>Checks up to 64 subvolume trees together, so that what snapshots share is checked once:
/// 1. each tree's leaves, in key order, from its nodes (nodes only are read here, each once): each distinct leaf gets a
///    number, the trees holding it and the key its parent gives it; the distinct leaves, in key order, are cut into
///    windows of <see cref="WindowLeaves"/>;
/// 2. window after window, each distinct leaf of the window is summarised once (<see cref="LeafSummarizer"/>, every
///    core; adjacent leaves read together; the next window's while this one is joined): its inodes wholly inside are
///    checked there; its names become, on the fast path, the leaf's share of the trees' name fingerprints
///    (<see cref="NameFingerprint"/>), else records;
/// 3. then each tree goes on along its leaf order up to the window's end: the inodes whose items run across leaves are
///    joined and checked, once per distinct run of leaves (a run two snapshots share is the same inode; its findings
///    name the first tree sharing it; a run of leaves only one tree holds is neither copied nor remembered). A leaf's
///    summary goes once every tree holding it has passed it, a closed run once no tree can close it again (every tree's
///    leaves follow key order, so each has passed the window's leaves);
/// 4. fast path: each tree whose sums are zero and whose inodes passed the local rules is verified; the others are
///    returned, for a second run without the fast path. Exact join: every record carries the set of trees that hold its
///    leaf (a 64-bit mask); the records of all trees are sorted once and each inode's group is decided once per
///    distinct subset some tree sees (<see cref="NameJoin.Evaluate"/>).
/// Memory: the fast path keeps, besides a number and window place per distinct leaf (about 40 bytes), the summaries of
/// about two windows (sums, each leaf's two open inodes) and the runs still open; the exact join one record per name and
/// inode of the distinct leaves (56 bytes, in the workers' segmented lists), plus one range of inode numbers' copy while
/// it is sorted; not per tree.</summary>
internal sealed class ForestJoin(BtrfsVolume volume, FindingBag findings, HashSet<ulong> broken, int degree)
{
    public const int MaxTrees = 64;

    /// <summary>The mask of the first <paramref name="n"/> trees of a batch (at most <see cref="MaxTrees"/>).</summary>
    public static ulong TreesMask(int n) => n == 64 ? ulong.MaxValue : (1UL << n) - 1;
    /// <summary>Adjacent leaves read with one request, at most.</summary>
    private const int MaxRun = 16;

    /// <summary>Where the exact join's findings go (by default with the others): the fallback after the fast path sends
    /// the leaves' and inodes' findings, already made, to a bag of its own.</summary>
    public FindingBag? NameFindings { get; init; }

    /// <summary>Distinct leaves per window (<see cref="WindowLeaves"/>; tests use fewer).</summary>
    public int WindowSize { get; init; } = WindowLeaves;

    /// <summary>Called at the join's stages (the observer's memory trace).</summary>
    public Action<string>? Checkpoint { get; init; }

    /// <summary>Distinct leaves summarised together (about 4 MiB of summaries on a healthy tree): the next window is
    /// summarised on the workers while the trees are joined along this one, and a leaf's summary is dropped once every
    /// tree holding it has passed it, so the pass's memory does not grow with the trees.</summary>
    internal const int WindowLeaves = 4096;

    /// <summary>One window of distinct leaves, sorted by address (adjacent ones are read together).</summary>
    private sealed class LeafWindow
    {
        public ulong[] Leaves = [];
        public ulong[] Masks = [];
        /// <summary>How many times the live trees' leaf lists still name each leaf (the join's; the summary goes at 0).</summary>
        public int[] Remaining = [];
        /// <summary>The leaf is named once in all the live trees' lists: its tree may change its accumulators in place, and
        /// a run of such leaves is no other tree's.</summary>
        public bool[] Single = [];
        public int Left;
        public LeafSummary?[] Sums = [];
    }

    /// <summary>A worker's buffer for a run of leaves and, on the exact join, its record list (kept across windows).</summary>
    private sealed class Worker(int bytes, bool records)
    {
        public readonly byte[] Buf = new byte[bytes];
        public readonly ChunkedList<NameRec>? Out = records ? new ChunkedList<NameRec>() : null;
    }

    /// <summary>One run of leaves holding one inode, closed: its fast-path verdict or its record, and the trees sharing it.</summary>
    private sealed class RunRec
    {
        public NameFingerprint.Verdict Verdict;
        public NameRec Record;
        public ulong Mask;
        /// <summary>The inode, when closing it makes findings (made again at the fold, for the first tree sharing it).</summary>
        public InodeAcc? Acc;
    }

    /// <summary>A tree's place in the join: its next leaf and the inode it has open.</summary>
    private sealed class TreeCursor
    {
        public int Next;
        public InodeAcc? Open;
        /// <summary><see cref="Open"/> is a copy of a leaf's accumulator, not the leaf's own (copied when appended to).</summary>
        public bool Owned;
        public readonly List<ulong> Span = [];
        /// <summary>A leaf of <see cref="Span"/> is in another tree's list too (or twice in this one).</summary>
        public bool SpanShared;
        public ulong LastIno;
    }

    /// <summary>Checks <paramref name="trees"/> (at most <see cref="MaxTrees"/>) and adds the dir entries naming subvolumes.
    /// <paramref name="fast"/>: names by the fingerprints (<see cref="NameFingerprint"/>), no records; else by the exact join.
    /// Returns the mask of trees that could not be read whole (their bits follow <paramref name="trees"/>' order) and, on
    /// the fast path, the mask of the other trees whose names it could not verify (for <see cref="NameJoin"/> to decide).</summary>
    public (ulong Broken, ulong Unverified) Run(IReadOnlyList<(TreeRoot Root, SubvolumeParams P)> trees, List<(ulong Tree, NameRec Entry)> subvolEntries,
        bool fast)
    {
        int n = trees.Count;
        // 1. each tree's leaves, in key order, from its nodes: each distinct leaf gets a number (its place in Leaf, Key, Mask)
        var list = new LeafList(volume, broken);
        var leafOrder = new List<int>[n];
        ulong brokenTrees = 0;
        for (int t = 0; t < n; t++)
        {
            var leaves = new List<int>();
            if (!list.Leaves(trees[t].Root.Bytenr, trees[t].Root.Level, default, leaves) || EmptyRootLeaf(trees[t].Root)) brokenTrees |= 1UL << t;
            leafOrder[t] = leaves;
            var mask = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(list.Mask);
            foreach (int id in leaves) mask[id] |= 1UL << t;
        }
        list.Done();
        ulong live = TreesMask(n) & ~brokenTrees;
        // the fast path knows one root directory for all: trees with another one are decided by the exact join
        ulong rootDir = trees[0].P.RootDirId;
        var verdict = new FastVerdict(live);
        if (fast)
            for (int t = 0; t < n; t++)
                if (trees[t].P.RootDirId != rootDir) verdict.Unverified = live;

        // the distinct leaves in key order, cut into windows; in a window, by address
        int m = list.Leaf.Count;
        var byKey = new int[m];
        for (int i = 0; i < m; i++) byKey[i] = i;
        {
            var keys = list.Key;
            var addr = list.Leaf;
            Array.Sort(byKey, (x, y) => keys[x] != keys[y] ? keys[x].CompareTo(keys[y]) : addr[x].CompareTo(addr[y]));
        }
        list.Key.Clear();
        list.Key.TrimExcess();
        var windowOf = new int[m];
        var indexOf = new int[m];
        var windows = new LeafWindow?[(m + WindowSize - 1) / WindowSize];
        for (int w = 0; w < windows.Length; w++)
        {
            int from = w * WindowSize, count = Math.Min(WindowSize, m - from);
            var ids = byKey.AsSpan(from, count);
            var win = new LeafWindow { Leaves = new ulong[count], Masks = new ulong[count], Remaining = new int[count] };
            for (int i = 0; i < count; i++) win.Leaves[i] = list.Leaf[ids[i]];
            win.Leaves.AsSpan().Sort(ids); // on-disk order, near enough
            for (int i = 0; i < count; i++)
            {
                win.Masks[i] = list.Mask[ids[i]];
                windowOf[ids[i]] = w;
                indexOf[ids[i]] = i;
            }
            windows[w] = win;
        }
        byKey = [];
        list = null!;
        // each place of a leaf in a live tree's list is one use; a tree whose leaves go back to an earlier window (keys out
        // of order) keeps every closed run (else a run may be closed twice)
        bool monotonic = true;
        for (int t = 0; t < n; t++)
        {
            if ((live & (1UL << t)) == 0) continue;
            int last = 0;
            foreach (int id in leafOrder[t])
            {
                int w = windowOf[id];
                windows[w]!.Remaining[indexOf[id]]++;
                windows[w]!.Left++;
                if (w < last) monotonic = false;
                last = w;
            }
        }
        foreach (var win in windows)
        {
            win!.Single = new bool[win.Remaining.Length];
            for (int i = 0; i < win.Single.Length; i++) win.Single[i] = win.Remaining[i] == 1;
        }
        Checkpoint?.Invoke("leaves listed");

        // 2. + 3. per window: its distinct leaves summarised once, on every core (the next window's while this one is
        // joined), then each tree's leaves in it joined: the inodes across leaves, once per distinct run of leaves
        var summarizer = new LeafSummarizer(findings, fast ? rootDir : null);
        var workers = new System.Collections.Concurrent.ConcurrentBag<Worker>();
        var runs = new Dictionary<string, RunRec>(); // runs of more than two leaves
        var shortRuns = new Dictionary<(ulong Ino, ulong A, ulong B), RunRec>(); // of one or two (B 0 for one)
        var boundary = new List<NameRec>();
        var probe = new FindingBag(); // whether closing a run makes findings
        var sumItem = new ulong[n];
        var sumIndex = new ulong[n];
        var cursors = new TreeCursor[n];
        for (int t = 0; t < n; t++) cursors[t] = new TreeCursor();
        bool pipelined = degree > 1;
        Task<LeafSummary?[]>? next = windows.Length == 0 ? null
            : pipelined ? Task.Run(() => Summarise(windows[0]!, trees, summarizer, workers, fast)) : null;
        for (int w = 0; w < windows.Length; w++)
        {
            var win = windows[w]!;
            win.Sums = next != null ? next.GetAwaiter().GetResult() : Summarise(win, trees, summarizer, workers, fast);
            if (pipelined && w + 1 < windows.Length)
            {
                var following = windows[w + 1]!;
                next = Task.Run(() => Summarise(following, trees, summarizer, workers, fast));
            }
            else next = null;
            for (int i = 0; i < win.Sums.Length; i++)
            {
                if (win.Sums[i] is not { } s) continue;
                if (fast) verdict.AddLeaf(s, trees, subvolEntries);
                if (win.Remaining[i] == 0) win.Sums[i] = null; // in no live tree
            }
            for (int t = 0; t < n; t++)
                if ((live & (1UL << t)) != 0) JoinTree(t, w);
            // the runs no tree can close again: every tree's open inode is past them, or reaches them no more
            if (monotonic) Forget();
        }
        for (int t = 0; t < n; t++)
            if ((live & (1UL << t)) != 0) Close(t);
        foreach (var r in runs.Values) FoldShared(r);
        foreach (var r in shortRuns.Values) FoldShared(r);
        runs.Clear();
        shortRuns.Clear();
        Checkpoint?.Invoke("inodes joined");

        if (fast) return (brokenTrees, verdict.Finish(sumItem, sumIndex) & live);

        // 4. all records, each with the trees that hold it, joined once
        var segments = new List<(NameRec[] Array, int Count)>();
        foreach (var o in workers) segments.AddRange(o.Out!.TakeSegments());
        segments.Add((boundary.ToArray(), boundary.Count));
        boundary.Clear();
        // names replaced by btrfs-image -s/-ss are not the same on both sides of a link: not matched (the volume says so)
        if (!volume.NamesSanitized) NameJoin.Evaluate(segments, trees.Select(x => x.P).ToList(), live, NameFindings ?? findings, subvolEntries);
        return (brokenTrees, 0);

        // tree t's leaves up to window w
        void JoinTree(int t, int w)
        {
            ulong bit = 1UL << t;
            var c = cursors[t];
            var order = leafOrder[t];
            for (; c.Next < order.Count; c.Next++)
            {
                int id = order[c.Next];
                int lw = windowOf[id], li = indexOf[id];
                if (lw > w) break;
                var win = windows[lw]!;
                var s = win.Sums[li];
                bool single = win.Single[li];
                ulong leaf = (ulong)id; // runs of leaves are told apart by the leaves' numbers
                if (--win.Remaining[li] == 0) win.Sums[li] = null;
                if (--win.Left == 0) windows[lw] = null;
                if (s == null) { verdict.Unverified |= bit; continue; }
                if (fast)
                {
                    sumItem[t] += s.SumItem;
                    sumIndex[t] += s.SumIndex;
                    if (s.Why != null || (s.FirstIno != 0 && (s.FirstIno < c.LastIno || (s.HeadClosed && s.FirstIno == c.LastIno)))) verdict.Unverified |= bit;
                    if (s.LastIno != 0) c.LastIno = s.LastIno;
                }
                if (s.Head == null) continue;
                // a leaf no other tree holds gives its accumulators away (no copy when appended to)
                if (c.Open != null && c.Open.Ino == s.Head.Ino)
                {
                    if (!c.Owned) { c.Open = c.Open.Copy(); c.Owned = true; }
                    c.Open.Append(s.Head);
                    c.Span.Add(leaf);
                    c.SpanShared |= !single;
                    if (s.Tail != null) { Close(t); Reopen(c, s.Tail, leaf, single); }
                    continue;
                }
                Close(t);
                Reopen(c, s.Head, leaf, single);
                if (s.Tail != null) { Close(t); Reopen(c, s.Tail, leaf, single); }
            }
        }

        // tree t's open inode is now acc, first seen in this leaf
        static void Reopen(TreeCursor c, InodeAcc acc, ulong leaf, bool single)
        {
            c.Open = acc;
            c.Owned = single;
            c.Span.Add(leaf);
            c.SpanShared = !single;
        }

        // closes tree t's open inode: checked once per distinct run of leaves
        void Close(int t)
        {
            var c = cursors[t];
            if (c.Open is not { } open) return;
            NameFingerprint.Verdict v;
            if (!c.SpanShared)
            {
                // leaves no other tree holds: no other tree can close this run, nothing to remember
                var rec = open.Close(trees[t].P, findings);
                v = fast ? NameFingerprint.Close(open, rootDir) : default;
                Fold(v, rec, 1UL << t);
            }
            else
            {
                var (key, shortKey) = RunKey(c);
                if (!(key != null ? runs.TryGetValue(key, out var r) : shortRuns.TryGetValue(shortKey, out r)))
                {
                    r = new RunRec();
                    // its findings are made when the run is folded, naming the first tree sharing it (as the leaves' name
                    // the first tree holding them), whichever tree closed it first
                    long before = probe.Count(Severity.Info);
                    var rec = open.Close(trees[t].P, probe);
                    if (probe.Count(Severity.Info) != before) r.Acc = open;
                    if (fast) r.Verdict = NameFingerprint.Close(open, rootDir);
                    else r.Record = rec;
                    if (key != null) runs[key] = r;
                    else shortRuns[shortKey] = r;
                }
                r.Mask |= 1UL << t;
                v = r.Verdict;
            }
            if (fast)
            {
                sumItem[t] += v.Item;
                sumIndex[t] += v.Index;
            }
            c.Open = null;
            c.Span.Clear();
        }

        // a closed run whose trees are all known: into the verdict or the records
        void Fold(in NameFingerprint.Verdict v, NameRec rec, ulong mask)
        {
            if (fast) verdict.AddRun(v, mask);
            else
            {
                rec.Mask = mask;
                boundary.Add(rec);
            }
        }

        // a shared run once no tree can close it again: its findings for the first tree sharing it, then folded
        void FoldShared(RunRec r)
        {
            r.Acc?.Close(trees[System.Numerics.BitOperations.TrailingZeroCount(r.Mask)].P, findings);
            Fold(r.Verdict, r.Record, r.Mask);
        }

        // folds the runs no tree can close again: all but those some tree's open inode would close the same way (its span
        // so far, if no leaf is added to it)
        void Forget()
        {
            var keepLong = new HashSet<string>();
            var keepShort = new HashSet<(ulong, ulong, ulong)>();
            foreach (var c in cursors)
            {
                if (c.Open == null) continue;
                var (key, shortKey) = RunKey(c);
                if (key != null) keepLong.Add(key);
                else keepShort.Add(shortKey);
            }
            foreach (var (key, r) in runs)
                if (!keepLong.Contains(key)) { FoldShared(r); runs.Remove(key); }
            foreach (var (key, r) in shortRuns)
                if (!keepShort.Contains(key)) { FoldShared(r); shortRuns.Remove(key); }
        }
    }

    /// <summary>What identifies a tree's open inode's run of leaves: the inode and the leaves (a string for more than two).</summary>
    private static (string? Key, (ulong Ino, ulong A, ulong B) Short) RunKey(TreeCursor c)
    {
        var span = c.Span;
        ulong ino = c.Open!.Ino;
        return span.Count > 2 ? (ino + ":" + string.Join(',', span), default) : (null, (ino, span[0], span.Count == 2 ? span[1] : 0));
    }

    /// <summary>Summarises a window's leaves on every core (adjacent leaves read with one request): its summaries, by place.</summary>
    private LeafSummary?[] Summarise(LeafWindow win, IReadOnlyList<(TreeRoot Root, SubvolumeParams P)> trees, LeafSummarizer summarizer,
        System.Collections.Concurrent.ConcurrentBag<Worker> workers, bool fast)
    {
        var leaves = win.Leaves;
        var sums = new LeafSummary?[leaves.Length];
        int ns = (int)volume.NodeSize;
        var runStarts = new List<int>();
        for (int i = 0; i < leaves.Length; i++)
            if (i == 0 || leaves[i] != leaves[i - 1] + (ulong)ns || i - runStarts[^1] >= MaxRun) runStarts.Add(i);
        Parallel.For(0, runStarts.Count, new ParallelOptions { MaxDegreeOfParallelism = degree },
            () => workers.TryTake(out var w) ? w : new Worker(ns * MaxRun, !fast), (r, _, local) =>
        {
            var buf = local.Buf;
            int from = runStarts[r], to = r + 1 < runStarts.Count ? runStarts[r + 1] : leaves.Length;
            // read into the worker's buffer (no block allocated per leaf); another copy only when copy 0 fails
            bool readOk = volume.TryReadRun(leaves[from], to - from, buf);
            for (int i = from; i < to; i++)
            {
                ulong leaf = leaves[i];
                var b = volume.VerifiedInPlace(leaf, readOk, buf, (i - from) * ns) ?? volume.ReadTreeBlockUncached(leaf).Block;
                // findings about the inodes inside a shared leaf name the first tree that holds it
                var p = trees[System.Numerics.BitOperations.TrailingZeroCount(win.Masks[i])].P;
                if (b != null && b.View.IsLeaf) sums[i] = summarizer.OfLeaf(b, p, win.Masks[i], local.Out);
            }
            return local;
        }, workers.Add);
        return sums;
    }

    /// <summary>The fast path's decision, per live tree: its fingerprint sums are zero, no leaf or inode of it needs the
    /// exact join, its root directory was seen and is right, and each of its inodes with nlink 0 has an ORPHAN_ITEM in it.
    /// A directory with nlink 0 anywhere sends every tree to the exact join (which leaves its entries out for all).</summary>
    private sealed class FastVerdict(ulong live)
    {
        public ulong Unverified;
        private ulong _rootDirOk;
        private readonly Dictionary<ulong, ulong> _orphans = []; // inode -> trees holding its ORPHAN_ITEM
        private readonly List<(ulong Ino, ulong Trees)> _unlinked = [];

        /// <summary>A leaf's facts (and the dir entries naming subvolumes, for each tree holding it).</summary>
        public void AddLeaf(LeafSummary s, IReadOnlyList<(TreeRoot Root, SubvolumeParams P)> trees, List<(ulong Tree, NameRec Entry)> subvolEntries)
        {
            ulong m = s.Mask & live;
            if (m == 0) return;
            if (s.DeadDir) Unverified = live;
            if (s.RootDirOk) _rootDirOk |= m;
            if (s.Orphans != null) foreach (ulong o in s.Orphans) _orphans[o] = _orphans.GetValueOrDefault(o) | m;
            if (s.Unlinked != null) foreach (ulong u in s.Unlinked) _unlinked.Add((u, m));
            if (s.SubvolEntries != null)
                foreach (var r in s.SubvolEntries)
                    for (ulong k = m; k != 0; k &= k - 1) subvolEntries.Add((trees[System.Numerics.BitOperations.TrailingZeroCount(k)].P.Tree, r));
        }

        /// <summary>An inode across leaves, closed, with the trees that hold that run of leaves.</summary>
        public void AddRun(in NameFingerprint.Verdict v, ulong m)
        {
            if (v.Why != null) Unverified |= m;
            if (v.DeadDir) Unverified = live;
            if (v.RootDirOk) _rootDirOk |= m;
            if (v.Unlinked) _unlinked.Add((v.Ino, m));
        }

        /// <summary>The trees not verified.</summary>
        public ulong Finish(ulong[] sumItem, ulong[] sumIndex)
        {
            ulong unverified = Unverified;
            foreach (var (ino, m) in _unlinked) unverified |= m & ~_orphans.GetValueOrDefault(ino);
            unverified |= live & ~_rootDirOk;
            for (int t = 0; t < sumItem.Length; t++)
                if (sumItem[t] != 0 || sumIndex[t] != 0) unverified |= 1UL << t;
            return unverified & live;
        }
    }

    /// <summary>A root leaf without items: the tree-block validator's 305 (a subvolume tree is never empty); its root
    /// directory's absence is that, not another finding.</summary>
    private bool EmptyRootLeaf(TreeRoot root) =>
        root.Level == 0 && volume.ReadTreeBlock(root.Bytenr).Block is { } b && b.View.Count == 0;

    /// <summary>The subvolume trees' leaves, listed from their nodes (each node read once, into one buffer): each distinct
    /// leaf numbered in the order first seen, with its address, the key its first parent gives it and the trees holding it.</summary>
    private sealed class LeafList(BtrfsVolume volume, HashSet<ulong> broken)
    {
        public readonly List<ulong> Leaf = [];
        public readonly List<BtrfsKey> Key = [];
        public readonly List<ulong> Mask = [];
        private Dictionary<ulong, int> _ids = [];
        private Dictionary<ulong, (ulong[] Ptrs, BtrfsKey[] Keys)> _nodeChildren = [];
        private readonly byte[] _buf = new byte[volume.NodeSize];

        /// <summary>The numbers are given: the look-ups go.</summary>
        public void Done()
        {
            _ids = [];
            _nodeChildren = [];
        }

        /// <summary>The tree's leaves under <paramref name="bytenr"/>, in key order, by number; false when a block is
        /// unreadable, invalid (the scan reported it) or not at its level.</summary>
        public bool Leaves(ulong bytenr, int level, BtrfsKey key, List<int> leaves)
        {
            if (level == 0)
            {
                if (broken.Contains(bytenr)) return false;
                if (!_ids.TryGetValue(bytenr, out int id))
                {
                    id = Leaf.Count;
                    _ids[bytenr] = id;
                    Leaf.Add(bytenr);
                    Key.Add(key);
                    Mask.Add(0);
                }
                leaves.Add(id);
                return true;
            }
            if (!_nodeChildren.TryGetValue(bytenr, out var children))
            {
                if (broken.Contains(bytenr)) return false;
                var b = volume.ReadInto(bytenr, _buf);
                if (b == null) return false;
                var view = b.View;
                if (view.Header.Level != level || view.IsLeaf || view.Header.NrItems > (uint)view.MaxNodePtrs) return false;
                children = (new ulong[view.Count], new BtrfsKey[view.Count]);
                for (int i = 0; i < view.Count; i++)
                {
                    var kp = view.KeyPtr(i);
                    children.Ptrs[i] = kp.BlockPtr;
                    children.Keys[i] = kp.Key;
                }
                _nodeChildren[bytenr] = children;
            }
            bool ok = true;
            for (int i = 0; i < children.Ptrs.Length; i++) ok &= Leaves(children.Ptrs[i], level - 1, children.Keys[i], leaves);
            return ok;
        }
    }
}
