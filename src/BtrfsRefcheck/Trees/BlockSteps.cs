using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Volume;

namespace BtrfsRefcheck.Trees;

/// <summary>The per-block steps every walk takes, in one place: report what reading found, validate the block
/// and its items, and derive a child's context from its parent's pointer.</summary>
public static class BlockSteps
{
    /// <summary>Records bad copies (when a good one was found) or the unreadable block and what it hides.</summary>
    public static void ReportReadProblems(in BlockContext ctx, TreeBlockRead read, FindingBag findings)
    {
        foreach (var f in read.Failures)
        {
            if (read.Block == null || f.DeviceMissing) continue; // a missing device is reported once, as DeviceMissing
            findings.Add(new Finding(FindingCode.TreeBlockBadCopy, Severity.Error,
                $"{ctx.Tree.Name}: copy {f.Copy} of block {ctx.Bytenr} is bad ({f.Reason}); copy {read.Block.Copy} is good",
                Bytenr: ctx.Bytenr, Tree: ctx.Tree.Id, Mirror: f.Copy));
        }
        if (read.Block != null) return;
        var code = read.Failures.Count > 0 && read.Failures.All(f => f.Code == read.Failures[0].Code) ? read.Failures[0].Code : FindingCode.TreeBlockUnreadable;
        if (code is not (FindingCode.TreeBlockChecksumMismatch or FindingCode.TreeBlockBytenrMismatch or FindingCode.TreeBlockFsidMismatch or FindingCode.LogicalAddressUnmapped or FindingCode.StripeBeyondDevice))
            code = FindingCode.TreeBlockUnreadable;
        string from = ctx.ParentBytenr is { } p ? $"pointed to by block {p} slot {ctx.ParentSlot}" : "root block";
        findings.Add(new Finding(code, Severity.Error,
            $"{ctx.Tree.Name}: block {ctx.Bytenr} ({from}, level {ctx.ExpectedLevel}) unreadable: {read.Describe()}; its subtree is not checked",
            Bytenr: ctx.Bytenr, Tree: ctx.Tree.Id));
        NotChecked(ctx, "unreadable", findings);
    }

    /// <summary>Block-level then item-level validation; false when the block's items or pointers cannot be trusted
    /// (an invalid node is not descended, and what it hides is reported).</summary>
    public static bool Validate(in BlockContext ctx, TreeBlock block, BtrfsVolume volume, FindingBag findings, bool items = true)
    {
        bool valid = TreeBlockValidator.Validate(ctx, block, volume, findings);
        bool leaf = block.Level == 0;
        if (valid && leaf && items) ItemValidator.ValidateLeaf(ctx, block, volume, findings);
        if (!valid) NotChecked(ctx, "invalid", findings); // its items (or children) are not used: say what that hides
        return valid;
    }

    /// <summary>The context of the child behind pointer <paramref name="slot"/> of a valid node.</summary>
    public static BlockContext Child(in BlockContext ctx, BlockView node, int slot)
    {
        var ptr = node.KeyPtr(slot);
        var end = slot + 1 < node.Count ? node.KeyPtr(slot + 1).Key : ctx.EndKey;
        return new BlockContext(ctx.Tree, ptr.BlockPtr, node.Header.Level - 1, ctx.Bytenr, slot, node.Header.Owner,
            ptr.Key, ptr.Generation, end);
    }

    /// <summary>Says what a block that cannot be descended hides: its tree, level and key range.</summary>
    public static void NotChecked(in BlockContext ctx, string why, FindingBag findings)
    {
        string hidden = ctx.ExpectedLevel > 0 ? $"up to {ctx.ExpectedLevel} levels of blocks" : "one leaf";
        string what = ctx.Tree.IsFsTree ? "inodes, file extents and their data back-refs there are not verified"
            : ctx.Tree.Id == ObjectIds.ExtentTree ? "extent items and back-refs there are unknown, so references to them cannot be verified"
            : "its items there are not verified";
        findings.Add(new Finding(FindingCode.SubtreeNotChecked, Severity.Warning,
            $"{ctx.Tree.Name}: {why} block {ctx.Bytenr} (level {ctx.ExpectedLevel}) hides {hidden} covering keys {ctx.KeyRange}; {what}",
            Bytenr: ctx.Bytenr, Tree: ctx.Tree.Id, Key: ctx.ExpectedFirstKey));
    }
}
