using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Format.Items;
using BtrfsRefcheck.Trees;
using BtrfsRefcheck.Volume;

namespace BtrfsRefcheck.Checks;

public enum ExplainedKind { TreeBlock, Data, Nothing }

/// <summary>A back-ref the extent tree holds (inline in the extent item, or a keyed item).</summary>
public sealed record FoundBackRef(int Index, RefKind Kind, ulong RootOrParent, ulong ObjectId, ulong Offset, uint Count, bool Inline, ulong Leaf, int Slot, int ItemOffset)
{
    public string Describe() => Key.Describe();
    internal RefRec Key => new() { Bytenr = 0, Kind = Kind, RootOrParent = RootOrParent, ObjectId = ObjectId, Offset = Offset };
}

/// <summary>A real reference: a parent pointer or a root item (tree block), or file extent items (data), and the back-ref
/// it needs, decided as the check decides it (<see cref="TreeScanPass"/>, <see cref="ExtentJoin"/>).</summary>
/// <param name="Edge">The parent pointer (tree block), null for a root item.</param>
/// <param name="RootTree">The tree whose root item names the block (tree block root), null otherwise.</param>
/// <param name="Files">Data: the file extent items of one leaf that make this one back-ref.</param>
/// <param name="NeedsNone">A log tree's reference: log blocks have no extent items and need no back-ref.</param>
public sealed record RealReference(int Index, RefKind Kind, ulong RootOrParent, ulong ObjectId, ulong Offset, uint Count,
    PointerEdge? Edge, TreeRoot? RootTree, IReadOnlyList<FileExtentUse> Files, bool ParentFullBackref, bool NeedsNone)
{
    public string Describe() => NeedsNone ? "no back-ref (log tree)"
        : new RefRec { Kind = Kind, RootOrParent = RootOrParent, ObjectId = ObjectId, Offset = Offset }.Describe() + (Kind is RefKind.ExtentData or RefKind.SharedData ? $" count={Count}" : "");
}

/// <summary>One step of a path: the node at <see cref="PointerEdge.Parent"/> points down from its slot.</summary>
/// <param name="RootId">The tree whose root block starts the path.</param>
/// <param name="Steps">Top-down: the root block's pointer first, the pointer to the block last (empty when the block is the root).</param>
/// <param name="Reference">Which real reference (index) the path's last step is.</param>
public sealed record RefPath(TreeRoot Root, IReadOnlyList<PointerEdge> Steps, int Reference);

/// <summary>Back-refs and real references with the same key, side by side.</summary>
public sealed record RefMatch(string Describe, RefKind Kind, ulong RootOrParent, ulong ObjectId, ulong Offset, ulong FoundCount, ulong ExpectedCount,
    IReadOnlyList<int> Found, IReadOnlyList<int> References)
{
    /// <summary>"ok", "unjustified" (more back-ref count than references: a duplicate or a stale back-ref), "missing".</summary>
    public string Status => FoundCount == ExpectedCount ? "ok" : FoundCount > ExpectedCount ? "unjustified" : "missing";
}

/// <summary>A path name of an inode inside one tree, where INODE_REFs lead up to the tree's root directory.</summary>
public sealed record InodePath(ulong Tree, ulong Inode, string? Path);

/// <summary><c>who-refs</c>: everything that references one address, beside what the extent tree says about it.
/// Found back-refs come from the extent tree (a search, not a walk); real references from one scan of the trees
/// (<see cref="ReferenceScan"/>); each reference needs the back-ref the check expects (a pointer from a FULL_BACKREF
/// parent needs SHARED_BLOCK_REF parent=that block, any other TREE_BLOCK_REF root=the parent's header owner; a root
/// item TREE_BLOCK_REF root=its tree; file extents EXTENT_DATA_REF root=the leaf's owner, or SHARED_DATA_REF
/// parent=the leaf when it is FULL_BACKREF).</summary>
public sealed class BlockReferences
{
    public const int MaxPaths = 1000;

    public required ulong Bytenr { get; init; }
    public ExplainedKind Kind { get; private set; }
    /// <summary>When the address lies inside a data extent: that extent's start (what is explained).</summary>
    public ulong ExtentStart { get; private set; }
    public string? ExtentItem { get; private set; }
    public ulong? ExtentRefs { get; private set; }
    public ulong? ExtentGeneration { get; private set; }
    public ulong? ExtentFlags { get; private set; }
    public ulong ExtentLength { get; private set; }
    public (ulong Leaf, int Slot)? ExtentItemAt { get; private set; }
    public int? ExtentLevel { get; private set; }

    /// <summary>Tree block: its header as read (null when unreadable).</summary>
    public (ulong Owner, ulong Generation, int Level, BtrfsKey? FirstKey, int Copy)? Header { get; private set; }
    public string? Unreadable { get; private set; }

    public List<FoundBackRef> Found { get; } = [];
    public List<RealReference> References { get; } = [];
    public List<RefPath> Paths { get; } = [];
    public bool PathsTruncated { get; private set; }
    public List<RefMatch> Matches { get; } = [];
    public Dictionary<(ulong Tree, ulong Inode), InodePath> Names { get; } = [];
    /// <summary>Per leaf holding file extents: the trees whose search for the leaf's first key lands on it.</summary>
    public Dictionary<ulong, List<ulong>> LeafTrees { get; } = [];
    public long BlocksScanned { get; private set; }
    public long UnreadableBlocks { get; private set; }
    public List<string> Notes { get; } = [];

    public bool Consistent => Matches.All(m => m.Status == "ok");

    public static BlockReferences Explain(BtrfsVolume volume, ulong bytenr, int? degree = null)
    {
        var r = new BlockReferences { Bytenr = bytenr, ExtentStart = bytenr };
        var roots = TreeRoots.Enumerate(volume, new FindingBag());
        var extentRoot = roots.FirstOrDefault(t => t.Id == ObjectIds.ExtentTree && t.Source == RootSource.RootItem);
        if (extentRoot == null) r.Notes.Add("the filesystem has no extent tree: back-refs cannot be shown");
        else r.ReadExtentItems(volume, extentRoot, bytenr);

        bool treeBlock = r.ExtentFlags is { } f ? (f & (ulong)Format.Items.ExtentFlags.TreeBlock) != 0 : false;
        bool data = r.ExtentFlags is { } g && (g & (ulong)Format.Items.ExtentFlags.Data) != 0;
        TreeBlock? block = null;
        if (!data)
        {
            var read = volume.ReadTreeBlock(r.ExtentStart);
            block = read.Block;
            if (block != null) treeBlock = true;
            else if (treeBlock) r.Unreadable = read.Describe();
        }
        if (treeBlock)
        {
            r.Kind = ExplainedKind.TreeBlock;
            int level = block?.Level ?? r.ExtentLevel ?? 0;
            if (block != null) r.Header = (block.Owner, block.Generation, block.Level, block.View.FirstKey, block.Copy);
            r.TreeBlockReferences(volume, roots, extentRoot, level, block, degree);
        }
        else
        {
            r.Kind = data || r.ExtentItem != null ? ExplainedKind.Data : ExplainedKind.Nothing;
            if (r.Kind == ExplainedKind.Nothing) r.Notes.Add($"no extent item and no tree block at {bytenr}: looking for file extents that point there");
            r.DataReferences(volume, roots, extentRoot, degree);
            if (r.Kind == ExplainedKind.Nothing && r.References.Count > 0) r.Kind = ExplainedKind.Data;
        }
        r.Match();
        return r;
    }

    /// <summary>The extent item at the address (or the data extent holding it) and its keyed back-refs.</summary>
    private void ReadExtentItems(BtrfsVolume volume, TreeRoot extentRoot, ulong bytenr)
    {
        var items = TreeSearch.Range(volume, extentRoot, new BtrfsKey(bytenr, 0, 0), new BtrfsKey(bytenr, 255, ulong.MaxValue));
        if (!items.Any(i => i.Key.ItemType is ItemType.ExtentItem or ItemType.MetadataItem))
        {
            // Inside a data extent? Data extents are at most 128 MiB; look back that far for the one that holds it.
            const ulong MaxExtent = 128UL << 20;
            var before = TreeSearch.Range(volume, extentRoot, new BtrfsKey(bytenr - Math.Min(bytenr, MaxExtent), 0, 0), new BtrfsKey(bytenr, 0, 0));
            var holder = before.LastOrDefault(i => i.Key.ItemType == ItemType.ExtentItem && i.Key.ObjectId < bytenr && i.Key.ObjectId + i.Key.Offset > bytenr);
            if (holder.Data == null) return;
            ExtentStart = holder.Key.ObjectId;
            Notes.Add($"{bytenr} lies inside the extent [{ExtentStart}, {ExtentStart + holder.Key.Offset}): explaining that extent");
            items = TreeSearch.Range(volume, extentRoot, new BtrfsKey(ExtentStart, 0, 0), new BtrfsKey(ExtentStart, 255, ulong.MaxValue));
        }
        var extents = new List<ExtentRec>();
        var found = new List<RefRec>();
        var decoder = new ExtentTreeDecoder(new FindingBag(), new CheckStats(), volume.NodeSize, extents, found);
        foreach (var it in items)
        {
            if (it.Key.ItemType is ItemType.ExtentItem or ItemType.MetadataItem) decoder.DecodeExtentItem(it.Leaf, it.Slot, it.Key, it.Data);
            else if (it.Key.ItemType is ItemType.TreeBlockRef or ItemType.SharedBlockRef or ItemType.ExtentDataRef or ItemType.SharedDataRef)
                decoder.DecodeKeyedRef(it.Leaf, it.Slot, it.Key, it.Data);
        }
        if (extents.Count > 0)
        {
            var x = extents[0];
            ExtentItem = x.Key.ToString();
            ExtentRefs = x.Refs;
            ExtentFlags = x.Flags;
            ExtentLength = x.Length;
            ExtentItemAt = (x.ItemBlock, x.ItemSlot);
            if (x.IsTreeBlock) ExtentLevel = x.Level;
            var item = items.First(i => i.Key == x.Key);
            if (item.Data.Length >= Format.Items.ExtentItem.FixedSize) ExtentGeneration = new ExtentItem(item.Data, item.Key.ItemType).Generation;
            if (extents.Count > 1) Notes.Add($"{extents.Count} extent items at {ExtentStart}: showing the first");
        }
        foreach (var f in found)
            Found.Add(new FoundBackRef(Found.Count + 1, f.Kind, f.RootOrParent, f.ObjectId, f.Offset, f.Count, f.Inline, f.Block, f.Slot, f.Inline ? (int)f.SizeOrItemOffset : -1));
    }

    private void TreeBlockReferences(BtrfsVolume volume, List<TreeRoot> roots, TreeRoot? extentRoot, int level, TreeBlock? block, int? degree)
    {
        ulong target = ExtentStart;
        var scan = ReferenceScan.Run(volume, roots, target, level, degree: degree);
        BlocksScanned = scan.Blocks;
        UnreadableBlocks = scan.Unreadable;
        var byChild = scan.Edges.GroupBy(e => e.Child).ToDictionary(g => g.Key, g => g.ToList());
        var rootsAt = roots.GroupBy(t => t.Bytenr).ToDictionary(g => g.Key, g => g.ToList());
        int backrefRev = block == null ? 1 : new Format.Header(block.View.Bytes).BackrefRev;
        var fullBackref = new Dictionary<ulong, bool>();
        bool FullBackref(ulong parent)
        {
            if (fullBackref.TryGetValue(parent, out bool v)) return v;
            v = extentRoot != null && TreeSearch.Range(volume, extentRoot, new BtrfsKey(parent, (byte)ItemType.ExtentItem, 0),
                    new BtrfsKey(parent, (byte)ItemType.MetadataItem, ulong.MaxValue))
                .Any(i => i.Data.Length >= Format.Items.ExtentItem.FixedSize && new ExtentItem(i.Data, i.Key.ItemType).IsFullBackref);
            return fullBackref[parent] = v;
        }

        // Direct references: root items naming the block, then pointers to it.
        var direct = new Dictionary<(ulong Parent, int Slot, ulong Root), int>();
        foreach (var t in rootsAt.GetValueOrDefault(target) ?? [])
        {
            bool log = t.IsLog;
            bool shared = t.IsReloc || backrefRev < 1;
            direct[(0, -1, t.Id)] = References.Count;
            References.Add(new RealReference(References.Count + 1, shared ? RefKind.SharedBlock : RefKind.TreeBlock, shared ? target : t.Id, 0, 0, 1,
                null, t, [], false, log));
        }
        foreach (var e in (byChild.GetValueOrDefault(target) ?? []).OrderBy(e => e.Parent).ThenBy(e => e.Slot))
        {
            if (direct.ContainsKey((e.Parent, e.Slot, 0))) continue;
            bool log = e.ParentOwner == ObjectIds.TreeLog || roots.Any(t => t.Id == e.Tree && t.IsLog);
            bool fb = !log && FullBackref(e.Parent);
            direct[(e.Parent, e.Slot, 0)] = References.Count;
            References.Add(new RealReference(References.Count + 1, fb ? RefKind.SharedBlock : RefKind.TreeBlock, fb ? e.Parent : e.ParentOwner, 0, 0, 1,
                e, null, [], fb, log));
        }

        // Paths: climb from each reference through the recorded pointers to every root block.
        var stack = new List<PointerEdge>();
        void Climb(ulong at, int atLevel, int reference)
        {
            if (Paths.Count >= MaxPaths) { PathsTruncated = true; return; }
            foreach (var t in rootsAt.GetValueOrDefault(at) ?? [])
            {
                var steps = new List<PointerEdge>(stack);
                steps.Reverse();
                Paths.Add(new RefPath(t, steps, reference));
            }
            foreach (var e in byChild.GetValueOrDefault(at) ?? [])
            {
                if (e.ParentLevel <= atLevel || stack.Count > Format.Header.MaxLevel) continue; // levels strictly rise: no cycle
                stack.Add(e);
                Climb(e.Parent, e.ParentLevel, reference);
                stack.RemoveAt(stack.Count - 1);
            }
        }
        foreach (var rr in References)
        {
            if (rr.Edge is { } e)
            {
                stack.Add(e);
                Climb(e.Parent, e.ParentLevel, rr.Index);
                stack.RemoveAt(stack.Count - 1);
            }
            else if (rr.RootTree is { } t) Paths.Add(new RefPath(t, [], rr.Index));
        }
        if (UnreadableBlocks > 0) Notes.Add($"{UnreadableBlocks} unreadable block(s): references under them are unknown");
    }

    private void DataReferences(BtrfsVolume volume, List<TreeRoot> roots, TreeRoot? extentRoot, int? degree)
    {
        var subvolumes = roots.Where(t => !t.IsLog && (t.IsFsTree || t.IsReloc)).ToList();
        ulong length = Math.Max(1, ExtentLength);
        var scan = ReferenceScan.Run(volume, subvolumes, ExtentStart, -1, length, degree);
        BlocksScanned = scan.Blocks;
        UnreadableBlocks = scan.Unreadable;
        var fullBackref = new Dictionary<ulong, bool>();
        foreach (var byLeaf in scan.FileExtents.GroupBy(f => f.Leaf).OrderBy(g => g.Key))
        {
            ulong leaf = byLeaf.Key;
            bool fb = extentRoot != null && TreeSearch.Range(volume, extentRoot, new BtrfsKey(leaf, (byte)ItemType.ExtentItem, 0),
                    new BtrfsKey(leaf, (byte)ItemType.MetadataItem, ulong.MaxValue))
                .Any(i => i.Data.Length >= Format.Items.ExtentItem.FixedSize && new ExtentItem(i.Data, i.Key.ItemType).IsFullBackref);
            fullBackref[leaf] = fb;
            // The check keys a data back-ref by the extent's start: a file extent pointing inside it names another
            // extent (disk_bytenr is always an extent's start); group by what each file extent names.
            var uses = byLeaf.Where(f => f.DiskBytenr == ExtentStart).ToList();
            if (uses.Count < byLeaf.Count())
                Notes.Add($"leaf {leaf}: {byLeaf.Count() - uses.Count} file extent(s) point inside the extent, not at its start");
            foreach (var g in uses.GroupBy(f => fb ? (0UL, 0UL) : (f.Inode, unchecked(f.FileOffset - f.ExtentOffset))))
            {
                var first = g.First();
                References.Add(fb
                    ? new RealReference(References.Count + 1, RefKind.SharedData, leaf, 0, 0, (uint)g.Count(), null, null, g.ToList(), true, false)
                    : new RealReference(References.Count + 1, RefKind.ExtentData, first.LeafOwner, first.Inode, unchecked(first.FileOffset - first.ExtentOffset),
                        (uint)g.Count(), null, null, g.ToList(), false, false));
            }
            // Which trees hold this leaf: every subvolume whose search for the leaf's first key lands on it.
            var trees = new List<ulong>();
            if (volume.ReadTreeBlock(leaf).Block is { } lb && lb.View.FirstKey is { } fk)
                foreach (var t in subvolumes)
                    if (t.Bytenr == leaf || (t.Level > 0 && TreeSearch.PointsTo(volume, t, fk, 0, leaf))) trees.Add(t.Id);
            LeafTrees[leaf] = trees;
            foreach (var f in byLeaf)
            {
                ulong tree = trees.Count > 0 ? trees[0] : f.LeafOwner;
                if (Names.Count < 200 && !Names.ContainsKey((tree, f.Inode)))
                    Names[(tree, f.Inode)] = new InodePath(tree, f.Inode, ResolvePath(volume, subvolumes.FirstOrDefault(t => t.Id == tree), f.Inode));
            }
        }
        if (UnreadableBlocks > 0) Notes.Add($"{UnreadableBlocks} unreadable block(s) in the subvolume trees: file extents under them are unknown");
    }

    /// <summary>"dir/sub/file" inside the tree, by following INODE_REFs up to the tree's root directory (inode 256);
    /// null when a link is missing (an INODE_EXTREF, an orphan).</summary>
    public static string? ResolvePath(BtrfsVolume volume, TreeRoot? tree, ulong inode)
    {
        if (tree == null) return null;
        var parts = new List<string>();
        ulong at = inode;
        for (int depth = 0; depth < 256 && at != ObjectIds.FirstFree; depth++)
        {
            var refs = TreeSearch.Range(volume, tree, new BtrfsKey(at, (byte)ItemType.InodeRef, 0), new BtrfsKey(at, (byte)ItemType.InodeRef, ulong.MaxValue), 1);
            if (refs.Count == 0) return null;
            string? name = null;
            try
            {
                foreach (var entry in new InodeRef(refs[0].Data)) { name = System.Text.Encoding.UTF8.GetString(entry.Name); break; }
            }
            catch (BtrfsFormatException) { return null; }
            if (name == null) return null;
            parts.Add(name);
            if (refs[0].Key.Offset == at) return null; // a loop
            at = refs[0].Key.Offset;
        }
        if (at != ObjectIds.FirstFree) return null;
        parts.Reverse();
        return "/" + string.Join('/', parts);
    }

    /// <summary>Found back-refs and real references with the same key, side by side, in key order.</summary>
    private void Match()
    {
        var keys = new SortedDictionary<(byte, ulong, ulong, ulong), (List<int> F, List<int> E, ulong Fc, ulong Ec, string D)>();
        foreach (var f in Found)
        {
            var k = ((byte)f.Kind, f.RootOrParent, f.ObjectId, f.Offset);
            if (!keys.TryGetValue(k, out var v)) v = ([], [], 0, 0, f.Describe());
            v.F.Add(f.Index);
            keys[k] = v with { Fc = v.Fc + f.Count };
        }
        foreach (var e in References.Where(e => !e.NeedsNone))
        {
            var k = ((byte)e.Kind, e.RootOrParent, e.ObjectId, e.Offset);
            if (!keys.TryGetValue(k, out var v)) v = ([], [], 0, 0, new RefRec { Kind = e.Kind, RootOrParent = e.RootOrParent, ObjectId = e.ObjectId, Offset = e.Offset }.Describe());
            v.E.Add(e.Index);
            keys[k] = v with { Ec = v.Ec + e.Count };
        }
        foreach (var (k, v) in keys)
            Matches.Add(new RefMatch(v.D, (RefKind)k.Item1, k.Item2, k.Item3, k.Item4, v.Fc, v.Ec, v.F, v.E));
    }
}
