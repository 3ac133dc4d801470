using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Trees;
using static BtrfsRefcheck.Diagnostics.FindingCode;

namespace BtrfsRefcheck.Checks;

/// <summary>Pass "subvolume semantics": what btrfs check's original mode checks inside each subvolume tree (fs tree,
/// subvolumes, snapshots, the data reloc tree) and between subvolumes: inodes against their own items (nbytes, isize,
/// file extents), names (INODE_REF / INODE_EXTREF against DIR_ITEM and DIR_INDEX, nlink), the root directory, orphans,
/// and ROOT_REF / ROOT_BACKREF against the parent's dir entries. Single items are the item validator's (410-425).
/// What snapshots share is checked once (<see cref="ForestJoin"/>).</summary>
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
        uint sector = vol.SectorSize;
        ulong maxInline = Math.Min(sector - 1, vol.NodeSize - (ulong)Header.Size - (ulong)ItemHeader.Size - (ulong)Format.Items.FileExtentItem.InlineHeaderSize);
        bool noHoles = (vol.Super.IncompatFlags & Features.IncompatNoHoles) != 0;
        int degree = Math.Max(1, ctx.DegreeOfParallelism ?? Environment.ProcessorCount);
        int window = Math.Max(1, ctx.SubvolumeWindowLeaves ?? ForestJoin.WindowLeaves);
        var subvolEntries = new List<(ulong Tree, NameRec Entry)>();
        bool allComplete = ctx.RootTreeComplete && facts.Complete;
        // snapshots share leaves: up to 64 trees are checked together, so each shared leaf is read and checked once. Names
        // are verified by fingerprints (ForestJoin's fast path, no per-name memory); the trees it cannot verify are read
        // again and decided by the exact join, which makes the findings.
        foreach (var chunk in trees.Chunk(ForestJoin.MaxTrees))
        {
            var batch = chunk.Select(r => (r, new SubvolumeParams(r.Id, r.Name, facts.RootItems[r.Id].RootDirId, sector, maxInline, noHoles))).ToList();
            var (brokenTrees, unverified) = new ForestJoin(vol, ctx.Findings, broken, degree) { WindowSize = window, Checkpoint = w => ctx.Observer.Checkpoint(Name, w, 0) }.Run(batch, subvolEntries, fast: !ctx.SubvolumeNamesExactOnly);
            ulong live = ForestJoin.TreesMask(batch.Count) & ~brokenTrees;
            if (ctx.SubvolumeNamesExactOnly) unverified = live;
            // names replaced by btrfs-image -s/-ss are not the same on both sides of a link: not matched either way
            if (vol.NamesSanitized) unverified = live = 0;
            ctx.Stats.SubvolumeTreesFast += System.Numerics.BitOperations.PopCount(live & ~unverified);
            ctx.Stats.SubvolumeTreesJoined += System.Numerics.BitOperations.PopCount(unverified);
            if (unverified != 0 && !ctx.SubvolumeNamesExactOnly)
            {
                // the exact join decides the trees the fast path could not verify (the leaves' and inodes' own findings
                // are made already, and so are the dir entries naming subvolumes)
                var exact = batch.Where((_, t) => (unverified & (1UL << t)) != 0).ToList();
                new ForestJoin(vol, new FindingBag(), broken, degree) { NameFindings = ctx.Findings, WindowSize = window }.Run(exact, [], fast: false);
            }
            for (int t = 0; t < batch.Count; t++)
            {
                if ((brokenTrees & (1UL << t)) == 0) continue;
                allComplete = false;
                var root = batch[t].r;
                ctx.Findings.Add(new Finding(SubvolumeNotChecked, Severity.Info,
                    $"{root.Name}: an unreadable or invalid block (reported above) hides part of the tree; its inodes and names are not checked",
                    Bytenr: root.Bytenr, Tree: root.Id));
            }
        }
        if (allComplete && !vol.NamesSanitized) RootRefCheck.Run(facts, subvolEntries, ctx.Findings, rootTree.Bytenr);
    }
}
