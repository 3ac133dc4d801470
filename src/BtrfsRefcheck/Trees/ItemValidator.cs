using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Volume;

namespace BtrfsRefcheck.Trees;

/// <summary>Per-item validation (the kernel's tree-checker check_leaf_item): one validator per item type,
/// dispatched from one switch on the key type. Runs on leaves that passed block validation.</summary>
public static class ItemValidator
{
    public static void ValidateLeaf(in BlockContext ctx, TreeBlock block, BtrfsVolume volume, FindingBag findings)
    {
    }
}
