using System.Runtime.CompilerServices;
using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Volume;

namespace BtrfsRefcheck.Trees;

/// <summary>Block-level checks that run before any item is decoded (the kernel's tree-checker
/// check_leaf / check_node, plus what the parent pointer promised).</summary>
public static class TreeBlockValidator
{
    /// <summary>Validates <paramref name="block"/>; records findings; false when its items or pointers cannot be trusted.</summary>
    public static bool Validate(in BlockContext ctx, TreeBlock block, BtrfsVolume volume, FindingBag findings)
    {
        var super = volume.Super;
        var view = block.View;
        var h = view.Header;
        bool ok = true;
        var rep = new BlockReporter(findings, ctx.Tree.Name, view.IsLeaf ? "leaf" : "node", block.Logical, ctx.Tree.Id);

        if (h.Level != ctx.ExpectedLevel || h.Level >= Header.MaxLevel)
        {
            rep.Add(FindingCode.TreeBlockLevelMismatch, ctx.ParentBytenr is { } p ? $"level does not match parent {p} slot {ctx.ParentSlot}" : "level does not match its root item",
                ctx.ExpectedLevel.ToString(), h.Level.ToString());
            return false;
        }
        CheckGeneration(ctx, h.Generation, rep);
        ulong maxGen = super.Generation + (ctx.Tree.IsLog ? 1UL : 0UL);
        if (h.Generation > maxGen)
            rep.Add(FindingCode.TreeBlockGenerationTooNew, "generation is newer than the superblock's", $"<= {maxGen}", h.Generation.ToString());

        ulong unknownFlags = h.Flags & ~(Header.FlagWritten | Header.FlagReloc);
        if ((h.Flags & Header.FlagWritten) == 0 || unknownFlags != 0)
            rep.Add(FindingCode.TreeBlockHeaderFlagsInvalid, (h.Flags & Header.FlagWritten) == 0 ? "header WRITTEN flag is clear" : "header has unknown flag bits",
                "WRITTEN, optionally RELOC", $"0x{h.Flags:x}");
        bool mixedBackref = (super.IncompatFlags & Features.IncompatMixedBackref) != 0;
        if (mixedBackref && h.BackrefRev != 1)
            rep.Add(FindingCode.TreeBlockHeaderFlagsInvalid, "backref revision is not 1 (MIXED_BACKREF)", "1", h.BackrefRev.ToString());
        if (volume.ChunkTreeUuid is { } ctu && Uuids.Read(h.ChunkTreeUuid) != ctu)
            rep.Add(FindingCode.TreeBlockChunkTreeUuidMismatch, "header chunk tree uuid differs from the chunk root's", ctu.ToString(), Uuids.Format(h.ChunkTreeUuid));
        if (!OwnerPlausible(ctx.Tree, h.Owner))
            rep.Add(FindingCode.TreeBlockOwnerMismatch, "header owner does not belong to this tree", ObjectIds.TreeName(ctx.Tree.ExpectedOwner), ObjectIds.TreeName(h.Owner));

        uint nr = h.NrItems;
        int max = view.IsLeaf ? view.MaxLeafItems : view.MaxNodePtrs;
        if (nr > (uint)max || (!view.IsLeaf && nr == 0))
        {
            rep.Add(FindingCode.TreeBlockNrItemsInvalid, "nritems out of range", view.IsLeaf ? $"0..{max}" : $"1..{max}", nr.ToString());
            return false;
        }
        if (view.IsLeaf && nr == 0)
        {
            if (ctx.ParentBytenr != null)
                rep.Add(FindingCode.TreeBlockNrItemsInvalid, "empty leaf below a node", "1 or more", "0");
            else if ((h.Flags & Header.FlagReloc) == 0 && NeverEmpty(h.Owner, super.IncompatFlags))
                rep.Add(FindingCode.TreeBlockNrItemsInvalid, $"{ObjectIds.TreeName(h.Owner)} is empty, which that tree never is", "1 or more", "0");
        }

        int count = (int)nr;
        bool leaf = view.IsLeaf;
        // One pass reads every key once: item data bounds (leaves) or pointer targets (nodes), and whether the keys
        // ascend; only a block whose keys do not is walked again, to say where.
        BtrfsKey first, last;
        bool ordered;
        if (leaf) ok &= LeafItems(view, count, rep, out first, out last, out ordered);
        else ok &= NodePointers(view, count, super.SectorSize, rep, out first, out last, out ordered);

        if (!ordered)
        {
            BtrfsKey prev = first;
            for (int i = 1; i < count; i++)
            {
                var key = leaf ? view.ItemKey(i) : view.KeyPtr(i).Key;
                if (prev >= key)
                {
                    rep.Add(FindingCode.TreeBlockKeyOrder, $"key at slot {i} is not greater than the key at slot {i - 1}", $"> {prev}", key.ToString(), i, key);
                    ok = false;
                }
                prev = key;
            }
        }

        if (ctx.EndKey is { } endKey && count > 0)
        {
            if (last >= endKey)
            {
                rep.Add(FindingCode.TreeBlockKeyOrder, $"last key is not below the next key in parent {ctx.ParentBytenr}", $"< {endKey}", last.ToString(), count - 1, last);
                ok = false;
            }
        }

        if (count > 0) CheckFirstKey(ctx, first, rep);
        return ok;
    }

    /// <summary>A tree whose root level is 8 or more is not walked: false, and the root reported (304).</summary>
    public static bool RootLevelValid(TreeRoot root, FindingBag findings)
    {
        if (root.Level < Header.MaxLevel) return true;
        findings.Add(new Finding(FindingCode.TreeBlockLevelMismatch, Severity.Error,
            $"{root.Name}: root level {root.Level} is not below {Header.MaxLevel}; tree not walked", Bytenr: root.Bytenr, Tree: root.Id));
        return false;
    }

    /// <summary>A pointer (<paramref name="c"/>) to a block as level <paramref name="level"/> when the scan already
    /// reached that block as level <paramref name="seenAt"/>: 304, not followed.</summary>
    public static void ReachedAtTwoLevels(in BlockContext c, int level, int seenAt, FindingBag findings) =>
        findings.Add(new Finding(FindingCode.TreeBlockLevelMismatch, Severity.Error,
            $"{c.Tree.Name}: block {c.ParentBytenr} slot {c.ParentSlot} points to block {c.Bytenr} as level {level}, but it was reached as level {seenAt}; not followed",
            Bytenr: c.Bytenr, Tree: c.Tree.Id, Slot: c.ParentSlot, Expected: level.ToString(), Found: seenAt.ToString()));

    /// <summary>A block reached from two trees (<paramref name="c"/>'s and <paramref name="first"/>, the tree it was
    /// validated for): only subvolume trees (snapshots) and their relocation trees share blocks; any other pair is 308.</summary>
    public static void CheckShared(in BlockContext c, TreeRoot first, FindingBag findings)
    {
        if (MayShare(first) && MayShare(c.Tree)) return;
        findings.Add(new Finding(FindingCode.TreeBlockOwnerMismatch, Severity.Error,
            $"{c.Tree.Name}: {(c.ParentBytenr is { } p ? $"block {p} slot {c.ParentSlot}" : "the root")} points to block {c.Bytenr}, which belongs to {first.Name}; trees other than subvolumes never share blocks",
            Bytenr: c.Bytenr, Tree: c.Tree.Id, Slot: c.ParentSlot, Expected: "a block of its own tree", Found: $"a block of {first.Name}"));
    }

    private static bool MayShare(TreeRoot t) => !t.IsLog && (t.IsFsTree || t.IsReloc);

    /// <summary>btrfs check's check_owner_ref: a block whose extent is not FULL_BACKREF is still referenced by its header
    /// owner, so its extent item lists TREE_BLOCK_REF root=owner. The extent references pass finds that back-ref
    /// missing (<paramref name="severity"/> and <paramref name="note"/> say whether unreadable blocks may hide it); the
    /// header owner is this validator's (308).</summary>
    public static void OwnerHasNoRef(FindingBag findings, ulong bytenr, ulong tree, ulong owner, BtrfsKey extentKey, Severity severity, string note) =>
        findings.Add(new Finding(FindingCode.TreeBlockOwnerMismatch, severity,
            $"tree block {bytenr} of {ObjectIds.TreeName(tree)}: header owner {ObjectIds.TreeName(owner)} has no TREE_BLOCK_REF and the extent is not FULL_BACKREF (btrfs check: owner ref check failed){note}",
            Bytenr: bytenr, Tree: tree, Key: extentKey, Expected: $"TREE_BLOCK_REF root={ObjectIds.TreeName(owner)}", Found: "none"));

    /// <summary>What another pointer to a block already validated through <paramref name="ctx"/>'s sibling claims: its
    /// generation and first key (the kernel checks both on every read through a parent: read_block_for_search's
    /// btrfs_verify_level_key, "eb can have multiple parents (shared tree blocks)"). A snapshot's shared block is
    /// validated once, through its first pointer; the scan calls this for the other pointers whose claims differ.</summary>
    public static void ValidateOtherParent(in BlockContext ctx, TreeBlock block, FindingBag findings)
    {
        var view = block.View;
        var rep = new BlockReporter(findings, ctx.Tree.Name, view.IsLeaf ? "leaf" : "node", block.Logical, ctx.Tree.Id);
        CheckGeneration(ctx, view.Header.Generation, rep);
        uint nr = view.Header.NrItems;
        if (nr == 0 || nr > (uint)(view.IsLeaf ? view.MaxLeafItems : view.MaxNodePtrs)) return; // reported through the first pointer
        CheckFirstKey(ctx, view.IsLeaf ? view.ItemKey(0) : view.KeyPtr(0).Key, rep);
    }

    /// <summary>The pointer's (or root item's) generation is the block's (the kernel's verify_parent_transid). A pointer
    /// of generation 0 is never written (every block has generation 1 or more, and COW copies it into the pointer):
    /// the kernel takes 0 as "do not compare", we report it. A root item's 0 means not known.</summary>
    private static void CheckGeneration(in BlockContext ctx, ulong generation, in BlockReporter rep)
    {
        ulong expected = ctx.ExpectedGeneration;
        bool matches = ctx.ParentBytenr == null ? expected == 0 || generation == expected : expected != 0 && generation == expected;
        if (!matches) rep.GenerationMismatch(ctx, generation);
    }

    /// <summary>The block's first key is the key of its parent pointer (btrfs_verify_level_key).</summary>
    private static void CheckFirstKey(in BlockContext ctx, BtrfsKey first, in BlockReporter rep)
    {
        if (ctx.ExpectedFirstKey is { } fk && first != fk) rep.FirstKeyMismatch(ctx, fk, first);
    }

    /// <summary>The trees the kernel's check_leaf refuses as an empty root leaf: the root, chunk, dev and fs trees and the
    /// data reloc tree always hold items, and so does the extent tree (but for EXTENT_TREE_V2).</summary>
    private static bool NeverEmpty(ulong owner, ulong incompat) =>
        owner is ObjectIds.RootTree or ObjectIds.ChunkTree or ObjectIds.DevTree or ObjectIds.FsTree or ObjectIds.DataRelocTree ||
        (owner == ObjectIds.ExtentTree && (incompat & Features.IncompatExtentTreeV2) == 0);

    /// <summary>Item data is packed from the end of the block down: item 0 ends at the block end and each item ends
    /// where the previous one starts; no data may reach into the item headers. False when an item breaks that
    /// (reported); <paramref name="ordered"/> says whether the keys ascend. A loop of its own, with the messages
    /// out of line, so it runs in registers.</summary>
    private static bool LeafItems(BlockView view, int count, in BlockReporter rep, out BtrfsKey first, out BtrfsKey last, out bool ordered)
    {
        bool ok = true;
        ordered = true;
        first = last = default;
        long dataSize = view.Length - Header.Size;
        long expectedEnd = dataSize;
        long headersEnd = (long)count * ItemHeader.Size;
        for (int i = 0; i < count; i++)
        {
            var ih = view.ItemHeader(i);
            var key = ih.Key;
            long start = ih.DataOffset, end = start + ih.DataSize;
            if (end > dataSize || start < headersEnd)
            {
                rep.ItemOutsideDataArea(i, start, end, headersEnd, dataSize, key);
                ok = false;
            }
            else if (end != expectedEnd)
            {
                rep.ItemNotContiguous(i, expectedEnd, end, key);
                ok = false;
            }
            expectedEnd = start;
            if (i == 0) first = key;
            else if (!last.IsBefore(key)) ordered = false;
            last = key;
        }
        return ok;
    }

    /// <summary>Every pointer names a non-zero, sector-aligned block; false when one does not (reported).</summary>
    private static bool NodePointers(BlockView view, int count, uint sectorSize, in BlockReporter rep, out BtrfsKey first, out BtrfsKey last, out bool ordered)
    {
        bool ok = true;
        ordered = true;
        first = last = default;
        for (int i = 0; i < count; i++)
        {
            var kp = view.KeyPtr(i);
            var key = kp.Key;
            ulong ptr = kp.BlockPtr;
            if (ptr == 0 || ptr % sectorSize != 0)
            {
                rep.BadPointer(i, ptr, key);
                ok = false;
            }
            if (i == 0) first = key;
            else if (!last.IsBefore(key)) ordered = false;
            last = key;
        }
        return ok;
    }

    /// <summary>Findings about one block, in the tree-checker's words: tree, leaf or node, address, then what.</summary>
    private readonly struct BlockReporter(FindingBag findings, string name, string kind, ulong bytenr, ulong tree)
    {
        public void Add(FindingCode code, string msg, string? expected = null, string? found = null, int? slot = null, BtrfsKey? key = null) =>
            findings.Add(new Finding(code, Severity.Error, $"{name}: {kind} {bytenr}: {msg}",
                Bytenr: bytenr, Tree: tree, Slot: slot, Key: key, Expected: expected, Found: found));

        [MethodImpl(MethodImplOptions.NoInlining)]
        public void GenerationMismatch(in BlockContext ctx, ulong generation) =>
            Add(FindingCode.TreeBlockGenerationMismatch,
                ctx.ParentBytenr is not { } p ? "generation does not match its root item"
                : ctx.ExpectedGeneration == 0 ? $"the pointer in {p} slot {ctx.ParentSlot} has generation 0, which no pointer may have"
                : $"generation does not match the pointer in {p} slot {ctx.ParentSlot}",
                ctx.ExpectedGeneration.ToString(), generation.ToString());

        [MethodImpl(MethodImplOptions.NoInlining)]
        public void FirstKeyMismatch(in BlockContext ctx, BtrfsKey expected, BtrfsKey first) =>
            Add(FindingCode.TreeBlockFirstKeyMismatch, $"first key does not match the key in parent {ctx.ParentBytenr} slot {ctx.ParentSlot}",
                expected.ToString(), first.ToString(), 0, first);

        [MethodImpl(MethodImplOptions.NoInlining)]
        public void ItemOutsideDataArea(int i, long start, long end, long headersEnd, long dataSize, BtrfsKey key) =>
            Add(FindingCode.TreeBlockItemOutOfBounds, $"item {i} data [{start}, {end}) outside the data area [{headersEnd}, {dataSize})",
                slot: i, key: key);

        [MethodImpl(MethodImplOptions.NoInlining)]
        public void ItemNotContiguous(int i, long expectedEnd, long end, BtrfsKey key) =>
            Add(FindingCode.TreeBlockItemOutOfBounds, $"item {i} data is not contiguous with item {i - 1}", $"end {expectedEnd}", $"end {end}", i, key);

        [MethodImpl(MethodImplOptions.NoInlining)]
        public void BadPointer(int i, ulong ptr, BtrfsKey key) =>
            Add(FindingCode.TreeBlockItemOutOfBounds, $"pointer {i} to block {ptr} is {(ptr == 0 ? "zero" : "not sector aligned")}", slot: i, key: key);
    }

    /// <summary>Trees that are never shared must carry their own id. Subvolume trees may hold blocks owned by
    /// the subvolume they were snapshotted from; relocation and log trees carry their special owners.</summary>
    private static bool OwnerPlausible(TreeRoot tree, ulong owner) =>
        tree.IsLog ? owner == ObjectIds.TreeLog : OwnerPlausible(tree.Id, owner);

    /// <summary>The same rule by tree id, for trees other than log trees.</summary>
    public static bool OwnerPlausible(ulong treeId, ulong owner)
    {
        if (treeId == ObjectIds.TreeReloc) return owner == ObjectIds.TreeReloc || ObjectIds.IsFsTree(owner);
        if (ObjectIds.IsFsTree(treeId)) return ObjectIds.IsFsTree(owner) || owner == ObjectIds.TreeReloc;
        return owner == treeId;
    }
}
