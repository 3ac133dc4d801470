using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Format.Items;
using BtrfsRefcheck.Volume;

namespace BtrfsRefcheck.Trees;

/// <summary>A node pointer: <paramref name="Parent"/> (level, header owner) points at <paramref name="Child"/> from
/// <paramref name="Slot"/> with <paramref name="Key"/> and <paramref name="Generation"/>. <paramref name="Tree"/> is the
/// tree the scan reached the parent through (a block shared by snapshots is visited once, for one of them).</summary>
public readonly record struct PointerEdge(ulong Child, ulong Parent, int ParentLevel, ulong ParentOwner, ulong Tree, int Slot, BtrfsKey Key, ulong Generation);

/// <summary>A file extent item that uses a data extent: the leaf (and its header owner), the item's slot and key
/// (inode, file offset), and what part of the extent it maps.</summary>
public readonly record struct FileExtentUse(ulong Leaf, ulong LeafOwner, ulong Tree, int Slot, ulong Inode, ulong FileOffset,
    ulong ExtentOffset, ulong NumBytes, ulong DiskNumBytes, ulong DiskBytenr);

/// <summary>Every reference the trees make to one address, found with the check's own level-by-level scan
/// (<see cref="ParallelScanner"/>: every tree, blocks shared by snapshots visited once, the cleaner's freed slots of a
/// dropping tree skipped): for a tree block, every pointer to it and every pointer from the levels above it (enough
/// to climb from it to every root, while recording only about one pointer in a hundred), reading only the levels above
/// it (a pointer to it from a node at its own level or below, which no valid tree has, is not seen); for a data
/// extent, every file extent item inside it. What a scan cannot see (unreadable blocks) is counted.</summary>
public sealed class ReferenceScan
{
    public IReadOnlyList<PointerEdge> Edges { get; private init; } = [];
    public IReadOnlyList<FileExtentUse> FileExtents { get; private init; } = [];
    public long Unreadable { get; private init; }
    public long Blocks { get; private init; }

    /// <summary>Scans <paramref name="roots"/>. <paramref name="targetLevel"/> &gt;= 0: a tree block at
    /// <paramref name="target"/> of that level; -1: data in [<paramref name="target"/>, <paramref name="target"/> +
    /// <paramref name="length"/>) (file extents whose disk_bytenr lies there).</summary>
    public static ReferenceScan Run(BtrfsVolume volume, IReadOnlyList<TreeRoot> roots, ulong target, int targetLevel, ulong length = 1, int? degree = null)
    {
        var sink = new Sink(target, targetLevel, length);
        // A tree block's pointers live in the nodes above it: the levels below it are not read. Items are not validated
        // (the check does that); blocks are, as the check does, so the scan descends exactly where the check's does.
        var scanner = new ParallelScanner(volume, new FindingBag(), degree, lowestLevel: Math.Max(0, targetLevel + 1), validateItems: false);
        var states = scanner.Scan(roots, sink);
        return new ReferenceScan
        {
            Edges = states.SelectMany(s => s.Edges).ToList(),
            FileExtents = states.SelectMany(s => s.Files).ToList(),
            Unreadable = scanner.Stats.Unreadable,
            Blocks = scanner.Stats.Nodes + scanner.Stats.Leaves,
        };
    }

    private sealed class State
    {
        public readonly List<PointerEdge> Edges = [];
        public readonly List<FileExtentUse> Files = [];
    }

    private sealed class Sink(ulong target, int targetLevel, ulong length) : IScanSink<State>
    {
        public State CreateState() => new();

        public void OnBlock(in BlockContext bc, TreeBlock block, bool valid, State st)
        {
            var view = block.View;
            int level = view.Header.Level;
            ulong owner = view.Header.Owner;
            int count = view.Count;
            if (!view.IsLeaf)
            {
                bool all = targetLevel >= 0 && level >= targetLevel + 2;
                int from = bc.Tree.IsDropping ? DropFilter.FirstLiveSlot(bc, view) : 0; // the cleaner freed the others
                for (int i = from; i < count; i++)
                {
                    var kp = view.KeyPtr(i);
                    if (all || (targetLevel >= 0 && kp.BlockPtr == target))
                        st.Edges.Add(new PointerEdge(kp.BlockPtr, block.Logical, level, owner, bc.Tree.Id, i, kp.Key, kp.Generation));
                }
                return;
            }
            if (targetLevel >= 0 || !(bc.Tree.IsFsTree || bc.Tree.IsReloc)) return;
            for (int i = 0; i < count; i++)
            {
                if (!view.TryGetItem(i, out var key, out var data) || key.ItemType != ItemType.ExtentData) continue;
                if (data.Length < FileExtentItem.RegularSize || new FileExtentItem.Head(data).Type == FileExtentType.Inline) continue;
                var fe = new FileExtentItem(data);
                if (fe.DiskBytenr == 0 || fe.DiskBytenr < target || fe.DiskBytenr - target >= length) continue;
                st.Files.Add(new FileExtentUse(block.Logical, owner, bc.Tree.Id, i, key.ObjectId, key.Offset, fe.Offset, fe.NumBytes, fe.DiskNumBytes, fe.DiskBytenr));
            }
        }
    }
}
