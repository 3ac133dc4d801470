using System.Buffers.Binary;
using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Forge;
using BtrfsRefcheck.Tests.Oracle;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Tests.TreesTests;
using Xunit.Abstractions;
using static BtrfsRefcheck.Tests.Damage.DamageSupport;

namespace BtrfsRefcheck.Tests.Damage;

/// <summary>200-205: the sys_chunk_array, the chunk tree and address mapping, on real images. The "spare" chunk several
/// tests use is the highest DATA chunk of crc32c, which mkfs leaves empty (block group used 0), so changing it loses no
/// file data.</summary>
public class ChunkDamageTests(ITestOutputHelper output)
{
    private const int NumStripesAt = 44, Stripe0OffsetAt = ChunkItem.HeaderSize + 8, Stripe0UuidAt = ChunkItem.HeaderSize + 16;

    private static List<LeafItem> ChunkItems(IReadOnlyList<string> paths) =>
        ImageItems.All(paths).Where(i => i.Tree.Id == ObjectIds.ChunkTree && i.Key.ItemType == ItemType.ChunkItem).ToList();

    /// <summary>The highest DATA chunk, asserted empty.</summary>
    private static LeafItem SpareDataChunk(IReadOnlyList<string> paths)
    {
        var item = ChunkItems(paths).Last(i => (BinaryPrimitives.ReadUInt64LittleEndian(i.Data.AsSpan(24)) & (ulong)BlockGroupFlags.Data) != 0);
        var bg = Scan(paths).BlockGroups.Single(g => g.Start == item.Key.Offset);
        Assert.Equal(0UL, bg.Used);
        return item;
    }

    /// <summary>Appends (key, item) to the sys_chunk_array of every superblock copy.</summary>
    private static void AppendToSysArray(ForgedImage img, BtrfsKey key, byte[] item) => img.PatchSuperblock(s =>
    {
        int size = (int)BinaryPrimitives.ReadUInt32LittleEndian(s[Superblock.SysChunkArraySizeAt..]);
        var at = s[(Superblock.SysChunkArrayAt + size)..];
        key.Write(at);
        item.CopyTo(at[BtrfsKey.Size..]);
        BinaryPrimitives.WriteUInt32LittleEndian(s[Superblock.SysChunkArraySizeAt..], (uint)(size + BtrfsKey.Size + item.Length));
    });

    /// <summary>200: the METADATA chunk (copied from the chunk tree, identical) also appears in the sys_chunk_array, where
    /// only SYSTEM chunks belong. It is still mapped, and equal to the chunk tree's item, so nothing else is reported.</summary>
    [ProgsFact, Covers(FindingCode.SysChunkArrayInvalid)]
    public void NonSystemChunkInTheSysChunkArray()
    {
        using var img = Copy("crc32c");
        var meta = ChunkItems(img.Paths).Single(i => (BinaryPrimitives.ReadUInt64LittleEndian(i.Data.AsSpan(24)) & (ulong)BlockGroupFlags.Metadata) != 0);
        AppendToSysArray(img, meta.Key, meta.Data);
        var findings = Check(img.Paths);
        AssertExactly(output, findings, Want.Error(FindingCode.SysChunkArrayInvalid));
        Assert.Contains("expected SYSTEM", findings.Single(f => f.Code == FindingCode.SysChunkArrayInvalid).Message);
    }

    /// <summary>200: sys_chunk_array_size 8 bytes longer than its entries (zeros follow): trailing bytes too short for a chunk.</summary>
    [ProgsFact, Covers(FindingCode.SysChunkArrayInvalid)]
    public void TrailingBytesInTheSysChunkArray()
    {
        using var img = Copy("crc32c");
        img.PatchSuperblock(s =>
        {
            int size = (int)BinaryPrimitives.ReadUInt32LittleEndian(s[Superblock.SysChunkArraySizeAt..]);
            s.Slice(Superblock.SysChunkArrayAt + size, 8).Clear();
            BinaryPrimitives.WriteUInt32LittleEndian(s[Superblock.SysChunkArraySizeAt..], (uint)(size + 8));
        });
        var findings = Check(img.Paths);
        AssertExactly(output, findings, Want.Error(FindingCode.SysChunkArrayInvalid));
        Assert.Contains("8 trailing bytes", findings.Single(f => f.Code == FindingCode.SysChunkArrayInvalid).Message);
    }

    /// <summary>201 from the volume (the chunk map cannot use the item): the spare DATA chunk's num_stripes set to 0. It is
    /// reported once (the item validator does not repeat it), at the chunk tree leaf and slot like every item finding.
    /// Without the chunk, what describes it points at nothing: its block group has no chunk (704) and its dev extent
    /// names a chunk that does not exist (711), both at the chunk's logical start.</summary>
    [ProgsFact, Covers(FindingCode.ChunkItemInvalid), Covers(FindingCode.BlockGroupNoChunk)]
    public void ChunkWithZeroStripes()
    {
        using var img = Copy("crc32c");
        var spare = SpareDataChunk(img.Paths);
        Edit(img.Paths, (ed, _) => BinaryPrimitives.WriteUInt16LittleEndian(ed.Leaf(spare.Leaf).Data(spare.Slot)[NumStripesAt..], 0));
        var findings = Check(img.Paths);
        AssertExactly(output, findings,
            Want.Error(FindingCode.ChunkItemInvalid, spare.Leaf, slot: spare.Slot),
            Want.Error(FindingCode.BlockGroupNoChunk, spare.Key.Offset),
            Want.Error(FindingCode.DevExtentNoChunk, spare.Key.Offset));
        Assert.Contains("num_stripes 0", findings.Single(f => f.Code == FindingCode.ChunkItemInvalid).Message);
    }

    /// <summary>202 from the sys_chunk_array: a second SYSTEM chunk entry, starting half-way into the first. The first is
    /// kept; the overlapping one is reported at its logical start. The chunk tree never heard of it: nothing else.</summary>
    [ProgsFact, Covers(FindingCode.ChunkOverlap)]
    public void OverlappingSystemChunkInTheSysChunkArray()
    {
        using var img = Copy("crc32c");
        var sys = ChunkItems(img.Paths).Single(i => (BinaryPrimitives.ReadUInt64LittleEndian(i.Data.AsSpan(24)) & (ulong)BlockGroupFlags.System) != 0);
        ulong length = BinaryPrimitives.ReadUInt64LittleEndian(sys.Data);
        var key = sys.Key with { Offset = sys.Key.Offset + length / 2 };
        AppendToSysArray(img, key, sys.Data);
        AssertExactly(output, Check(img.Paths), Want.Error(FindingCode.ChunkOverlap, key.Offset));
    }

    /// <summary>202 from the chunk tree: a new 8 MiB DATA chunk item starting 4 MiB into the spare DATA chunk (its stripe in
    /// unallocated space at 256 MiB). The spare chunk, first in key order, is kept and the new one is dropped by both the
    /// volume and the check's own chunk map, so no block group, dev extent or stripe finding follows. The finding's bytenr is
    /// the overlapping chunk's logical start, as docs/findings.md says for 2xx and as the sys_chunk_array path reports it.</summary>
    [ProgsFact, Covers(FindingCode.ChunkOverlap)]
    public void OverlappingChunkInTheChunkTree()
    {
        using var img = Copy("crc32c");
        var spare = SpareDataChunk(img.Paths);
        var key = spare.Key with { Offset = spare.Key.Offset + 4 * 1024 * 1024 };
        var data = (byte[])spare.Data.Clone();
        BinaryPrimitives.WriteUInt64LittleEndian(data.AsSpan(Stripe0OffsetAt), 256UL * 1024 * 1024);
        Edit(img.Paths, (ed, _) => ed.Leaf(spare.Leaf).InsertSorted(key, data));
        var findings = Check(img.Paths);
        AssertExactly(output, findings, Want.Error(FindingCode.ChunkOverlap, key.Offset));
        Assert.Equal(key, findings.Single(f => f.Code == FindingCode.ChunkOverlap).Key);
    }

    /// <summary>203: in the chunk tree's copy of the SYSTEM chunk, stripe 0's dev_uuid differs from the sys_chunk_array's
    /// (one byte). Nothing maps by dev_uuid, so nothing else changes. On the kernel-written RAID1 pair, whose chunk root
    /// (22052864) is not the SYSTEM chunk's first block, so the bytenr tells chunk (22020096) and leaf apart.</summary>
    [Fact, Covers(FindingCode.ChunkMismatchSysArray)]
    public void SystemChunkDiffersFromTheSysChunkArray()
    {
        using var img = Copy("kernel-raid1");
        var sys = ChunkItems(img.Paths).Single(i => (BinaryPrimitives.ReadUInt64LittleEndian(i.Data.AsSpan(24)) & (ulong)BlockGroupFlags.System) != 0);
        Assert.NotEqual(sys.Leaf, sys.Key.Offset);
        Edit(img.Paths, (ed, _) => ed.Leaf(sys.Leaf).Data(sys.Slot)[Stripe0UuidAt + 15] ^= 0xff);
        var findings = Check(img.Paths);
        AssertExactly(output, findings, Want.Error(FindingCode.ChunkMismatchSysArray, sys.Key.Offset));
        Assert.Equal(sys.Key, findings.Single(f => f.Code == FindingCode.ChunkMismatchSysArray).Key);
    }

    /// <summary>204: the csum tree's root node's last pointer is redirected to an address in no chunk (1 GiB), or to one
    /// whose block would cross the end of the metadata chunk. The block cannot be mapped (204 at that address) and hides
    /// one leaf (900, a warning); the leaf the pointer used to name is reached by nothing, which — with part of the trees
    /// unreadable — can only be suspected (505, a warning).</summary>
    [ProgsTheory, Covers(FindingCode.LogicalAddressUnmapped)]
    [InlineData("in no chunk")]
    [InlineData("crossing the end of its chunk")]
    public void PointerToAnUnmappedAddress(string where)
    {
        using var img = Copy("crc32c");
        var csum = Root(img.Paths, ObjectIds.CsumTree);
        Assert.Equal(1, csum.Level);
        ulong target = 0, lost = 0;
        Edit(img.Paths, (ed, _) =>
        {
            var node = ed.Block(csum.Bytenr);
            int slot = (int)BlockBytes.NrItems(node) - 1;
            lost = BlockBytes.PtrBlock(node, slot);
            var meta = ed.Volume.Chunks.Chunks.Single(c => (c.Type & BlockGroupFlags.Metadata) != 0);
            target = where == "in no chunk" ? 1UL << 30 : meta.End - ed.Volume.SectorSize;
            if (where == "in no chunk") Assert.Null(ed.Volume.Chunks.Find(target));
            BlockBytes.SetPtrBlock(node, slot, target);
        });
        var findings = Check(img.Paths);
        AssertExactly(output, findings,
            Want.Error(FindingCode.LogicalAddressUnmapped, target),
            Want.Warning(FindingCode.SubtreeNotChecked, target),
            Want.Warning(FindingCode.MetadataExtentLeaked, lost));
        Assert.Contains(where == "in no chunk" ? "is in no chunk" : "crosses the end of chunk", findings.Single(f => f.Code == FindingCode.LogicalAddressUnmapped).Message);
    }

    /// <summary>205: a truncated image whose tail held a tree block. The free space tree's root leaf is first moved
    /// (consistently: bytes, extent item, ROOT_ITEM; the image is asserted clean after the move) to the last free nodesize of
    /// the DUP metadata chunk, whose copy 0 lies at 69 MiB and copy 1 at 101 MiB; the image is then cut where its copy 0
    /// starts. Both copies map past the end of the device: 205 at the block, which hides its leaf (900, a warning).
    /// The cut also implies 112 (device smaller than its DEV_ITEM) and 717 for each stripe past the end (both metadata
    /// stripes and the two DATA chunks above 100 MiB). Every other block's copy 0 lies below 40 MiB, and the superblock copy at
    /// 64 MiB stays whole.</summary>
    [ProgsFact, Covers(FindingCode.StripeBeyondDevice)]
    public void BlockInTheCutOffTailOfATruncatedImage()
    {
        using var img = Copy("crc32c");
        var (_, moved) = RelocateRoot(img.Paths, ObjectIds.FreeSpaceTree, (vol, scan) => TreeBlockPlacement.FreeRanges(vol, scan, BlockGroupFlags.Metadata).Last());
        // the move itself is consistent, but for the free-space tree, which still calls the new place free (1103); once
        // the cut hides the free-space tree's only leaf, nothing is compared
        ulong group = Scan(img.Paths).BlockGroups.Single(g => g.Start <= moved && moved < g.End).Start;
        AssertExactly(output, Check(img.Paths), Want.Error(FindingCode.FreeSpaceMismatch, group));
        ulong cut = Physical(img.Paths, moved, 0);
        Assert.True(cut > (ulong)Superblock.MirrorOffsets[1] + Superblock.Size);
        var beyond = new List<Want>();
        using (var vol = Open(img.Paths))
            foreach (var c in vol.Chunks.Chunks)
                foreach (var s in c.Stripes)
                    if (s.Offset + c.StripeSize > cut) beyond.Add(Want.Error(FindingCode.ChunkBeyondDevice, c.Logical));
        Assert.Equal(4, beyond.Count);
        SuperblockDamage.Truncate(img.Path, (long)cut);

        var findings = Check(img.Paths);
        AssertExactly(output, findings,
            [Want.Error(FindingCode.StripeBeyondDevice, moved), Want.Warning(FindingCode.SubtreeNotChecked, moved),
             Want.Error(FindingCode.DeviceSizeMismatch), .. beyond]);
        AssertCliFindsErrors(img.Paths, FindingCode.StripeBeyondDevice);

        // dump-tree --block reads the one block and names the first copy's failure: 205 there already.
        var (exit, _, stderr) = RunCli("dump-tree", "--block", moved.ToString(), img.Path);
        Assert.Equal(1, exit);
        Assert.Contains($"[205 StripeBeyondDevice] block={moved}", stderr);
    }
}
