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

    /// <summary>One item found by a range search: where it is and a copy of its payload.</summary>
    public readonly record struct FoundItem(ulong Leaf, int Slot, BtrfsKey Key, byte[] Data);

    /// <summary>The items of <paramref name="root"/>'s tree with <paramref name="from"/> &lt;= key &lt;= <paramref name="to"/>,
    /// in key order, at most <paramref name="limit"/>: descends only into the subtrees that can hold such keys (as the
    /// kernel's search does), so it reads a handful of blocks. An unreadable or malformed block is skipped.</summary>
    public static List<FoundItem> Range(BtrfsVolume volume, TreeRoot root, BtrfsKey from, BtrfsKey to, int limit = int.MaxValue)
    {
        var found = new List<FoundItem>();
        if (from <= to) Descend(volume, root.Bytenr, root.Level, from, to, limit, found, 0);
        return found;
    }

    private static void Descend(BtrfsVolume volume, ulong bytenr, int level, BtrfsKey from, BtrfsKey to, int limit, List<FoundItem> found, int depth)
    {
        if (depth > Header.MaxLevel || found.Count >= limit) return;
        if (volume.ReadTreeBlock(bytenr).Block is not { } block || block.Level != level) return;
        var children = new List<ulong>();
        try
        {
            var view = block.View;
            if (view.IsLeaf)
            {
                for (int i = 0; i < view.Count && found.Count < limit; i++)
                {
                    if (!view.TryGetItem(i, out var key, out var data)) continue;
                    if (key > to) break;
                    if (key >= from) found.Add(new FoundItem(block.Logical, i, key, data.ToArray()));
                }
                return;
            }
            if (level == 0 || view.Count == 0) return;
            int start = view.SlotHolding(from);
            for (int i = start; i < view.Count; i++)
            {
                var kp = view.KeyPtr(i);
                if (i > start && kp.Key > to) break;
                children.Add(kp.BlockPtr);
            }
        }
        catch (BtrfsFormatException) { return; }
        foreach (ulong child in children) Descend(volume, child, level - 1, from, to, limit, found, depth + 1);
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
