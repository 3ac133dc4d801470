using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Trees;
using BtrfsRefcheck.Volume;

namespace BtrfsRefcheck.Checks;

/// <summary>Pass "roots": every tree to check, from the superblock (root and chunk trees), the root tree's ROOT_ITEMs
/// and the log root tree; then the trees every filesystem has (by feature) that the root tree does not list.</summary>
public sealed class RootsPass : ICheckPass
{
    public string Name => "roots";
    public IReadOnlyList<FindingCode> Codes { get; } = [FindingCode.RootItemMissing];
    public IReadOnlyList<FindingProducer> Uses { get; } = [FindingProducers.ItemValidator];
    public string Reads => "the volume (superblock or chosen backup root, root tree)";
    public string Adds => "Roots, RootTreeComplete";

    public void Run(CheckContext ctx)
    {
        ctx.Roots = TreeRoots.Enumerate(ctx.Volume, ctx.Findings, out bool rootTreeComplete);
        ctx.RootTreeComplete = rootTreeComplete;
        CheckRequired(ctx.Volume, ctx.Roots, rootTreeComplete, ctx.Findings);
    }

    /// <summary>Trees every filesystem has, by feature: a root tree without their ROOT_ITEMs lost them.</summary>
    private static void CheckRequired(BtrfsVolume vol, IReadOnlyList<TreeRoot> roots, bool rootTreeComplete, FindingBag findings)
    {
        var required = new List<ulong> { ObjectIds.ExtentTree, ObjectIds.DevTree, ObjectIds.FsTree, ObjectIds.CsumTree };
        if ((vol.Super.CompatRoFlags & Features.CompatRoFreeSpaceTree) != 0) required.Add(ObjectIds.FreeSpaceTree);
        if ((vol.Super.CompatRoFlags & Features.CompatRoBlockGroupTree) != 0) required.Add(ObjectIds.BlockGroupTree);
        foreach (ulong id in required)
            if (!roots.Any(r => r.Id == id && r.Source == RootSource.RootItem))
                findings.Add(new Finding(FindingCode.RootItemMissing, rootTreeComplete ? Severity.Error : Severity.Warning,
                    $"the root tree has no ROOT_ITEM for the {ObjectIds.TreeName(id)}" + (rootTreeComplete ? "" : " (unverifiable: part of the root tree is unreadable)"),
                    Bytenr: vol.RootTree.Bytenr, Tree: ObjectIds.RootTree, Key: new BtrfsKey(id, (byte)ItemType.RootItem, 0),
                    Expected: "a ROOT_ITEM", Found: "none"));
    }

}
