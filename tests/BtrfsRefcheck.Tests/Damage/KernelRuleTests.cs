using System.Buffers.Binary;
using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Forge;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Format.Items;
using BtrfsRefcheck.Tests.Forge;
using BtrfsRefcheck.Tests.Oracle;
using BtrfsRefcheck.Tests.Sources;
using BtrfsRefcheck.Trees;
using BtrfsRefcheck.Volume;
using Xunit.Abstractions;
using static BtrfsRefcheck.Tests.Damage.DamageSupport;
using ImageForge = BtrfsRefcheck.Forge.Forge;

namespace BtrfsRefcheck.Tests.Damage;

/// <summary>The kernel rules docs/findings.md ("Kernel rules") lists as newly implemented, each planted in a copy of a real
/// image: the superblock rules of btrfs_validate_super, btrfs_check_chunk_valid on the sys_chunk_array, and the parent
/// checks of btrfs_verify_level_key / verify_parent_transid through every parent of a shared block.</summary>
public class KernelRuleTests(ITestOutputHelper output)
{
    private const ulong Copy0 = 64 * 1024;

    // ------------------------------------------------------------------ btrfs_validate_super

    /// <summary>leafsize differs from nodesize: the kernel's "invalid leafsize".</summary>
    [ProgsFact, Covers(FindingCode.SuperblockFieldInvalid)]
    public void LeafsizeDiffersFromNodesize()
    {
        using var img = Copy("crc32c");
        uint node;
        using (var vol = Open(img.Paths)) node = vol.Super.NodeSize;
        img.PatchSuperblock(s => BinaryPrimitives.WriteUInt32LittleEndian(s[Superblock.LeafSizeAt..], node * 2));
        var findings = Check(img.Paths);
        AssertExactly(output, findings, Want.Error(FindingCode.SuperblockFieldInvalid, Copy0));
        var f = findings.Single(f => f.Code == FindingCode.SuperblockFieldInvalid);
        Assert.Equal((node.ToString(), (node * 2).ToString()), (f.Expected, f.Found));
    }

    /// <summary>stripesize that is no power of two (4095, as the fuzz run planted).</summary>
    [ProgsFact, Covers(FindingCode.SuperblockFieldInvalid)]
    public void StripesizeNotAPowerOfTwo()
    {
        using var img = Copy("crc32c");
        img.PatchSuperblock(s => BinaryPrimitives.WriteUInt32LittleEndian(s[Superblock.StripeSizeAt..], 4095));
        var findings = Check(img.Paths);
        AssertExactly(output, findings, Want.Error(FindingCode.SuperblockFieldInvalid, Copy0));
        Assert.Equal("4095", findings.Single(f => f.Code == FindingCode.SuperblockFieldInvalid).Found);
    }

    /// <summary>A superblock flag no kernel mounts with (bit 20).</summary>
    [ProgsFact, Covers(FindingCode.SuperblockFieldInvalid)]
    public void UnsupportedSuperblockFlag()
    {
        using var img = Copy("crc32c");
        ulong flags;
        using (var vol = Open(img.Paths)) flags = vol.Super.Flags;
        img.PatchSuperblockU64(Superblock.FlagsAt, flags | 1UL << 20);
        AssertExactly(output, Check(img.Paths), Want.Error(FindingCode.SuperblockFieldInvalid, Copy0));
    }

    /// <summary>total_bytes 0 (btrfs-progs' check_super; the kernel fails the mount later, total_bytes below the
    /// devices' sizes).</summary>
    [ProgsFact, Covers(FindingCode.SuperblockFieldInvalid)]
    public void TotalBytesZero()
    {
        using var img = Copy("crc32c");
        img.PatchSuperblockU64(Superblock.TotalBytesAt, 0);
        AssertExactly(output, Check(img.Paths), Want.Error(FindingCode.SuperblockFieldInvalid, Copy0));
    }

    /// <summary>bytes_used below six nodes: 105, and it differs from the block groups' sum (703).</summary>
    [ProgsFact, Covers(FindingCode.SuperblockFieldInvalid)]
    public void BytesUsedBelowSixNodes()
    {
        using var img = Copy("crc32c");
        img.PatchSuperblockU64(Superblock.BytesUsedAt, 4096);
        AssertExactly(output, Check(img.Paths),
            Want.Error(FindingCode.SuperblockFieldInvalid, Copy0), Want.Error(FindingCode.SuperBytesUsedMismatch, Copy0));
    }

    /// <summary>The superblock's dev_item carries another fsid than the filesystem's.</summary>
    [ProgsFact, Covers(FindingCode.SuperblockFieldInvalid)]
    public void DevItemFsidDiffers()
    {
        using var img = Copy("crc32c");
        img.PatchSuperblock(s => s[Superblock.DevItemAt + DevItem.FsidAt + 15] ^= 0xff);
        AssertExactly(output, Check(img.Paths), Want.Error(FindingCode.SuperblockFieldInvalid, Copy0));
    }

    /// <summary>cache_generation newer than the generation: the kernel only warns, so do we (exit 0).</summary>
    [ProgsFact, Covers(FindingCode.SuperblockFieldInvalid)]
    public void CacheGenerationNewerThanGeneration_IsAWarning()
    {
        using var img = Copy("crc32c");
        ulong gen;
        using (var vol = Open(img.Paths)) gen = vol.Super.Generation;
        img.PatchSuperblockU64(Superblock.CacheGenerationAt, gen + 5);
        AssertExactly(output, Check(img.Paths), Want.Warning(FindingCode.SuperblockFieldInvalid, Copy0));
    }

    /// <summary>log_root not aligned to the sector size (the log tree then cannot be read where it points: the walk
    /// says so too).</summary>
    [ProgsFact, Covers(FindingCode.SuperblockFieldInvalid)]
    public void LogRootUnaligned()
    {
        using var img = Copy("crc32c");
        img.PatchSuperblockU64(Superblock.LogRootAt, 4097);
        AssertExactly(output, Check(img.Paths), Want.Error(FindingCode.SuperblockFieldInvalid, Copy0),
            Want.Error(FindingCode.LogicalAddressUnmapped, 4097), Want.Warning(FindingCode.SubtreeNotChecked, 4097));
    }

    /// <summary>BLOCK_GROUP_TREE without NO_HOLES: mkfs 6.19's defaults (testdata/sources) with the NO_HOLES bit cleared.</summary>
    [Fact, Covers(FindingCode.SuperblockFieldInvalid)]
    public void BlockGroupTreeWithoutNoHoles()
    {
        using var img = ImageForge.CopyAll(SourceFixtures.Images("mkfs619-defaults"), ForgeFixtures.TempDir);
        ulong incompat;
        using (var vol = Open(img.Paths))
        {
            Assert.NotEqual(0UL, vol.Super.CompatRoFlags & Features.CompatRoBlockGroupTree);
            incompat = vol.Super.IncompatFlags;
        }
        img.PatchSuperblockU64(Superblock.IncompatFlagsAt, incompat & ~Features.IncompatNoHoles);
        AssertExactly(output, Check(img.Paths), Want.Error(FindingCode.SuperblockFieldInvalid, Copy0));
    }

    /// <summary>More than 2^31 devices: the kernel warns, so do we; the count also differs from the DEV_ITEMs (716).</summary>
    [ProgsFact, Covers(FindingCode.SuperblockFieldInvalid)]
    public void NumDevicesSuspicious_IsAWarning()
    {
        using var img = Copy("crc32c");
        img.PatchSuperblockU64(Superblock.NumDevicesAt, (1UL << 31) + 1);
        AssertExactly(output, Check(img.Paths),
            Want.Warning(FindingCode.SuperblockFieldInvalid, Copy0), Want.Error(FindingCode.SuperNumDevicesMismatch, Copy0));
    }

    /// <summary>chunk_root_generation newer than the generation: a warning; the chunk root block is then older than the
    /// generation the superblock claims for it (309).</summary>
    [ProgsFact, Covers(FindingCode.SuperblockFieldInvalid)]
    public void ChunkRootGenerationNewerThanGeneration_IsAWarning()
    {
        using var img = Copy("crc32c");
        ulong gen, chunkRoot;
        using (var vol = Open(img.Paths)) (gen, chunkRoot) = (vol.Super.Generation, vol.Super.ChunkRoot);
        img.PatchSuperblockU64(Superblock.ChunkRootGenerationAt, gen + 1);
        AssertExactly(output, Check(img.Paths),
            Want.Warning(FindingCode.SuperblockFieldInvalid, Copy0), Want.Error(FindingCode.TreeBlockGenerationMismatch, chunkRoot));
    }

    /// <summary>sys_chunk_array_size below one key and one chunk: 105; the array's chunk is then cut short (200, the
    /// array's problems carry no bytenr), so the chunk tree cannot be mapped (900) and the volume does not open beyond it.</summary>
    [ProgsFact, Covers(FindingCode.SuperblockFieldInvalid)]
    public void SysChunkArrayTooSmall()
    {
        using var img = Copy("crc32c");
        img.PatchSuperblock(s => BinaryPrimitives.WriteUInt32LittleEndian(s[Superblock.SysChunkArraySizeAt..], 96));
        var bag = new FindingBag();
        try { BtrfsVolume.Open(img.Paths, null, bag).Dispose(); } catch (VolumeException e) { output.WriteLine(e.Message); }
        var f = Assert.Single(bag.Items, x => x.Code == FindingCode.SuperblockFieldInvalid);
        Assert.Equal((Copy0, "96"), (f.Bytenr!.Value, f.Found));
        Assert.Contains(bag.Items, x => x.Code == FindingCode.SysChunkArrayInvalid && x.Bytenr == null);
    }

    /// <summary>total_bytes below the devices' total (btrfs_read_chunk_tree: "super_total_bytes ... mismatch with
    /// fs_devices total_rw_bytes", the mount fails): 105 at the copy in use. btrfs check 6.19 fails it too.</summary>
    [Progs619Fact, Covers(FindingCode.SuperblockFieldInvalid)]
    public void TotalBytesBelowTheDevices()
    {
        using var img = Copy("crc32c");
        ulong devices;
        using (var vol = Open(img.Paths)) devices = vol.DevItems.Aggregate(0UL, (sum, d) => sum + d.TotalBytes);
        img.PatchSuperblockU64(Superblock.TotalBytesAt, devices - 4096);
        var findings = Check(img.Paths);
        AssertExactly(output, findings, Want.Error(FindingCode.SuperblockFieldInvalid, Copy0));
        Assert.Equal(($">= {devices}", (devices - 4096).ToString()), (findings[0].Expected, findings[0].Found));
        var (exit, stdout, stderr) = Progs.V619.CheckReadonly(img.Paths[0]);
        output.WriteLine($"btrfs check 6.19: exit {exit}\n{stdout}{stderr}");
        Assert.NotEqual(0, exit);
        Assert.Contains("smaller than real device", stdout + stderr);
        // equal is what every kernel writes: silent
        img.PatchSuperblockU64(Superblock.TotalBytesAt, devices);
        AssertExactly(output, Check(img.Paths));
    }

    /// <summary>REMAPPED (bit 11) on a DATA chunk of the chunk tree, on a filesystem without REMAP_TREE: the bit is known
    /// (not an unknown type bit), but nothing could translate the chunk's addresses: 201 at the chunk tree leaf (and its
    /// block group, whose flags lack the bit, no longer matches it: 704). btrfs check 6.19 fails the image too.</summary>
    [Progs619Fact, Covers(FindingCode.ChunkItemInvalid)]
    public void RemappedChunkWithoutTheRemapTree()
    {
        using var img = Copy("crc32c");
        ulong leaf;
        using (var vol = Open(img.Paths)) leaf = vol.Super.ChunkRoot;
        int slot = -1;
        Edit(img.Paths, (ed, _) =>
        {
            var l = ed.Leaf(leaf);
            for (int i = 0; i < l.NrItems && slot < 0; i++)
            {
                if (l.Key(i).ItemType != ItemType.ChunkItem) continue;
                var type = l.Data(i)[ChunkItem.TypeAt..];
                ulong t = BinaryPrimitives.ReadUInt64LittleEndian(type);
                if ((t & (ulong)BlockGroupFlags.Data) == 0) continue;
                BinaryPrimitives.WriteUInt64LittleEndian(type, t | (ulong)BlockGroupFlags.Remapped);
                slot = i;
            }
        });
        Assert.True(slot >= 0, "no DATA chunk in the chunk root leaf");
        var findings = Check(img.Paths);
        foreach (var f in findings) output.WriteLine($"  {f.Severity} {f}");
        var c = Assert.Single(findings, f => f.Code == FindingCode.ChunkItemInvalid);
        Assert.Equal((leaf, slot, "REMAP_TREE"), (c.Bytenr!.Value, c.Slot!.Value, c.Expected));
        Assert.DoesNotContain("unknown chunk type bits", c.Message);
        var (exit, stdout, stderr) = Progs.V619.CheckReadonly(img.Paths[0]);
        output.WriteLine($"btrfs check 6.19: exit {exit}\n{stdout}{stderr}");
        Assert.Equal(1, exit);
    }

    /// <summary>EXTENT_TREE_V2 (mkfs 6.19 -O extent-tree-v2): a block group's chunk_objectid is its global root id, below
    /// the superblock's nr_global_roots (check_block_group_item). Planted at nr_global_roots: 415 at the block group
    /// tree leaf. btrfs check 6.19 does not survive the image (SIGSEGV, exit 139 here): asserted only as not clean.</summary>
    [Progs619Fact, Covers(FindingCode.BlockGroupItemInvalid)]
    public void ExtentTreeV2BlockGroupGlobalRootBeyondNrGlobalRoots()
    {
        string dir = Path.Combine(ForgeFixtures.TempDir, $"etv2-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        string path = Path.Combine(dir, "etv2.img");
        try
        {
            using (var f = File.Create(path)) f.SetLength(512L << 20);
            Progs.V619.Run("mkfs.btrfs", "-q", "-f", "-O", "extent-tree-v2", path);
            string[] paths = [path];
            ulong nr;
            using (var vol = Open(paths))
            {
                Assert.NotEqual(0UL, vol.Super.IncompatFlags & Features.IncompatExtentTreeV2);
                nr = vol.Super.NrGlobalRoots;
            }
            Assert.True(nr > 0);
            AssertExactly(output, Check(paths)); // mkfs 6.19's image is clean
            ulong leaf = 0;
            Edit(paths, (ed, scan) =>
            {
                var bg = scan.BlockGroups.First(b => (b.Flags & BlockGroupFlags.Data) != 0);
                leaf = bg.Leaf;
                BinaryPrimitives.WriteUInt64LittleEndian(ed.Leaf(bg.Leaf).Data(bg.Slot)[BlockGroupItem.ChunkObjectIdAt..], nr);
            });
            var findings = Check(paths);
            AssertExactly(output, findings, Want.Error(FindingCode.BlockGroupItemInvalid, leaf));
            Assert.Equal(nr.ToString(), findings[0].Found);
            var (exit, stdout, stderr) = Progs.V619.CheckReadonly(path);
            output.WriteLine($"btrfs check 6.19: exit {exit}\n{stdout}{stderr}");
            Assert.NotEqual(0, exit);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    // ------------------------------------------------------------------ btrfs_check_chunk_valid on the sys_chunk_array

    /// <summary>Offset of the first sys_chunk_array chunk's field <paramref name="at"/> (from the chunk item's start).</summary>
    private const int FirstSysChunkAt = Superblock.SysChunkArrayAt + BtrfsKey.Size;
    private const int ChunkStripeLenAt = 16, ChunkSubStripesAt = 46;

    private static ulong FirstSysChunk(IReadOnlyList<string> paths)
    {
        using var vol = Open(paths);
        return BtrfsKey.Read(vol.Super.Bytes[Superblock.SysChunkArrayAt..]).Offset;
    }

    /// <summary>stripe_len of the sys_chunk_array's chunk is not 64 KiB (0, 1, 65535 as the fuzz run planted): 200 at the
    /// chunk's logical start. The chunk tree's copy of the chunk stays valid.</summary>
    [ProgsTheory, Covers(FindingCode.SysChunkArrayInvalid)]
    [InlineData(0UL), InlineData(1UL), InlineData(65535UL)]
    public void SysChunkStripeLenInvalid(ulong stripeLen)
    {
        using var img = Copy("crc32c");
        ulong logical = FirstSysChunk(img.Paths);
        img.PatchSuperblockU64(FirstSysChunkAt + ChunkStripeLenAt, stripeLen);
        var findings = Check(img.Paths);
        AssertExactly(output, findings, Want.Error(FindingCode.SysChunkArrayInvalid, logical));
        Assert.Equal(stripeLen.ToString(), findings.Single(f => f.Code == FindingCode.SysChunkArrayInvalid).Found);
    }

    /// <summary>sub_stripes 65535 on the (DUP) system chunk: the kernel checks sub_stripes only for RAID10 and maps other
    /// profiles with its own table, so it mounts this; so do we, clean.</summary>
    [ProgsFact]
    public void SysChunkSubStripesOutsideRaid10_IsAccepted()
    {
        using var img = Copy("crc32c");
        img.PatchSuperblock(s => BinaryPrimitives.WriteUInt16LittleEndian(s[(FirstSysChunkAt + ChunkSubStripesAt)..], 65535));
        AssertExactly(output, Check(img.Paths));
    }

    // ------------------------------------------------------------------ parent pointers (verify_parent_transid, btrfs_verify_level_key)

    /// <summary>The csum tree's root node and its second leaf.</summary>
    private static (ulong Node, ulong Leaf1) CsumTree(IReadOnlyList<string> paths)
    {
        var r = Root(paths, ObjectIds.CsumTree);
        Assert.Equal(1, r.Level);
        using var vol = Open(paths);
        var node = vol.ReadTreeBlock(r.Bytenr).Block!.Data;
        return (r.Bytenr, BlockBytes.PtrBlock(node, 1));
    }

    /// <summary>A key pointer of generation 0 above a leaf of a real generation: 309 at the leaf (the kernel never
    /// writes a 0 transid into a pointer).</summary>
    [ProgsFact, Covers(FindingCode.TreeBlockGenerationMismatch)]
    public void PointerGenerationZero()
    {
        using var img = Copy("crc32c");
        var (node, leaf1) = CsumTree(img.Paths);
        Edit(img.Paths, (ed, _) => BlockBytes.SetPtrGeneration(ed.Block(node), 1, 0));
        var findings = Check(img.Paths);
        AssertExactly(output, findings, Want.Error(FindingCode.TreeBlockGenerationMismatch, leaf1));
        Assert.Equal("0", findings.Single(f => f.Code == FindingCode.TreeBlockGenerationMismatch).Expected);
    }

    /// <summary>A block of the subvolume trees of kernel-snapshots reached from two nodes (a block shared by snapshots),
    /// and the second node and slot naming it, where the key can change without leaving the node's key order.</summary>
    private static (ulong NodeB, int SlotB, ulong Child) SharedChild(IReadOnlyList<string> paths)
    {
        using var vol = Open(paths);
        var parentOf = new Dictionary<ulong, ulong>();
        var expanded = new HashSet<ulong>();
        var stack = new Stack<ulong>(TreeRoots.Enumerate(vol, new FindingBag())
            .Where(r => r.IsFsTree && r.Level >= 1 && !r.IsDropping).OrderByDescending(r => r.Id).Select(r => r.Bytenr));
        while (stack.Count > 0)
        {
            ulong bytenr = stack.Pop();
            if (!expanded.Add(bytenr)) continue;
            var node = vol.ReadTreeBlock(bytenr).Block!.Data;
            if (BlockBytes.Level(node) == 0) continue;
            int n = (int)BlockBytes.NrItems(node);
            for (int i = 0; i < n; i++)
            {
                ulong child = BlockBytes.PtrBlock(node, i);
                bool room = i > 0 && (i + 1 == n || BlockBytes.PtrKey(node, i + 1).ObjectId > BlockBytes.PtrKey(node, i).ObjectId);
                if (parentOf.TryGetValue(child, out var first) && first != bytenr && room) return (bytenr, i, child);
                parentOf.TryAdd(child, bytenr);
                stack.Push(child);
            }
        }
        throw new InvalidOperationException("kernel-snapshots has no block shared by two subvolume tree nodes");
    }

    /// <summary>The fuzz run's case: one of two parents of a shared block names it with another key (offset changed, then
    /// type changed). The block is validated once, through one pointer; the other pointer's claim is checked too: 310
    /// at the child, whichever parent is the wrong one.</summary>
    [ProgsTheory, Covers(FindingCode.TreeBlockFirstKeyMismatch)]
    [InlineData(false), InlineData(true)]
    public void SharedChildFirstKeyDiffersInOneParent(bool changeType)
    {
        using var img = Copy("kernel-snapshots");
        var (nodeB, slotB, child) = SharedChild(img.Paths);
        Edit(img.Paths, (ed, _) =>
        {
            var b = ed.Block(nodeB);
            var k = BlockBytes.PtrKey(b, slotB);
            BlockBytes.SetPtrKey(b, slotB, changeType ? k with { Type = (byte)(k.Type + 1) } : k with { Offset = k.Offset + 65536 });
        });
        AssertExactly(output, Check(img.Paths), Want.Error(FindingCode.TreeBlockFirstKeyMismatch, child, slot: 0));
    }

    /// <summary>One of two parents of a shared block carries another generation for it: 309 at the child.</summary>
    [ProgsFact, Covers(FindingCode.TreeBlockGenerationMismatch)]
    public void SharedChildGenerationDiffersInOneParent()
    {
        using var img = Copy("kernel-snapshots");
        var (nodeB, slotB, child) = SharedChild(img.Paths);
        Edit(img.Paths, (ed, _) =>
        {
            var b = ed.Block(nodeB);
            BlockBytes.SetPtrGeneration(b, slotB, BlockBytes.PtrGeneration(b, slotB) - 1);
        });
        AssertExactly(output, Check(img.Paths), Want.Error(FindingCode.TreeBlockGenerationMismatch, child));
    }

    // ------------------------------------------------------------------ check_leaf, check_raid_stripe_extent

    /// <summary>The data reloc tree's root leaf emptied (nritems 0): the kernel's check_leaf refuses an empty root leaf of
    /// the root, chunk, dev, fs, data reloc and extent trees ("must never be empty"): 305 at the leaf.</summary>
    [ProgsFact, Covers(FindingCode.TreeBlockNrItemsInvalid)]
    public void DataRelocTreeRootLeafEmpty()
    {
        using var img = Copy("crc32c");
        var root = Root(img.Paths, ObjectIds.DataRelocTree);
        Assert.Equal(0, root.Level);
        Edit(img.Paths, (ed, _) => BlockBytes.SetNrItems(ed.Block(root.Bytenr), 0));
        AssertExactly(output, Check(img.Paths), Want.Error(FindingCode.TreeBlockNrItemsInvalid, root.Bytenr));
    }

    /// <summary>A RAID stripe extent whose logical start (key objectid) is not sector aligned, planted in the (empty)
    /// raid-stripe tree of the raid-stripe-tree image of testdata/sources: 400 at its leaf.</summary>
    [Fact, Covers(FindingCode.ItemUndecodable)]
    public void RaidStripeExtentUnaligned()
    {
        using var img = ImageForge.CopyAll(SourceFixtures.Images("mkfs619-rst"), ForgeFixtures.TempDir);
        var rst = Root(img.Paths, ObjectIds.RaidStripeTree);
        Assert.Equal(0, rst.Level);
        Edit(img.Paths, (ed, _) =>
            ed.Leaf(rst.Bytenr).InsertSorted(new BtrfsKey(1024 * 1024 + 512, (byte)ItemType.RaidStripe, 4096), new byte[RaidStripeItem.StrideSize]));
        AssertExactly(output, Check(img.Paths), Want.Error(FindingCode.ItemUndecodable, rst.Bytenr));
    }

    /// <summary>A RAID stripe extent on a filesystem without RAID_STRIPE_TREE: the raid-stripe-tree image with an item
    /// planted and the feature bit cleared.</summary>
    [Fact, Covers(FindingCode.ItemUndecodable)]
    public void RaidStripeExtentWithoutTheFeature()
    {
        using var img = ImageForge.CopyAll(SourceFixtures.Images("mkfs619-rst"), ForgeFixtures.TempDir);
        var rst = Root(img.Paths, ObjectIds.RaidStripeTree);
        ulong incompat;
        using (var vol = Open(img.Paths)) incompat = vol.Super.IncompatFlags;
        Edit(img.Paths, (ed, _) =>
            ed.Leaf(rst.Bytenr).InsertSorted(new BtrfsKey(1024 * 1024, (byte)ItemType.RaidStripe, 4096), new byte[RaidStripeItem.StrideSize]));
        foreach (var path in img.Paths)
            SuperblockDamage.PatchDevice(path, s => BinaryPrimitives.WriteUInt64LittleEndian(s[Superblock.IncompatFlagsAt..], incompat & ~Features.IncompatRaidStripeTree));
        AssertExactly(output, Check(img.Paths), Want.Error(FindingCode.ItemUndecodable, rst.Bytenr));
    }
}
