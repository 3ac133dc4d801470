using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Format.Items;
using BtrfsRefcheck.Trees;
using BtrfsRefcheck.Volume;

namespace BtrfsRefcheck.Checks;

/// <summary>What the tree scan pass records, as compact structs, for the passes after it: every block, every parent
/// pointer and file extent as the back-ref it needs, and from the extent, dev and chunk trees every block group, dev
/// extent, chunk and device. Read by the quota groups, extent references and device accounting passes.</summary>
internal sealed class TreeScanFacts
{
    internal BlockRec[] Blocks = [];

    /// <summary>References the trees really make: parent pointers (as TREE_BLOCK_REF by the parent's owner) and file
    /// extents (as EXTENT_DATA_REF by the leaf's owner), turned into SHARED_* refs once the referencing block's
    /// FULL_BACKREF flag is known. Consumed by the extent join: <see cref="TakeExpectedSegments"/>.</summary>
    private List<(RefRec[] Array, int Count)> _expectedSegments = [];
    internal BlockGroupRec[] BlockGroups = [];
    internal DevExtentRec[] DevExtents = [];

    /// <summary>Root blocks (referenced by their root id; relocation roots by themselves).</summary>
    internal readonly List<(ulong Bytenr, ulong Tree, bool SharedSelf)> RootRefs = [];

    /// <summary>Chunks and devices of the chunk tree being checked: as the walk found them, or the volume's when the
    /// walk found none (the generation being checked, a backup root's when one is used).</summary>
    internal ChunkMap Chunks = new();
    internal IReadOnlyList<DevItemInfo> DevItems = [];

    /// <summary>Blocks that could not be read or are invalid: references in and under them are unknown.</summary>
    internal readonly List<(ulong Bytenr, ulong Tree)> Unreadable = [];

    /// <summary>Address ranges [lo, hi] (by extent-tree key objectid) whose extent items could not be read: an
    /// unreadable or invalid extent-tree block hides them, so "no extent item there" cannot be asserted.</summary>
    internal readonly List<(ulong Lo, ulong Hi)> HiddenExtentRanges = [];

    /// <summary>True when an unreadable or invalid extent-tree block may hold extent items keyed in [start, end).</summary>
    internal bool ExtentItemsHidden(ulong start, ulong end)
    {
        foreach (var (lo, hi) in HiddenExtentRanges) if (lo < end && hi >= start) return true;
        return false;
    }

    /// <summary>True when an unreadable or invalid extent-tree block may hold the extent items of <paramref name="bytenr"/>.</summary>
    internal bool ExtentItemHidden(ulong bytenr)
    {
        foreach (var (lo, hi) in HiddenExtentRanges) if (bytenr >= lo && bytenr <= hi) return true;
        return false;
    }

    /// <summary>The extent tree's leaves (first key objectid, address), so the join reads them directly, by range.</summary>
    internal (ulong FirstObjectId, ulong Bytenr)[] ExtentLeaves = [];

    /// <summary>The file extents' claims on the csum tree, for the csum tree pass (<see cref="DataCsumRecorder"/>).</summary>
    internal List<(DataCsumNeed[] Array, int Count)> CsumNeeds = [];

    internal void AddExpectedSegments(IEnumerable<(RefRec[] Array, int Count)> segments) => _expectedSegments.AddRange(segments);

    /// <summary>The expected refs, unsorted, to read (not change) before the extent join takes them: the quota groups
    /// pass reads the parent pointers and file extents from them.</summary>
    internal IReadOnlyList<(RefRec[] Array, int Count)> ExpectedSegments => _expectedSegments;

    /// <summary>Hands the expected refs over (the join sorts and consumes them in place) and forgets them here.</summary>
    internal List<(RefRec[] Array, int Count)> TakeExpectedSegments()
    {
        var s = _expectedSegments;
        _expectedSegments = [];
        return s;
    }
}

/// <summary>Pass "trees": walks every tree once (blocks shared by snapshots are descended once, as btrfs check does),
/// verifying and validating every block and item on the way, and records the <see cref="TreeScanFacts"/>.</summary>
public sealed class TreeScanPass : ICheckPass
{
    public string Name => "trees";
    /// <summary>None of its own: what it cannot record (a short file extent or block group item) the item validator reports.</summary>
    public IReadOnlyList<FindingCode> Codes { get; } = [];
    public IReadOnlyList<FindingProducer> Uses { get; } =
        [FindingProducers.BlockReader, FindingProducers.TreeWalk, FindingProducers.TreeBlockValidator, FindingProducers.ItemValidator,
         FindingProducers.ChunkMapLoading]; // the item validator runs the chunk rules on every CHUNK_ITEM
    public string Reads => "Roots";
    public string Adds => "Scan (blocks, expected back-refs, block groups, dev extents, chunks, devices, unreadable blocks, hidden extent ranges, extent leaves); Stats (trees, blocks, items)";

    public void Run(CheckContext ctx)
    {
        var facts = new TreeScanFacts();
        var sink = new TreeScanSink();
        foreach (var root in ctx.Roots)
        {
            ctx.Stats.Trees++;
            if (!root.IsLog) facts.RootRefs.Add((root.Bytenr, root.Id, root.IsReloc));
        }
        var scanner = new ParallelScanner(ctx.Volume, ctx.Findings, ctx.DegreeOfParallelism, (where, released) => ctx.Observer.Checkpoint(Name, where, released),
            (done, total) => ctx.Observer.Progress(Name, done, total, "blocks"))
        { EstimatedBlocks = EstimateBlocks(ctx) };
        var states = scanner.Scan(ctx.Roots, sink);
        ctx.Observer.Checkpoint(Name, "after scan", 0);
        Merge(ctx, facts, states);
        if (!ctx.Roots.Any(r => r.Id == ObjectIds.ExtentTree && r.Source == RootSource.RootItem))
            facts.HiddenExtentRanges.Add((0, ulong.MaxValue)); // no extent tree at all: nothing can be said to be missing from it
        ctx.Stats.Nodes = scanner.Stats.Nodes;
        ctx.Stats.Leaves = scanner.Stats.Leaves;
        ctx.Stats.TreeBlocks = scanner.Stats.Nodes + scanner.Stats.Leaves;
        ctx.Stats.Items = scanner.Stats.Items;
        ctx.Stats.UnreadableBlocks = scanner.Stats.Unreadable;
        ctx.Scan = facts;
        ctx.Observer.Checkpoint(Name, "after merge", 0);
    }

    /// <summary>The blocks the scan will visit, for the progress total: the used bytes of the metadata and system block
    /// groups (one item look-up per such chunk, in the block group tree or the extent tree) over the node size. Tree
    /// blocks shared by snapshots are counted once there as in the scan. 0 when it cannot be told (no such tree, an
    /// unreadable block on the way).</summary>
    private static long EstimateBlocks(CheckContext ctx)
    {
        var vol = ctx.Volume;
        ulong treeId = (vol.Super.CompatRoFlags & Features.CompatRoBlockGroupTree) != 0 ? ObjectIds.BlockGroupTree : ObjectIds.ExtentTree;
        var tree = ctx.Roots.FirstOrDefault(r => r.Id == treeId && r.Source == RootSource.RootItem);
        if (tree == null || vol.NodeSize == 0) return 0;
        ulong used = 0;
        foreach (var c in vol.Chunks.Chunks)
        {
            if ((c.Type & (BlockGroupFlags.Metadata | BlockGroupFlags.System)) == 0) continue;
            var leaf = TreeSearch.FindItem(vol, tree, new BtrfsKey(c.Logical, (byte)ItemType.BlockGroupItem, c.Length), out int slot);
            if (leaf == null || !leaf.View.TryGetItem(slot, out _, out var data) || data.Length < BlockGroupItem.Size) continue;
            used += Math.Min(new BlockGroupItem(data).Used, c.Length);
        }
        return (long)(used / vol.NodeSize);
    }

    /// <summary>Concatenates the workers' small lists into flat arrays, releasing each list as it goes.</summary>
    private static void Merge(CheckContext ctx, TreeScanFacts facts, List<ScanState> states)
    {
        facts.Blocks = ChunkedList<BlockRec>.Concat(states.Select(s => s.Blocks));
        ctx.Observer.Checkpoint("trees", "blocks merged", facts.Blocks.Length);
        // The expected refs stay in their segments: they are sorted per segment and merged as they are joined.
        var segments = new List<(RefRec[] Array, int Count)>();
        foreach (var s in states) segments.AddRange(s.Expected.TakeSegments());
        var fullBackref = new HashSet<ulong>();
        foreach (var s in states) fullBackref.UnionWith(s.FullBackref);
        facts.ExtentLeaves = states.SelectMany(s => s.ExtentLeaves).OrderBy(l => l.FirstObjectId).ToArray();
        ResolveFullBackref(segments, fullBackref, ctx.DegreeOfParallelism);
        facts.AddExpectedSegments(segments);
        facts.BlockGroups = ChunkedList<BlockGroupRec>.Concat(states.Select(s => s.BlockGroups));
        facts.DevExtents = ChunkedList<DevExtentRec>.Concat(states.Select(s => s.DevExtents));
        facts.CsumNeeds = DataCsumRecorder.Merge(states.Select(s => s.Csum).ToList());
        var chunks = new ChunkMap();
        var devItems = new List<DevItemInfo>();
        foreach (var s in states)
        {
            ctx.Stats.Add(s.Stats);
            facts.Unreadable.AddRange(s.Unreadable);
            facts.HiddenExtentRanges.AddRange(s.Hidden);
            devItems.AddRange(s.DevItems);
            foreach (var c in s.Chunks) chunks.TryAdd(c);
        }
        // The walked chunk tree is the generation being checked (a backup root's when one is used).
        facts.Chunks = chunks.Chunks.Count > 0 ? chunks : ctx.Volume.Chunks;
        facts.DevItems = devItems.Count > 0 ? devItems : ctx.Volume.DevItems;
    }

    /// <summary>btrfs check's run_next_block: a pointer from, or a file extent in, a block whose extent carries
    /// FULL_BACKREF is a SHARED_* ref naming that block; any other names the block's owner.</summary>
    private static void ResolveFullBackref(List<(RefRec[] Array, int Count)> segments, HashSet<ulong> fullBackref, int? degree)
    {
        if (fullBackref.Count == 0) return;
        Parallel.ForEach(segments, new ParallelOptions { MaxDegreeOfParallelism = degree ?? Environment.ProcessorCount }, seg =>
        {
            var span = seg.Array.AsSpan(0, seg.Count);
            for (int i = 0; i < span.Length; i++)
            {
                ref var r = ref span[i];
                if (r.Block == 0 || !fullBackref.Contains(r.Block)) continue;
                if (r.Kind == RefKind.TreeBlock) { r.Kind = RefKind.SharedBlock; r.RootOrParent = r.Block; }
                else if (r.Kind == RefKind.ExtentData) { r.Kind = RefKind.SharedData; r.RootOrParent = r.Block; r.ObjectId = 0; r.Offset = 0; }
            }
        });
    }

}

/// <summary>Receives the scan's blocks (concurrently, one <see cref="ScanState"/> per worker) and records what each
/// block references and what the extent, dev and chunk trees hold.</summary>
internal sealed class TreeScanSink : IScanSink<ScanState>
{
    public ScanState CreateState() => new();

    public void OnUnreadable(in BlockContext bc, TreeBlockRead read, ScanState st)
    {
        st.Unreadable.Add((bc.Bytenr, bc.Tree.Id));
        Hide(bc, st);
    }

    private static void Hide(in BlockContext bc, ScanState st)
    {
        if (bc.Tree.Id is ObjectIds.ExtentTree or ObjectIds.BlockGroupTree)
            st.Hidden.Add((bc.ExpectedFirstKey?.ObjectId ?? 0, bc.EndKey?.ObjectId ?? ulong.MaxValue));
    }

    public void OnBlock(in BlockContext bc, TreeBlock block, bool valid, ScanState st)
    {
        var view = block.View;
        var h = view.Header;
        bool log = bc.Tree.IsLog; // log tree blocks have no extent items and add no references
        if (!log)
            st.Blocks.Add(new BlockRec { Bytenr = block.Logical, Owner = h.Owner, Tree = bc.Tree.Id, Level = h.Level, BackrefRev = (byte)h.BackrefRev });
        if (!valid) { st.Unreadable.Add((bc.Bytenr, bc.Tree.Id)); Hide(bc, st); return; } // its references are unknown, as if unreadable
        int count = view.Count;
        ulong owner = h.Owner;
        if (!view.IsLeaf)
        {
            if (!log)
            {
                // Recorded as by owner; ResolveFullBackref turns it into a SHARED ref when the parent is FULL_BACKREF.
                int from = bc.Tree.IsDropping ? DropFilter.FirstLiveSlot(bc, view) : 0; // the cleaner freed the others
                for (int i = from; i < count; i++)
                    st.Expected.Add(new RefRec
                    {
                        Bytenr = view.KeyPtr(i).BlockPtr, Kind = RefKind.TreeBlock, RootOrParent = owner,
                        Block = block.Logical, Slot = (ushort)i, Count = 1,
                    });
            }
            return;
        }
        ulong tree = bc.Tree.Id;
        // the csum tree pass's claims of file extents (btrfs check leaves the data reloc tree out)
        bool csumClaims = !log && tree != ObjectIds.DataRelocTree && owner != ObjectIds.DataRelocTree && ObjectIds.IsFsTree(tree);
        if (csumClaims) st.Csum.Leaf();
        if (tree == ObjectIds.ExtentTree && count > 0 && view.TryItemKey(0, out var firstKey))
            st.ExtentLeaves.Add((firstKey.ObjectId, block.Logical));
        for (int i = 0; i < count; i++)
        {
            if (!view.TryGetItem(i, out var key, out var data)) continue; // reported by the block validator
            switch (key.ItemType)
            {
                case ItemType.ExtentData when !log:
                    FileExtent(st, block, owner, tree, i, key, data, csumClaims);
                    break;
                case ItemType.InodeItem when csumClaims:
                    st.Csum.Inode(key, data);
                    break;
                case ItemType.ExtentItem or ItemType.MetadataItem when tree == ObjectIds.ExtentTree:
                    if (data.Length >= ExtentItem.FixedSize && new ExtentItem(data, key.ItemType).IsFullBackref)
                        st.FullBackref.Add(key.ObjectId);
                    break;
                case ItemType.BlockGroupItem when tree is ObjectIds.ExtentTree or ObjectIds.BlockGroupTree:
                    BlockGroup(st, block.Logical, i, key, data);
                    break;
                case ItemType.DevExtent when tree == ObjectIds.DevTree && data.Length >= DevExtent.Size:
                    var de = new DevExtent(data);
                    st.DevExtents.Add(new DevExtentRec
                    {
                        DevId = key.ObjectId, Physical = key.Offset, ChunkOffset = de.ChunkOffset, Length = de.Length,
                        ItemBlock = block.Logical, Slot = i,
                    });
                    break;
                case ItemType.ChunkItem when tree == ObjectIds.ChunkTree:
                    if (ChunkMap.Decode(key, data, out _) is { } chunk) st.Chunks.Add(chunk);
                    break;
                case ItemType.DevItem when tree == ObjectIds.ChunkTree && data.Length >= DevItem.Size:
                    var di = new DevItem(data);
                    st.DevItems.Add(new DevItemInfo(di.DevId, di.Uuid, di.Fsid, di.TotalBytes, di.BytesUsed));
                    break;
            }
        }
    }

    private void FileExtent(ScanState st, TreeBlock leaf, ulong owner, ulong tree, int slot, BtrfsKey key, ReadOnlySpan<byte> data, bool csumClaims)
    {
        if (data.Length < FileExtentItem.InlineHeaderSize) return;
        var type = new FileExtentItem.Head(data).Type;
        if (type == FileExtentType.Inline) return;
        if (data.Length < FileExtentItem.RegularSize) return; // the item validator reports it (ItemUndecodable)
        var fe = new FileExtentItem(data);
        if (csumClaims) st.Csum.FileExtent(key, fe);
        if (fe.DiskBytenr == 0) return; // a hole
        st.Stats.FileExtents++;
        st.Expected.Add(new RefRec
        {
            Bytenr = fe.DiskBytenr, Kind = RefKind.ExtentData, RootOrParent = owner,
            ObjectId = key.ObjectId, Offset = unchecked(key.Offset - fe.Offset),
            Block = leaf.Logical, Slot = (ushort)slot, Count = 1, SizeOrItemOffset = (uint)Math.Min(fe.DiskNumBytes, uint.MaxValue),
        });
    }

    private void BlockGroup(ScanState st, ulong leaf, int slot, BtrfsKey key, ReadOnlySpan<byte> data)
    {
        if (data.Length < BlockGroupItem.Size) return; // the item validator reports it (ItemUndecodable)
        st.Stats.BlockGroups++;
        var bg = new BlockGroupItem(data);
        st.BlockGroups.Add(new BlockGroupRec
        {
            Start = key.ObjectId, Length = key.Offset, Used = bg.Used, Flags = (ulong)bg.Flags, ItemBlock = leaf, Slot = slot,
        });
    }
}

/// <summary>One worker's records; merged after the scan.</summary>
internal sealed class ScanState
{
    public readonly ChunkedList<BlockRec> Blocks = new();
    public readonly ChunkedList<RefRec> Expected = new();
    public readonly ChunkedList<BlockGroupRec> BlockGroups = new();
    public readonly ChunkedList<DevExtentRec> DevExtents = new();
    public readonly List<Chunk> Chunks = [];
    public readonly List<DevItemInfo> DevItems = [];
    public readonly List<(ulong Bytenr, ulong Tree)> Unreadable = [];
    public readonly List<(ulong Lo, ulong Hi)> Hidden = [];
    public readonly HashSet<ulong> FullBackref = [];
    public readonly List<(ulong FirstObjectId, ulong Bytenr)> ExtentLeaves = [];
    public readonly CheckStats Stats = new();
    public readonly DataCsumRecorder Csum = new();
}
