using System.Buffers.Binary;
using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Format.Items;
using BtrfsRefcheck.Trees;
using BtrfsRefcheck.Volume;
using static BtrfsRefcheck.Diagnostics.FindingCode;

namespace BtrfsRefcheck.Checks;

/// <summary>The v1 space cache: the FREE_SPACE headers of the root tree (key (FREE_SPACE, 0, block group start)), their
/// inodes and the cache files, as the kernel's load_free_space_cache (fs/btrfs/free-space-cache.c) and btrfs check 6.19's
/// check_space_cache read them. What makes the kernel discard a cache and rebuild it from the extent tree (an old-style
/// inode, a generation that does not match, a bad page crc, a zero-length or duplicate entry, a total that is not the block
/// group item's free space) is a note that says why (1110); a cache the kernel would load must be exactly the complement
/// of the block group's allocations (1103, as for the free-space tree). Whole-cache states come first: a superblock
/// cache_generation the kernel does not trust, a zoned filesystem, or a free-space tree beside the v1 items (1112, 1113).
/// A cache file is at most 1022 pages of 4 KiB (its crcs and generation fill the first page), so at most 4 MiB is read
/// per block group (16 MiB with larger sectors), one block group at a time.</summary>
internal sealed class SpaceCacheCheck(CheckContext ctx)
{
    private const int EntrySize = 17;                 // btrfs_free_space_entry: offset, bytes, type
    private const ulong MaxFileBytes = 16 << 20;      // more than the kernel ever writes for one block group
    private const byte EntryExtent = 1;
    private const InodeFlags Required = InodeFlags.NoDataSum | InodeFlags.NoDataCow;

    private readonly BtrfsVolume _vol = ctx.Volume;
    private readonly FindingBag _findings = ctx.Findings;

    /// <summary>A cache page, and a bitmap's size: the kernel's PAGE_SIZE, which must be the sector size for a v1 cache
    /// (the kernel uses the free-space tree when they differ); btrfs check reads pages of the sector size too.</summary>
    private readonly int _pageSize = (int)Math.Clamp(ctx.Volume.SectorSize, 4096u, 65536u);

    /// <summary>One crc per page and the generation must fit the first page (1022 pages of 4 KiB).</summary>
    private int MaxPages => (_pageSize - 8) / 4;

    public void Run(bool freeSpaceTree)
    {
        var rootTree = ctx.Roots.FirstOrDefault(r => r.Id == ObjectIds.RootTree);
        if (rootTree == null) return;
        var headers = TreeSearch.Range(_vol, rootTree, new BtrfsKey(ObjectIds.FreeSpace, 0, 0), new BtrfsKey(ObjectIds.FreeSpace, 0, ulong.MaxValue));
        if (headers.Count == 0) return;
        var super = _vol.Super;
        ulong cacheGen = super.CacheGeneration, gen = super.Generation;
        string count = headers.Count == 1 ? "1 v1 space cache header" : $"{headers.Count} v1 space cache headers";
        if (freeSpaceTree)
        {
            if (cacheGen != 0)
                Whole(SpaceCacheInvalidated, Severity.Info,
                    $"compat_ro FREE_SPACE_TREE and {count} in the root tree, superblock cache_generation {CacheGenText(cacheGen)}: the kernel " +
                    "removes the v1 cache (headers, inodes, extents) at the next read-write mount without space_cache=v1; not read");
            else
                Whole(SpaceCacheLeftBesideTree, Severity.Warning,
                    $"compat_ro FREE_SPACE_TREE, superblock cache_generation 0, and still {count} in the root tree: the kernel takes the " +
                    "v1 cache for removed and never removes them (their inodes and extents stay allocated). `btrfs rescue clear-space-cache v1` removes them");
            return;
        }
        if (_vol.IsZoned)
        {
            Whole(SpaceCacheInvalidated, Severity.Info,
                $"zoned filesystem with {count}: the kernel never uses the v1 space cache on a zoned filesystem (space_cache=v1 is refused); not read");
            return;
        }
        bool readPages = true;
        if (cacheGen == 0 || cacheGen == ulong.MaxValue)
        {
            Whole(SpaceCacheInvalidated, Severity.Info,
                $"{count} in the root tree, superblock cache_generation {CacheGenText(cacheGen)}: the kernel does not trust the v1 cache " +
                "(a mount with space_cache=v1 rebuilds every one, without it the kernel does not read them); not read");
            readPages = false;
        }
        else if (cacheGen != gen)
        {
            Whole(SpaceCacheInvalidated, Severity.Info,
                $"superblock cache_generation {cacheGen}, generation {gen}: the kernel invalidates every v1 space cache at the next mount " +
                "and rebuilds it (btrfs check: \"cache and super generation don't match, space cache will be invalidated\"); the caches are not read");
            readPages = false;
        }

        var bgs = (BlockGroupRec[])ctx.Scan.BlockGroups.Clone();
        Array.Sort(bgs, (a, b) => a.Start.CompareTo(b.Start));
        var byStart = new Dictionary<ulong, int>(bgs.Length);
        for (int i = 0; i < bgs.Length; i++) byStart.TryAdd(bgs[i].Start, i);
        bool rootHidden = ctx.Scan.Unreadable.Any(u => u.Tree == ObjectIds.RootTree);
        var alloc = new AllocatedRanges(_vol, ctx.Scan.ExtentLeaves);
        foreach (var h in headers.OrderBy(h => h.Key.Offset))
        {
            if (h.Data.Length < FreeSpaceHeader.Size) continue; // the item validator's
            var hdr = new FreeSpaceHeader(h.Data);
            var key = h.Key;
            if (!byStart.TryGetValue(key.Offset, out int bi))
            {
                _findings.Add(new Finding(SpaceCacheOrphanHeader, Severity.Warning,
                    $"v1 space cache header {key} names no block group (none starts at {key.Offset}): the kernel never reads it nor " +
                    $"removes it, and its inode {hdr.Location.ObjectId} and extents stay allocated",
                    Bytenr: key.Offset, Tree: ObjectIds.RootTree, Key: key));
                continue;
            }
            var bg = bgs[bi];
            ulong ino = hdr.Location.ObjectId;
            var inodeKey = new BtrfsKey(ino, (byte)ItemType.InodeItem, 0);
            var inodeLeaf = TreeSearch.FindItem(_vol, rootTree, inodeKey, out int inodeSlot);
            if (inodeLeaf == null || !inodeLeaf.View.TryGetItem(inodeSlot, out _, out var inodeData) || inodeData.Length < InodeItem.Size)
            {
                if (!rootHidden)
                    _findings.Add(new Finding(SpaceCacheInodeMissing, Severity.Warning,
                        $"v1 space cache header of block group [{bg.Start}, {bg.End}) locates its cache in inode {ino} (key {hdr.Location}), " +
                        "which the root tree does not hold: the kernel can neither load this block group's cache nor write a new one (the header is in the way)",
                        Bytenr: bg.Start, Tree: ObjectIds.RootTree, Key: key, Expected: $"INODE_ITEM of {ino} in the root tree", Found: "none"));
                continue;
            }
            if (!readPages) continue; // the kernel uses none of the caches (1112)
            var inode = new InodeItem(inodeData);
            ulong size = inode.FileSize, inodeGen = inode.Generation;
            var flags = inode.Flags;
            if ((flags & Required) != Required)
            {
                Discard(key, ino, $"its inode has flags {InodeItem.FlagNames((ulong)flags)}, without NODATASUM|NODATACOW (an old-style cache inode: the kernel converts it)");
                continue;
            }
            if (size == 0) continue;  // nothing written yet: the kernel loads nothing
            if (inodeGen == 0) { Discard(key, ino, "its inode's generation is 0 (a cache write that did not finish)"); continue; }
            if (inodeGen != hdr.Generation) { Discard(key, ino, $"its inode's generation {inodeGen} is not the header's {hdr.Generation}"); continue; }
            if (hdr.NumEntries == 0) continue; // no entries: the kernel loads nothing and caches from the extent tree
            var loaded = Load(rootTree, ino, size, hdr.Generation, hdr.NumEntries, out string? why);
            if (loaded == null) { Discard(key, ino, why!); continue; }
            ulong bytesSuper = 0;
            var exclude = SuperStripes.In(ctx.Scan.Chunks.Find(bg.Start), bg.Start, bg.End);
            foreach (var (s, e) in FreeSpaceTreeCheck.Merge(exclude)) bytesSuper += e - s;
            ulong bgFree = bg.Length - Math.Min(bg.Length, bg.Used + bytesSuper);
            if (loaded.Value.Total < bgFree)
            {
                Discard(key, ino, $"its entries total {loaded.Value.Total} free bytes, the block group item leaves {bgFree} (length {bg.Length}, used {bg.Used}, superblock copies {bytesSuper})");
                continue;
            }
            if (loaded.Value.Total > bgFree)
            {
                _findings.Add(new Finding(SpaceCacheMoreFree, Severity.Warning,
                    $"v1 space cache of block group [{bg.Start}, {bg.End}) (inode {ino}) records {loaded.Value.Total} bytes free, more than the " +
                    $"{bgFree} its block group item leaves (length {bg.Length}, used {bg.Used}, superblock copies {bytesSuper}): the kernel discards it " +
                    "(\"block group has wrong amount of free space\"); btrfs check fails it as a sign of a cache that could hand out used space",
                    Bytenr: bg.Start, Tree: ObjectIds.RootTree, Key: key, Expected: $"{bgFree} bytes free", Found: $"{loaded.Value.Total} bytes"));
                continue;
            }
            if (ctx.Scan.ExtentItemsHidden(bg.Start, bg.End)) continue;
            var used = new List<(ulong Start, ulong End)>();
            alloc.In(bg.Start, bg.End, used);
            if (FreeSpaceTreeCheck.Differs(used, loaded.Value.Ranges, bg.Start, bg.End, exclude, "the v1 space cache") is not { } d) continue;
            _findings.Add(new Finding(FreeSpaceMismatch, Severity.Error,
                $"block group [{bg.Start}, {bg.End}): its v1 space cache (inode {ino}), which the kernel would load (its total matches the block " +
                $"group item), is not the complement of its extents: {d.Where}",
                Bytenr: bg.Start, Tree: ObjectIds.RootTree, Key: key, Expected: d.Expected, Found: d.Found));
        }
    }

    private static string CacheGenText(ulong g) => g == ulong.MaxValue ? "-1" : g.ToString();

    private void Whole(FindingCode code, Severity severity, string message) =>
        _findings.Add(new Finding(code, severity, message, Tree: ObjectIds.RootTree));

    private void Discard(BtrfsKey key, ulong ino, string why) =>
        _findings.Add(new Finding(SpaceCacheDiscarded, Severity.Info,
            $"v1 space cache of block group {key.Offset} (inode {ino}): {why}; the kernel discards it and rebuilds it from the extent tree",
            Bytenr: key.Offset, Tree: ObjectIds.RootTree, Key: key));

    /// <summary>The cache file's entries and bitmaps, read as the kernel's __load_free_space_cache reads them; null with
    /// the reason when the kernel would stop (and discard the cache).</summary>
    private (ulong Total, List<(ulong Start, ulong End)> Ranges)? Load(TreeRoot rootTree, ulong ino, ulong size, ulong generation, ulong numEntries, out string? why)
    {
        why = null;
        ulong pages64 = (size + (ulong)_pageSize - 1) / (ulong)_pageSize;
        if (pages64 > (ulong)MaxPages) { why = $"its {size} bytes make {pages64} pages, more than the {MaxPages} whose crcs fit the first page"; return null; }
        if (size > MaxFileBytes) { why = $"its {size} bytes are more than any cache the kernel writes for one block group (not read past {MaxFileBytes >> 20} MiB)"; return null; }
        int numPages = (int)pages64;
        var file = new byte[numPages * _pageSize];
        if (!ReadFile(rootTree, ino, size, file, out why)) return null;

        uint StoredCrc(int page) => BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(page * 4));
        uint Crc(int page) // the first page's crc leaves out the crcs themselves
        {
            int offset = page == 0 ? 4 * numPages : 0;
            return ~RawCrc32C.Update(~0u, file.AsSpan(page * _pageSize + offset, _pageSize - offset));
        }
        bool CrcOk(int page) => Crc(page) == StoredCrc(page);
        string BadCrc(int page) => $"page {page} of {numPages} fails its crc32c (stored 0x{StoredCrc(page):x8}, computed 0x{Crc(page):x8})";

        if (!CrcOk(0)) { why = BadCrc(0); return null; }
        int at = 4 * numPages;
        ulong pageGen = BinaryPrimitives.ReadUInt64LittleEndian(file.AsSpan(at));
        if (pageGen != generation) { why = $"its first page says generation {pageGen}, its header {generation}"; return null; }
        at += 8;
        // as the kernel's io_ctl: page 0 is mapped with PAGE_SIZE - 8 - 4 * pages bytes left; an entry is read whenever a
        // page is mapped, and the page is let go once fewer than an entry's bytes are left on it
        int index = 1, left = _pageSize - 8 - 4 * numPages;
        bool mapped = true;
        ulong unit = _vol.SectorSize;
        ulong total = 0;
        var ranges = new List<(ulong Start, ulong End)>();
        var seen = new HashSet<(ulong, bool)>();
        var bitmaps = new List<ulong>();
        for (ulong n = 0; n < numEntries; n++)
        {
            if (!mapped)
            {
                if (index >= numPages) { why = $"its {numEntries} entries run past its {numPages} pages"; return null; }
                if (!CrcOk(index)) { why = BadCrc(index); return null; }
                at = index++ * _pageSize;
                left = _pageSize;
                mapped = true;
            }
            if (at + EntrySize > file.Length) { why = $"its {numEntries} entries run past its {numPages} pages"; return null; }
            ulong offset = BinaryPrimitives.ReadUInt64LittleEndian(file.AsSpan(at));
            ulong bytes = BinaryPrimitives.ReadUInt64LittleEndian(file.AsSpan(at + 8));
            byte type = file[at + 16];
            at += EntrySize;
            left -= EntrySize;
            if (left < EntrySize) mapped = false;
            if (bytes == 0) { why = $"entry {n} (offset {offset}) has 0 bytes"; return null; }
            bool isBitmap = type != EntryExtent;
            if (!seen.Add((offset, isBitmap))) { why = $"two {(isBitmap ? "bitmap" : "extent")} entries at offset {offset} (\"Duplicate entries in free space cache\")"; return null; }
            total += bytes;
            if (isBitmap) bitmaps.Add(offset);
            else if (offset + bytes > offset) ranges.Add((offset, offset + bytes));
        }
        // the bitmaps follow, one page each, from the page after the last one the entries used
        foreach (ulong start in bitmaps)
        {
            int p = index++;
            if (p >= numPages) { why = $"its {bitmaps.Count} bitmaps run past its {numPages} pages"; return null; }
            if (!CrcOk(p)) { why = BadCrc(p); return null; }
            var bits = file.AsSpan(p * _pageSize, _pageSize);
            ulong runStart = 0;
            bool inRun = false;
            for (int bit = 0; bit < _pageSize * 8; bit++)
            {
                bool set = (bits[bit >> 3] & (1 << (bit & 7))) != 0;
                ulong pos = start + (ulong)bit * unit;
                if (set && !inRun) { runStart = pos; inRun = true; }
                else if (!set && inRun) { ranges.Add((runStart, pos)); inRun = false; }
            }
            if (inRun) ranges.Add((runStart, start + (ulong)_pageSize * 8UL * unit));
        }
        return (total, ranges);
    }

    /// <summary>The inode's first <paramref name="size"/> bytes through its file extents in the root tree, as the kernel's
    /// page cache reads them: regular extents from disk, holes and preallocated extents as zeros.</summary>
    private bool ReadFile(TreeRoot rootTree, ulong ino, ulong size, byte[] file, out string? why)
    {
        why = null;
        var extents = TreeSearch.Range(_vol, rootTree, new BtrfsKey(ino, (byte)ItemType.ExtentData, 0), new BtrfsKey(ino, (byte)ItemType.ExtentData, ulong.MaxValue));
        if (extents.Count == 0) { why = "its inode has no file extents (the kernel reads zeros, whose crcs fail)"; return false; }
        foreach (var x in extents)
        {
            if (x.Key.Offset >= size) break;
            if (x.Data.Length < FileExtentItem.InlineHeaderSize) continue; // the item validator's
            var fe = new FileExtentItem(x.Data);
            if (fe.IsInline) { why = $"its file extent at {x.Key.Offset} is inline"; return false; }
            if (x.Data.Length < FileExtentItem.RegularSize) continue;
            if (fe.Compression != 0) { why = $"its file extent at {x.Key.Offset} is compressed (the cache inode is NOCOMPRESS)"; return false; }
            if (fe.Type != FileExtentType.Regular || fe.DiskBytenr == 0) continue; // zeros
            ulong len = Math.Min(fe.NumBytes, size - x.Key.Offset);
            ulong logical = fe.DiskBytenr + fe.Offset;
            var dest = file.AsSpan((int)x.Key.Offset, (int)len);
            string? problem = null;
            bool ok = false;
            for (int copy = 0; copy < 4 && !ok; copy++)
                ok = _vol.TryReadLogical(logical, dest, copy, out problem);
            if (!ok) { why = $"its file extent at {x.Key.Offset} cannot be read at logical {logical} ({problem})"; return false; }
        }
        return true;
    }
}
