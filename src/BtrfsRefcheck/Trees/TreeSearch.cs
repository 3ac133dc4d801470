using BtrfsRefcheck.Format;
using BtrfsRefcheck.Volume;

namespace BtrfsRefcheck.Trees;

/// <summary>Point look-ups down one tree, through the volume's block cache: for the rare question a level-by-level
/// scan cannot answer by itself. Never throws for bad data: an unreadable or malformed block ends the search.</summary>
public static class TreeSearch
{
    /// <summary>Searches <paramref name="root"/> for <paramref name="key"/> down to the node at
    /// <paramref name="level"/> + 1 and tells whether the pointer that search lands on is <paramref name="bytenr"/>:
    /// whether that tree really holds the block there (btrfs check's check_owner_ref does the same).</summary>
    public static bool PointsTo(BtrfsVolume volume, TreeRoot root, BtrfsKey key, int level, ulong bytenr)
    {
        ulong at = root.Bytenr;
        int expect = root.Level;
        for (int depth = 0; depth < Header.MaxLevel && expect > level; depth++)
        {
            var read = volume.ReadTreeBlock(at);
            if (read.Block is not { } block) return false;
            var view = block.View;
            if (view.IsLeaf || view.Header.Level != expect || view.Count == 0) return false;
            try
            {
                var ptr = view.KeyPtr(view.SlotHolding(key));
                if (expect == level + 1) return ptr.BlockPtr == bytenr;
                at = ptr.BlockPtr;
            }
            catch (BtrfsFormatException) { return false; }
            expect--;
        }
        return false;
    }

    /// <summary>The leaf of <paramref name="root"/> that holds exactly <paramref name="key"/>, and its slot; null when
    /// the tree has no such item or a block on the way is unreadable or malformed.</summary>
    public static TreeBlock? FindItem(BtrfsVolume volume, TreeRoot root, BtrfsKey key, out int slot)
    {
        slot = -1;
        ulong at = root.Bytenr;
        int expect = root.Level;
        for (int depth = 0; depth <= Header.MaxLevel; depth++)
        {
            var read = volume.ReadTreeBlock(at);
            if (read.Block is not { } block) return null;
            try
            {
                var view = block.View;
                if (view.Header.Level != expect || view.Count == 0) return null;
                if (view.IsLeaf)
                {
                    for (int i = 0; i < view.Count; i++)
                        if (view.TryItemKey(i, out var k) && k == key) { slot = i; return block; }
                    return null;
                }
                at = view.KeyPtr(view.SlotHolding(key)).BlockPtr;
            }
            catch (BtrfsFormatException) { return null; }
            expect--;
        }
        return null;
    }
}
