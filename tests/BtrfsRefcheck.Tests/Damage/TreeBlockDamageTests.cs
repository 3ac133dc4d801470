using System.Buffers.Binary;
using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Forge;
using BtrfsRefcheck.Tests.Oracle;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Trees;
using BtrfsRefcheck.Volume;
using Xunit.Abstractions;
using static BtrfsRefcheck.Tests.Damage.DamageSupport;

namespace BtrfsRefcheck.Tests.Damage;

/// <summary>300-314, 422, 423 and 900 on real images, each a block changed on disk with every other consequence fixed up
/// (checksums recomputed and every copy written, unless the checksum or one copy is the defect).
/// <para>Targets, chosen so a defect hides nothing the checker cross-references: the free space tree's root leaf (its
/// items are validated one by one but referenced by nothing), and the csum tree of crc32c, a level-1 node over two leaves
/// (csum items are not cross-checked either), for the defects that need a parent pointer.</para>
/// <para>A block that is unreadable, or invalid so that its items or pointers cannot be trusted (304, 305, 306, 307), hides
/// what it holds: 900 (a warning) says so, for a leaf as for a node.</para></summary>
public class TreeBlockDamageTests(ITestOutputHelper output)
{
    private static TreeRoot FreeSpaceRoot(IReadOnlyList<string> paths)
    {
        var r = Root(paths, ObjectIds.FreeSpaceTree);
        Assert.Equal(0, r.Level);
        return r;
    }

    /// <summary>The csum tree's root node and its two leaves.</summary>
    private static (ulong Node, ulong Leaf0, ulong Leaf1) CsumTree(IReadOnlyList<string> paths)
    {
        var r = Root(paths, ObjectIds.CsumTree);
        Assert.Equal(1, r.Level);
        using var vol = Open(paths);
        var node = vol.ReadTreeBlock(r.Bytenr).Block!.Data;
        Assert.Equal(2u, BlockBytes.NrItems(node));
        return (r.Bytenr, BlockBytes.PtrBlock(node, 0), BlockBytes.PtrBlock(node, 1));
    }

    private static Want Hides(ulong bytenr) => Want.Warning(FindingCode.SubtreeNotChecked, bytenr);

    // ------------------------------------------------------------------ the block cannot be read

    /// <summary>300: one byte flipped in both DUP copies of the free space tree's root leaf, checksums not fixed. The
    /// message lists each copy.</summary>
    [ProgsFact, Covers(FindingCode.TreeBlockChecksumMismatch)]
    public void ChecksumBadInEveryCopy()
    {
        using var img = Copy("crc32c");
        var fst = FreeSpaceRoot(img.Paths);
        using (var vol = Open(img.Paths)) Assert.Equal(2, vol.Chunks.Find(fst.Bytenr)!.Copies);
        for (int c = 0; c < 2; c++) img.CorruptBytes(fst.Bytenr, c, 1000, 1, fixChecksum: false);
        var findings = Check(img.Paths);
        AssertExactly(output, findings, Want.Error(FindingCode.TreeBlockChecksumMismatch, fst.Bytenr), Hides(fst.Bytenr));
        var msg = findings.Single(f => f.Code == FindingCode.TreeBlockChecksumMismatch).Message;
        Assert.Contains("copy 0: checksum mismatch", msg);
        Assert.Contains("copy 1: checksum mismatch", msg);
        AssertCliFindsErrors(img.Paths, FindingCode.TreeBlockChecksumMismatch);
    }

    /// <summary>301: the header says the block belongs one nodesize further on (a misdirected write), checksum valid, in
    /// every copy.</summary>
    [ProgsFact, Covers(FindingCode.TreeBlockBytenrMismatch)]
    public void HeaderBytenrOfAnotherAddress()
    {
        using var img = Copy("crc32c");
        var fst = FreeSpaceRoot(img.Paths);
        Edit(img.Paths, (ed, _) => BlockBytes.SetBytenr(ed.Block(fst.Bytenr), fst.Bytenr + ed.Volume.NodeSize));
        AssertExactly(output, Check(img.Paths), Want.Error(FindingCode.TreeBlockBytenrMismatch, fst.Bytenr), Hides(fst.Bytenr));
    }

    /// <summary>302: one byte of the header fsid flipped, checksum valid, in every copy (a block of another filesystem).</summary>
    [ProgsFact, Covers(FindingCode.TreeBlockFsidMismatch)]
    public void HeaderFsidOfAnotherFilesystem()
    {
        using var img = Copy("crc32c");
        var fst = FreeSpaceRoot(img.Paths);
        Edit(img.Paths, (ed, _) => BlockBytes.FlipFsidByte(ed.Block(fst.Bytenr)));
        AssertExactly(output, Check(img.Paths), Want.Error(FindingCode.TreeBlockFsidMismatch, fst.Bytenr), Hides(fst.Bytenr));
    }

    /// <summary>303: the kernel-written RAID1 pair, devid 2 left out, and the devid 1 copy of the free space tree's root
    /// leaf with a bad checksum. One copy is bad, the other on a missing device: the block cannot be read from any copy,
    /// for two different reasons, so the code is the general 303 (the message says both). 110 is the missing device itself.</summary>
    [Fact, Covers(FindingCode.TreeBlockUnreadable)]
    public void BadCopyOnTheDeviceLeftAndTheOtherOnTheMissingOne()
    {
        using var img = Copy("kernel-raid1");
        var fst = FreeSpaceRoot(img.Paths);
        int copyOnDev1;
        string dev1;
        using (var vol = Open(img.Paths))
        {
            var chunk = vol.Chunks.Find(fst.Bytenr)!;
            copyOnDev1 = Enumerable.Range(0, chunk.Copies).Single(c => chunk.Map(fst.Bytenr, c, out _).DevId == 1);
            dev1 = vol.DeviceById(1)!.Path;
        }
        img.CorruptBytes(fst.Bytenr, copyOnDev1, 1000, 1, fixChecksum: false);
        var findings = Check([dev1]);
        AssertExactly(output, findings,
            Want.Error(FindingCode.DeviceMissing),
            Want.Error(FindingCode.TreeBlockUnreadable, fst.Bytenr),
            Hides(fst.Bytenr));
        var msg = findings.Single(f => f.Code == FindingCode.TreeBlockUnreadable).Message;
        Assert.Contains($"copy {copyOnDev1}: checksum mismatch", msg);
        Assert.Contains("devid 2 is missing", msg);
        AssertCliFindsErrors([dev1], FindingCode.TreeBlockUnreadable);
    }

    /// <summary>314: copy 0 of the free space tree's root leaf carries a wrong header bytenr (its checksum recomputed, so
    /// only the bytenr is wrong); copy 1 is good and used. Reported with the bad copy's mirror number, and nothing is hidden.</summary>
    [ProgsFact, Covers(FindingCode.TreeBlockBadCopy)]
    public void OneCopyMisdirected_TheOtherIsUsed()
    {
        using var img = Copy("crc32c");
        var fst = FreeSpaceRoot(img.Paths);
        img.CorruptBytes(fst.Bytenr, 0, Header.BytenrAt + 2, 1, fixChecksum: true);
        var findings = Check(img.Paths);
        AssertExactly(output, findings, Want.Error(FindingCode.TreeBlockBadCopy, fst.Bytenr, mirror: 0));
        Assert.Contains("header bytenr", findings.Single(f => f.Code == FindingCode.TreeBlockBadCopy).Message);
    }

    /// <summary>314 on an extent-tree leaf: the scan reads it, and the join reads it again to stream its extent items.
    /// Copy 0 has a flipped byte (checksum not fixed); both must fall back to copy 1, so the one finding is the bad copy.
    /// A join that skipped the leaf would report every block and data extent in it as having no extent item.</summary>
    [ProgsFact]
    public void ExtentTreeLeafWithOneBadCopy_TheJoinReadsTheOther()
    {
        using var img = Copy("crc32c");
        var root = Root(img.Paths, ObjectIds.ExtentTree);
        ulong leaf = root.Bytenr;
        using (var vol = Open(img.Paths))
        {
            if (root.Level > 0) leaf = BlockBytes.PtrBlock(vol.ReadTreeBlock(root.Bytenr).Block!.Data, 0);
            Assert.Equal(2, vol.Chunks.Find(leaf)!.Copies);
            Assert.Equal(0, vol.ReadTreeBlock(leaf).Block!.Level);
        }
        img.CorruptBytes(leaf, 0, 1000, 1, fixChecksum: false);
        var findings = Check(img.Paths);
        AssertExactly(output, findings, Want.Error(FindingCode.TreeBlockBadCopy, leaf, mirror: 0));
    }

    // ------------------------------------------------------------------ the block is read but invalid: not trusted

    /// <summary>304: the free space tree's ROOT_ITEM says level 1; its root block is a leaf.</summary>
    [ProgsFact, Covers(FindingCode.TreeBlockLevelMismatch)]
    public void RootItemLevelAboveItsLeaf()
    {
        using var img = Copy("crc32c");
        var fst = FreeSpaceRoot(img.Paths);
        Edit(img.Paths, (ed, _) =>
        {
            var (leaf, slot) = TreeBlockPlacement.RootItem(ed.Volume, ObjectIds.FreeSpaceTree);
            ed.Leaf(leaf).Data(slot)[RootItemFields.LevelAt] = 1;
        });
        var findings = Check(img.Paths);
        AssertExactly(output, findings, Want.Error(FindingCode.TreeBlockLevelMismatch, fst.Bytenr), Hides(fst.Bytenr));
        var f = findings.Single(x => x.Code == FindingCode.TreeBlockLevelMismatch);
        Assert.Equal(("1", "0"), (f.Expected, f.Found));
    }

    /// <summary>305: nritems 10000 in the free space tree's root leaf (a 16 KiB leaf holds at most 651).</summary>
    [ProgsFact, Covers(FindingCode.TreeBlockNrItemsInvalid)]
    public void NrItemsBeyondWhatFits()
    {
        using var img = Copy("crc32c");
        var fst = FreeSpaceRoot(img.Paths);
        Edit(img.Paths, (ed, _) => BlockBytes.SetNrItems(ed.Block(fst.Bytenr), 10000));
        AssertExactly(output, Check(img.Paths), Want.Error(FindingCode.TreeBlockNrItemsInvalid, fst.Bytenr), Hides(fst.Bytenr));
    }

    /// <summary>306: the keys of items 0 and 1 of the free space tree's root leaf swapped (data left in place).</summary>
    [ProgsFact, Covers(FindingCode.TreeBlockKeyOrder)]
    public void TwoKeysSwapped()
    {
        using var img = Copy("crc32c");
        var fst = FreeSpaceRoot(img.Paths);
        Edit(img.Paths, (ed, _) =>
        {
            var leaf = ed.Leaf(fst.Bytenr);
            var (k0, k1) = (leaf.Key(0), leaf.Key(1));
            leaf.SetKey(0, k1);
            leaf.SetKey(1, k0);
        });
        AssertExactly(output, Check(img.Paths), Want.Error(FindingCode.TreeBlockKeyOrder, fst.Bytenr, slot: 1), Hides(fst.Bytenr));
    }

    /// <summary>307: item 0's data size one byte larger, so its data runs past the end of the block.</summary>
    [ProgsFact, Covers(FindingCode.TreeBlockItemOutOfBounds)]
    public void ItemDataPastTheBlockEnd()
    {
        using var img = Copy("crc32c");
        var fst = FreeSpaceRoot(img.Paths);
        Edit(img.Paths, (ed, _) =>
        {
            var size = ed.Block(fst.Bytenr).AsSpan(Header.Size + BtrfsKey.Size + 4, 4);
            BinaryPrimitives.WriteUInt32LittleEndian(size, BinaryPrimitives.ReadUInt32LittleEndian(size) + 1);
        });
        AssertExactly(output, Check(img.Paths), Want.Error(FindingCode.TreeBlockItemOutOfBounds, fst.Bytenr, slot: 0), Hides(fst.Bytenr));
    }

    // ------------------------------------------------------------------ the block is read and used, but something is off

    /// <summary>308: the free space tree's root leaf says its owner is the csum tree.</summary>
    [ProgsFact, Covers(FindingCode.TreeBlockOwnerMismatch)]
    public void OwnerOfAnotherTree()
    {
        using var img = Copy("crc32c");
        var fst = FreeSpaceRoot(img.Paths);
        Edit(img.Paths, (ed, _) => BlockBytes.SetOwner(ed.Block(fst.Bytenr), ObjectIds.CsumTree));
        AssertExactly(output, Check(img.Paths), Want.Error(FindingCode.TreeBlockOwnerMismatch, fst.Bytenr));
    }

    /// <summary>309: the csum tree's second leaf is one generation older than its parent pointer says (a lost write: the
    /// kernel's "parent transid verify failed").</summary>
    [ProgsFact, Covers(FindingCode.TreeBlockGenerationMismatch)]
    public void LeafOlderThanItsParentPointer()
    {
        using var img = Copy("crc32c");
        var (_, _, leaf1) = CsumTree(img.Paths);
        ulong gen = 0;
        Edit(img.Paths, (ed, _) =>
        {
            var b = ed.Block(leaf1);
            gen = BlockBytes.Generation(b);
            BlockBytes.SetGeneration(b, gen - 1);
        });
        var findings = Check(img.Paths);
        AssertExactly(output, findings, Want.Error(FindingCode.TreeBlockGenerationMismatch, leaf1));
        var f = findings.Single(x => x.Code == FindingCode.TreeBlockGenerationMismatch);
        Assert.Equal((gen.ToString(), (gen - 1).ToString()), (f.Expected, f.Found));
    }

    /// <summary>310: the csum node's pointer to its second leaf carries that leaf's first key with offset + 1 (still in
    /// order among the node's keys).</summary>
    [ProgsFact, Covers(FindingCode.TreeBlockFirstKeyMismatch)]
    public void ParentKeyDiffersFromTheFirstKey()
    {
        using var img = Copy("crc32c");
        var (node, _, leaf1) = CsumTree(img.Paths);
        Edit(img.Paths, (ed, _) =>
        {
            var b = ed.Block(node);
            var k = BlockBytes.PtrKey(b, 1);
            BlockBytes.SetPtrKey(b, 1, k with { Offset = k.Offset + 1 });
        });
        AssertExactly(output, Check(img.Paths), Want.Error(FindingCode.TreeBlockFirstKeyMismatch, leaf1, slot: 0));
    }

    /// <summary>311, and what each verb makes of it: the csum node's second pointer points at the node itself.
    /// <list type="bullet">
    /// <item><c>dump-tree</c> walks depth-first and knows the node's ancestors: 311 at the node holding the pointer (slot 1).</item>
    /// <item><c>check</c> scans level by level and keeps no ancestry: the pointer asks for the node as a level-0 block after
    /// it was visited as level 1, so it is reported as 304 (at the node, slot 1) and not followed. The pointer is a second
    /// reference to the node besides its ROOT_ITEM, both claiming TREE_BLOCK_REF root 7: 512. The leaf the pointer used to
    /// name is reached by nothing: 505.</item>
    /// </list></summary>
    [ProgsFact, Covers(FindingCode.TreeBlockCycle)]
    public void PointerToItsOwnAncestor()
    {
        using var img = Copy("crc32c");
        var (node, _, leaf1) = CsumTree(img.Paths);
        Edit(img.Paths, (ed, _) => BlockBytes.SetPtrBlock(ed.Block(node), 1, node));

        var walk = DumpTreeWalk(img.Paths);
        AssertExactly(output, walk, Want.Error(FindingCode.TreeBlockCycle, node, slot: 1));
        var (exit, _, stderr) = RunCli("dump-tree", img.Path);
        Assert.Equal(1, exit);
        Assert.Contains($"[311 TreeBlockCycle] root=CSUM_TREE block={node} slot=1", stderr);

        AssertExactly(output, Check(img.Paths),
            Want.Error(FindingCode.TreeBlockLevelMismatch, node, slot: 1),
            Want.Error(FindingCode.TreeBlockMultipleParents, node),
            Want.Error(FindingCode.MetadataExtentLeaked, leaf1));
        AssertCliFindsErrors(img.Paths, FindingCode.TreeBlockLevelMismatch);
    }

    /// <summary>312: the csum tree's second leaf and its parent pointer both claim the superblock's generation + 1 (a block
    /// written after the last commit the superblock records). Pointer and block agree, so only 312.</summary>
    [ProgsFact, Covers(FindingCode.TreeBlockGenerationTooNew)]
    public void GenerationNewerThanTheSuperblock()
    {
        using var img = Copy("crc32c");
        var (node, _, leaf1) = CsumTree(img.Paths);
        Edit(img.Paths, (ed, _) =>
        {
            ulong gen = ed.Volume.Super.Generation + 1;
            BlockBytes.SetGeneration(ed.Block(leaf1), gen);
            BlockBytes.SetPtrGeneration(ed.Block(node), 1, gen);
        });
        AssertExactly(output, Check(img.Paths), Want.Error(FindingCode.TreeBlockGenerationTooNew, leaf1));
    }

    /// <summary>313: one byte of the free space tree root leaf's chunk tree uuid flipped.</summary>
    [ProgsFact, Covers(FindingCode.TreeBlockChunkTreeUuidMismatch)]
    public void ChunkTreeUuidOfAnotherFilesystem()
    {
        using var img = Copy("crc32c");
        var fst = FreeSpaceRoot(img.Paths);
        Edit(img.Paths, (ed, _) => BlockBytes.FlipChunkTreeUuidByte(ed.Block(fst.Bytenr)));
        AssertExactly(output, Check(img.Paths), Want.Error(FindingCode.TreeBlockChunkTreeUuidMismatch, fst.Bytenr));
    }

    /// <summary>422: the header's WRITTEN flag cleared (the block was never completely written).</summary>
    [ProgsFact, Covers(FindingCode.TreeBlockHeaderFlagsInvalid)]
    public void WrittenFlagClear()
    {
        using var img = Copy("crc32c");
        var fst = FreeSpaceRoot(img.Paths);
        Edit(img.Paths, (ed, _) =>
        {
            var b = ed.Block(fst.Bytenr);
            BlockBytes.SetRawFlags(b, BlockBytes.RawFlags(b) & ~Header.FlagWritten);
        });
        var findings = Check(img.Paths);
        AssertExactly(output, findings, Want.Error(FindingCode.TreeBlockHeaderFlagsInvalid, fst.Bytenr));
        Assert.Equal("0x0", findings.Single(f => f.Code == FindingCode.TreeBlockHeaderFlagsInvalid).Found);
    }

    /// <summary>423: the csum node's second pointer names its first leaf (with that leaf's generation). Both verbs report the
    /// second occurrence at the leaf (from slot 1) and do not descend it again. <c>check</c> also sees what follows: the two
    /// pointers claim one TREE_BLOCK_REF (512), the leaf the second pointer used to name is reached by nothing (505), and the
    /// second pointer's key is not the leaf's first key (310, as the kernel checks every parent of a block).</summary>
    [ProgsFact, Covers(FindingCode.TreeBlockReferencedTwice), Covers(FindingCode.TreeBlockMultipleParents)]
    public void TwoPointersToOneLeaf()
    {
        using var img = Copy("crc32c");
        var (node, leaf0, leaf1) = CsumTree(img.Paths);
        Edit(img.Paths, (ed, _) =>
        {
            var b = ed.Block(node);
            BlockBytes.SetPtrBlock(b, 1, leaf0);
            BlockBytes.SetPtrGeneration(b, 1, BlockBytes.PtrGeneration(b, 0));
        });
        AssertExactly(output, Check(img.Paths),
            Want.Error(FindingCode.TreeBlockReferencedTwice, leaf0, slot: 1),
            Want.Error(FindingCode.TreeBlockMultipleParents, leaf0),
            Want.Error(FindingCode.MetadataExtentLeaked, leaf1),
            Want.Error(FindingCode.TreeBlockFirstKeyMismatch, leaf0, slot: 0));
        AssertExactly(output, DumpTreeWalk(img.Paths), Want.Error(FindingCode.TreeBlockReferencedTwice, leaf0, slot: 1));
    }

    // ------------------------------------------------------------------ what could not be checked

    /// <summary>900 for a node: both copies of the csum tree's root node have a bad checksum. It hides its two leaves (one
    /// level, every key); they are then reached by nothing, which with unreadable blocks can only be suspected (505 as
    /// warnings).</summary>
    [ProgsFact, Covers(FindingCode.SubtreeNotChecked)]
    public void UnreadableNodeHidesItsLeaves()
    {
        using var img = Copy("crc32c");
        var (node, leaf0, leaf1) = CsumTree(img.Paths);
        for (int c = 0; c < 2; c++) img.CorruptBytes(node, c, 1000, 1, fixChecksum: false);
        var findings = Check(img.Paths);
        AssertExactly(output, findings,
            Want.Error(FindingCode.TreeBlockChecksumMismatch, node),
            Hides(node),
            Want.Warning(FindingCode.MetadataExtentLeaked, leaf0),
            Want.Warning(FindingCode.MetadataExtentLeaked, leaf1));
        var msg = findings.Single(f => f.Code == FindingCode.SubtreeNotChecked).Message;
        Assert.Contains("up to 1 levels", msg);
        Assert.Contains("[start, end)", msg);
    }

    /// <summary>900 for an invalid fs-tree leaf: two keys swapped (slots 1 and 2, so the first key still matches the
    /// parent) in the leaf that holds the most file extents whose data extents no other leaf uses. The leaf's items cannot be
    /// trusted and are not used, exactly as if it were unreadable: it hides its file extents (900), so each data extent
    /// only it referenced looks unreferenced, which can then only be suspected (604 as warnings), as for an unreadable
    /// leaf (see the forge's tree-block-checksum-mismatch defect).</summary>
    [ProgsFact, Covers(FindingCode.SubtreeNotChecked)]
    public void InvalidFsLeafHidesItsFileExtents()
    {
        using var img = Copy("crc32c");
        var scan = Scan(img.Paths);
        var users = scan.FileExtents.GroupBy(f => f.DiskBytenr).ToDictionary(g => g.Key, g => g.Select(f => f.Leaf).Distinct().Count());
        var (leaf, disks) = scan.Blocks.Values.Where(b => b is { Tree: ObjectIds.FsTree, Level: 0 })
            .Select(b => (b.Bytenr, Disks: scan.FileExtents.Where(f => f.Leaf == b.Bytenr).Select(f => f.DiskBytenr).Distinct().ToList()))
            .Where(x => x.Disks.Count > 0 && x.Disks.All(d => users[d] == 1))
            .OrderByDescending(x => x.Disks.Count).First();
        Edit(img.Paths, (ed, _) =>
        {
            var l = ed.Leaf(leaf);
            var (k1, k2) = (l.Key(1), l.Key(2));
            l.SetKey(1, k2);
            l.SetKey(2, k1);
        });
        AssertExactly(output, Check(img.Paths),
            [Want.Error(FindingCode.TreeBlockKeyOrder, leaf, slot: 2), Hides(leaf),
             .. disks.Select(d => Want.Warning(FindingCode.OrphanDataExtentItem, d))]);
    }

    // ------------------------------------------------------------------ helpers

    /// <summary>What <c>dump-tree</c> finds: the volume's findings plus a depth-first walk of every tree (as
    /// <c>DumpTreeVerb</c> does it, without printing).</summary>
    private static List<Finding> DumpTreeWalk(IReadOnlyList<string> paths)
    {
        var findings = new FindingBag();
        using var vol = BtrfsVolume.Open(paths, null, findings);
        var walker = new TreeWalker(vol, findings);
        foreach (var root in TreeRoots.Enumerate(vol, findings)) walker.Walk(root, new Descend());
        return findings.Items.ToList();
    }

    private sealed class Descend : ITreeVisitor
    {
        public bool OnBlock(in BlockContext ctx, TreeBlock block, bool valid) => true;
    }
}
