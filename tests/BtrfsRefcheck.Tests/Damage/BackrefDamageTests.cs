using System.Buffers.Binary;
using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Forge;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Format.Items;
using BtrfsRefcheck.Tests.Forge;
using BtrfsRefcheck.Tests.Oracle;
using Xunit.Abstractions;
using static BtrfsRefcheck.Tests.Damage.DamageSupport;

namespace BtrfsRefcheck.Tests.Damage;

/// <summary>400, 401, 403, 510, 511, 601, 602, 605, 606, 607 and 701 on real images: one item of the extent, fs or root tree
/// changed on disk (every copy rewritten with its checksum recomputed), everything else that depends on it fixed up
/// (refs fields, block group used, superblock bytes_used), so the findings are exactly the defect's.</summary>
public class BackrefDamageTests(ITestOutputHelper output)
{
    private const int RefsAt = 0;
    private const int InlineDataRefSize = 1 + ExtentDataRefs.Size;   // type byte + root, objectid, offset, count
    private const int InlineDataRefCountAt = 1 + 24;                 // within an inline EXTENT_DATA_REF
    private const int InlineSharedDataRefSize = 1 + 8 + 4;           // type byte + parent, count
    private const int FileExtentDiskBytenrAt = 21;
    private const int FileExtentDiskNumBytesAt = 29;

    /// <summary>Data extents whose refs the test may rewrite: every inline ref decoded, no keyed refs.</summary>
    private static IEnumerable<ScannedExtent> DataExtents(ImageScan scan) =>
        scan.Extents.Where(e => e.IsData && !e.IsTreeBlock && e.RefsComplete && !scan.KeyedRefTargets.Contains(e.Bytenr));

    /// <summary>A data extent with one inline EXTENT_DATA_REF of count 1 and refs 1, used by exactly one file extent.</summary>
    private static ScannedExtent SingleRefData(ImageScan scan, Func<ScannedExtent, bool>? also = null) =>
        DataExtents(scan).First(e => e.Refs == 1 && e.InlineRefs.Count == 1 && e.InlineRefs[0] is { Type: ItemType.ExtentDataRef, Count: 1 }
            && scan.FileExtents.Count(f => f.DiskBytenr == e.Bytenr) == 1 && (also == null || also(e)));

    private static int FreeSpace(ImageScan scan, ulong leaf) => scan.ExtentLeaves.Single(l => l.Bytenr == leaf).FreeSpace;

    private static (LeafEditor Leaf, int Slot) Locate(BlockEdits ed, ScannedExtent e)
    {
        var leaf = ed.Leaf(e.Leaf);
        int slot = leaf.Find(e.Key);
        Assert.True(slot >= 0, $"{e.Key} not in leaf {e.Leaf}");
        return (leaf, slot);
    }

    private static void SetRefs(Span<byte> extentItem, ulong refs) => BinaryPrimitives.WriteUInt64LittleEndian(extentItem[RefsAt..], refs);

    // ------------------------------------------------------------------ 600-699: data back-refs

    /// <summary>601: a data extent with two or more inline data refs (kernel-snapshots: extents shared by a subvolume and
    /// its snapshot) loses its last one, and refs drops by that ref's count, so the refs sum still matches: the file
    /// extents that ref stood for are left without a back-ref.</summary>
    [Fact, Covers(FindingCode.MissingDataRef)]
    public void DataRefRemoved()
    {
        using var img = Copy("kernel-snapshots");
        ulong bytenr = 0;
        Edit(img.Paths, (ed, scan) =>
        {
            var e = DataExtents(scan).First(e => e.InlineRefs.Count >= 2 && e.InlineRefs.All(r => r.Type is ItemType.ExtentDataRef or ItemType.SharedDataRef));
            var last = e.InlineRefs[^1];
            int size = last.Type == ItemType.ExtentDataRef ? InlineDataRefSize : InlineSharedDataRefSize;
            Assert.Equal(e.Data.Length, last.ItemOffset + size);
            var (leaf, slot) = Locate(ed, e);
            leaf.RemoveBytes(slot, last.ItemOffset, size);
            SetRefs(leaf.Data(slot), e.Refs - last.RefCount);
            output.WriteLine($"data extent {e.Bytenr}: removed {last}");
            bytenr = e.Bytenr;
        });
        AssertExactly(output, Check(img.Paths), Want.Error(FindingCode.MissingDataRef, bytenr));
        AssertCliFindsErrors(img.Paths, FindingCode.MissingDataRef);
    }

    /// <summary>602: a data extent used by one file extent gets a second inline ref, a SHARED_DATA_REF (count 1) naming
    /// as parent an fs tree leaf that holds no file extent of it, after its EXTENT_DATA_REF (type order kept); refs 1 -> 2.</summary>
    [ProgsFact, Covers(FindingCode.StaleDataRef)]
    public void SharedDataRefNamingALeafThatDoesNotUseTheExtent()
    {
        using var img = Copy("crc32c");
        ulong bytenr = 0;
        Edit(img.Paths, (ed, scan) =>
        {
            var e = SingleRefData(scan, e => FreeSpace(scan, e.Leaf) >= InlineSharedDataRefSize);
            ulong user = scan.FileExtents.Single(f => f.DiskBytenr == e.Bytenr).Leaf;
            var other = scan.Blocks.Values.First(b => b is { Tree: ObjectIds.FsTree, Level: 0 } && b.Bytenr != user
                && !scan.FileExtents.Any(f => f.Leaf == b.Bytenr && f.DiskBytenr == e.Bytenr));
            var r = new byte[InlineSharedDataRefSize];
            r[0] = (byte)ItemType.SharedDataRef;
            BinaryPrimitives.WriteUInt64LittleEndian(r.AsSpan(1), other.Bytenr);
            BinaryPrimitives.WriteUInt32LittleEndian(r.AsSpan(9), 1);
            var (leaf, slot) = Locate(ed, e);
            leaf.InsertBytes(slot, e.Data.Length, r);
            SetRefs(leaf.Data(slot), 2);
            output.WriteLine($"data extent {e.Bytenr}: + SHARED_DATA_REF parent={other.Bytenr}");
            bytenr = e.Bytenr;
        });
        AssertExactly(output, Check(img.Paths), Want.Error(FindingCode.StaleDataRef, bytenr));
        AssertCliFindsErrors(img.Paths, FindingCode.StaleDataRef);
    }

    /// <summary>605 with 600: a data extent's only EXTENT_DATA_REF (count 1) is recorded a second time right after itself
    /// (equal hashes keep the kernel's order), refs 1 -> 2 so the refs sum matches. The two copies add up to count 2
    /// where one file extent uses it, which is 600 on the same extent.</summary>
    [ProgsFact, Covers(FindingCode.DuplicateDataRef)]
    public void ExtentDataRefRecordedTwice()
    {
        using var img = Copy("crc32c");
        ulong bytenr = 0;
        Edit(img.Paths, (ed, scan) =>
        {
            var e = SingleRefData(scan, e => FreeSpace(scan, e.Leaf) >= InlineDataRefSize);
            var r = e.InlineRefs[0];
            var (leaf, slot) = Locate(ed, e);
            leaf.InsertBytes(slot, e.Data.Length, e.Data.AsSpan(r.ItemOffset, InlineDataRefSize));
            SetRefs(leaf.Data(slot), 2);
            output.WriteLine($"data extent {e.Bytenr}: {r} recorded twice");
            bytenr = e.Bytenr;
        });
        AssertExactly(output, Check(img.Paths), Want.Error(FindingCode.DuplicateDataRef, bytenr), Want.Error(FindingCode.DataRefCountMismatch, bytenr));
        AssertCliFindsErrors(img.Paths, FindingCode.DuplicateDataRef);
    }

    /// <summary>606: the one file extent using a data extent says disk_num_bytes one sector more than the extent item's
    /// length (still covering offset + num_bytes, so the file extent itself is valid).</summary>
    [ProgsFact, Covers(FindingCode.DataExtentLengthMismatch)]
    public void FileExtentDiskNumBytesDiffersFromTheExtentItem()
    {
        using var img = Copy("crc32c");
        ulong bytenr = 0;
        Edit(img.Paths, (ed, scan) =>
        {
            var e = SingleRefData(scan);
            var fe = scan.FileExtents.Single(f => f.DiskBytenr == e.Bytenr);
            Assert.Equal(e.Key.Offset, fe.DiskNumBytes);
            var leaf = ed.Leaf(fe.Leaf);
            var d = leaf.Data(fe.Slot);
            Assert.Equal(e.Bytenr, BinaryPrimitives.ReadUInt64LittleEndian(d[FileExtentDiskBytenrAt..]));
            BinaryPrimitives.WriteUInt64LittleEndian(d[FileExtentDiskNumBytesAt..], fe.DiskNumBytes + ed.Volume.SectorSize);
            output.WriteLine($"file extent at leaf {fe.Leaf} slot {fe.Slot}: disk_num_bytes {fe.DiskNumBytes} -> {fe.DiskNumBytes + ed.Volume.SectorSize}");
            bytenr = e.Bytenr;
        });
        AssertExactly(output, Check(img.Paths), Want.Error(FindingCode.DataExtentLengthMismatch, bytenr));
        AssertCliFindsErrors(img.Paths, FindingCode.DataExtentLengthMismatch);
    }

    /// <summary>607: a data extent's only inline EXTENT_DATA_REF moved into a keyed EXTENT_DATA_REF item (which the checker
    /// accepts as it is) whose key offset is not hash_extent_data_ref of its root, objectid and offset.</summary>
    [ProgsFact, Covers(FindingCode.KeyedDataRefHashMismatch)]
    public void KeyedExtentDataRefUnderTheWrongHash()
    {
        using var img = Copy("crc32c");
        ulong bytenr = 0;
        Edit(img.Paths, (ed, scan) =>
        {
            var e = SingleRefData(scan, e => FreeSpace(scan, e.Leaf) >= ItemHeader.Size + ExtentDataRefs.Size);
            var r = e.InlineRefs[0];
            ulong hash = ExtentDataRefs.Hash(r.Root, r.ObjectId, r.Offset);
            var body = e.Data.AsSpan(r.ItemOffset + 1, ExtentDataRefs.Size).ToArray();
            var (leaf, slot) = Locate(ed, e);
            leaf.RemoveBytes(slot, r.ItemOffset, InlineDataRefSize);
            leaf.InsertSorted(new BtrfsKey(e.Bytenr, (byte)ItemType.ExtentDataRef, hash ^ 1), body);
            output.WriteLine($"data extent {e.Bytenr}: {r} keyed under 0x{hash ^ 1:x} instead of 0x{hash:x}");
            bytenr = e.Bytenr;
        });
        AssertExactly(output, Check(img.Paths), Want.Error(FindingCode.KeyedDataRefHashMismatch, bytenr));
        AssertCliFindsErrors(img.Paths, FindingCode.KeyedDataRefHashMismatch);
    }

    // ------------------------------------------------------------------ 500-599: extent items

    /// <summary>510: a keyed EXTENT_DATA_REF (root FS_TREE, inode 256, offset 0, count 1) filed one sector into a data
    /// extent of two sectors or more, where no extent item starts.</summary>
    [ProgsFact, Covers(FindingCode.KeyedRefWithoutExtentItem)]
    public void KeyedDataRefWhereNoExtentItemStarts()
    {
        using var img = Copy("crc32c");
        ulong at = 0;
        Edit(img.Paths, (ed, scan) =>
        {
            uint ss = ed.Volume.SectorSize;
            var body = new byte[ExtentDataRefs.Size];
            BinaryPrimitives.WriteUInt64LittleEndian(body, ObjectIds.FsTree);
            BinaryPrimitives.WriteUInt64LittleEndian(body.AsSpan(8), ObjectIds.FirstFree);
            BinaryPrimitives.WriteUInt32LittleEndian(body.AsSpan(24), 1);
            var key = DataExtents(scan).Where(e => e.Key.Offset >= 2UL * ss)
                .Select(e => new BtrfsKey(e.Bytenr + ss, (byte)ItemType.ExtentDataRef, ExtentDataRefs.Hash(ObjectIds.FsTree, ObjectIds.FirstFree, 0)))
                .First(k => scan.LeafFor(k) is { } l && l.FreeSpace >= ItemHeader.Size + body.Length);
            ed.Leaf(scan.LeafFor(key)!.Bytenr).InsertSorted(key, body);
            output.WriteLine($"inserted keyed {key}");
            at = key.ObjectId;
        });
        AssertExactly(output, Check(img.Paths), Want.Error(FindingCode.KeyedRefWithoutExtentItem, at));
        AssertCliFindsErrors(img.Paths, FindingCode.KeyedRefWithoutExtentItem);
    }

    /// <summary>511: on a filesystem without skinny metadata (tree blocks have EXTENT_ITEMs keyed by length), a tree
    /// block's EXTENT_ITEM says half the nodesize; block group used and bytes_used follow it, so only the length is wrong.</summary>
    [ProgsFact, Covers(FindingCode.ExtentTypeMismatch)]
    public void TreeBlockExtentItemLengthIsNotTheNodesize()
    {
        using var img = Copy("noskinny");
        ulong bytenr = 0, group = 0;
        Edit(img.Paths, (ed, scan) =>
        {
            uint ns = ed.Volume.NodeSize;
            var e = scan.Extents.First(e => e.IsTreeBlock && e.Key.ItemType == ItemType.ExtentItem && e.RefsComplete
                && scan.Blocks.TryGetValue(e.Bytenr, out var b) && b is { Tree: ObjectIds.FsTree } && e.Slot > 0);
            Assert.Equal(ns, e.Key.Offset);
            var (leaf, slot) = Locate(ed, e);
            leaf.SetKey(slot, e.Key with { Offset = ns / 2 });
            ed.AddBlockGroupUsed(scan.BlockGroupOf(e.Bytenr, ns), -(long)(ns / 2));
            ed.AddSuperBytesUsed(-(long)(ns / 2));
            output.WriteLine($"tree block {e.Bytenr}: EXTENT_ITEM length {ns} -> {ns / 2}");
            bytenr = e.Bytenr;
            group = scan.BlockGroupOf(e.Bytenr, ns).Start;
        });
        // the half the extent tree no longer allocates is still used by the free-space tree (1103)
        AssertExactly(output, Check(img.Paths), Want.Error(FindingCode.ExtentTypeMismatch, bytenr), Want.Error(FindingCode.FreeSpaceMismatch, group));
        AssertCliFindsErrors(img.Paths, FindingCode.ExtentTypeMismatch);
    }

    // ------------------------------------------------------------------ 700-799: layout

    /// <summary>701 with 604: a one-sector data EXTENT_ITEM (refs 1, EXTENT_DATA_REF root FS_TREE inode 256 offset 0) at a
    /// free address of a metadata block group; that block group's used and bytes_used +sectorsize. No file extent uses
    /// it either (604, at the same address): an extent item cannot be put anywhere without being referenced or not.</summary>
    [ProgsFact, Covers(FindingCode.ExtentOutsideBlockGroup)]
    public void DataExtentInAMetadataBlockGroup()
    {
        using var img = Copy("crc32c");
        ulong at = 0, group = 0;
        Edit(img.Paths, (ed, scan) =>
        {
            var vol = ed.Volume;
            uint ss = vol.SectorSize;
            var body = new byte[ExtentItem.FixedSize + InlineDataRefSize];
            SetRefs(body, 1);
            BinaryPrimitives.WriteUInt64LittleEndian(body.AsSpan(8), vol.Super.Generation);
            BinaryPrimitives.WriteUInt64LittleEndian(body.AsSpan(16), (ulong)ExtentFlags.Data);
            var r = body.AsSpan(ExtentItem.FixedSize);
            r[0] = (byte)ItemType.ExtentDataRef;
            BinaryPrimitives.WriteUInt64LittleEndian(r[1..], ObjectIds.FsTree);
            BinaryPrimitives.WriteUInt64LittleEndian(r[9..], ObjectIds.FirstFree);
            BinaryPrimitives.WriteUInt32LittleEndian(r[InlineDataRefCountAt..], 1);

            var covered = scan.Extents.Select(e => (Start: e.Bytenr, End: e.Bytenr + e.Length(vol.NodeSize))).ToList();
            foreach (var bg in scan.BlockGroups.Where(g => (g.Flags & BlockGroupFlags.TypeMask) == BlockGroupFlags.Metadata))
                for (ulong a = bg.End - ss; a >= bg.Start && at == 0; a -= ss) // from the end: the allocator fills from the start
                {
                    if (covered.Any(c => c.Start < a + ss && a < c.End)) continue;
                    var key = new BtrfsKey(a, (byte)ItemType.ExtentItem, ss);
                    if (scan.LeafFor(key) is not { } l || l.FreeSpace < ItemHeader.Size + body.Length) continue;
                    ed.Leaf(l.Bytenr).InsertSorted(key, body);
                    ed.AddBlockGroupUsed(bg, ss);
                    ed.AddSuperBytesUsed(ss);
                    output.WriteLine($"inserted {key} into extent leaf {l.Bytenr}, metadata block group [{bg.Start}, {bg.End})");
                    at = a;
                    group = bg.Start;
                }
            Assert.NotEqual(0UL, at);
        });
        // the free-space tree still calls the new extent's sector free (1103)
        AssertExactly(output, Check(img.Paths), Want.Error(FindingCode.ExtentOutsideBlockGroup, at), Want.Error(FindingCode.OrphanDataExtentItem, at),
            Want.Error(FindingCode.FreeSpaceMismatch, group));
        AssertCliFindsErrors(img.Paths, FindingCode.ExtentOutsideBlockGroup);
    }

    // ------------------------------------------------------------------ 400-499: items

    /// <summary>400 with 604: a regular file extent item one byte short (52 of 53 bytes): its data reference cannot be
    /// read, so the data extent it pointed to is referenced by nothing the checker can see (604, an error).</summary>
    [ProgsFact, Covers(FindingCode.ItemUndecodable)]
    public void RegularFileExtentItemOneByteShort()
    {
        using var img = Copy("crc32c");
        ulong leafAt = 0, extent = 0;
        int slotAt = -1;
        Edit(img.Paths, (ed, scan) =>
        {
            var e = SingleRefData(scan);
            var fe = scan.FileExtents.Single(f => f.DiskBytenr == e.Bytenr);
            var leaf = ed.Leaf(fe.Leaf);
            Assert.Equal(FileExtentItem.RegularSize, leaf.DataSize(fe.Slot));
            leaf.RemoveBytes(fe.Slot, FileExtentItem.RegularSize - 1, 1);
            output.WriteLine($"file extent at leaf {fe.Leaf} slot {fe.Slot} ({e.Bytenr}): 53 -> 52 bytes");
            (leafAt, slotAt, extent) = (fe.Leaf, fe.Slot, e.Bytenr);
        });
        var findings = Check(img.Paths);
        AssertExactly(output, findings, Want.Error(FindingCode.ItemUndecodable, leafAt, slot: slotAt), Want.Error(FindingCode.OrphanDataExtentItem, extent));
        AssertCliFindsErrors(img.Paths, FindingCode.ItemUndecodable);
    }

    /// <summary>401 (a warning): an item of type 2, which no btrfs version defines, after the last item of the csum tree's
    /// rightmost leaf, outside any subvolume tree (where it would be 424). It is noted and left alone.</summary>
    [Fact, Covers(FindingCode.ItemUnknownType)]
    public void UnknownItemTypeInTheCsumTree()
    {
        using var img = Copy("kernel-snapshots");
        var csum = Root(img.Paths, ObjectIds.CsumTree);
        ulong leaf = csum.Bytenr;
        using (var vol = Open(img.Paths))
            for (int level = csum.Level; level > 0; level--)
            {
                var node = vol.ReadTreeBlock(leaf).Block!.Data;
                leaf = BlockBytes.PtrBlock(node, (int)BlockBytes.NrItems(node) - 1);
            }
        Edit(img.Paths, (ed, _) =>
        {
            var le = ed.Leaf(leaf);
            var last = le.Key(le.NrItems - 1);
            le.InsertItem(le.NrItems, new BtrfsKey(last.ObjectId + 1, 2, 0), new byte[8]);
        });
        AssertExactly(output, Check(img.Paths), Want.Warning(FindingCode.ItemUnknownType, leaf));
        var (exit, stdout, _) = RunCli("check", img.Path);
        Assert.Equal(0, exit); // a warning, not an error
        Assert.Contains($"[{(int)FindingCode.ItemUnknownType} {FindingCode.ItemUnknownType}]", stdout);
    }

    /// <summary>403 with 505: the free space tree's ROOT_ITEM deleted from the root tree (the superblock still says
    /// FREE_SPACE_TREE). Its root leaf is then a block of no tree whose extent item remains (505, an error).</summary>
    [ProgsFact, Covers(FindingCode.RootItemMissing)]
    public void FreeSpaceTreeRootItemDeleted()
    {
        using var img = Copy("crc32c");
        var fst = Root(img.Paths, ObjectIds.FreeSpaceTree);
        ulong rootTree;
        using (var vol = Open(img.Paths)) rootTree = vol.RootTree.Bytenr;
        Assert.Equal(0, fst.Level);
        Edit(img.Paths, (ed, scan) =>
        {
            var leaf = ed.Leaf(rootTree);
            int slot = leaf.Find(new BtrfsKey(ObjectIds.FreeSpaceTree, (byte)ItemType.RootItem, 0));
            Assert.True(slot > 0, "the root tree is one leaf holding the free space tree's ROOT_ITEM, not first");
            leaf.DeleteItem(slot);
        });
        AssertExactly(output, Check(img.Paths), Want.Error(FindingCode.RootItemMissing, rootTree), Want.Error(FindingCode.MetadataExtentLeaked, fst.Bytenr));
        AssertCliFindsErrors(img.Paths, FindingCode.RootItemMissing);
    }
}
