using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Format.Items;
using BtrfsRefcheck.Trees.ItemValidation;
using BtrfsRefcheck.Volume;

namespace BtrfsRefcheck.Trees;

/// <summary>Finds every tree: the root and chunk trees from the superblock, every ROOT_ITEM of the root tree
/// (fs tree, subvolumes, snapshots, relocation trees, data reloc tree, extent, dev, csum, uuid, quota,
/// free-space, block-group trees), and the log root tree with the per-subvolume log trees it lists.</summary>
public static class TreeRoots
{
    public static TreeRoot RootTree(BtrfsVolume v) => new(ObjectIds.RootTree, v.RootTree.Bytenr, v.RootTree.Level, v.RootTree.Generation, RootSource.Superblock);
    public static TreeRoot ChunkTree(BtrfsVolume v) => new(ObjectIds.ChunkTree, v.CheckedChunkTree.Bytenr, v.CheckedChunkTree.Level, v.CheckedChunkTree.Generation, RootSource.Superblock);

    /// <summary>The log root tree, when the superblock has one.</summary>
    public static TreeRoot? LogRootTree(Superblock sb) =>
        sb.LogRoot == 0 ? null : new TreeRoot(ObjectIds.TreeLog, sb.LogRoot, sb.LogRootLevel, 0, RootSource.Superblock);

    /// <summary>All trees in the order btrfs-progs dumps them: root tree, chunk tree, then the root tree's
    /// ROOT_ITEMs in key order, then the log root tree and its log trees.</summary>
    public static List<TreeRoot> Enumerate(BtrfsVolume vol, FindingBag findings) => Enumerate(vol, findings, out _);

    /// <summary>As above; <paramref name="rootTreeComplete"/> is false when a block of the root tree was unreadable or invalid.</summary>
    public static List<TreeRoot> Enumerate(BtrfsVolume vol, FindingBag findings, out bool rootTreeComplete)
    {
        var list = new List<TreeRoot> { RootTree(vol), ChunkTree(vol) };
        list.AddRange(ReadRootItems(vol, findings, RootTree(vol), RootSource.RootItem, out rootTreeComplete));
        // A log tree belongs to the superblock's generation: replaying it onto an older backup root makes no sense.
        if (vol.RootTree.BackupIndex == null && LogRootTree(vol.Super) is { } log)
        {
            list.Add(log);
            list.AddRange(ReadRootItems(vol, findings, log, RootSource.LogRootItem));
        }
        return list;
    }

    /// <summary>The ROOT_ITEMs of a root tree (or log root tree).</summary>
    public static List<TreeRoot> ReadRootItems(BtrfsVolume vol, FindingBag findings, TreeRoot rootTree, RootSource source) =>
        ReadRootItems(vol, findings, rootTree, source, out _);

    /// <summary>As above; <paramref name="complete"/> is false when a block of the root tree could not be read or was invalid.</summary>
    public static List<TreeRoot> ReadRootItems(BtrfsVolume vol, FindingBag findings, TreeRoot rootTree, RootSource source, out bool complete)
    {
        var collector = new RootItemCollector(rootTree, source, findings);
        // Findings about the root tree's blocks are reported by the full walk; use a scratch bag here.
        new TreeWalker(vol, new FindingBag()).Walk(rootTree, collector);
        complete = collector.Complete;
        return collector.Roots;
    }

    private sealed class RootItemCollector(TreeRoot rootTree, RootSource source, FindingBag findings) : ITreeVisitor
    {
        public List<TreeRoot> Roots { get; } = [];
        public bool Complete { get; private set; } = true;

        public void OnUnreadable(in BlockContext ctx, TreeBlockRead read) => Complete = false;

        public bool OnBlock(in BlockContext ctx, TreeBlock block, bool valid)
        {
            var view = block.View;
            if (!valid) Complete = false;
            if (!view.IsLeaf) return true;
            for (int i = 0; i < view.Count; i++)
            {
                BtrfsKey key;
                ReadOnlySpan<byte> data;
                try
                {
                    key = view.ItemKey(i);
                    if (key.ItemType != ItemType.RootItem) continue;
                    data = view.ItemData(i);
                }
                catch (BtrfsFormatException) { continue; }
                if (!RootItemValidator.Walkable(findings, rootTree, block.Logical, i, key, data.Length)) continue;
                var ri = new RootItem(data);
                ulong id = source == RootSource.LogRootItem ? ObjectIds.TreeLog : key.ObjectId;
                if (ri.Bytenr == 0) continue;
                var drop = ri.DropProgress;
                Roots.Add(new TreeRoot(id, ri.Bytenr, ri.Level, ri.Generation, source,
                    source == RootSource.LogRootItem || key.ObjectId == ObjectIds.TreeReloc ? key.Offset : 0)
                {
                    // a drop in progress (btrfs check: the "dropping trees" list); drop_level 0 never occurs (the
                    // cleaner records the level of a node) and btrfs check ignores it too
                    DropProgress = drop.ObjectId != 0 && ri.DropLevel > 0 ? drop : null,
                    DropLevel = ri.DropLevel,
                });
            }
            return true;
        }
    }
}
