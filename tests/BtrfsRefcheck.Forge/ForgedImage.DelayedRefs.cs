using System.Buffers.Binary;
using BtrfsRefcheck.DelayedRefs;
using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Format.Items;
using BtrfsRefcheck.Volume;

namespace BtrfsRefcheck.Forge;

/// <summary>Forges a delayed-ref replay's end state (issue 16) with the forge's own toolkit: the block and the new
/// item come from <see cref="ForgePlanner"/> (the same plan <c>replay --forge</c> writes with its small writer), the
/// edit is made with <see cref="LeafEditor"/> and committed by <see cref="BlockEdits"/>.</summary>
public static class DelayedRefsForge
{
    private const int TreeBlockRefSize = 1 + 8;

    /// <summary>Writes <paramref name="replay"/>'s end state (<see cref="Replay.EndExtents"/>) for its failing block
    /// into <paramref name="img"/> and returns the findings the plan implies, all at the block's bytenr.</summary>
    public static ForgedDefect ReplayEndState(this ForgedImage img, Replay replay)
    {
        using var vol = BtrfsVolume.Open(img.Paths, null, new FindingBag());
        var scan = ImageScan.Run(vol);
        var candidates = scan.Extents
            .Where(e => e.IsTreeBlock && e.RefsComplete && !e.Item.IsFullBackref && scan.Blocks.ContainsKey(e.Bytenr) && !scan.KeyedRefTargets.Contains(e.Bytenr))
            .Where(e => e.InlineRefs.Count > 0 && e.InlineRefs.All(r => r.Type == ItemType.TreeBlockRef) && e.Refs == (ulong)e.InlineRefs.Count)
            .Select(e => new RealExtent(e.Bytenr, e.Refs, e.InlineRefs.Select(r => r.Root).Order().ToList(),
                scan.ExtentLeaves.First(l => l.Bytenr == e.Leaf).FreeSpace, scan.Blocks[e.Bytenr] is { Tree: ObjectIds.FsTree, Level: 0 }));
        ForgePlan plan;
        try { plan = ForgePlanner.Plan(replay, ForgePlanner.PickBlock(replay), candidates); }
        catch (ForgeStateException e) { throw new ForgeNotApplicableException(e.Message); }
        if (plan.ExpectedCodes.Count == 0) throw new ForgeNotApplicableException($"block {plan.Block}'s end state equals the intended one: nothing to find");

        var target = scan.ExtentAt(plan.Bytenr)!;
        var edits = new BlockEdits(vol);
        var leaf = edits.Leaf(target.Leaf);
        int slot = leaf.Find(target.Key);
        if (slot < 0) throw new ForgeException($"{target.Key} not found in leaf {target.Leaf}");
        int start = target.InlineRefsStart;
        leaf.RemoveBytes(slot, start, leaf.DataSize(slot) - start);
        var refs = new byte[TreeBlockRefSize * plan.NewRoots.Count];
        for (int i = 0; i < plan.NewRoots.Count; i++)
        {
            refs[i * TreeBlockRefSize] = (byte)ItemType.TreeBlockRef;
            BinaryPrimitives.WriteUInt64LittleEndian(refs.AsSpan(i * TreeBlockRefSize + 1), plan.NewRoots[i]);
        }
        leaf.InsertBytes(slot, start, refs);
        BinaryPrimitives.WriteUInt64LittleEndian(leaf.Data(slot), plan.NewRefs);
        edits.Commit();

        var codes = plan.ExpectedCodes.Select(c => (FindingCode)c).ToList();
        return new ForgedDefect(codes[0], plan.Bytenr, plan.Description)
        {
            AlsoExpected = codes.Skip(1).Select(c => new ExpectedFinding(c, plan.Bytenr)).ToList(),
        };
    }
}
