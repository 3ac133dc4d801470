using System.Buffers.Binary;
using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Tests.Oracle;
using BtrfsRefcheck.Tests.Sources;
using BtrfsRefcheck.Tests.TreesTests;
using Xunit.Abstractions;
using static BtrfsRefcheck.Tests.Damage.DamageSupport;

namespace BtrfsRefcheck.Tests.Damage;

/// <summary>1000-1005 on copies of kernel-snapshots (a csum tree of several leaves, compressed and prealloc extents,
/// snapshots) and kernel-logtree (a log with its own csum items), each with btrfs check 6.19's verdict on the same image.</summary>
public class CsumDamageTests(ITestOutputHelper output)
{
    private const string Snapshots = "kernel-snapshots";
    private const int Sector = 4096, CsumSize = 4; // both fixtures: crc32c, 4 KiB sectors
    private const int FeCompressionAt = 16, FeTypeAt = 20, FeDiskBytenrAt = 21, FeDiskNumBytesAt = 29, FeOffsetAt = 37, FeNumBytesAt = 45;
    private const int InodeFlagsAt = 64;

    private sealed record FileExt(LeafItem Item, byte Type, byte Compression, ulong DiskBytenr, ulong DiskNumBytes, ulong Offset, ulong NumBytes)
    {
        public ulong Start => Compression != 0 ? DiskBytenr : DiskBytenr + Offset;
        public ulong End => Start + (Compression != 0 ? DiskNumBytes : NumBytes);
    }

    private static List<FileExt> FileExtents(List<LeafItem> items) =>
        items.Where(i => i.Key.ItemType == ItemType.ExtentData && i.Data.Length == 53 && i.Data[FeTypeAt] != 0 && ObjectIds.IsFsTree(i.Tree.Id) && !i.Tree.IsLog &&
                         i.Tree.Id != ObjectIds.DataRelocTree)
            .Select(i => new FileExt(i, i.Data[FeTypeAt], i.Data[FeCompressionAt], U64(i.Data, FeDiskBytenrAt), U64(i.Data, FeDiskNumBytesAt),
                U64(i.Data, FeOffsetAt), U64(i.Data, FeNumBytesAt)))
            .Where(f => f.DiskBytenr != 0).ToList();

    private static List<LeafItem> CsumItems(List<LeafItem> items) =>
        items.Where(i => i.Tree.Id == ObjectIds.CsumTree && i.Key.ItemType == ItemType.ExtentCsum && i.Key.ObjectId == ObjectIds.ExtentCsum)
            .OrderBy(i => i.Key.Offset).ToList();

    private static ulong U64(byte[] d, int at) => BinaryPrimitives.ReadUInt64LittleEndian(d.AsSpan(at));
    private static ulong CsumEnd(LeafItem c) => c.Key.Offset + (ulong)(c.Data.Length / CsumSize) * Sector;

    /// <summary>1002: the checksums of one compressed extent cut out of its csum item (the item's head or tail, or the item
    /// split in two around it). Every file extent using it (snapshots share it) misses them.</summary>
    [Progs619Fact, Covers(FindingCode.DataCsumMissing)]
    public void CompressedExtentWithoutChecksums()
    {
        using var img = Copy(Snapshots);
        var items = ImageItems.All(img.Paths);
        var csums = CsumItems(items);
        var compressed = FileExtents(items).Where(f => f.Type == 1 && f.Compression != 0).ToList();
        var (victim, item) = compressed.Select(f => (f, c: csums.FirstOrDefault(c => c.Key.Offset <= f.DiskBytenr && CsumEnd(c) >= f.DiskBytenr + f.DiskNumBytes)))
            .First(x => x.c != null && x.c.Data.Length > (int)(x.f.DiskNumBytes / Sector) * CsumSize &&
                        ((x.c.Key.Offset == x.f.DiskBytenr && x.c.Slot != 0) || CsumEnd(x.c) == x.f.DiskBytenr + x.f.DiskNumBytes));
        ulong d = victim.DiskBytenr, n = victim.DiskNumBytes;
        int cut = (int)(n / Sector) * CsumSize;
        Edit(img.Paths, (ed, _) =>
        {
            var leaf = ed.Leaf(item!.Leaf);
            if (item.Key.Offset == d)
            {
                leaf.RemoveBytes(item.Slot, 0, cut);
                leaf.SetKey(item.Slot, item.Key with { Offset = d + n });
            }
            else leaf.RemoveBytes(item.Slot, item.Data.Length - cut, cut);
        });
        int users = FileExtents(items).Count(f => f.DiskBytenr == d && f.Type == 1);
        AssertExactly(output, Check(img.Paths), Enumerable.Repeat(Want.Error(FindingCode.DataCsumMissing, d), users).ToArray());
        var (code, lines) = Progs619(output, img.Paths);
        Assert.Equal(1, code);
        Assert.Contains(lines, l => l.Contains("some csum missing", StringComparison.Ordinal));
    }

    /// <summary>1003: NODATASUM set on an inode whose regular (uncompressed) extents, in the same leaf, have checksums.</summary>
    [Progs619Fact, Covers(FindingCode.UnexpectedDataCsum)]
    public void NoDataSumInodeWithChecksums()
    {
        using var img = Copy(Snapshots);
        var items = ImageItems.All(img.Paths);
        var exts = FileExtents(items);
        var inode = items.Where(i => i.Key.ItemType == ItemType.InodeItem && ObjectIds.IsFsTree(i.Tree.Id) && !i.Tree.IsLog &&
                                     (U64(i.Data, InodeFlagsAt) & 1) == 0)
            .First(i =>
            {
                var mine = exts.Where(f => f.Item.Leaf == i.Leaf && f.Item.Key.ObjectId == i.Key.ObjectId).ToList();
                return mine.Count >= 1 && mine.All(f => f.Type == 1 && f.Compression == 0);
            });
        var regs = exts.Where(f => f.Item.Leaf == inode.Leaf && f.Item.Key.ObjectId == inode.Key.ObjectId).ToList();
        Edit(img.Paths, (ed, _) =>
        {
            var d = ed.Leaf(inode.Leaf).Data(inode.Slot)[InodeFlagsAt..];
            BinaryPrimitives.WriteUInt64LittleEndian(d, BinaryPrimitives.ReadUInt64LittleEndian(d) | 1);
        });
        AssertExactly(output, Check(img.Paths), regs.Select(f => Want.Error(FindingCode.UnexpectedDataCsum, f.DiskBytenr)).ToArray());
        var (code, lines) = Progs619(output, img.Paths);
        Assert.Equal(1, code);
        Assert.Contains(lines, l => l.Contains("odd csum item", StringComparison.Ordinal));
    }

    /// <summary>1000: the first csum item of a leaf moved one sector down, into the range of the previous leaf's last item
    /// (the parent's key follows). The sector it no longer covers at its end is missing for the file extent there (1002).</summary>
    [Progs619Fact, Covers(FindingCode.CsumItemsOverlap)]
    public void CsumItemsOverlapAcrossLeaves()
    {
        using var img = Copy(Snapshots);
        var items = ImageItems.All(img.Paths);
        var csums = CsumItems(items);
        var firsts = csums.Where(c => c.Slot == 0).ToList();
        var second = firsts.First(c =>
        {
            var prev = csums.LastOrDefault(p => p.Key.Offset < c.Key.Offset && p.Leaf != c.Leaf);
            return prev != null && CsumEnd(prev) == c.Key.Offset && CsumEnd(prev) - prev.Key.Offset >= 2 * Sector;
        });
        ulong moved = second.Key.Offset - Sector;
        var block = Scan(img.Paths).Blocks[second.Leaf];
        Assert.NotNull(block.Parent);
        Edit(img.Paths, (ed, _) =>
        {
            ed.Leaf(second.Leaf).SetKey(0, second.Key with { Offset = moved });
            var node = ed.Block(block.Parent!.Value);
            var at = Header.Size + block.ParentSlot * KeyPtr.Size;
            (second.Key with { Offset = moved }).Write(node.AsSpan(at));
        });
        var findings = Check(img.Paths);
        foreach (var f in findings) output.WriteLine($"  {f.Severity} {f}");
        var bad = findings.Where(f => f.IsProblem()).ToList();
        Assert.Single(bad, f => f.Code == FindingCode.CsumItemsOverlap && f.Bytenr == moved);
        Assert.Contains(bad, f => f.Code == FindingCode.DataCsumMissing);
        Assert.All(bad, f => Assert.True(f.Code is FindingCode.CsumItemsOverlap or FindingCode.DataCsumMissing, f.ToString()));
        var (code, lines) = Progs619(output, img.Paths);
        Assert.Equal(1, code);
        Assert.Contains(lines, l => l.Contains($"csum overlap, current bytenr={moved} prev_end={second.Key.Offset}", StringComparison.Ordinal));
    }

    /// <summary>1001: a csum item of two sectors inserted past every data extent of a DATA block group, before the csum
    /// items of the next one (btrfs check checks a run of csum items when the next run starts: not after the last one).</summary>
    [Progs619Fact, Covers(FindingCode.CsumWithoutDataExtent)]
    public void ChecksumsWhereNoExtentIs()
    {
        using var img = Copy(Snapshots);
        var scan = Scan(img.Paths);
        var csums = CsumItems(ImageItems.All(img.Paths));
        ulong x = scan.BlockGroups.Where(g => (g.Flags & BlockGroupFlags.Data) != 0).OrderBy(g => g.Start)
            .Select(g =>
            {
                ulong maxEnd = scan.Extents.Where(e => e.IsData && e.Bytenr >= g.Start && e.Bytenr < g.End).Select(e => e.Bytenr + e.Key.Offset).DefaultIfEmpty(g.Start).Max();
                ulong at = (maxEnd + 0xfffff) / 0x100000 * 0x100000 + 0x100000;
                return at + 2 * Sector <= g.End && at > csums[0].Key.Offset && at + 2 * Sector < csums[^1].Key.Offset ? at : 0;
            }).First(at => at != 0);
        var prev = csums.Last(c => c.Key.Offset < x);
        Assert.True(CsumEnd(prev) < x);
        Edit(img.Paths, (ed, _) =>
        {
            var leaf = ed.Leaf(prev.Leaf);
            Assert.True(leaf.FreeSpace >= 25 + 2 * CsumSize, $"csum leaf {prev.Leaf} is full");
            leaf.InsertItem(prev.Slot + 1, new BtrfsKey(ObjectIds.ExtentCsum, (byte)ItemType.ExtentCsum, x), new byte[2 * CsumSize]);
        });
        AssertExactly(output, Check(img.Paths), Want.Error(FindingCode.CsumWithoutDataExtent, x));
        var (code, lines) = Progs619(output, img.Paths);
        Assert.Equal(1, code);
        Assert.Contains($"csum exists for {x}-{x + 2 * Sector} but there is no extent record", lines);
    }

    /// <summary>1004: the log's csum item for inode 309's logged extent deleted (the csum tree does not have them either:
    /// the data was written after the last commit).</summary>
    [Progs619Fact, Covers(FindingCode.LogCsumMissing)]
    public void LogWithoutItsChecksums()
    {
        using var img = Copy("kernel-logtree");
        var items = ImageItems.All(img.Paths);
        var logExt = items.Single(i => i.Tree.IsLog && i.Key.ItemType == ItemType.ExtentData && i.Key.ObjectId == 309);
        ulong addr = U64(logExt.Data, FeDiskBytenrAt) + U64(logExt.Data, FeOffsetAt);
        var logCsum = items.Single(i => i.Tree.IsLog && i.Key.ItemType == ItemType.ExtentCsum && i.Key.Offset == addr);
        Assert.NotEqual(0, logCsum.Slot);
        Edit(img.Paths, (ed, _) => ed.Leaf(logCsum.Leaf).DeleteItem(logCsum.Slot));
        AssertExactly(output, Check(img.Paths), Want.Error(FindingCode.LogCsumMissing, addr),
            Want.Warning(FindingCode.FreeSpaceStaleMkfsEntries, 1048576), Want.Warning(FindingCode.FreeSpaceStaleMkfsEntries, 5242880));
        var (code, lines) = Progs619(output, img.Paths);
        Assert.Equal(1, code);
        Assert.Contains(lines, l => l.Contains($"csum missing in log (root 5 inode 309 offset 0 address 0x{addr:x}", StringComparison.Ordinal));
    }

    /// <summary>1005: the interrupted btrfstune --csum of mkfs619-csum-changing: a note and nothing else; btrfs check 6.19
    /// sizes the new checksums with the old type and reports an overlap.</summary>
    [Progs619Fact, Covers(FindingCode.CsumChangeInProgress)]
    public void ChecksumChangeInProgressIsUnderstood()
    {
        var paths = SourceFixtures.Images("mkfs619-csum-changing");
        var findings = Check(paths);
        AssertExactly(output, findings);
        var note = Assert.Single(findings, f => f.Code == FindingCode.CsumChangeInProgress);
        Assert.Equal(Severity.Info, note.Severity);
        Assert.Contains("xxhash64", note.Message);
        var (code, lines) = Progs619(output, paths);
        Assert.Equal(1, code);
        Assert.Contains(lines, l => l.StartsWith("ERROR: csum overlap, current bytenr=13631488 prev_end=17891328", StringComparison.Ordinal));
    }
}
