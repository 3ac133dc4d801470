using BtrfsRefcheck.Format;

namespace BtrfsRefcheck.Trees;

/// <summary>Which pointers of a node still count while the cleaner drops a deleted subvolume. The kernel's
/// btrfs_drop_snapshot records in the ROOT_ITEM the key and level it has reached (drop_progress, drop_level):
/// everything before that key at that level is already freed, its blocks may since hold anything, and the extent
/// tree no longer references them from this root. As btrfs check does (check/main.c, run_next_block): in a node
/// above drop_level only the slot whose range holds the drop key and those after it are followed; in a node at
/// drop_level, pointers whose key is below the drop key are skipped. The cleaner descends only into blocks no live
/// tree references (a snapshot's source may still be their header owner, with FULL_BACKREF), so the scanner applies
/// this only to blocks that no other tree reaches (<see cref="ParallelScanner"/> prefers a live tree's pointer).</summary>
public static class DropFilter
{
    /// <summary>The first slot of <paramref name="node"/> that still counts (0 when nothing is dropped there).</summary>
    public static int FirstLiveSlot(in BlockContext ctx, BlockView node)
    {
        var root = ctx.Tree;
        if (root.DropProgress is not { } drop) return 0;
        var h = node.Header;
        if (h.Level < root.DropLevel || node.IsLeaf) return 0;
        int count = node.Count;
        if (h.Level == root.DropLevel)
        {
            int i = 0;
            while (i < count && node.KeyPtr(i).Key < drop) i++;
            return i;
        }
        return node.SlotHolding(drop); // above drop_level: from the slot whose subtree holds the drop key
    }
}
