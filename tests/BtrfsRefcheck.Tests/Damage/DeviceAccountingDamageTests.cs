using System.Buffers.Binary;
using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Forge;
using BtrfsRefcheck.Tests.Oracle;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Tests.TreesTests;
using Xunit.Abstractions;
using static BtrfsRefcheck.Tests.Damage.DamageSupport;

namespace BtrfsRefcheck.Tests.Damage;

/// <summary>710-717 on crc32c. The dev tree is one leaf of DEV_EXTENTs; the chunk tree holds the DEV_ITEM; the superblock
/// carries its own copy of the DEV_ITEM, kept equal to the chunk tree's wherever a test changes one (as the kernel does),
/// so that each test has exactly one inconsistency. The "spare" chunk is the highest DATA chunk, which mkfs leaves empty:
/// its dev extent is the last on the device.</summary>
public class DeviceAccountingDamageTests(ITestOutputHelper output)
{
    private const int DevExtentChunkOffsetAt = 16;
    private const ulong Copy0 = 64 * 1024;

    private static List<LeafItem> DevExtents(IReadOnlyList<string> paths) =>
        ImageItems.All(paths).Where(i => i.Tree.Id == ObjectIds.DevTree && i.Key.ItemType == ItemType.DevExtent).OrderBy(i => i.Key.Offset).ToList();

    private static LeafItem DevItemOf(IReadOnlyList<string> paths) =>
        ImageItems.All(paths).Single(i => i.Tree.Id == ObjectIds.ChunkTree && i.Key.ItemType == ItemType.DevItem);

    private static ulong ChunkOffset(LeafItem devExtent) => BinaryPrimitives.ReadUInt64LittleEndian(devExtent.Data.AsSpan(DevExtentChunkOffsetAt));

    /// <summary>The last dev extent on the device, asserted to be the empty DATA chunk's.</summary>
    private static LeafItem SpareDevExtent(IReadOnlyList<string> paths)
    {
        var last = DevExtents(paths)[^1];
        var bg = Scan(paths).BlockGroups.Single(g => g.Start == ChunkOffset(last));
        Assert.True(bg.Used == 0 && (bg.Flags & BlockGroupFlags.Data) != 0, $"the last dev extent belongs to block group {bg.Start}, used {bg.Used}");
        return last;
    }

    /// <summary>Adds <paramref name="delta"/> to a u64 field of the DEV_ITEM (chunk tree) and of the superblock's dev_item copy.</summary>
    private static void AddToDevItem(BlockEdits ed, LeafItem devItem, int fieldAt, long delta)
    {
        var d = ed.Leaf(devItem.Leaf).Data(devItem.Slot)[fieldAt..];
        BinaryPrimitives.WriteUInt64LittleEndian(d, (ulong)((long)BinaryPrimitives.ReadUInt64LittleEndian(d) + delta));
        ed.PatchSuper(s =>
        {
            var f = s[(Superblock.DevItemAt + fieldAt)..];
            BinaryPrimitives.WriteUInt64LittleEndian(f, (ulong)((long)BinaryPrimitives.ReadUInt64LittleEndian(f) + delta));
        });
    }

    /// <summary>710: the free space tree's root leaf moved, consistently (bytes, extent item, ROOT_ITEM), to the first free
    /// sector-aligned address of the metadata chunk where a 16 KiB block crosses a 64 KiB boundary. Everything agrees with
    /// everything else; only the placement is one the kernel's allocator never makes. (The free space tree still calls
    /// the new range free and the old one used: the free space pass reports that block group, 1103.)</summary>
    [ProgsFact, Covers(FindingCode.MetadataCrossesStripe)]
    public void TreeBlockAcrossA64KiBBoundary()
    {
        using var img = Copy("crc32c");
        const ulong Stripe = 64 * 1024;
        var (_, moved) = RelocateRoot(img.Paths, ObjectIds.FreeSpaceTree, (vol, scan) =>
            TreeBlockPlacement.FreeRanges(vol, scan, BlockGroupFlags.Metadata, vol.SectorSize)
                .First(a => a / Stripe != (a + vol.NodeSize - 1) / Stripe));
        Assert.NotEqual(0UL, moved % 16384);
        var findings = Check(img.Paths);
        ulong group = Scan(img.Paths).BlockGroups.Single(g => g.Start <= moved && moved < g.End).Start;
        AssertExactly(output, findings, Want.Error(FindingCode.MetadataCrossesStripe, moved), Want.Error(FindingCode.FreeSpaceMismatch, group));
        AssertCliFindsErrors(img.Paths, FindingCode.MetadataCrossesStripe);
    }

    /// <summary>711: the first DATA dev extent's chunk_offset names the end of the last chunk, where no chunk starts. Its
    /// (devid, physical) still describes the DATA chunk's stripe, so no 712. Reported at the chunk offset it names.</summary>
    [ProgsFact, Covers(FindingCode.DevExtentNoChunk)]
    public void DevExtentNamingNoChunk()
    {
        using var img = Copy("crc32c");
        var first = DevExtents(img.Paths)[0];
        ulong nowhere;
        using (var vol = Open(img.Paths)) nowhere = vol.Chunks.Chunks.Max(c => c.End);
        Edit(img.Paths, (ed, _) => BinaryPrimitives.WriteUInt64LittleEndian(ed.Leaf(first.Leaf).Data(first.Slot)[DevExtentChunkOffsetAt..], nowhere));
        AssertExactly(output, Check(img.Paths), Want.Error(FindingCode.DevExtentNoChunk, nowhere));
    }

    /// <summary>712: the spare chunk's dev extent deleted, and bytes_used of the DEV_ITEM (and the superblock's copy)
    /// lowered by its length so the device accounting still adds up.</summary>
    [ProgsFact, Covers(FindingCode.ChunkStripeNoDevExtent)]
    public void StripeWithoutDevExtent()
    {
        using var img = Copy("crc32c");
        var spare = SpareDevExtent(img.Paths);
        var devItem = DevItemOf(img.Paths);
        ulong length = BinaryPrimitives.ReadUInt64LittleEndian(spare.Data.AsSpan(24));
        Edit(img.Paths, (ed, _) =>
        {
            ed.Leaf(spare.Leaf).DeleteItem(spare.Slot);
            AddToDevItem(ed, devItem, DevItem.BytesUsedAt, -(long)length);
        });
        AssertExactly(output, Check(img.Paths), Want.Error(FindingCode.ChunkStripeNoDevExtent, ChunkOffset(spare)));
    }

    /// <summary>713: total_bytes of the DEV_ITEM (and the superblock's dev_item and total_bytes) set one sector short of the
    /// end of the last dev extent. The image file itself stays 512 MiB, so the device is not too small (no 112).</summary>
    [ProgsFact, Covers(FindingCode.DevExtentBeyondDevice)]
    public void DevExtentEndsPastTotalBytes()
    {
        using var img = Copy("crc32c");
        var spare = SpareDevExtent(img.Paths);
        var devItem = DevItemOf(img.Paths);
        ulong end = spare.Key.Offset + BinaryPrimitives.ReadUInt64LittleEndian(spare.Data.AsSpan(24));
        ulong total = BinaryPrimitives.ReadUInt64LittleEndian(devItem.Data.AsSpan(DevItem.TotalBytesAt));
        long delta = (long)(end - 4096) - (long)total;
        Edit(img.Paths, (ed, _) =>
        {
            AddToDevItem(ed, devItem, DevItem.TotalBytesAt, delta);
            ed.PatchSuper(s => BinaryPrimitives.WriteUInt64LittleEndian(s[Superblock.TotalBytesAt..], end - 4096));
        });
        var findings = Check(img.Paths);
        AssertExactly(output, findings, Want.Error(FindingCode.DevExtentBeyondDevice, ChunkOffset(spare)));
        var f = findings.Single(x => x.Code == FindingCode.DevExtentBeyondDevice);
        Assert.Equal(($"<= {end - 4096}", end.ToString()), (f.Expected, f.Found));
    }

    /// <summary>714: the spare chunk's stripe moved 4 KiB down, so it overlaps the end of the dev extent before it: its
    /// DEV_EXTENT key and the chunk item's stripe offset change together (the chunk holds no data, nothing needs moving).</summary>
    [ProgsFact, Covers(FindingCode.DevExtentOverlap)]
    public void DevExtentsOverlap()
    {
        using var img = Copy("crc32c");
        var spare = SpareDevExtent(img.Paths);
        ulong chunk = ChunkOffset(spare);
        var chunkItem = ImageItems.All(img.Paths).Single(i => i.Tree.Id == ObjectIds.ChunkTree && i.Key.ItemType == ItemType.ChunkItem && i.Key.Offset == chunk);
        ulong moved = spare.Key.Offset - 4096;
        Edit(img.Paths, (ed, _) =>
        {
            var dev = ed.Leaf(spare.Leaf);
            dev.DeleteItem(spare.Slot);
            dev.InsertSorted(spare.Key with { Offset = moved }, spare.Data);
            var stripe0 = ed.Leaf(chunkItem.Leaf).Data(chunkItem.Slot)[(ChunkItem.HeaderSize + 8)..];
            Assert.Equal(spare.Key.Offset, BinaryPrimitives.ReadUInt64LittleEndian(stripe0));
            BinaryPrimitives.WriteUInt64LittleEndian(stripe0, moved);
        });
        AssertExactly(output, Check(img.Paths), Want.Error(FindingCode.DevExtentOverlap, chunk));
    }

    /// <summary>715: bytes_used of the DEV_ITEM (and the superblock's copy) one sector more than its dev extents add up to.</summary>
    [ProgsFact, Covers(FindingCode.DevItemBytesUsedMismatch)]
    public void DevItemBytesUsedOneSectorTooMany()
    {
        using var img = Copy("crc32c");
        var devItem = DevItemOf(img.Paths);
        ulong used = BinaryPrimitives.ReadUInt64LittleEndian(devItem.Data.AsSpan(DevItem.BytesUsedAt));
        Edit(img.Paths, (ed, _) => AddToDevItem(ed, devItem, DevItem.BytesUsedAt, 4096));
        var findings = Check(img.Paths);
        AssertExactly(output, findings, Want.Error(FindingCode.DevItemBytesUsedMismatch));
        var f = findings.Single(x => x.Code == FindingCode.DevItemBytesUsedMismatch);
        Assert.Equal((used.ToString(), (used + 4096).ToString()), (f.Expected, f.Found));
    }

    /// <summary>716: num_devices 2 in every superblock copy; the chunk tree lists one DEV_ITEM (and that device is given).</summary>
    [ProgsFact, Covers(FindingCode.SuperNumDevicesMismatch)]
    public void SuperblockCountsTwoDevices()
    {
        using var img = Copy("crc32c");
        img.PatchSuperblockU64(Superblock.NumDevicesAt, 2);
        AssertExactly(output, Check(img.Paths), Want.Error(FindingCode.SuperNumDevicesMismatch, Copy0));
    }

    /// <summary>717: the image cut one sector before the end of its last chunk stripe (the spare chunk's): that chunk runs
    /// past the end of the file, and the device is smaller than its DEV_ITEM says (112, inherent: a stripe past the end
    /// of the file is below total_bytes unless the DEV_ITEM is wrong too, which would be 713 instead).</summary>
    [ProgsFact, Covers(FindingCode.ChunkBeyondDevice)]
    public void ImageCutInsideTheLastChunk()
    {
        using var img = Copy("crc32c");
        var spare = SpareDevExtent(img.Paths);
        ulong end = spare.Key.Offset + BinaryPrimitives.ReadUInt64LittleEndian(spare.Data.AsSpan(24));
        SuperblockDamage.Truncate(img.Path, (long)end - 4096);
        AssertExactly(output, Check(img.Paths), Want.Error(FindingCode.ChunkBeyondDevice, ChunkOffset(spare)), Want.Error(FindingCode.DeviceSizeMismatch));
    }
}
