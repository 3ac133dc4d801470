using System.Buffers.Binary;
using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Format.Items;
using BtrfsRefcheck.Tests.Forge;
using BtrfsRefcheck.Tests.Oracle;
using BtrfsRefcheck.Tests.Sources;
using BtrfsRefcheck.Tests.TreesTests;
using Xunit.Abstractions;
using static BtrfsRefcheck.Tests.Damage.DamageSupport;
using ImageForge = BtrfsRefcheck.Forge.Forge;

namespace BtrfsRefcheck.Tests.Damage;

/// <summary>1103 and 1108-1113 on copies of kernel-spacecache-v1 (testdata/sources: the v1 space cache written by kernel
/// 6.18, three caches, one with a bitmap) and kernel-spacecache-v1-to-v2, each with btrfs check 6.19's verdict on the same
/// image. The cache pages are edited in place (the image is one device, its data block groups SINGLE) and, unless the
/// test is about the crc, their crc32c in the first page is recomputed as the kernel computes it.</summary>
public class SpaceCacheDamageTests(ITestOutputHelper output)
{
    private const string V1 = "kernel-spacecache-v1";
    private const int Page = 4096;

    /// <summary>The FREE_SPACE header of the cache with a bitmap (the fragmented DATA block group), its inode's INODE_ITEM,
    /// and where its cache file starts on the device.</summary>
    private sealed record Cache(LeafItem Header, LeafItem Inode, ulong Physical, int Pages)
    {
        public ulong BlockGroup => Header.Key.Offset;
    }

    private static Cache BitmapCache(IReadOnlyList<string> paths)
    {
        var items = ImageItems.All(paths).Where(i => i.Tree.Id == ObjectIds.RootTree).ToList();
        var header = items.Single(i => i.Key.ObjectId == ObjectIds.FreeSpace && i.Key.Type == 0 && new FreeSpaceHeader(i.Data).NumBitmaps > 0);
        ulong ino = new FreeSpaceHeader(header.Data).Location.ObjectId;
        var inode = items.Single(i => i.Key == new BtrfsKey(ino, (byte)ItemType.InodeItem, 0));
        var extent = items.Single(i => i.Key.ObjectId == ino && i.Key.ItemType == ItemType.ExtentData);
        Assert.Equal(0UL, extent.Key.Offset);
        var fe = new FileExtentItem(extent.Data);
        ulong size = new InodeItem(inode.Data).FileSize;
        Assert.True(fe.NumBytes >= size, "one file extent holds the whole cache file");
        return new Cache(header, inode, Physical(paths, fe.DiskBytenr + fe.Offset), (int)((size + Page - 1) / Page));
    }

    /// <summary>Edits the cache file's bytes; with <paramref name="fixCrcs"/>, every page's crc is recomputed after.</summary>
    private static void EditFile(string path, Cache c, Action<byte[]> edit, bool fixCrcs = true)
    {
        var file = new byte[c.Pages * Page];
        using var fs = new FileStream(path, FileMode.Open, FileAccess.ReadWrite);
        fs.Position = (long)c.Physical;
        fs.ReadExactly(file);
        edit(file);
        if (fixCrcs)
            for (int p = 0; p < c.Pages; p++)
            {
                int off = p == 0 ? 4 * c.Pages : 0;
                uint crc = ~RawCrc32C.Update(~0u, file.AsSpan(p * Page + off, Page - off));
                BinaryPrimitives.WriteUInt32LittleEndian(file.AsSpan(4 * p), crc);
            }
        fs.Position = (long)c.Physical;
        fs.Write(file);
    }

    /// <summary>Where the first extent entry (type 1) of at least <paramref name="minBytes"/> is in the file (entries start
    /// after the crcs and the generation; all of this cache's extent entries are on its first page or later ones).</summary>
    private static int ExtentEntry(byte[] file, int pages, ulong minBytes)
    {
        for (int at = 4 * pages + 8; at + 17 <= Page; at += 17)
            if (file[at + 16] == 1 && BinaryPrimitives.ReadUInt64LittleEndian(file.AsSpan(at + 8)) >= minBytes) return at;
        throw new InvalidOperationException("no extent entry of that size on the first page");
    }

    private static Finding Only(IReadOnlyList<Finding> findings, FindingCode code) => Assert.Single(findings, f => f.Code == code);

    /// <summary>The pristine image: every cache is loaded and compared, and none differs (the test below shows they are
    /// read: each damage is found).</summary>
    [Fact]
    public void PristineCachesAreSilent()
    {
        var paths = SourceFixtures.Images(V1);
        var findings = Check(paths);
        AssertExactly(output, findings);
        Assert.DoesNotContain(findings, f => (int)f.Code is >= 1108 and <= 1113);
        var c = BitmapCache(paths);
        Assert.True(c.Pages > 1);
    }

    /// <summary>1103: an extent entry moved one sector up (the page crcs recomputed, the total unchanged): the kernel would
    /// load the cache and hand out an allocated sector.</summary>
    [Progs619Fact, Covers(FindingCode.FreeSpaceMismatch)]
    public void EntryMovedIsAMismatch()
    {
        using var img = ImageForge.CopyAll(SourceFixtures.Images(V1), ForgeFixtures.TempDir);
        var c = BitmapCache(img.Paths);
        EditFile(img.Path, c, f =>
        {
            int at = ExtentEntry(f, c.Pages, 8192);
            BinaryPrimitives.WriteUInt64LittleEndian(f.AsSpan(at), BinaryPrimitives.ReadUInt64LittleEndian(f.AsSpan(at)) + 4096);
        });
        var findings = Check(img.Paths);
        AssertExactly(output, findings, Want.Error(FindingCode.FreeSpaceMismatch, c.BlockGroup));
        Assert.Equal(ObjectIds.RootTree, Only(findings, FindingCode.FreeSpaceMismatch).Tree);
        var (code, lines) = Progs619(output, img.Paths);
        Assert.Equal(1, code);
        Assert.Contains($"cache appears valid but isn't {c.BlockGroup}", lines);
    }

    /// <summary>1103 through the bitmap: in the bitmap page (after the pages the entries fill: 17 bytes each, a page left
    /// when fewer than 17 remain, the first page after the crcs and generation) the first set bit cleared and the first
    /// clear bit set, the crcs recomputed: the total is unchanged, the sectors are not.</summary>
    [Progs619Fact, Covers(FindingCode.FreeSpaceMismatch)]
    public void BitmapBitsSwappedIsAMismatch()
    {
        using var img = ImageForge.CopyAll(SourceFixtures.Images(V1), ForgeFixtures.TempDir);
        var c = BitmapCache(img.Paths);
        var hdr = new FreeSpaceHeader(c.Header.Data);
        Assert.Equal(1UL, hdr.NumBitmaps);
        int firstPage = (Page - 8 - 4 * c.Pages) / 17;
        int bitmapPage = hdr.NumEntries <= (ulong)firstPage ? 1 : 1 + (int)((hdr.NumEntries - (ulong)firstPage + 239) / 240);
        EditFile(img.Path, c, f =>
        {
            var bits = f.AsSpan(bitmapPage * Page, Page);
            int set = -1, clear = -1;
            for (int b = 0; b < Page * 8 && (set < 0 || clear < 0); b++)
            {
                bool on = (bits[b >> 3] & (1 << (b & 7))) != 0;
                if (on && set < 0) set = b;
                if (!on && clear < 0) clear = b;
            }
            Assert.True(set >= 0 && clear >= 0, "the bitmap has set and clear bits");
            bits[set >> 3] &= (byte)~(1 << (set & 7));
            bits[clear >> 3] |= (byte)(1 << (clear & 7));
        });
        AssertExactly(output, Check(img.Paths), Want.Error(FindingCode.FreeSpaceMismatch, c.BlockGroup));
        var (code, lines) = Progs619(output, img.Paths);
        Assert.Equal(1, code);
        Assert.Contains($"cache appears valid but isn't {c.BlockGroup}", lines);
    }

    /// <summary>Random bytes in the cache file's entries and bitmap (seeded; crcs recomputed so that the loader reads them
    /// as entries): whatever they say, the check ends without an exception, and only free space codes are reported.</summary>
    [Fact]
    public void RandomEntriesNeverThrow()
    {
        using var img = ImageForge.CopyAll(SourceFixtures.Images(V1), ForgeFixtures.TempDir);
        var c = BitmapCache(img.Paths);
        var pristine = new byte[c.Pages * Page];
        using (var fs = new FileStream(img.Path, FileMode.Open, FileAccess.Read)) { fs.Position = (long)c.Physical; fs.ReadExactly(pristine); }
        var rnd = new Random(14);
        for (int round = 0; round < 12; round++)
        {
            EditFile(img.Path, c, f =>
            {
                pristine.CopyTo(f, 0);
                int n = 1 + rnd.Next(40);
                for (int i = 0; i < n; i++) f[4 * c.Pages + 8 + rnd.Next(3 * Page - 4 * c.Pages - 8)] = (byte)rnd.Next(256);
            });
            var findings = Check(img.Paths);
            Assert.All(findings.Where(f => f.Severity >= Severity.Warning),
                f => Assert.True((int)f.Code is 1103 or 1111, $"round {round}: {f}"));
        }
    }

    /// <summary>1110: a byte of the second page changed, its crc not: the kernel discards the cache (a note); btrfs check
    /// 6.19 says the same and passes.</summary>
    [Progs619Fact, Covers(FindingCode.SpaceCacheDiscarded)]
    public void BadPageCrcIsDiscarded()
    {
        using var img = ImageForge.CopyAll(SourceFixtures.Images(V1), ForgeFixtures.TempDir);
        var c = BitmapCache(img.Paths);
        EditFile(img.Path, c, f => f[Page + 100] ^= 0x40, fixCrcs: false);
        var findings = Check(img.Paths);
        AssertExactly(output, findings);
        var note = Only(findings, FindingCode.SpaceCacheDiscarded);
        Assert.Equal((Severity.Info, c.BlockGroup), (note.Severity, note.Bytenr!.Value));
        Assert.Contains("page 1 of", note.Message);
        var (code, lines) = Progs619(output, img.Paths);
        Assert.Equal(0, code);
        Assert.Contains("btrfs: csum mismatch on free space cache", lines);
        Assert.Contains($"failed to load free space cache for block group {c.BlockGroup}", lines);
    }

    /// <summary>1110: an extent entry one sector shorter (crcs recomputed): the total is less than the block group item
    /// leaves free, so the kernel discards the cache.</summary>
    [Progs619Fact, Covers(FindingCode.SpaceCacheDiscarded)]
    public void LessFreeThanTheBlockGroupIsDiscarded()
    {
        using var img = ImageForge.CopyAll(SourceFixtures.Images(V1), ForgeFixtures.TempDir);
        var c = BitmapCache(img.Paths);
        EditFile(img.Path, c, f =>
        {
            int at = ExtentEntry(f, c.Pages, 8192);
            BinaryPrimitives.WriteUInt64LittleEndian(f.AsSpan(at + 8), BinaryPrimitives.ReadUInt64LittleEndian(f.AsSpan(at + 8)) - 4096);
        });
        var findings = Check(img.Paths);
        AssertExactly(output, findings);
        var note = Only(findings, FindingCode.SpaceCacheDiscarded);
        Assert.Contains("the block group item leaves", note.Message);
        var (code, lines) = Progs619(output, img.Paths);
        Assert.Equal(0, code);
        Assert.Contains(lines, l => l.StartsWith($"block group {c.BlockGroup} has wrong amount of free space", StringComparison.Ordinal));
    }

    /// <summary>1111: an extent entry one sector longer: more free space than the block group item leaves. The kernel
    /// discards it; btrfs check 6.19 fails it ("could leads to serious corruption"): a warning.</summary>
    [Progs619Fact, Covers(FindingCode.SpaceCacheMoreFree)]
    public void MoreFreeThanTheBlockGroupIsAWarning()
    {
        using var img = ImageForge.CopyAll(SourceFixtures.Images(V1), ForgeFixtures.TempDir);
        var c = BitmapCache(img.Paths);
        EditFile(img.Path, c, f =>
        {
            int at = ExtentEntry(f, c.Pages, 4096);
            BinaryPrimitives.WriteUInt64LittleEndian(f.AsSpan(at + 8), BinaryPrimitives.ReadUInt64LittleEndian(f.AsSpan(at + 8)) + 4096);
        });
        AssertExactly(output, Check(img.Paths), Want.Warning(FindingCode.SpaceCacheMoreFree, c.BlockGroup));
        var (code, lines) = Progs619(output, img.Paths);
        Assert.Equal(1, code);
        Assert.Contains(lines, l => l.Contains("free space cache has more free space than block group item", StringComparison.Ordinal));
    }

    /// <summary>1110: the header's generation one less than its inode's: the kernel discards the cache.</summary>
    [Progs619Fact, Covers(FindingCode.SpaceCacheDiscarded)]
    public void HeaderGenerationMismatchIsDiscarded()
    {
        using var img = ImageForge.CopyAll(SourceFixtures.Images(V1), ForgeFixtures.TempDir);
        var c = BitmapCache(img.Paths);
        ulong gen = new FreeSpaceHeader(c.Header.Data).Generation;
        Edit(img.Paths, (ed, _) => BinaryPrimitives.WriteUInt64LittleEndian(ed.Leaf(c.Header.Leaf).Data(c.Header.Slot)[BtrfsKey.Size..], gen - 1));
        var findings = Check(img.Paths);
        AssertExactly(output, findings);
        Assert.Contains($"generation {gen} is not the header's {gen - 1}", Only(findings, FindingCode.SpaceCacheDiscarded).Message);
        var (code, lines) = Progs619(output, img.Paths);
        Assert.Equal(0, code);
        Assert.Contains($"free space inode generation ({gen}) did not match free space cache generation ({gen - 1})", lines);
    }

    /// <summary>1110: the cache inode without NODATASUM|NODATACOW (an old-style inode): the kernel converts it and rebuilds
    /// the cache. btrfs check 6.19 does not look at the flags: it loads the cache and passes.</summary>
    [Progs619Fact, Covers(FindingCode.SpaceCacheDiscarded)]
    public void OldStyleInodeIsDiscarded()
    {
        using var img = ImageForge.CopyAll(SourceFixtures.Images(V1), ForgeFixtures.TempDir);
        var c = BitmapCache(img.Paths);
        Edit(img.Paths, (ed, _) =>
        {
            var d = ed.Leaf(c.Inode.Leaf).Data(c.Inode.Slot);
            ulong flags = (ulong)new InodeItem(d).Flags;
            BinaryPrimitives.WriteUInt64LittleEndian(d[InodeItem.FlagsAt..], flags & ~(ulong)InodeFlags.NoDataCow);
        });
        var findings = Check(img.Paths);
        AssertExactly(output, findings);
        Assert.Contains("without NODATASUM|NODATACOW", Only(findings, FindingCode.SpaceCacheDiscarded).Message);
        var (code, _) = Progs619(output, img.Paths);
        Assert.Equal(0, code);
    }

    /// <summary>1109: the header's location names an inode the root tree does not hold. btrfs check 6.19 says so and passes.</summary>
    [Progs619Fact, Covers(FindingCode.SpaceCacheInodeMissing)]
    public void HeaderPointingNowhere()
    {
        using var img = ImageForge.CopyAll(SourceFixtures.Images(V1), ForgeFixtures.TempDir);
        var c = BitmapCache(img.Paths);
        Edit(img.Paths, (ed, _) => BinaryPrimitives.WriteUInt64LittleEndian(ed.Leaf(c.Header.Leaf).Data(c.Header.Slot), 999));
        AssertExactly(output, Check(img.Paths), Want.Warning(FindingCode.SpaceCacheInodeMissing, c.BlockGroup));
        var (code, lines) = Progs619(output, img.Paths);
        Assert.Equal(0, code);
        Assert.Contains(lines, l => l.StartsWith("Couldn't find free space inode", StringComparison.Ordinal));
    }

    /// <summary>1108: the header re-keyed one sector past its block group's start: no block group starts there. btrfs check
    /// 6.19 looks headers up by block group and never sees it (it passes).</summary>
    [Progs619Fact, Covers(FindingCode.SpaceCacheOrphanHeader)]
    public void HeaderOfNoBlockGroup()
    {
        using var img = ImageForge.CopyAll(SourceFixtures.Images(V1), ForgeFixtures.TempDir);
        var c = BitmapCache(img.Paths);
        Edit(img.Paths, (ed, _) => ed.Leaf(c.Header.Leaf).SetKey(c.Header.Slot, c.Header.Key with { Offset = c.BlockGroup + 4096 }));
        AssertExactly(output, Check(img.Paths), Want.Warning(FindingCode.SpaceCacheOrphanHeader, c.BlockGroup + 4096));
        var (code, _) = Progs619(output, img.Paths);
        Assert.Equal(0, code);
    }

    /// <summary>1112: the superblock's cache_generation one less than its generation: the kernel invalidates every cache,
    /// so none is read (the moved entry of <see cref="EntryMovedIsAMismatch"/> is not reported). btrfs check 6.19 says the
    /// same and checks nothing else of the cache.</summary>
    [Progs619Fact, Covers(FindingCode.SpaceCacheInvalidated)]
    public void StaleCacheGenerationInvalidatesEveryCache()
    {
        using var img = ImageForge.CopyAll(SourceFixtures.Images(V1), ForgeFixtures.TempDir);
        var c = BitmapCache(img.Paths);
        EditFile(img.Path, c, f =>
        {
            int at = ExtentEntry(f, c.Pages, 8192);
            BinaryPrimitives.WriteUInt64LittleEndian(f.AsSpan(at), BinaryPrimitives.ReadUInt64LittleEndian(f.AsSpan(at)) + 4096);
        });
        Edit(img.Paths, (ed, _) => ed.PatchSuper(s =>
            BinaryPrimitives.WriteUInt64LittleEndian(s[Superblock.CacheGenerationAt..], BinaryPrimitives.ReadUInt64LittleEndian(s[Superblock.GenerationAt..]) - 1)));
        var findings = Check(img.Paths);
        AssertExactly(output, findings);
        Assert.Equal(Severity.Info, Only(findings, FindingCode.SpaceCacheInvalidated).Severity);
        var (code, lines) = Progs619(output, img.Paths);
        Assert.Equal(0, code);
        Assert.Contains("cache and super generation don't match, space cache will be invalidated", lines);

        // cache_generation 0: the kernel does not trust the v1 cache either (a mount with space_cache=v1 sees the
        // generations differ and rebuilds every cache), so it is not read; btrfs check 6.19 reads it and fails the entry
        Edit(img.Paths, (ed, _) => ed.PatchSuper(s => BinaryPrimitives.WriteUInt64LittleEndian(s[Superblock.CacheGenerationAt..], 0)));
        findings = Check(img.Paths);
        AssertExactly(output, findings);
        Assert.Contains("cache_generation 0", Only(findings, FindingCode.SpaceCacheInvalidated).Message);
        (code, lines) = Progs619(output, img.Paths);
        Assert.Equal(1, code);
        Assert.Contains($"cache appears valid but isn't {c.BlockGroup}", lines);
    }

    /// <summary>1113 and 1112 on kernel-spacecache-v1-to-v2 (the kernel removed the v1 cache when it built the free-space
    /// tree): a v1 header put back into its root tree. With cache_generation 0 the kernel never removes it (a warning);
    /// with cache_generation set it does at the next read-write mount (a note). btrfs check 6.19 reads only the tree.</summary>
    [Progs619Fact, Covers(FindingCode.SpaceCacheLeftBesideTree, FindingCode.SpaceCacheInvalidated)]
    public void V1HeaderBesideTheFreeSpaceTree()
    {
        using var img = ImageForge.CopyAll(SourceFixtures.Images(V1 + "-to-v2"), ForgeFixtures.TempDir);
        var items = ImageItems.All(img.Paths).Where(i => i.Tree.Id == ObjectIds.RootTree).ToList();
        var reloc = items.Single(i => i.Key.ObjectId == ObjectIds.DataRelocTree && i.Key.ItemType == ItemType.RootItem);
        var bg = Scan(img.Paths).BlockGroups.First(g => (g.Flags & BlockGroupFlags.Data) != 0);
        var header = new byte[FreeSpaceHeader.Size];
        new BtrfsKey(257, (byte)ItemType.InodeItem, 0).Write(header);
        Edit(img.Paths, (ed, _) => ed.Leaf(reloc.Leaf).InsertItem(reloc.Slot, new BtrfsKey(ObjectIds.FreeSpace, 0, bg.Start), header));
        var findings = Check(img.Paths);
        AssertExactly(output, findings, Want.Warning(FindingCode.SpaceCacheLeftBesideTree));
        var (code, _) = Progs619(output, img.Paths);
        Assert.Equal(0, code);

        Edit(img.Paths, (ed, _) => ed.PatchSuper(s =>
            BinaryPrimitives.WriteUInt64LittleEndian(s[Superblock.CacheGenerationAt..], BinaryPrimitives.ReadUInt64LittleEndian(s[Superblock.GenerationAt..]))));
        findings = Check(img.Paths);
        AssertExactly(output, findings);
        Assert.Equal(Severity.Info, Only(findings, FindingCode.SpaceCacheInvalidated).Severity);
        (code, _) = Progs619(output, img.Paths);
        Assert.Equal(0, code);
    }
}
