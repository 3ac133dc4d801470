using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;

namespace BtrfsRefcheck.Checks;

/// <summary>Compares what the trees really reference (expected) with what the extent tree records (found):
/// both sides become flat sorted lists of <see cref="RefRec"/> and are merged in one linear pass.</summary>
internal sealed class RefAnalysis(CheckContext ctx, ReferencePass pass)
{
    private ExtentRec[] _extents = [];
    private FindingBag F => ctx.Findings;

    /// <summary>References under an unreadable block are unknown: "stale" and "leaked" can then only be suspected.</summary>
    private bool Incomplete => pass.Unreadable.Count > 0;
    private Severity Unverifiable => Incomplete ? Severity.Warning : Severity.Error;
    private string UnverifiableNote => Incomplete ? $" (may be a consequence of the {pass.Unreadable.Count} unreadable block(s))" : "";

    public void Run()
    {
        _extents = pass.Extents;
        Array.Sort(_extents, (a, b) => a.Bytenr != b.Bytenr ? a.Bytenr.CompareTo(b.Bytenr) : a.Length.CompareTo(b.Length));
        CheckOverlaps();
        var expected = BuildExpected();
        var found = pass.Found;
        Array.Sort(found, RefRec.CompareKey);
        ReportFoundDuplicates(found);
        Merge(Aggregate(expected, reportMultipleParents: true), Aggregate(found, reportMultipleParents: false));
        CheckBlocks();
        CheckExtentTotals();
        CheckBlockGroups();
    }

    private int FindExtent(ulong bytenr)
    {
        int lo = 0, hi = _extents.Length - 1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >>> 1;
            ulong b = _extents[mid].Bytenr;
            if (b == bytenr)
            {
                while (mid > 0 && _extents[mid - 1].Bytenr == bytenr) mid--;
                return mid;
            }
            if (b < bytenr) lo = mid + 1; else hi = mid - 1;
        }
        return -1;
    }

    private void CheckOverlaps()
    {
        for (int i = 1; i < _extents.Length; i++)
        {
            ref var prev = ref _extents[i - 1];
            ref var cur = ref _extents[i];
            if (cur.Bytenr < prev.End)
                F.Add(new Finding(FindingCode.ExtentOverlap, Severity.Error,
                    $"extent item {cur.Key} overlaps extent item {prev.Key} [{prev.Bytenr}, {prev.End})",
                    Bytenr: cur.Bytenr, Tree: ObjectIds.ExtentTree, Slot: cur.ItemSlot, Key: cur.Key,
                    Expected: $"start >= {prev.End}", Found: cur.Bytenr.ToString()));
        }
    }

    private RefRec[] BuildExpected()
    {
        var blocks = pass.Blocks;
        Array.Sort(blocks, (a, b) => a.Bytenr.CompareTo(b.Bytenr));
        var list = new List<RefRec>(pass.Ptrs.Length + pass.Data.Length + pass.RootRefs.Count);
        foreach (var (bytenr, tree, sharedSelf) in pass.RootRefs)
        {
            // btrfs check's add_root_to_pending: relocation roots and pre-mixed-backref roots are shared by themselves.
            int bi = Array.BinarySearch(blocks, new BlockRec { Bytenr = bytenr }, Comparer<BlockRec>.Create((a, b) => a.Bytenr.CompareTo(b.Bytenr)));
            bool oldRev = bi >= 0 && blocks[bi].BackrefRev < 1;
            list.Add(sharedSelf || oldRev
                ? new RefRec { Bytenr = bytenr, Kind = RefKind.SharedBlock, A = bytenr, Count = 1, Tree = tree, Slot = -1 }
                : new RefRec { Bytenr = bytenr, Kind = RefKind.TreeBlock, A = tree, Count = 1, Tree = tree, Slot = -1 });
        }
        foreach (var p in pass.Ptrs)
        {
            bool full = FindExtent(p.Parent) is var i && i >= 0 && _extents[i].FullBackref;
            list.Add(full
                ? new RefRec { Bytenr = p.Child, Kind = RefKind.SharedBlock, A = p.Parent, Count = 1, Where = p.Parent, Tree = p.Tree, Slot = p.Slot }
                : new RefRec { Bytenr = p.Child, Kind = RefKind.TreeBlock, A = p.ParentOwner, Count = 1, Where = p.Parent, Tree = p.Tree, Slot = p.Slot });
        }
        foreach (var d in pass.Data)
        {
            bool full = FindExtent(d.Leaf) is var i && i >= 0 && _extents[i].FullBackref;
            list.Add(full
                ? new RefRec { Bytenr = d.Disk, Kind = RefKind.SharedData, A = d.Leaf, Count = 1, Where = d.Leaf, Tree = d.Tree, Slot = d.Slot }
                : new RefRec { Bytenr = d.Disk, Kind = RefKind.ExtentData, A = d.LeafOwner, ObjectId = d.Inode, Offset = d.Offset, Count = 1, Where = d.Leaf, Tree = d.Tree, Slot = d.Slot });
            int e = FindExtent(d.Disk);
            if (e >= 0 && _extents[e].IsData && _extents[e].Length != d.DiskLen)
                F.Add(new Finding(FindingCode.DataExtentLengthMismatch, Severity.Error,
                    $"{ObjectIds.TreeName(d.Tree)}: file extent of inode {d.Inode} in leaf {d.Leaf} slot {d.Slot} gives disk_num_bytes that differ from the extent item",
                    Bytenr: d.Disk, Tree: d.Tree, Slot: d.Slot, Expected: _extents[e].Length.ToString(), Found: d.DiskLen.ToString()));
        }
        var arr = list.ToArray();
        Array.Sort(arr, RefRec.CompareKey);
        return arr;
    }

    /// <summary>The same tree back-ref recorded twice (inline twice, or inline and keyed): the signature of the
    /// 2015 delayed-ref merge regression (kernels 4.2/4.3, again 6.10/6.11) that hit BUG_ON in insert_inline_extent_backref.</summary>
    private void ReportFoundDuplicates(RefRec[] found)
    {
        for (int i = 0; i < found.Length;)
        {
            int j = i + 1;
            while (j < found.Length && found[j].SameKey(found[i])) j++;
            if (j - i > 1)
            {
                var r = found[i];
                int e = FindExtent(r.Bytenr);
                ulong refs = e >= 0 ? _extents[e].Refs : 0;
                string where = string.Join(", ", found[i..j].Select(x => x.Inline ? $"inline in slot {x.Slot}" : $"keyed item in leaf {x.Where} slot {x.Slot}"));
                if (r.IsTreeRef)
                    F.Add(new Finding(FindingCode.DuplicateTreeBlockRef, Severity.Error,
                        $"tree block {r.Bytenr}: duplicate {r.Describe()} (refs={refs}, one {(r.Kind == RefKind.TreeBlock ? "owner" : "parent")} expected; {where}): the signature of the delayed-ref merge regression (kernel 4.2/4.3, again 6.10/6.11)",
                        Bytenr: r.Bytenr, Tree: ObjectIds.ExtentTree, Slot: e >= 0 ? _extents[e].ItemSlot : r.Slot, Key: e >= 0 ? _extents[e].Key : null,
                        Expected: "1", Found: (j - i).ToString()));
                else
                    F.Add(new Finding(FindingCode.DuplicateDataRef, Severity.Error,
                        $"data extent {r.Bytenr}: {r.Describe()} is recorded {j - i} times ({where})",
                        Bytenr: r.Bytenr, Tree: ObjectIds.ExtentTree, Slot: e >= 0 ? _extents[e].ItemSlot : r.Slot, Key: e >= 0 ? _extents[e].Key : null,
                        Expected: "1", Found: (j - i).ToString()));
            }
            i = j;
        }
    }

    /// <summary>Merges equal keys, summing counts. Expected tree refs must be unique: two pointers that make the
    /// same back-ref mean two parents claim one reference.</summary>
    private RefRec[] Aggregate(RefRec[] sorted, bool reportMultipleParents)
    {
        var outList = new List<RefRec>(sorted.Length);
        for (int i = 0; i < sorted.Length;)
        {
            var agg = sorted[i];
            int j = i + 1;
            while (j < sorted.Length && sorted[j].SameKey(agg)) { agg.Count += sorted[j].Count; j++; }
            if (reportMultipleParents && agg.IsTreeRef && j - i > 1)
                F.Add(new Finding(FindingCode.TreeBlockMultipleParents, Severity.Error,
                    $"tree block {agg.Bytenr} is referenced {j - i} times as {agg.Describe()}: from {string.Join(", ", sorted[i..j].Select(x => x.Where == 0 ? $"root item of {ObjectIds.TreeName(x.Tree)}" : $"block {x.Where} slot {x.Slot}"))}",
                    Bytenr: agg.Bytenr, Tree: agg.Tree, Expected: "1", Found: (j - i).ToString()));
            outList.Add(agg);
            i = j;
        }
        return outList.ToArray();
    }

    private void Merge(RefRec[] expected, RefRec[] found)
    {
        int i = 0, j = 0;
        var noExtentReported = new HashSet<ulong>();
        while (i < expected.Length || j < found.Length)
        {
            int c = i >= expected.Length ? 1 : j >= found.Length ? -1 : RefRec.CompareKey(expected[i], found[j]);
            if (c == 0)
            {
                var exp = expected[i++];
                var fnd = found[j++];
                int e = FindExtent(exp.Bytenr);
                if (e >= 0) { _extents[e].Referenced = true; _extents[e].FoundRefs += fnd.Count; }
                if (!exp.IsTreeRef && exp.Count != fnd.Count)
                    F.Add(new Finding(FindingCode.DataRefCountMismatch, Severity.Error,
                        $"data extent {exp.Bytenr}: {exp.Describe()} count differs from the file extents that use it",
                        Bytenr: exp.Bytenr, Tree: ObjectIds.ExtentTree, Slot: fnd.Slot, Key: e >= 0 ? _extents[e].Key : null,
                        Expected: exp.Count.ToString(), Found: fnd.Count.ToString()));
            }
            else if (c < 0)
            {
                var exp = expected[i++];
                int e = FindExtent(exp.Bytenr);
                if (e < 0)
                {
                    if (!exp.IsTreeRef && noExtentReported.Add(exp.Bytenr))
                        F.Add(new Finding(FindingCode.DataExtentNoExtentItem, Severity.Error,
                            $"{ObjectIds.TreeName(exp.Tree)}: file extent in leaf {exp.Where} slot {exp.Slot} points to data extent {exp.Bytenr}, which has no extent item",
                            Bytenr: exp.Bytenr, Tree: exp.Tree, Slot: exp.Slot));
                    continue; // tree blocks without an extent item are reported per block
                }
                _extents[e].Referenced = true;
                if (exp.IsTreeRef != _extents[e].IsTreeBlock)
                {
                    F.Add(new Finding(FindingCode.ExtentTypeMismatch, Severity.Error,
                        $"{(exp.IsTreeRef ? "tree block" : "file extent")} reference to extent {exp.Bytenr}, whose extent item is {(_extents[e].IsTreeBlock ? "a tree block" : "data")}",
                        Bytenr: exp.Bytenr, Tree: exp.Tree, Slot: exp.Slot, Key: _extents[e].Key));
                    continue;
                }
                string from = exp.Where == 0 ? $"the root item of {ObjectIds.TreeName(exp.Tree)}" : $"{ObjectIds.TreeName(exp.Tree)} block {exp.Where} slot {exp.Slot}";
                F.Add(new Finding(exp.IsTreeRef ? FindingCode.MissingTreeBlockRef : FindingCode.MissingDataRef, Severity.Error,
                    $"{(exp.IsTreeRef ? "tree block" : "data extent")} {exp.Bytenr} is referenced by {from} but the extent tree has no {exp.Describe()}",
                    Bytenr: exp.Bytenr, Tree: ObjectIds.ExtentTree, Slot: _extents[e].ItemSlot, Key: _extents[e].Key,
                    Expected: exp.Describe() + (exp.IsTreeRef ? "" : $" count={exp.Count}"), Found: "none"));
            }
            else
            {
                var fnd = found[j++];
                int e = FindExtent(fnd.Bytenr);
                if (e < 0)
                {
                    F.Add(new Finding(FindingCode.KeyedRefWithoutExtentItem, Severity.Error,
                        $"keyed back-ref {fnd.Describe()} for {fnd.Bytenr} has no extent item",
                        Bytenr: fnd.Bytenr, Tree: ObjectIds.ExtentTree, Slot: fnd.Slot, Key: new BtrfsKey(fnd.Bytenr, (byte)fnd.Kind, fnd.A)));
                    continue;
                }
                _extents[e].FoundRefs += fnd.Count;
                F.Add(new Finding(fnd.IsTreeRef ? FindingCode.StaleTreeBlockRef : FindingCode.StaleDataRef, Unverifiable,
                    $"{(fnd.IsTreeRef ? "tree block" : "data extent")} {fnd.Bytenr}: back-ref {fnd.Describe()}{(fnd.IsTreeRef ? "" : $" count={fnd.Count}")} " +
                    $"({(fnd.Inline ? "inline" : "keyed")}) names a {(fnd.Kind is RefKind.SharedBlock or RefKind.SharedData ? "parent" : "root")} that does not reference it{UnverifiableNote}",
                    Bytenr: fnd.Bytenr, Tree: ObjectIds.ExtentTree, Slot: fnd.Slot, Key: _extents[e].Key,
                    Expected: "no such back-ref", Found: fnd.Describe()));
            }
        }
    }

    private void CheckBlocks()
    {
        var blocks = pass.Blocks;
        foreach (var b in blocks)
        {
            int e = FindExtent(b.Bytenr);
            if (e < 0)
            {
                F.Add(new Finding(FindingCode.TreeBlockNoExtentItem, Severity.Error,
                    $"{ObjectIds.TreeName(b.Tree)}: tree block {b.Bytenr} (level {b.Level}, owner {ObjectIds.TreeName(b.Owner)}) has no METADATA_ITEM or EXTENT_ITEM",
                    Bytenr: b.Bytenr, Tree: b.Tree, Expected: "one extent item", Found: "none"));
                continue;
            }
            ref var x = ref _extents[e];
            x.Referenced = true;
            if (!x.IsTreeBlock) continue; // reported as ExtentTypeMismatch through its reference
            if (x.Level != b.Level)
                F.Add(new Finding(FindingCode.MetadataLevelMismatch, Severity.Error,
                    $"tree block {b.Bytenr} of {ObjectIds.TreeName(b.Tree)}: the extent item's level differs from the block header's",
                    Bytenr: b.Bytenr, Tree: ObjectIds.ExtentTree, Slot: x.ItemSlot, Key: x.Key, Expected: b.Level.ToString(), Found: x.Level.ToString()));
            const ulong StripeLen = 64 * 1024; // BTRFS_STRIPE_LEN: the kernel never lets a tree block cross one
            if (ctx.Volume.NodeSize <= StripeLen && b.Bytenr / StripeLen != (b.Bytenr + ctx.Volume.NodeSize - 1) / StripeLen)
                F.Add(new Finding(FindingCode.MetadataCrossesStripe, Severity.Error,
                    $"tree block [{b.Bytenr}, {b.Bytenr + ctx.Volume.NodeSize}) of {ObjectIds.TreeName(b.Tree)} crosses a 64 KiB stripe boundary",
                    Bytenr: b.Bytenr, Tree: b.Tree, Expected: "inside one 64 KiB stripe", Found: $"crosses {(b.Bytenr / StripeLen + 1) * StripeLen}"));
            if (!x.IsMetadataItem && x.Length != ctx.Volume.NodeSize)
                F.Add(new Finding(FindingCode.ExtentTypeMismatch, Severity.Error,
                    $"tree block {b.Bytenr}: its EXTENT_ITEM length differs from the nodesize",
                    Bytenr: b.Bytenr, Tree: ObjectIds.ExtentTree, Slot: x.ItemSlot, Key: x.Key, Expected: ctx.Volume.NodeSize.ToString(), Found: x.Length.ToString()));
        }
    }

    private void CheckExtentTotals()
    {
        foreach (ref var x in _extents.AsSpan())
        {
            if (x.FoundRefs != x.Refs)
                F.Add(new Finding(FindingCode.ExtentRefsMismatch, Severity.Error,
                    $"{(x.IsTreeBlock ? "tree block" : "data extent")} {x.Bytenr}: refs field differs from the sum of its back-refs",
                    Bytenr: x.Bytenr, Tree: ObjectIds.ExtentTree, Slot: x.ItemSlot, Key: x.Key, Expected: x.FoundRefs.ToString(), Found: x.Refs.ToString()));
            if (x.Referenced) continue;
            if (x.IsTreeBlock)
                F.Add(new Finding(FindingCode.MetadataExtentLeaked, Unverifiable,
                    $"metadata extent {x.Bytenr} (level {x.Level}) is not a block of any tree{UnverifiableNote}",
                    Bytenr: x.Bytenr, Tree: ObjectIds.ExtentTree, Slot: x.ItemSlot, Key: x.Key, Expected: "a tree block", Found: "none"));
            else
                F.Add(new Finding(FindingCode.OrphanDataExtentItem, Unverifiable,
                    $"data extent {x.Bytenr} length {x.Length} is referenced by no file extent{UnverifiableNote}",
                    Bytenr: x.Bytenr, Tree: ObjectIds.ExtentTree, Slot: x.ItemSlot, Key: x.Key, Expected: "a file extent", Found: "none"));
        }
    }

    private void CheckBlockGroups()
    {
        var bgs = pass.BlockGroups;
        Array.Sort(bgs, (a, b) => a.Start.CompareTo(b.Start));
        ulong total = 0;
        int g = 0;
        foreach (var x in _extents)
        {
            while (g < bgs.Length && bgs[g].End <= x.Bytenr) g++;
            bool inside = g < bgs.Length && bgs[g].Start <= x.Bytenr && x.End <= bgs[g].End;
            ulong want = x.IsTreeBlock ? (ulong)(BlockGroupFlags.Metadata | BlockGroupFlags.System) : (ulong)BlockGroupFlags.Data;
            if (!inside || (bgs[g].Flags & want) == 0)
            {
                string where = inside ? $"block group [{bgs[g].Start}, {bgs[g].End}) of type {((BlockGroupFlags)bgs[g].Flags).Describe()}" : "no block group";
                F.Add(new Finding(FindingCode.ExtentOutsideBlockGroup, Severity.Error,
                    $"{(x.IsTreeBlock ? "metadata" : "data")} extent [{x.Bytenr}, {x.End}) lies in {where}",
                    Bytenr: x.Bytenr, Tree: ObjectIds.ExtentTree, Slot: x.ItemSlot, Key: x.Key,
                    Expected: x.IsTreeBlock ? "a METADATA or SYSTEM block group" : "a DATA block group", Found: inside ? ((BlockGroupFlags)bgs[g].Flags).Describe() : "none"));
            }
            if (inside) bgs[g].Sum += x.Length;
        }
        foreach (var bg in bgs)
        {
            total += bg.Used;
            var key = new BtrfsKey(bg.Start, (byte)ItemType.BlockGroupItem, bg.Length);
            if (bg.Sum != bg.Used)
                F.Add(new Finding(FindingCode.BlockGroupUsedMismatch, Severity.Error,
                    $"block group [{bg.Start}, {bg.End}) used differs from the sum of its extents",
                    Bytenr: bg.Start, Tree: ObjectIds.ExtentTree, Slot: bg.Slot, Key: key, Expected: bg.Sum.ToString(), Found: bg.Used.ToString()));
            var chunk = (pass.Chunks.Chunks.Count > 0 ? pass.Chunks : ctx.Volume.Chunks).Find(bg.Start);
            if (chunk == null || chunk.Logical != bg.Start || chunk.Length != bg.Length || (ulong)chunk.Type != bg.Flags)
                F.Add(new Finding(FindingCode.BlockGroupNoChunk, Severity.Error,
                    $"block group [{bg.Start}, {bg.End}) {((BlockGroupFlags)bg.Flags).Describe()} has no chunk with the same range and type",
                    Bytenr: bg.Start, Tree: ObjectIds.ExtentTree, Slot: bg.Slot, Key: key,
                    Expected: "a matching chunk", Found: chunk == null ? "none" : $"chunk [{chunk.Logical}, {chunk.End}) {chunk.Type.Describe()}"));
        }
        ulong bytesUsed = ctx.Volume.ExpectedBytesUsed;
        string whose = ctx.Volume.RootTree.BackupIndex is { } bi ? $"backup root {bi}'s" : "superblock";
        if (bgs.Length > 0 && total != bytesUsed)
            F.Add(new Finding(FindingCode.SuperBytesUsedMismatch, Severity.Error,
                $"{whose} bytes_used differs from the sum of the block groups' used",
                Bytenr: (ulong)ctx.Volume.ChosenCopy.Offset, Expected: total.ToString(), Found: bytesUsed.ToString()));
    }
}
