using System.Runtime.CompilerServices;
using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Trees;
using BtrfsRefcheck.Volume;

namespace BtrfsRefcheck.Checks;

/// <summary>Joins what the trees really reference (the expected back-refs, sorted) with the extent tree, streamed in
/// key order one extent at a time: only the current extent's items and back-refs are in memory, never the whole
/// extent tree. The address space is cut into one range per core and the ranges are joined in parallel; every
/// difference becomes a finding; blocks and block groups are joined on the way.</summary>
internal sealed class ExtentJoin(CheckContext ctx)
{
    private readonly TreeScanFacts scan = ctx.Scan;

    /// <summary>Joins; returns how many expected back-refs it consumed (none is kept).</summary>
    public long Run()
    {
        var blocks = scan.Blocks;
        SortByAddress(blocks);
        var segments = scan.TakeExpectedSegments();
        segments.Add(RootRefs(blocks));
        long consumed = segments.Sum(s => (long)s.Count);
        SortedRefStream.SortSegments(segments, ctx.DegreeOfParallelism);
        var bgs = scan.BlockGroups;
        Array.Sort(bgs, (a, b) => a.Start.CompareTo(b.Start));
        var extentRoot = ctx.Roots.FirstOrDefault(r => r.Id == ObjectIds.ExtentTree && r.Source == RootSource.RootItem);

        var cuts = SplitPoints(segments, ctx.DegreeOfParallelism ?? Environment.ProcessorCount);
        var ranges = new RangeJoin[cuts.Count - 1];
        var progress = new ProgressCounter(ctx.Observer, "extent references", "extent leaves", scan.ExtentLeaves.Length);
        for (int i = 0; i < ranges.Length; i++)
            ranges[i] = new RangeJoin(ctx, cuts[i], cuts[i + 1], segments, blocks, bgs, extentRoot) { Progress = progress };
        if (ranges.Length == 1) ranges[0].Run();
        else Parallel.ForEach(ranges, new ParallelOptions { MaxDegreeOfParallelism = ranges.Length }, r => r.Run());
        for (int i = 0; i < ranges.Length; i++)
        {
            ctx.Stats.Add(ranges[i].Stats);
            // the one overlap no single range can see: the first extent of a range against the end of the ranges before it
            if (i > 0 && ranges[i].FirstExtent is { } first)
                for (int k = i - 1; k >= 0; k--)
                    if (ranges[k].LastExtent is { } prev)
                    {
                        if (first.Bytenr < prev.End) ranges[i].Overlap(first, prev);
                        break;
                    }
        }
        RangeJoin.CheckBlockGroupTotals(ctx, bgs);
        progress.Finish();
        return consumed;
    }

    /// <summary>Sorts the blocks by address through a key array: a sort of primitives, no comparer delegate.</summary>
    private static void SortByAddress(BlockRec[] blocks)
    {
        var keys = new ulong[blocks.Length];
        for (int i = 0; i < blocks.Length; i++) keys[i] = blocks[i].Bytenr;
        Array.Sort(keys, blocks);
    }

    /// <summary>btrfs check's add_root_to_pending: a tree's root block is referenced by its root id; relocation
    /// roots and roots of pre-mixed-backref filesystems are shared by themselves.</summary>
    private (RefRec[], int) RootRefs(BlockRec[] blocks)
    {
        var cmp = Comparer<BlockRec>.Create((a, b) => a.Bytenr.CompareTo(b.Bytenr));
        var refs = new RefRec[scan.RootRefs.Count];
        int n = 0;
        foreach (var (bytenr, tree, sharedSelf) in scan.RootRefs)
        {
            int bi = Array.BinarySearch(blocks, new BlockRec { Bytenr = bytenr }, cmp);
            bool oldRev = bi >= 0 && blocks[bi].BackrefRev < 1;
            refs[n++] = sharedSelf || oldRev
                ? new RefRec { Bytenr = bytenr, Kind = RefKind.SharedBlock, RootOrParent = bytenr, Count = 1, Slot = RefRec.NoSlot }
                : new RefRec { Bytenr = bytenr, Kind = RefKind.TreeBlock, RootOrParent = tree, Count = 1, Slot = RefRec.NoSlot };
        }
        return (refs, n);
    }

    /// <summary>Cut points [0, c1, ..., ulong.MaxValue] that give each range about the same number of expected refs
    /// (quantiles of a sample taken from every sorted segment). One range when there is little to join.</summary>
    private static List<ulong> SplitPoints(List<(RefRec[] Array, int Count)> segments, int parts)
    {
        long total = segments.Sum(s => (long)s.Count);
        var cuts = new List<ulong> { 0 };
        if (parts > 1 && total >= 200_000)
        {
            var sample = new List<ulong>();
            foreach (var (arr, count) in segments)
                for (int k = 1; k < 16; k++) if (count > 0) sample.Add(arr[(int)((long)count * k / 16)].Bytenr);
            sample.Sort();
            for (int p = 1; p < parts; p++)
            {
                ulong c = sample[sample.Count * p / parts];
                if (c > cuts[^1]) cuts.Add(c);
            }
        }
        cuts.Add(ulong.MaxValue);
        return cuts;
    }
}

/// <summary>The join over one address range [Lo, Hi).</summary>
internal sealed class RangeJoin
{
    private readonly CheckContext ctx;
    private readonly TreeScanFacts scan;
    private readonly ulong _lo, _hi;
    private readonly TreeRoot? _extentRoot;
    private FindingBag Findings => ctx.Findings;
    public CheckStats Stats { get; } = new();
    public ExtentRec? FirstExtent { get; private set; }
    public ExtentRec? LastExtent => _anyExtentSeen ? _prevExtent : null;
    /// <summary>Counts the extent leaves joined, for the observer's progress.</summary>
    public ProgressCounter? Progress { get; init; }

    public RangeJoin(CheckContext ctx, ulong lo, ulong hi, List<(RefRec[] Array, int Count)> sortedSegments,
        BlockRec[] blocks, BlockGroupRec[] bgs, TreeRoot? extentRoot)
    {
        this.ctx = ctx;
        scan = ctx.Scan;
        _lo = lo;
        _hi = hi;
        _extentRoot = extentRoot;
        _blocks = blocks;
        _bi = LowerBound(blocks, lo);
        _biEnd = hi == ulong.MaxValue ? blocks.Length : LowerBound(blocks, hi);
        _bgs = bgs;
        _exp = new SortedRefStream(sortedSegments, lo, hi) { OnDuplicateTreeRef = MultipleParents };
        _decoder = new ExtentTreeDecoder(Findings, Stats, ctx.Volume.NodeSize, _groupExtents, _groupFound);
    }

    private static int LowerBound(BlockRec[] a, ulong v)
    {
        int lo = 0, hi = a.Length;
        while (lo < hi) { int m = (lo + hi) >>> 1; if (a[m].Bytenr < v) lo = m + 1; else hi = m; }
        return lo;
    }

    private readonly SortedRefStream _exp;        // expected refs, aggregated, in key order
    private readonly List<RefRec> _groupExp = []; // the current address's expected refs
    private readonly BlockRec[] _blocks;
    private int _bi;            // visited blocks (sorted) and the next one to join
    private readonly int _biEnd;
    private readonly BlockGroupRec[] _bgs;
    private int _gi;
    private ulong _prevEnd;
    private bool _anyGroup;
    private readonly HashSet<ulong> _noExtentReported = [];

    // the group being collected: every extent-tree item whose objectid is _groupBytenr
    private ulong _groupBytenr;
    private readonly List<ExtentRec> _groupExtents = [];
    private readonly List<RefRec> _groupFound = [];
    private readonly ExtentTreeDecoder _decoder;

    private Severity AbsenceSeverity(ulong bytenr) => scan.ExtentItemHidden(bytenr) ? Severity.Warning : Severity.Error;
    private string AbsenceNote(ulong bytenr) => scan.ExtentItemHidden(bytenr) ? " (unverifiable: the extent-tree block that would hold it is unreadable)" : "";

    /// <summary>References under an unreadable block are unknown: "stale" and "leaked" can then only be suspected.</summary>
    private bool Incomplete => scan.Unreadable.Count > 0;
    private Severity Unverifiable => Incomplete ? Severity.Warning : Severity.Error;
    private string UnverifiableNote => Incomplete ? $" (may be a consequence of the {scan.Unreadable.Count} unreadable or invalid block(s))" : "";

    public void Run()
    {
        if (_extentRoot != null)
        {
            // The scan validated these leaves and recorded them in key order: read only those that can hold this range.
            var leaves = scan.ExtentLeaves;
            var streamer = new Streamer(this);
            var volume = ctx.Volume;
            var buffer = new byte[volume.NodeSize]; // one buffer for every leaf: the join allocates nothing per leaf
            for (int i = 0; i < leaves.Length; i++)
            {
                ulong next = i + 1 < leaves.Length ? leaves[i + 1].FirstObjectId : ulong.MaxValue;
                if (next < _lo || leaves[i].FirstObjectId >= _hi) continue;
                ulong bytenr = leaves[i].Bytenr;
                var leaf = volume.ReadInto(bytenr, buffer); // a bad copy 0: the scan found a good one
                if (leaf != null) streamer.Leaf(leaf);
                Progress?.Add();
            }
        }
        FlushGroup();
        Advance(_hi, inclusive: false);
    }

    /// <summary>Two pointers (or a root item and a pointer) that make the same tree back-ref: two parents claim one reference.</summary>
    private void MultipleParents(RefRec agg, List<RefRec> group) =>
        Findings.Add(new Finding(FindingCode.TreeBlockMultipleParents, Severity.Error,
            $"tree block {agg.Bytenr} is referenced {group.Count} times as {agg.Describe()}: from {string.Join(", ", group.Select(x => x.Origin()))}",
            Bytenr: agg.Bytenr, Tree: agg.Tree, Expected: "1", Found: group.Count.ToString()));

    /// <summary>Merges a group's equal found back-refs in place, summing counts; returns the new length.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static int Aggregate(Span<RefRec> sorted)
    {
        int w = 0;
        for (int i = 0; i < sorted.Length;)
        {
            int j = i + 1;
            ulong count = sorted[i].Count;
            while (j < sorted.Length && sorted[j].SameKey(in sorted[i]))
            {
                count += sorted[j].Count;
                j++;
            }
            if (w != i) sorted[w] = sorted[i]; // records move only after a duplicate
            if (j - i > 1) sorted[w].Count = (uint)Math.Min(count, uint.MaxValue);
            w++;
            i = j;
        }
        return w;
    }

    /// <summary>Feeds the extent tree's leaves, in key order, to the join.</summary>
    private sealed class Streamer(RangeJoin join)
    {
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Leaf(TreeBlock block)
        {
            var view = block.View;
            if (!view.IsLeaf) return;
            for (int i = 0; i < view.Count; i++)
            {
                BtrfsKey key;
                ReadOnlySpan<byte> data;
                try { key = view.ItemKey(i); data = view.ItemData(i); }
                catch (BtrfsFormatException) { continue; }
                if (key.ItemType is not (ItemType.ExtentItem or ItemType.MetadataItem or ItemType.TreeBlockRef or ItemType.SharedBlockRef
                    or ItemType.ExtentDataRef or ItemType.SharedDataRef)) continue;
                if (key.ObjectId < join._lo || key.ObjectId >= join._hi) continue;
                join.Item(block.Logical, i, key, data);
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void Item(ulong leaf, int slot, BtrfsKey key, ReadOnlySpan<byte> data)
    {
        if (!_anyGroup || key.ObjectId != _groupBytenr)
        {
            if (_anyGroup && key.ObjectId < _groupBytenr) return; // out of key order: the block validator reported it
            FlushGroup();
            _groupBytenr = key.ObjectId;
            _anyGroup = true;
        }
        if (key.ItemType is ItemType.ExtentItem or ItemType.MetadataItem) _decoder.DecodeExtentItem(leaf, slot, key, data);
        else _decoder.DecodeKeyedRef(leaf, slot, key, data);
    }

    /// <summary>Joins everything known about one extent start: its extent item(s), back-refs, expected refs and block.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void FlushGroup()
    {
        if (!_anyGroup || (_groupExtents.Count == 0 && _groupFound.Count == 0)) return;
        ulong b = _groupBytenr;
        Advance(b, inclusive: false); // everything below b has no extent item
        var found = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_groupFound);
        RefSort.Sort(found);
        _groupExp.Clear();
        _exp.TakeGroup(b, _groupExp);
        var expected = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_groupExp);
        bool hasBlock = _bi < _biEnd && _blocks[_bi].Bytenr == b;

        if (_groupExtents.Count == 0)
        {
            foreach (var f in found)
                Findings.Add(new Finding(FindingCode.KeyedRefWithoutExtentItem, Severity.Error,
                    $"keyed back-ref {f.Describe()} for {f.Bytenr} has no extent item",
                    Bytenr: f.Bytenr, Tree: ObjectIds.ExtentTree, Slot: f.Slot, Key: new BtrfsKey(f.Bytenr, (byte)f.Kind, f.RootOrParent)));
            NoExtent(expected, hasBlock ? _blocks[_bi] : null);
        }
        else
        {
            var x = _groupExtents[0];
            for (int k = 1; k < _groupExtents.Count; k++) Overlap(_groupExtents[k], x);
            if (_anyExtentSeen && x.Bytenr < _prevEnd) Overlap(x, _prevExtent);
            ReportFoundDuplicates(found, x);
            int nf = Aggregate(found);
            bool referenced = expected.Length > 0 || hasBlock;
            // An extent nothing references is reported once, as leaked / orphan, not once more per back-ref.
            ulong sum = Join(expected, found[..nf], x, reportStale: referenced);
            if (sum != x.Refs)
                Findings.Add(new Finding(FindingCode.ExtentRefsMismatch, Severity.Error,
                    $"{(x.IsTreeBlock ? "tree block" : "data extent")} {x.Bytenr}: refs field differs from the sum of its back-refs",
                    Bytenr: x.Bytenr, Tree: ObjectIds.ExtentTree, Slot: x.ItemSlot, Key: x.Key, Expected: sum.ToString(), Found: x.Refs.ToString()));
            if (hasBlock) CheckBlock(_blocks[_bi], x, found[..nf]);
            if (!referenced)
                Findings.Add(x.IsTreeBlock
                    ? new Finding(FindingCode.MetadataExtentLeaked, Unverifiable,
                        $"metadata extent {x.Bytenr} (level {x.Level}) is not a block of any tree, yet has {nf} back-ref(s){UnverifiableNote}",
                        Bytenr: x.Bytenr, Tree: ObjectIds.ExtentTree, Slot: x.ItemSlot, Key: x.Key, Expected: "a tree block", Found: "none")
                    : new Finding(FindingCode.OrphanDataExtentItem, Unverifiable,
                        $"data extent {x.Bytenr} length {x.Length} is referenced by no file extent, yet has {nf} back-ref(s){UnverifiableNote}",
                        Bytenr: x.Bytenr, Tree: ObjectIds.ExtentTree, Slot: x.ItemSlot, Key: x.Key, Expected: "a file extent", Found: "none"));
            foreach (var e in _groupExtents) BlockGroupAccount(e);
            FirstExtent ??= x;
            var last = _groupExtents[^1];
            if (!_anyExtentSeen || last.End > _prevEnd) { _prevEnd = last.End; _prevExtent = last; }
            _anyExtentSeen = true;
        }
        if (hasBlock) _bi++;
        _groupExtents.Clear();
        _groupFound.Clear();
    }

    private bool _anyExtentSeen;
    private ExtentRec _prevExtent;

    public void Overlap(ExtentRec cur, ExtentRec prev) =>
        Findings.Add(new Finding(FindingCode.ExtentOverlap, Severity.Error,
            $"extent item {cur.Key} overlaps extent item {prev.Key} [{prev.Bytenr}, {prev.End})",
            Bytenr: cur.Bytenr, Tree: ObjectIds.ExtentTree, Slot: cur.ItemSlot, Key: cur.Key,
            Expected: $"start >= {prev.End}", Found: cur.Bytenr.ToString()));

    /// <summary>Expected refs and visited blocks below <paramref name="limit"/> (or up to it) have no extent item.</summary>
    private void Advance(ulong limit, bool inclusive)
    {
        while (true)
        {
            ulong eb = _exp.PeekBytenr;
            ulong bb = _bi < _biEnd ? _blocks[_bi].Bytenr : ulong.MaxValue;
            bool any = eb != ulong.MaxValue || _bi < _biEnd;
            if (!any) return;
            ulong next = Math.Min(eb, bb);
            if (inclusive ? next > limit : next >= limit) return;
            _groupExp.Clear();
            if (eb == next) _exp.TakeGroup(next, _groupExp);
            bool hasBlock = _bi < _biEnd && bb == next;
            NoExtent(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_groupExp), hasBlock ? _blocks[_bi] : null);
            if (hasBlock) _bi++;
        }
    }

    /// <summary>References to an address the extent tree has no extent item for.</summary>
    private void NoExtent(ReadOnlySpan<RefRec> expected, BlockRec? block)
    {
        if (block is { } bl)
            Findings.Add(new Finding(FindingCode.TreeBlockNoExtentItem, AbsenceSeverity(bl.Bytenr),
                $"{ObjectIds.TreeName(bl.Tree)}: tree block {bl.Bytenr} (level {bl.Level}, owner {ObjectIds.TreeName(bl.Owner)}) has no METADATA_ITEM or EXTENT_ITEM{AbsenceNote(bl.Bytenr)}",
                Bytenr: bl.Bytenr, Tree: bl.Tree, Expected: "one extent item", Found: "none"));
        foreach (var exp in expected)
        {
            if (exp.IsTreeRef || !_noExtentReported.Add(exp.Bytenr)) continue; // tree blocks are reported per block
            Findings.Add(new Finding(FindingCode.DataExtentNoExtentItem, AbsenceSeverity(exp.Bytenr),
                $"file extent in {exp.Origin()} points to data extent {exp.Bytenr}, which has no extent item{AbsenceNote(exp.Bytenr)}",
                Bytenr: exp.Bytenr, Tree: exp.Tree, Slot: exp.SlotOrNull));
        }
    }

    /// <summary>The same back-ref recorded twice (inline twice, or inline and keyed). For tree blocks this is the
    /// signature of the 2015 delayed-ref merge regression (kernels 4.2/4.3, again 6.10/6.11) that hit BUG_ON in
    /// insert_inline_extent_backref.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void ReportFoundDuplicates(ReadOnlySpan<RefRec> found, ExtentRec x)
    {
        for (int i = 0; i < found.Length;)
        {
            int j = i + 1;
            while (j < found.Length && found[j].SameKey(found[i])) j++;
            if (j - i > 1)
            {
                var r = found[i];
                var places = new List<string>();
                for (int k = i; k < j; k++) places.Add(found[k].Inline ? $"inline at offset {found[k].SizeOrItemOffset} of slot {found[k].Slot}" : $"keyed item in leaf {found[k].Block} slot {found[k].Slot}");
                string where = string.Join(", ", places);
                if (r.IsTreeRef)
                    Findings.Add(new Finding(FindingCode.DuplicateTreeBlockRef, Severity.Error,
                        $"tree block {r.Bytenr}: duplicate {r.Describe()} (refs={x.Refs}, one {(r.Kind == RefKind.TreeBlock ? "owner" : "parent")} expected; {where}): the signature of the delayed-ref merge regression (kernel 4.2/4.3, again 6.10/6.11)",
                        Bytenr: r.Bytenr, Tree: ObjectIds.ExtentTree, Slot: x.ItemSlot, Key: x.Key, Expected: "1", Found: (j - i).ToString()));
                else
                    Findings.Add(new Finding(FindingCode.DuplicateDataRef, Severity.Error,
                        $"data extent {r.Bytenr}: {r.Describe()} is recorded {j - i} times ({where})",
                        Bytenr: r.Bytenr, Tree: ObjectIds.ExtentTree, Slot: x.ItemSlot, Key: x.Key, Expected: "1", Found: (j - i).ToString()));
            }
            i = j;
        }
    }

    /// <summary>Merges one extent's expected and found back-refs (both sorted, aggregated); returns the sum of the found counts.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private ulong Join(ReadOnlySpan<RefRec> expected, ReadOnlySpan<RefRec> found, ExtentRec x, bool reportStale)
    {
        ulong sum = 0;
        int i = 0, j = 0;
        bool typeMismatchReported = false;
        while (i < expected.Length || j < found.Length)
        {
            int c = i >= expected.Length ? 1 : j >= found.Length ? -1 : RefRec.CompareKey(in expected[i], in found[j]);
            if (c <= 0)
            {
                ref readonly var exp = ref expected[i++];
                if (exp.IsTreeRef != x.IsTreeBlock)
                {
                    if (!typeMismatchReported)
                        Findings.Add(new Finding(FindingCode.ExtentTypeMismatch, Severity.Error,
                            $"{(exp.IsTreeRef ? "tree block" : "file extent")} reference to extent {exp.Bytenr} from {exp.Origin()}, whose extent item is {(x.IsTreeBlock ? "a tree block" : "data")}",
                            Bytenr: exp.Bytenr, Tree: exp.Tree, Slot: exp.SlotOrNull, Key: x.Key));
                    typeMismatchReported = true;
                    if (c == 0) sum += found[j++].Count;
                    continue;
                }
                if (!exp.IsTreeRef && x.IsData && exp.SizeOrItemOffset != x.Length && exp.SizeOrItemOffset != (uint)Math.Min(x.Length, uint.MaxValue))
                    Findings.Add(new Finding(FindingCode.DataExtentLengthMismatch, Severity.Error,
                        $"file extents in {exp.Origin()} give a disk_num_bytes for data extent {exp.Bytenr} that differs from its extent item (or from each other)",
                        Bytenr: exp.Bytenr, Tree: exp.Tree, Slot: exp.SlotOrNull, Key: x.Key, Expected: x.Length.ToString(), Found: exp.SizeOrItemOffset.ToString()));
                if (c == 0)
                {
                    ref readonly var fnd = ref found[j++];
                    sum += fnd.Count;
                    if (!exp.IsTreeRef && exp.Count != fnd.Count)
                        Findings.Add(new Finding(FindingCode.DataRefCountMismatch, Severity.Error,
                            $"data extent {exp.Bytenr}: {exp.Describe()} count differs from the file extents that use it",
                            Bytenr: exp.Bytenr, Tree: ObjectIds.ExtentTree, Slot: fnd.Slot, Key: x.Key,
                            Expected: exp.Count.ToString(), Found: fnd.Count.ToString()));
                    continue;
                }
                Findings.Add(new Finding(exp.IsTreeRef ? FindingCode.MissingTreeBlockRef : FindingCode.MissingDataRef, AbsenceSeverity(exp.Bytenr),
                    $"{(exp.IsTreeRef ? "tree block" : "data extent")} {exp.Bytenr} is referenced by {exp.Origin()} but the extent tree has no {exp.Describe()}{AbsenceNote(exp.Bytenr)}",
                    Bytenr: exp.Bytenr, Tree: ObjectIds.ExtentTree, Slot: x.ItemSlot, Key: x.Key,
                    Expected: exp.Describe() + (exp.IsTreeRef ? "" : $" count={exp.Count}"), Found: "none"));
            }
            else
            {
                ref readonly var fnd = ref found[j++];
                sum += fnd.Count;
                if (!reportStale) continue;
                Findings.Add(new Finding(fnd.IsTreeRef ? FindingCode.StaleTreeBlockRef : FindingCode.StaleDataRef, Unverifiable,
                    $"{(fnd.IsTreeRef ? "tree block" : "data extent")} {fnd.Bytenr}: back-ref {fnd.Describe()}{(fnd.IsTreeRef ? "" : $" count={fnd.Count}")} " +
                    $"({(fnd.Inline ? "inline" : "keyed")}) names a {(fnd.Kind is RefKind.SharedBlock or RefKind.SharedData ? "parent" : "root")} that does not reference it{UnverifiableNote}",
                    Bytenr: fnd.Bytenr, Tree: ObjectIds.ExtentTree, Slot: fnd.Slot, Key: x.Key,
                    Expected: "no such back-ref", Found: fnd.Describe()));
            }
        }
        return sum;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void CheckBlock(BlockRec b, ExtentRec x, ReadOnlySpan<RefRec> found)
    {
        if (!x.IsTreeBlock)
        {
            Findings.Add(new Finding(FindingCode.ExtentTypeMismatch, Severity.Error,
                $"tree block {b.Bytenr} of {ObjectIds.TreeName(b.Tree)} has a data extent item",
                Bytenr: b.Bytenr, Tree: b.Tree, Key: x.Key, Expected: "TREE_BLOCK", Found: "DATA"));
            return;
        }
        // btrfs check's check_owner_ref: a block not converted to FULL_BACKREF is still referenced by its owner, so
        // its extent must list TREE_BLOCK_REF root=<header owner>. (Shared blocks whose owner let go become FULL_BACKREF.)
        bool mixedBackref = (ctx.Volume.Super.IncompatFlags & Features.IncompatMixedBackref) != 0;
        if (mixedBackref && !x.FullBackref && b.BackrefRev >= 1 && TreeBlockValidator.OwnerPlausible(b.Tree, b.Owner)) // else reported already
        {
            bool ownerRef = false;
            foreach (var f in found) if (f.Kind == RefKind.TreeBlock && f.RootOrParent == b.Owner) { ownerRef = true; break; }
            if (!ownerRef && !HeldByOwnerTree(b))
                TreeBlockValidator.OwnerHasNoRef(Findings, b.Bytenr, b.Tree, b.Owner, x.Key, AbsenceSeverity(b.Bytenr), AbsenceNote(b.Bytenr));
        }
        if (x.Level != b.Level)
            Findings.Add(new Finding(FindingCode.MetadataLevelMismatch, Severity.Error,
                $"tree block {b.Bytenr} of {ObjectIds.TreeName(b.Tree)}: the extent item's level differs from the block header's",
                Bytenr: b.Bytenr, Tree: ObjectIds.ExtentTree, Slot: x.ItemSlot, Key: x.Key, Expected: b.Level.ToString(), Found: x.Level.ToString()));
        const ulong StripeLen = 64 * 1024; // BTRFS_STRIPE_LEN: the kernel never lets a tree block cross one
        uint ns = ctx.Volume.NodeSize;
        if (ns <= StripeLen && b.Bytenr / StripeLen != (b.Bytenr + ns - 1) / StripeLen)
            Findings.Add(new Finding(FindingCode.MetadataCrossesStripe, Severity.Error,
                $"tree block [{b.Bytenr}, {b.Bytenr + ns}) of {ObjectIds.TreeName(b.Tree)} crosses a 64 KiB stripe boundary",
                Bytenr: b.Bytenr, Tree: b.Tree, Expected: "inside one 64 KiB stripe", Found: $"crosses {(b.Bytenr / StripeLen + 1) * StripeLen}"));
        if (!x.IsMetadataItem && x.Length != ns)
            Findings.Add(new Finding(FindingCode.ExtentTypeMismatch, Severity.Error,
                $"tree block {b.Bytenr}: its EXTENT_ITEM length differs from the nodesize",
                Bytenr: b.Bytenr, Tree: ObjectIds.ExtentTree, Slot: x.ItemSlot, Key: x.Key, Expected: ns.ToString(), Found: x.Length.ToString()));
    }

    /// <summary>btrfs check's check_owner_ref, second half: a block whose owner lists no TREE_BLOCK_REF is still fine
    /// when the owner's tree really holds it (a parent there points at it). Relocation leaves such blocks: merged
    /// into a subvolume from its relocation tree, or left in the relocation tree by an interrupted balance. Rare, so
    /// it searches the owner tree through the block cache.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool HeldByOwnerTree(BlockRec b)
    {
        if (ctx.Volume.ReadTreeBlock(b.Bytenr).Block is not { } block || block.View.FirstKey is not { } first) return false;
        foreach (var root in ctx.Roots)
            if (root.Id == b.Owner && root.Source == RootSource.RootItem && root.Bytenr != b.Bytenr && root.Level > b.Level &&
                TreeSearch.PointsTo(ctx.Volume, root, first, b.Level, b.Bytenr))
                return true;
        return false;
    }

    /// <summary>Extents arrive in address order: find the block group holding each, check its type, and sum.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void BlockGroupAccount(ExtentRec x)
    {
        while (_gi < _bgs.Length && _bgs[_gi].End <= x.Bytenr) _gi++;
        bool inside = _gi < _bgs.Length && _bgs[_gi].Start <= x.Bytenr && x.End <= _bgs[_gi].End;
        ulong want = x.IsTreeBlock ? (ulong)(BlockGroupFlags.Metadata | BlockGroupFlags.System) : (ulong)BlockGroupFlags.Data;
        if (!inside || (_bgs[_gi].Flags & want) == 0)
        {
            string where = inside ? $"block group [{_bgs[_gi].Start}, {_bgs[_gi].End}) of type {((BlockGroupFlags)_bgs[_gi].Flags).Describe()}" : "no block group";
            Findings.Add(new Finding(FindingCode.ExtentOutsideBlockGroup, scan.HiddenExtentRanges.Count > 0 ? Severity.Warning : Severity.Error,
                $"{(x.IsTreeBlock ? "metadata" : "data")} extent [{x.Bytenr}, {x.End}) lies in {where}",
                Bytenr: x.Bytenr, Tree: ObjectIds.ExtentTree, Slot: x.ItemSlot, Key: x.Key,
                Expected: x.IsTreeBlock ? "a METADATA or SYSTEM block group" : "a DATA block group", Found: inside ? ((BlockGroupFlags)_bgs[_gi].Flags).Describe() : "none"));
        }
        if (inside) Interlocked.Add(ref _bgs[_gi].Sum, x.Length); // a block group may straddle two ranges
    }

    public static void CheckBlockGroupTotals(CheckContext ctx, BlockGroupRec[] _bgs)
    {
        var scan = ctx.Scan;
        var findings = ctx.Findings;
        // with part of the extent (or block group) tree unreadable, sums over it are incomplete: say so, don't assert
        var sev = scan.HiddenExtentRanges.Count > 0 ? Severity.Warning : Severity.Error;
        string note = scan.HiddenExtentRanges.Count > 0 ? " (unverifiable: part of the extent tree is unreadable)" : "";
        ulong total = 0;
        var chunks = scan.Chunks;
        foreach (var bg in _bgs)
        {
            total += bg.Used;
            var key = new BtrfsKey(bg.Start, (byte)ItemType.BlockGroupItem, bg.Length);
            if (bg.Sum != bg.Used)
                findings.Add(new Finding(FindingCode.BlockGroupUsedMismatch, sev,
                    $"block group [{bg.Start}, {bg.End}) used differs from the sum of its extents{note}",
                    Bytenr: bg.Start, Tree: ObjectIds.ExtentTree, Slot: bg.Slot, Key: key, Expected: bg.Sum.ToString(), Found: bg.Used.ToString()));
            var chunk = chunks.Find(bg.Start);
            if (chunk == null || chunk.Logical != bg.Start || chunk.Length != bg.Length || (ulong)chunk.Type != bg.Flags)
                findings.Add(new Finding(FindingCode.BlockGroupNoChunk, Severity.Error,
                    $"block group [{bg.Start}, {bg.End}) {((BlockGroupFlags)bg.Flags).Describe()} has no chunk with the same range and type",
                    Bytenr: bg.Start, Tree: ObjectIds.ExtentTree, Slot: bg.Slot, Key: key,
                    Expected: "a matching chunk", Found: chunk == null ? "none" : $"chunk [{chunk.Logical}, {chunk.End}) {chunk.Type.Describe()}"));
        }
        ulong bytesUsed = ctx.Volume.ExpectedBytesUsed;
        string whose = ctx.Volume.RootTree.BackupIndex is { } bi ? $"backup root {bi}'s" : "superblock";
        if (_bgs.Length > 0 && total != bytesUsed)
            findings.Add(new Finding(FindingCode.SuperBytesUsedMismatch, sev,
                $"{whose} bytes_used differs from the sum of the block groups' used{note}",
                Bytenr: (ulong)ctx.Volume.ChosenCopy.Offset, Expected: total.ToString(), Found: bytesUsed.ToString()));
    }
}
