using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Trees;
using static BtrfsRefcheck.Diagnostics.FindingCode;

namespace BtrfsRefcheck.Checks;

/// <summary>Pass "subvolume semantics": what btrfs check's original mode checks inside each subvolume tree (fs tree,
/// subvolumes, snapshots, the data reloc tree) and between subvolumes: inodes against their own items (nbytes, isize,
/// file extents), names (INODE_REF / INODE_EXTREF against DIR_ITEM and DIR_INDEX, nlink), the root directory, orphans,
/// and ROOT_REF / ROOT_BACKREF against the parent's dir entries. Single items are the item validator's (410-425).
/// Blocks shared by snapshots are summarised once (<see cref="SubtreeSummaries"/>).</summary>
public sealed class SubvolumesPass : ICheckPass
{
    public string Name => "subvolume semantics";

    public IReadOnlyList<FindingCode> Codes { get; } =
    [
        InodeItemMissing, InodeLinkCountWrong, DirectoryHardLink, DirItemMissing, DirIndexMissing, InodeRefMissing, DuplicateName,
        NameMismatch, DirSizeWrong, InodeNbytesWrong, FileExtentHole, FileExtentWrongForInode,
        InodeContentMismatch, RootDirInvalid, OrphanItemMissing, SubvolumeRefMismatch, SubvolumeOrphanMissing, SubvolumeNotChecked,
    ];

    public IReadOnlyList<FindingProducer> Uses { get; } = [];
    public string Reads => "Roots, RootTreeComplete, Scan (unreadable and invalid blocks), the subvolume trees' and root tree's blocks (again, through the block cache)";
    public string Adds => "nothing";

    public void Run(CheckContext ctx)
    {
        var vol = ctx.Volume;
        var rootTree = ctx.Roots.FirstOrDefault(r => r.Id == ObjectIds.RootTree && r.Source == RootSource.Superblock);
        if (rootTree == null) return;
        var facts = RootTreeFacts.Read(vol, rootTree);
        // btrfs check skips a deleted subvolume's inodes (root refs 0, being dropped) and checks relocation trees only for
        // what the scan already covers; log trees are not subvolumes until replayed.
        var trees = ctx.Roots.Where(r => r.Source == RootSource.RootItem && r.IsFsTree && !r.IsReloc && !r.IsDropping
                                         && facts.RootItems.TryGetValue(r.Id, out var ri) && ri.Refs > 0).ToList();
        var broken = ctx.Scan.Unreadable.Select(u => u.Bytenr).ToHashSet();
        var shared = SharedBlocks(ctx, trees, broken);
        uint sector = vol.SectorSize;
        ulong maxInline = Math.Min(sector - 1, vol.NodeSize - (ulong)Header.Size - (ulong)ItemHeader.Size - (ulong)Format.Items.FileExtentItem.InlineHeaderSize);
        bool noHoles = (vol.Super.IncompatFlags & Features.IncompatNoHoles) != 0;
        int degree = Math.Max(1, ctx.DegreeOfParallelism ?? Environment.ProcessorCount);
        var summaries = new SubtreeSummaries(vol, ctx.Findings, broken, shared, degree);
        var subvolEntries = new List<(ulong Tree, NameRec Entry)>();
        bool allComplete = ctx.RootTreeComplete && facts.Complete;
        foreach (var root in trees)
        {
            var p = new SubvolumeParams(root.Id, root.Name, facts.RootItems[root.Id].RootDirId, sector, maxInline, noHoles);
            var s = summaries.OfTree(root, p);
            if (s.Broken)
            {
                allComplete = false;
                ctx.Findings.Add(new Finding(SubvolumeNotChecked, Severity.Info,
                    $"{root.Name}: an unreadable or invalid block (reported above) hides part of the tree; its inodes and names are not checked",
                    Bytenr: root.Bytenr, Tree: root.Id));
                continue;
            }
            var recs = s.Frozen ? new List<NameRec>(s.Recs) : s.Recs;
            if (s.Head != null) recs.Add(s.Head.Copy().Close(p, ctx.Findings));
            if (s.Tail != null) recs.Add(s.Tail.Copy().Close(p, ctx.Findings));
            var entries = new List<NameRec>();
            NameJoin.Evaluate(recs, p, ctx.Findings, entries);
            foreach (var e in entries) subvolEntries.Add((root.Id, e));
        }
        if (allComplete) RootRefCheck.Run(facts, subvolEntries, ctx.Findings, rootTree.Bytenr);
    }

    /// <summary>The blocks reached from more than one parent (a root item counts as a parent) among the subvolume trees:
    /// only their nodes are read, each once.</summary>
    private static HashSet<ulong> SharedBlocks(CheckContext ctx, List<TreeRoot> trees, HashSet<ulong> broken)
    {
        var parents = new Dictionary<ulong, int>();
        var visited = new HashSet<ulong>();
        var stack = new Stack<(ulong Bytenr, int Level)>();
        foreach (var t in trees)
        {
            parents[t.Bytenr] = parents.GetValueOrDefault(t.Bytenr) + 1;
            if (t.Level > 0) stack.Push((t.Bytenr, t.Level));
        }
        while (stack.Count > 0)
        {
            var (b, level) = stack.Pop();
            if (!visited.Add(b) || broken.Contains(b)) continue;
            var read = ctx.Volume.ReadTreeBlock(b);
            if (read.Block is not { } block) continue;
            var view = block.View;
            if (view.IsLeaf || view.Header.Level != level || view.Header.NrItems > (uint)view.MaxNodePtrs) continue;
            for (int i = 0; i < view.Count; i++)
            {
                ulong c = view.KeyPtr(i).BlockPtr;
                parents[c] = parents.GetValueOrDefault(c) + 1;
                if (level > 1) stack.Push((c, level - 1));
            }
        }
        return parents.Where(kv => kv.Value > 1).Select(kv => kv.Key).ToHashSet();
    }
}
