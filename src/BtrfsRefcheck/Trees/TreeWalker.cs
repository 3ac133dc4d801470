using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Volume;

namespace BtrfsRefcheck.Trees;

/// <summary>Receives the blocks of a walk. Blocks arrive after structural validation; <paramref name="valid"/>
/// says whether their items may be trusted.</summary>
public interface ITreeVisitor
{
    /// <summary>Called once per visited block. Return false to skip its children.</summary>
    bool OnBlock(in BlockContext ctx, TreeBlock block, bool valid);

    /// <summary>A pointer to a block this walk (or an earlier one sharing <see cref="WalkOptions.Visited"/>) already visited.</summary>
    void OnSharedBlock(in BlockContext ctx) { }

    /// <summary>No copy of the block could be read; its subtree is not visited.</summary>
    void OnUnreadable(in BlockContext ctx, TreeBlockRead read) { }
}

public sealed class WalkOptions
{
    /// <summary>Shared across walks so a block referenced by several trees (snapshots) is descended once.
    /// Null: every tree is walked in full.</summary>
    public HashSet<ulong>? Visited { get; init; }

    /// <summary>False for internal re-reads of a tree the check already validated: only the level and nritems are
    /// checked (enough to walk safely; item accessors are bounds-checked anyway) and nothing is reported.</summary>
    public bool Validate { get; init; } = true;
}

public sealed class WalkStats
{
    public long Nodes, Leaves, Items, Unreadable;
}

/// <summary>Depth-first walk of one tree. Bounded by the format: child level must be parent level - 1, so no
/// walk is deeper than 8 and a pointer loop is caught as a level or ancestor violation, never followed.</summary>
public sealed class TreeWalker(BtrfsVolume volume, FindingBag findings)
{
    public WalkStats Stats { get; } = new();

    // Blocks reached in the current walk: a second pointer to one of them within one tree is corruption, and
    // without this bound a crafted tree whose nodes all point at the same children would be walked exponentially.
    private readonly HashSet<ulong> _seenThisWalk = [];

    public void Walk(TreeRoot root, ITreeVisitor visitor, WalkOptions? options = null)
    {
        options ??= new WalkOptions();
        var ancestors = new List<ulong>(Header.MaxLevel);
        _seenThisWalk.Clear();
        var ctx = new BlockContext(root, root.Bytenr, root.Level, null, -1, null, null, root.Generation);
        if (!TreeBlockValidator.RootLevelValid(root, findings)) return;
        Visit(ctx, visitor, options, ancestors);
    }

    private void Visit(in BlockContext ctx, ITreeVisitor visitor, WalkOptions options, List<ulong> ancestors)
    {
        if (ancestors.Contains(ctx.Bytenr))
        {
            findings.Add(new Finding(FindingCode.TreeBlockCycle, Severity.Error,
                $"{ctx.Tree.Name}: block {ctx.ParentBytenr} slot {ctx.ParentSlot} points to its own ancestor {ctx.Bytenr}",
                Bytenr: ctx.ParentBytenr, Tree: ctx.Tree.Id, Slot: ctx.ParentSlot));
            return;
        }
        if (!_seenThisWalk.Add(ctx.Bytenr))
        {
            findings.Add(new Finding(FindingCode.TreeBlockReferencedTwice, Severity.Error,
                $"{ctx.Tree.Name}: block {ctx.Bytenr} is reached a second time, from block {ctx.ParentBytenr} slot {ctx.ParentSlot}; not descended again",
                Bytenr: ctx.Bytenr, Tree: ctx.Tree.Id, Slot: ctx.ParentSlot));
            return;
        }
        if (options.Visited != null && !options.Visited.Add(ctx.Bytenr))
        {
            visitor.OnSharedBlock(ctx);
            return;
        }
        var read = volume.ReadTreeBlock(ctx.Bytenr);
        BlockSteps.ReportReadProblems(ctx, read, findings);
        if (read.Block == null)
        {
            Stats.Unreadable++;
            visitor.OnUnreadable(ctx, read);
            return;
        }

        var block = read.Block;
        var view = block.View;
        if (view.IsLeaf) { Stats.Leaves++; Stats.Items += view.Count; } else Stats.Nodes++;
        bool valid = options.Validate
            ? BlockSteps.Validate(ctx, block, volume, findings)
            : view.Header.Level == ctx.ExpectedLevel && view.Header.NrItems <= (uint)(view.IsLeaf ? view.MaxLeafItems : view.MaxNodePtrs);
        bool descend = visitor.OnBlock(ctx, block, valid);
        if (!descend || view.IsLeaf || !valid) return;

        ancestors.Add(ctx.Bytenr);
        int count = view.Count;
        for (int i = 0; i < count; i++)
        {
            Visit(BlockSteps.Child(ctx, block.View, i), visitor, options, ancestors);
        }
        ancestors.RemoveAt(ancestors.Count - 1);
    }
}
