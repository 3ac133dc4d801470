using BtrfsRefcheck.Format;
using BtrfsRefcheck.Format.Items;
using BtrfsRefcheck.Volume;

namespace BtrfsRefcheck.Checks;

/// <summary>How many bytes each set of subvolume roots holds, the input of qgroup accounting: an extent (tree block or
/// data) reached from the subvolumes R1..Rn adds its size to the set {R1..Rn}. btrfs check's qgroup-verify gets the
/// same sets from the extent tree's back-refs: a ref tree of every back-ref (about 60 bytes each, in an rbtree), every
/// interior node of every subvolume walked again to give each block below it a shared ref to it ("implied refs"),
/// then a recursive walk up the shared refs for every extent. Here the sets come from the references the tree scan
/// already recorded (parent pointers and file extents; the extent references pass proves them equal to the
/// back-refs): one sweep down the levels gives every block the set of roots above it (a union of its parents' sets,
/// interned in <see cref="RootSets"/>, 4 bytes per block), and every data extent the union of its leaves' sets.
/// Memory is a few bytes per block and 16 per file extent, for the length of the pass.</summary>
internal static class QgroupAccounting
{
    /// <summary>btrfs-progs' is_fstree: the roots qgroups account (the data relocation tree, -9, is not one).</summary>
    public static bool CountsForQgroups(ulong root) => root == ObjectIds.FsTree || (root >= ObjectIds.FirstFree && (long)root >= 0);

    /// <summary>Bytes per root set from the trees' real references (regular qgroups).</summary>
    public static long[] ByReachingRoots(CheckContext ctx, RootSets sets)
    {
        var scan = ctx.Scan;
        var index = new BlockIndex(scan.Blocks);
        int[] setOf = new int[index.Count];
        foreach (var (bytenr, tree, _) in scan.RootRefs)
            if (CountsForQgroups(tree) && index.Find(bytenr) is int i and >= 0)
                setOf[i] = sets.Union(setOf[i], sets.Singleton(tree));

        // Tree pointers, bucketed by the parent's level; file extents counted per segment for the second sweep.
        var segments = scan.ExpectedSegments;
        var edges = new List<ulong>[Header.MaxLevel];
        for (int l = 0; l < edges.Length; l++) edges[l] = [];
        var dataCounts = new int[segments.Count];
        var parallel = new ParallelOptions { MaxDegreeOfParallelism = ctx.DegreeOfParallelism ?? Environment.ProcessorCount };
        var local = new List<ulong>[segments.Count][];
        Parallel.For(0, segments.Count, parallel, s =>
        {
            var mine = new List<ulong>[Header.MaxLevel];
            int data = 0;
            var (array, count) = segments[s];
            for (int k = 0; k < count; k++)
            {
                ref readonly var r = ref array[k];
                if (r.Kind is RefKind.ExtentData or RefKind.SharedData) { data++; continue; }
                if (r.Block == 0) continue;
                int child = index.Find(r.Bytenr), parent = index.Find(r.Block);
                if (child < 0 || parent < 0) continue;
                int level = index.Level(parent);
                if (level <= 0 || level >= Header.MaxLevel) continue;
                (mine[level] ??= []).Add(((ulong)(uint)child << 32) | (uint)parent);
            }
            dataCounts[s] = data;
            local[s] = mine;
        });
        foreach (var mine in local)
            for (int l = 0; l < mine.Length; l++)
                if (mine[l] != null) edges[l].AddRange(mine[l]);

        // Top down: a level's sets are final once every level above it has passed them on.
        for (int l = Header.MaxLevel - 1; l >= 1; l--)
        {
            foreach (ulong e in edges[l])
            {
                int child = (int)(e >> 32), parent = (int)(uint)e;
                int p = setOf[parent];
                if (p != 0) setOf[child] = sets.Union(setOf[child], p);
            }
            edges[l] = [];
        }

        var bytes = new long[Math.Max(sets.Count, 1)];
        void Add(int set, long n)
        {
            if (set >= bytes.Length) Array.Resize(ref bytes, Math.Max(sets.Count, set + 1) * 2);
            bytes[set] += n;
        }
        long nodesize = ctx.Volume.NodeSize;
        for (int i = 0; i < setOf.Length; i++)
            if (setOf[i] != 0) Add(setOf[i], nodesize);

        // Data extents: (address, leaf's set, size) for every file extent, sorted by address; one union per extent.
        var offsets = new int[segments.Count + 1];
        for (int s = 0; s < segments.Count; s++) offsets[s + 1] = offsets[s] + dataCounts[s];
        var keys = new ulong[offsets[^1]];
        var values = new ulong[offsets[^1]];
        Parallel.For(0, segments.Count, parallel, s =>
        {
            var (array, count) = segments[s];
            int w = offsets[s];
            for (int k = 0; k < count; k++)
            {
                ref readonly var r = ref array[k];
                if (r.Kind is not (RefKind.ExtentData or RefKind.SharedData)) continue;
                int leaf = index.Find(r.Block);
                keys[w] = r.Bytenr;
                values[w++] = ((ulong)r.SizeOrItemOffset << 32) | (uint)(leaf < 0 ? 0 : setOf[leaf]);
            }
        });
        setOf = [];
        Array.Sort(keys, values);
        for (int i = 0; i < keys.Length;)
        {
            int set = (int)(uint)values[i];
            long size = (long)(values[i] >> 32);
            int j = i + 1;
            for (; j < keys.Length && keys[j] == keys[i]; j++) set = sets.Union(set, (int)(uint)values[j]);
            if (set != 0) Add(set, size);
            i = j;
        }
        return bytes;
    }

    /// <summary>Bytes per (one-root) set under simple quotas, as btrfs check's simple_quota_account_extent: each extent
    /// item of generation enable_gen or later counts for its owner only: a data extent's first inline ref when it is an
    /// EXTENT_OWNER_REF, a METADATA_ITEM's block's header owner.</summary>
    public static long[] ByOwner(CheckContext ctx, RootSets sets, ulong enableGen)
    {
        var scan = ctx.Scan;
        var index = new BlockIndex(scan.Blocks);
        var volume = ctx.Volume;
        var leaves = scan.ExtentLeaves;
        var perLeaf = new List<(ulong Root, long Bytes)>[leaves.Length];
        Parallel.For(0, leaves.Length, new ParallelOptions { MaxDegreeOfParallelism = ctx.DegreeOfParallelism ?? Environment.ProcessorCount }, li =>
        {
            var found = new List<(ulong, long)>();
            perLeaf[li] = found;
            if (volume.ReadTreeBlock(leaves[li].Bytenr).Block is not { } leaf) return;
            var view = leaf.View;
            if (!view.IsLeaf) return;
            for (int i = 0; i < view.Count; i++)
            {
                if (!view.TryGetItem(i, out var key, out var data)) continue;
                if (key.ItemType is not (ItemType.ExtentItem or ItemType.MetadataItem) || data.Length < ExtentItem.FixedSize) continue;
                var ei = new ExtentItem(data, key.ItemType);
                if (ei.Generation < enableGen) continue;
                ulong root;
                long size;
                if (key.ItemType == ItemType.MetadataItem)
                {
                    int b = index.Find(key.ObjectId);
                    if (b < 0) continue;
                    root = index.Owner(b);
                    size = volume.NodeSize;
                }
                else
                {
                    int at = ei.InlineRefsStart;
                    if (data.Length < at + 9 || data[at] != (byte)ItemType.ExtentOwnerRef) continue;
                    root = Le.U64(data, at + 1);
                    size = (long)key.Offset;
                }
                if (CountsForQgroups(root)) found.Add((root, size));
            }
        });
        var bytes = new long[16];
        foreach (var list in perLeaf)
            foreach (var (root, size) in list)
            {
                int s = sets.Singleton(root);
                if (s >= bytes.Length) Array.Resize(ref bytes, Math.Max(sets.Count, s + 1) * 2);
                bytes[s] += size;
            }
        return bytes;
    }

    /// <summary>The scan's blocks by address (sorted in place: the extent join sorts them the same way), for look-ups of
    /// a block's index, level and owner.</summary>
    private sealed class BlockIndex
    {
        private readonly ulong[] _keys;
        private readonly BlockRec[] _blocks;

        public BlockIndex(BlockRec[] blocks)
        {
            _blocks = blocks;
            _keys = new ulong[blocks.Length];
            for (int i = 0; i < blocks.Length; i++) _keys[i] = blocks[i].Bytenr;
            Array.Sort(_keys, blocks);
        }

        public int Count => _keys.Length;

        /// <summary>The index of the first block at <paramref name="bytenr"/>, or -1.</summary>
        public int Find(ulong bytenr)
        {
            int i = Array.BinarySearch(_keys, bytenr);
            if (i < 0) return -1;
            while (i > 0 && _keys[i - 1] == bytenr) i--;
            return i;
        }

        public int Level(int i) => _blocks[i].Level;
        public ulong Owner(int i) => _blocks[i].Owner;
    }
}
