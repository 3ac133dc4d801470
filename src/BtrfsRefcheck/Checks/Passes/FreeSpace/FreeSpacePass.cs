using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Trees;
using static BtrfsRefcheck.Diagnostics.FindingCode;

namespace BtrfsRefcheck.Checks;

/// <summary>Pass "free space": btrfs check's [4/8] "checking free space tree" (or "cache"). The v1 space cache's headers,
/// inodes and files, and what the superblock says of them (<see cref="SpaceCacheCheck"/>); with the FREE_SPACE_TREE
/// compat_ro flag, the free-space tree against the block groups and extents (<see cref="FreeSpaceTreeCheck"/>); without
/// FREE_SPACE_TREE_VALID the kernel rebuilds the tree at the next read-write mount, so its contents are not held against
/// it (a note says so).</summary>
public sealed class FreeSpacePass : ICheckPass
{
    public string Name => "free space";

    public IReadOnlyList<FindingCode> Codes { get; } =
    [
        FreeSpaceInfoMissing, FreeSpaceOutsideBlockGroup, FreeSpaceStaleMkfsEntries, FreeSpaceMismatch, FreeSpaceExtentCountMismatch,
        FreeSpaceWrongItemType, FreeSpaceExtentsUnmerged, FreeSpaceTreeNotValid,
        SpaceCacheOrphanHeader, SpaceCacheInodeMissing, SpaceCacheDiscarded, SpaceCacheMoreFree, SpaceCacheInvalidated, SpaceCacheLeftBesideTree,
    ];

    public IReadOnlyList<FindingProducer> Uses { get; } = [];
    public string Reads => "Roots, Scan (block groups, chunks, extent leaves, hidden extent ranges)";
    public string Adds => "nothing";

    public void Run(CheckContext ctx)
    {
        var super = ctx.Volume.Super;
        bool fst = (super.CompatRoFlags & Features.CompatRoFreeSpaceTree) != 0;
        // A backup root or chunk root (901, 902) checks an older generation, whose free-space records need not match the
        // extents of the trees read with it (blocks of either may have been reused since): not compared.
        if (ctx.Volume.RootTree.BackupIndex != null || ctx.Volume.ChunkTree.BackupIndex != null) return;
        new SpaceCacheCheck(ctx).Run(fst);
        if (!fst) return;
        var root = ctx.Roots.FirstOrDefault(r => r.Id == ObjectIds.FreeSpaceTree && r.Source == RootSource.RootItem);
        if (root == null) return; // 403, the roots pass
        if ((super.CompatRoFlags & Features.CompatRoFreeSpaceTreeValid) == 0)
        {
            ctx.Findings.Add(new Finding(FreeSpaceTreeNotValid, Severity.Info,
                "compat_ro FREE_SPACE_TREE without FREE_SPACE_TREE_VALID: the kernel rebuilds the free-space tree at the next read-write mount; its contents are not checked",
                Tree: ObjectIds.FreeSpaceTree));
            return;
        }
        new FreeSpaceTreeCheck(ctx, root).Run();
    }
}
