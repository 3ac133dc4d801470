using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Format.Items;
using BtrfsRefcheck.Trees;
using BtrfsRefcheck.Volume;

namespace BtrfsRefcheck.Checks;

/// <summary>The free-space tree against the block groups and the extent tree, as btrfs check 6.19's
/// check_space_cache / load_free_space_tree / check_free_space_tree do it: each block group has one FREE_SPACE_INFO,
/// its FREE_SPACE_EXTENTs or FREE_SPACE_BITMAPs (as its USING_BITMAPS flag says) count extent_count extents and are
/// exactly the space the extent tree leaves free in it (superblock stripes left out on both sides), and no free-space
/// key lies outside a block group. The tree is walked once in key order beside the extent tree's leaves, read forward:
/// one block group's ranges are in memory at a time. Single items (sizes, flags, alignment, in-leaf order) are the
/// item validator's (421).</summary>
internal sealed class FreeSpaceTreeCheck(CheckContext ctx, TreeRoot root) : ITreeVisitor
{
    private readonly BtrfsVolume _vol = ctx.Volume;
    private readonly FindingBag _findings = ctx.Findings;
    private readonly uint _sector = ctx.Volume.SectorSize;
    private BlockGroupRec[] _bgs = [];
    private int _nextBg;                     // the first block group whose FREE_SPACE_INFO has not been reached yet
    private AllocatedRanges _alloc = null!;
    private readonly List<(ulong Lo, ulong Hi)> _hiddenKeys = []; // key objectid ranges under unreadable free-space blocks

    // The FREE_SPACE_INFO being read and what its items say so far.
    private bool _inInfo;
    private BtrfsKey _infoKey;
    private ulong _infoLeaf;
    private uint _extentCount;
    private bool _bitmaps;
    private int _bgIndex = -1;               // its block group, -1 for none
    private uint _counted;
    private bool _prevBit;
    private ulong _runStart;
    private ulong _prevExtentEnd;
    private bool _havePrevExtent;
    private bool _wrongTypeReported, _unmergedReported;
    private readonly List<(ulong Start, ulong End)> _free = [];
    private readonly List<(ulong Start, ulong End)> _used = [];

    public void Run()
    {
        var scan = ctx.Scan;
        _bgs = (BlockGroupRec[])scan.BlockGroups.Clone();
        Array.Sort(_bgs, (a, b) => a.Start.CompareTo(b.Start));
        _alloc = new AllocatedRanges(_vol, scan.ExtentLeaves);
        _invalid = scan.Unreadable.Where(u => u.Tree == ObjectIds.FreeSpaceTree).Select(u => u.Bytenr).ToHashSet();
        var walkFindings = new FindingBag(); // the scan reported the blocks; what the walk meets again only says it is incomplete
        new TreeWalker(_vol, walkFindings).Walk(root, this, new WalkOptions { Validate = false });
        if (walkFindings.Items.Count > 0) _hiddenKeys.Add((0, ulong.MaxValue));
        FinishInfo();
        MissingInfosBefore(ulong.MaxValue);
    }

    private HashSet<ulong> _invalid = []; // free-space tree blocks the scan found unreadable or invalid

    public bool OnBlock(in BlockContext bc, TreeBlock block, bool valid)
    {
        if (!valid || _invalid.Contains(block.Logical)) { Hide(bc); return false; }
        var view = block.View;
        if (!view.IsLeaf) return true;
        for (int i = 0; i < view.Count; i++)
            if (view.TryGetItem(i, out var key, out var data)) Item(block.Logical, i, key, data);
        return true;
    }

    public void OnUnreadable(in BlockContext bc, TreeBlockRead read) => Hide(bc);

    private void Hide(in BlockContext bc) =>
        _hiddenKeys.Add((bc.ExpectedFirstKey?.ObjectId ?? 0, bc.EndKey?.ObjectId ?? ulong.MaxValue));

    private bool KeysHidden(ulong start, ulong end)
    {
        foreach (var (lo, hi) in _hiddenKeys) if (lo < end && hi >= start) return true;
        return false;
    }

    private void Item(ulong leaf, int slot, BtrfsKey key, ReadOnlySpan<byte> data)
    {
        switch (key.ItemType)
        {
            case ItemType.FreeSpaceInfo:
                FinishInfo();
                StartInfo(leaf, key, data);
                break;
            case ItemType.FreeSpaceExtent or ItemType.FreeSpaceBitmap:
                Range(leaf, slot, key, data);
                break;
            // anything else in this tree is the item validator's (unknown or misplaced type)
        }
    }

    private void StartInfo(ulong leaf, BtrfsKey key, ReadOnlySpan<byte> data)
    {
        MissingInfosBefore(key.ObjectId);
        _inInfo = true;
        _infoKey = key;
        _infoLeaf = leaf;
        _extentCount = data.Length >= FreeSpaceInfo.Size ? new FreeSpaceInfo(data).ExtentCount : 0;
        _bitmaps = data.Length >= FreeSpaceInfo.Size && new FreeSpaceInfo(data).UsingBitmaps;
        _counted = 0;
        _prevBit = false;
        _havePrevExtent = false;
        _wrongTypeReported = _unmergedReported = false;
        _free.Clear();
        _bgIndex = -1;
        if (_nextBg < _bgs.Length && _bgs[_nextBg].Start == key.ObjectId)
        {
            _bgIndex = _nextBg++;
            if (_bgs[_bgIndex].Length != key.Offset)
                Report(FindingCode.FreeSpaceMismatch, key,
                    $"FREE_SPACE_INFO {key} names a length of {key.Offset}, its block group is {_bgs[_bgIndex].Length} bytes long",
                    _bgs[_bgIndex].Length.ToString(), key.Offset.ToString());
        }
    }

    /// <summary>Block groups that start before <paramref name="limit"/> and have had no FREE_SPACE_INFO.</summary>
    private void MissingInfosBefore(ulong limit)
    {
        while (_nextBg < _bgs.Length && _bgs[_nextBg].Start < limit)
        {
            var bg = _bgs[_nextBg++];
            if (KeysHidden(bg.Start, bg.End)) continue;
            _findings.Add(new Finding(FindingCode.FreeSpaceInfoMissing, Severity.Error,
                $"block group [{bg.Start}, {bg.End}) {(BlockGroupFlags)bg.Flags} has no FREE_SPACE_INFO in the free-space tree: the kernel cannot load its free space",
                Bytenr: bg.Start, Tree: ObjectIds.FreeSpaceTree, Key: new BtrfsKey(bg.Start, (byte)ItemType.FreeSpaceInfo, bg.Length)));
        }
    }

    private void Range(ulong leaf, int slot, BtrfsKey key, ReadOnlySpan<byte> data)
    {
        ulong end = key.ObjectId + key.Offset;
        if (end <= key.ObjectId) return; // 421
        if (!_inInfo || key.ObjectId < _infoKey.ObjectId || end > _infoKey.ObjectId + _infoKey.Offset)
        {
            // with its FREE_SPACE_INFO in the same leaf, the item validator reported it (421)
            if (!_inInfo || leaf != _infoLeaf)
                _findings.Add(new Finding(FindingCode.FreeSpaceOutsideBlockGroup, Severity.Error,
                    _inInfo
                        ? $"free-space {key.ItemType} [{key.ObjectId}, {end}) lies outside the range of the FREE_SPACE_INFO before it {_infoKey}"
                        : $"free-space {key.ItemType} [{key.ObjectId}, {end}) comes before any FREE_SPACE_INFO",
                    Bytenr: key.ObjectId, Tree: ObjectIds.FreeSpaceTree, Slot: slot, Key: key));
            return;
        }
        bool isBitmap = key.ItemType == ItemType.FreeSpaceBitmap;
        if (isBitmap != _bitmaps && !_wrongTypeReported)
        {
            _wrongTypeReported = true;
            Report(FindingCode.FreeSpaceWrongItemType, _infoKey,
                $"a {key.ItemType} item {key} under FREE_SPACE_INFO {_infoKey}, whose flags say {(_bitmaps ? "bitmaps" : "extents")}: the kernel's loader stops there",
                _bitmaps ? "FREE_SPACE_BITMAP" : "FREE_SPACE_EXTENT", key.ItemType.ToString(), leaf, slot);
        }
        if (!isBitmap)
        {
            if (_havePrevExtent && key.ObjectId == _prevExtentEnd && !_unmergedReported)
            {
                _unmergedReported = true;
                Report(FindingCode.FreeSpaceExtentsUnmerged, _infoKey,
                    $"free-space extent [{key.ObjectId}, {end}) starts where the previous one ends: the kernel always merges neighbours",
                    "a used gap before it", $"adjacent at {key.ObjectId}", leaf, slot);
            }
            if (_prevBit) { CloseRun(key.ObjectId); }
            _havePrevExtent = true;
            _prevExtentEnd = end;
            _free.Add((key.ObjectId, end));
            _counted++;
            return;
        }
        // btrfs check's load_free_space_bitmaps: runs of set bits, carried across adjacent bitmaps
        var bits = new FreeSpaceBitmap(data);
        long nbits = (long)(key.Offset / _sector);
        if (_prevBit && _runEnd != key.ObjectId) CloseRun(_runEnd);
        ulong at = key.ObjectId;
        for (long b = 0; b < nbits; b++, at += _sector)
        {
            bool set = b < bits.BitCount && bits.IsSet(b);
            if (set && !_prevBit) _runStart = at;
            else if (!set && _prevBit) CloseRun(at);
            _prevBit = set;
        }
        _runEnd = at;
    }

    private ulong _runEnd;

    private void CloseRun(ulong end)
    {
        _free.Add((_runStart, end));
        _counted++;
        _prevBit = false;
    }

    private void FinishInfo()
    {
        if (!_inInfo) return;
        _inInfo = false;
        if (_prevBit) CloseRun(_runEnd);
        var key = _infoKey;
        ulong start = key.ObjectId, end = key.ObjectId + key.Offset;
        if (_counted != _extentCount)
            Report(FindingCode.FreeSpaceExtentCountMismatch, key,
                $"FREE_SPACE_INFO {key} records {_extentCount} free extents, its {(_bitmaps ? "bitmaps hold" : "extents are")} {_counted}",
                _counted.ToString(), _extentCount.ToString());
        if (_bgIndex < 0) { Orphan(key); return; }
        var bg = _bgs[_bgIndex];
        if (ctx.Scan.ExtentItemsHidden(bg.Start, bg.End) || KeysHidden(bg.Start, bg.End)) return;
        Compare(bg, key);
    }

    /// <summary>A FREE_SPACE_INFO with no block group at its start. All free, in no chunk and no block group: the entries
    /// of a block group removed without removing them, which mkfs.btrfs 6.2 leaves for its temporary chunks (the kernel
    /// never allocates there again: new chunks go past the last one). Else an error, as btrfs check reports both.</summary>
    private void Orphan(BtrfsKey key)
    {
        ulong start = key.ObjectId, end = key.ObjectId + key.Offset;
        if (end <= start) return; // 421
        ulong free = 0;
        foreach (var (s, e) in _free) free += e - s;
        bool inChunk = ctx.Scan.Chunks.Chunks.Any(c => c.Logical < end && c.End > start);
        bool inBg = _bgs.Any(b => b.Start < end && b.End > start);
        if (!inChunk && !inBg && free == key.Offset && _counted == _extentCount)
        {
            _findings.Add(new Finding(FindingCode.FreeSpaceStaleMkfsEntries, Severity.Warning,
                $"free-space tree: FREE_SPACE_INFO [{start}, {end}), all free, belongs to no block group and no chunk: the leftover of a " +
                "removed block group, as mkfs.btrfs 6.2 leaves for its temporary chunks. Harmless (the kernel never allocates there " +
                "again); btrfs check fails it (\"has no corresponding block group\"). Mounting once with -o clear_cache,space_cache=v2 " +
                "rebuilds the free-space tree without it",
                Bytenr: start, Tree: ObjectIds.FreeSpaceTree, Key: key));
            return;
        }
        _findings.Add(new Finding(FindingCode.FreeSpaceOutsideBlockGroup, Severity.Error,
            $"free-space tree: FREE_SPACE_INFO {key} has no block group starting at {start}" +
            (inBg ? " (it overlaps one that starts elsewhere)" : inChunk ? " (its range is in a chunk)" : $" ({free} of {key.Offset} bytes recorded free)"),
            Bytenr: start, Tree: ObjectIds.FreeSpaceTree, Key: key));
    }

    /// <summary>The recorded free space against the complement of the extent tree's allocations, without the superblock
    /// stripes; the first difference is reported with both totals.</summary>
    private void Compare(BlockGroupRec bg, BtrfsKey key)
    {
        _used.Clear();
        _alloc.In(bg.Start, bg.End, _used);
        var exclude = SuperStripes.In(ctx.Scan.Chunks.Find(bg.Start), bg.Start, bg.End);
        if (Differs(_used, _free, bg.Start, bg.End, exclude, "the free-space tree") is not { } d) return;
        Report(FindingCode.FreeSpaceMismatch, key,
            $"block group [{bg.Start}, {bg.End}): the free-space tree is not the complement of its extents: {d.Where}", d.Expected, d.Found);
    }

    /// <summary>The free space <paramref name="recorder"/> records (<paramref name="recorded"/>, sorted here) against the
    /// complement of the allocations <paramref name="used"/> in [<paramref name="start"/>, <paramref name="end"/>), both
    /// without <paramref name="exclude"/> (the superblock stripes): null when they are the same, else where they first
    /// differ and both totals.</summary>
    internal static (string Where, string Expected, string Found)? Differs(List<(ulong Start, ulong End)> used, List<(ulong Start, ulong End)> recorded,
        ulong start, ulong end, List<(ulong Start, ulong End)> exclude, string recorder)
    {
        var expected = Subtract(Complement(used, start, end), exclude);
        recorded.Sort();
        return Difference(expected, Subtract(Merge(recorded), exclude), recorder);
    }

    /// <summary>Null when <paramref name="found"/> (the free space <paramref name="recorder"/> records) is exactly
    /// <paramref name="expected"/> (the extent tree's complement); else where they first differ and both totals.</summary>
    private static (string Where, string Expected, string Found)? Difference(List<(ulong Start, ulong End)> expected, List<(ulong Start, ulong End)> found, string recorder)
    {
        if (SameRanges(expected, found)) return null;
        int i = 0;
        while (i < expected.Count && i < found.Count && expected[i] == found[i]) i++;
        string where = i < found.Count && (i >= expected.Count || found[i].Start <= expected[i].Start)
            ? $"[{found[i].Start}, {found[i].End}) is recorded free, the extent tree frees " + (i < expected.Count ? $"[{expected[i].Start}, {expected[i].End}) next" : "nothing more")
            : $"[{expected[i].Start}, {expected[i].End}) is free by the extent tree, {recorder} records " + (i < found.Count ? $"[{found[i].Start}, {found[i].End}) next" : "nothing more");
        ulong sumE = expected.Aggregate(0UL, (s, r) => s + (r.End - r.Start)), sumF = found.Aggregate(0UL, (s, r) => s + (r.End - r.Start));
        return (where, $"{sumE} bytes free in {expected.Count} ranges", $"{sumF} bytes in {found.Count} ranges");
    }

    private static bool SameRanges(List<(ulong Start, ulong End)> a, List<(ulong Start, ulong End)> b)
    {
        if (a.Count != b.Count) return false;
        for (int i = 0; i < a.Count; i++) if (a[i] != b[i]) return false;
        return true;
    }

    internal static List<(ulong Start, ulong End)> Merge(List<(ulong Start, ulong End)> sorted)
    {
        var r = new List<(ulong Start, ulong End)>(sorted.Count);
        foreach (var x in sorted)
        {
            if (r.Count > 0 && x.Start <= r[^1].End) { if (x.End > r[^1].End) r[^1] = (r[^1].Start, x.End); }
            else r.Add(x);
        }
        return r;
    }

    private static List<(ulong Start, ulong End)> Complement(List<(ulong Start, ulong End)> used, ulong start, ulong end)
    {
        var r = new List<(ulong, ulong)>();
        ulong at = start;
        foreach (var (s, e) in used)
        {
            if (s > at) r.Add((at, s));
            if (e > at) at = e;
        }
        if (at < end) r.Add((at, end));
        return r;
    }

    /// <summary>Sorted disjoint <paramref name="ranges"/> less the sorted <paramref name="cut"/>.</summary>
    private static List<(ulong Start, ulong End)> Subtract(List<(ulong Start, ulong End)> ranges, List<(ulong Start, ulong End)> cut)
    {
        if (cut.Count == 0) return ranges;
        var r = new List<(ulong, ulong)>(ranges.Count + cut.Count);
        foreach (var (s0, e) in ranges)
        {
            ulong s = s0;
            foreach (var (cs, ce) in cut)
            {
                if (ce <= s || cs >= e) continue;
                if (cs > s) r.Add((s, cs));
                s = Math.Max(s, ce);
                if (s >= e) break;
            }
            if (s < e) r.Add((s, e));
        }
        return r;
    }

    private void Report(FindingCode code, BtrfsKey infoKey, string message, string? expected, string? found, ulong? leaf = null, int? slot = null) =>
        _findings.Add(new Finding(code, Severity.Error, message, Bytenr: infoKey.ObjectId, Tree: ObjectIds.FreeSpaceTree,
            Slot: slot, Key: infoKey, Expected: expected, Found: found));
}
