using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Format.Items;
using BtrfsRefcheck.Trees;
using BtrfsRefcheck.Volume;

namespace BtrfsRefcheck.Checks;

/// <summary>The csum tree as btrfs check 6.19 checks it (check_csum_root, and process_file_extent's csum counts in
/// the fs roots, check_log_root for the log): items in order without overlap, every checksummed range inside an
/// EXTENT_ITEM, every file extent that needs checksums has them (REG extents of inodes without NODATASUM; compressed
/// extents always), and none where they must not be (REG extents of NODATASUM inodes; PREALLOC extents no inode has
/// written). The csum tree is read once, in key order, into its covered ranges (merged: a few per leaf); the file
/// extents' claims come from the tree scan (<see cref="DataCsumRecorder"/>).</summary>
internal sealed class CsumTreeCheck(CheckContext ctx) : ITreeVisitor
{
    private readonly BtrfsVolume _vol = ctx.Volume;
    private readonly FindingBag _findings = ctx.Findings;
    private readonly uint _sector = ctx.Volume.SectorSize;
    private int _csumSize = Checksum.IsKnown(ctx.Volume.Super.CsumTypeRaw) ? Checksum.Length(ctx.Volume.Super.CsumType) : 0;
    private HashSet<ulong> _invalid = [];                                   // csum tree blocks the scan found unreadable or invalid
    private bool _walkIncomplete;                                           // a subtree the walk did not descend (cycle, second pointer)
    private readonly List<(ulong Start, ulong End)> _covered = [];          // EXTENT_CSUM items, merged
    private readonly List<(ulong Start, ulong End)> _changeCovered = [];    // CSUM_CHANGE items (btrfstune --csum), merged
    private readonly List<(ulong Lo, ulong Hi)> _hidden = [];               // data ranges an unreadable csum block may cover
    private int _changeCsumSize;
    private ChecksumType? _changeType;
    private long _changeItems;
    private ulong _prevEnd, _prevLeaf, _prevChangeEnd;
    private bool _havePrev, _havePrevChange;

    public void Run(TreeRoot csumRoot)
    {
        if (_csumSize == 0 || _sector == 0) return;
        if ((_vol.Super.Flags & (Superblock.FlagChangingDataCsum | Superblock.FlagChangingMetaCsum)) != 0) FindChangeTarget();
        // btrfstune --csum's metadata phase: the data checksums are already all of the new type (under EXTENT_CSUM)
        if ((_vol.Super.Flags & Superblock.FlagChangingMetaCsum) != 0 && _changeCsumSize > 0) _csumSize = _changeCsumSize;
        _invalid = ctx.Scan.Unreadable.Where(u => u.Tree == ObjectIds.CsumTree).Select(u => u.Bytenr).ToHashSet();
        var walkFindings = new FindingBag(); // the scan reported the blocks; what the walk meets again only says it is incomplete
        new TreeWalker(_vol, walkFindings).Walk(csumRoot, this, new WalkOptions { Validate = false });
        if (walkFindings.Items.Count > 0) _walkIncomplete = true;
        CsumsInsideExtents();
        FileExtentClaims();
        foreach (var log in ctx.Roots.Where(r => r.Source == RootSource.LogRootItem)) LogClaims(log);
        ChangeNote();
    }

    /// <summary>btrfs check's check_log_root: each REG extent the log holds for an inode without NODATASUM has its
    /// checksums all in the log's own csum items or all in the csum tree (log replay needs them).</summary>
    private void LogClaims(TreeRoot log)
    {
        var reader = new LogReader(_csumSize, _sector);
        new TreeWalker(_vol, new FindingBag()).Walk(log, reader, new WalkOptions { Validate = false });
        if (reader.Incomplete) return; // the scan reported the unreadable block; what it hides is unknown
        var own = Normalize(reader.Covered);
        var cov = Normalize(_covered);
        foreach (var (addr, length, key, leaf, slot) in reader.Needs)
        {
            if (Covered(own, addr, addr + length) == length || Covered(cov, addr, addr + length) == length) continue;
            if (Hidden(addr, addr + length)) continue;
            _findings.Add(new Finding(FindingCode.LogCsumMissing, Severity.Error,
                $"{log.Name}: inode {key.ObjectId} file offset {key.Offset} logs data [{addr}, {addr + length}) (leaf {leaf} slot {slot}) whose checksums are " +
                $"neither in the log ({Covered(own, addr, addr + length)} bytes) nor in the csum tree ({Covered(cov, addr, addr + length)} bytes): log replay would lose them",
                Bytenr: addr, Tree: ObjectIds.TreeLog, Slot: slot, Key: key, Expected: $"{length} bytes of checksums", Found: "missing"));
        }
    }

    private sealed class LogReader(int csumSize, uint sector) : ITreeVisitor
    {
        public readonly List<(ulong Addr, ulong Length, BtrfsKey Key, ulong Leaf, int Slot)> Needs = [];
        public readonly List<(ulong Start, ulong End)> Covered = [];
        public bool Incomplete;
        private ulong _lastCsumInode;

        public bool OnBlock(in BlockContext bc, TreeBlock block, bool valid)
        {
            if (!valid) { Incomplete = true; return false; }
            var view = block.View;
            if (!view.IsLeaf) return true;
            for (int i = 0; i < view.Count; i++)
            {
                if (!view.TryGetItem(i, out var key, out var data)) continue;
                if (key.ObjectId == ObjectIds.ExtentCsum)
                {
                    if (key.ItemType == ItemType.ExtentCsum)
                    {
                        ulong end = key.Offset + (ulong)(data.Length / csumSize) * sector;
                        if (end > key.Offset) Covered.Add((key.Offset, end));
                    }
                    continue;
                }
                if (key.ObjectId < ObjectIds.FirstFree || key.ObjectId > ObjectIds.LastFree) continue;
                if (key.ItemType == ItemType.InodeItem && data.Length >= InodeItem.Size)
                {
                    if ((new InodeItem(data).Flags & InodeFlags.NoDataSum) == 0) _lastCsumInode = key.ObjectId;
                }
                else if (key.ItemType == ItemType.ExtentData && key.ObjectId == _lastCsumInode && data.Length >= FileExtentItem.RegularSize)
                {
                    var fe = new FileExtentItem(data);
                    if (fe.Type != FileExtentType.Regular || fe.DiskBytenr == 0) continue;
                    ulong addr = fe.Compression != 0 ? fe.DiskBytenr : fe.DiskBytenr + fe.Offset;
                    ulong length = fe.Compression != 0 ? fe.DiskNumBytes : fe.NumBytes;
                    if (length > 0 && addr + length > addr) Needs.Add((addr, length, key, block.Logical, i));
                }
            }
            return true;
        }

        public void OnUnreadable(in BlockContext bc, TreeBlockRead read) => Incomplete = true;
    }

    public bool OnBlock(in BlockContext bc, TreeBlock block, bool valid)
    {
        if (!valid || _invalid.Contains(block.Logical)) { Hide(bc); return false; }
        var view = block.View;
        if (!view.IsLeaf) return true;
        for (int i = 0; i < view.Count; i++)
        {
            if (!view.TryGetItem(i, out var key, out var data) || key.ItemType != ItemType.ExtentCsum) continue;
            if (key.ObjectId == ObjectIds.ExtentCsum && data.Length % _csumSize != 0)
                _hidden.Add((key.Offset, key.Offset + (ulong)(data.Length / _csumSize + 1) * _sector)); // 414: what it covers is unknown
            else if (key.ObjectId == ObjectIds.ExtentCsum) Csum(block.Logical, i, key, data.Length);
            else if (key.ObjectId == ObjectIds.CsumChange && _changeCsumSize > 0) ChangeCsum(key, data.Length);
        }
        return true;
    }

    public void OnUnreadable(in BlockContext bc, TreeBlockRead read) => Hide(bc);

    /// <summary>A csum block that cannot be read hides the checksums of the data between its parent's keys.</summary>
    private void Hide(in BlockContext bc)
    {
        ulong lo = bc.ExpectedFirstKey is { } f && f.ObjectId == ObjectIds.ExtentCsum ? f.Offset : 0;
        ulong hi = bc.EndKey is { } e && e.ObjectId == ObjectIds.ExtentCsum ? e.Offset : ulong.MaxValue;
        _hidden.Add((lo, hi));
    }

    private bool Hidden(ulong start, ulong end)
    {
        if (_walkIncomplete) return true;
        foreach (var (lo, hi) in _hidden) if (lo < end && hi >= start) return true;
        return false;
    }

    private void Csum(ulong leaf, int slot, BtrfsKey key, int size)
    {
        ulong start = key.Offset, end = start + (ulong)(size / _csumSize) * _sector;
        if (end < start) return; // 414
        // btrfs check's "csum overlap"; within one leaf the item validator reports it (414)
        if (_havePrev && start < _prevEnd && leaf != _prevLeaf)
            _findings.Add(new Finding(FindingCode.CsumItemsOverlap, Severity.Error,
                $"csum item {key} covers [{start}, {end}), but the previous item (last of leaf {_prevLeaf}) covers up to {_prevEnd}: two checksums for the same sectors",
                Bytenr: start, Tree: ObjectIds.CsumTree, Slot: slot, Key: key, Expected: $"start >= {_prevEnd}", Found: start.ToString()));
        if (!_havePrev || end > _prevEnd) _prevEnd = end;
        _havePrev = true;
        _prevLeaf = leaf;
        Add(_covered, start, end);
    }

    private void ChangeCsum(BtrfsKey key, int size)
    {
        ulong start = key.Offset, end = start + (ulong)(size / _changeCsumSize) * _sector;
        if (end <= start) return;
        _changeItems++;
        if (_havePrevChange && start < _prevChangeEnd)
            _findings.Add(new Finding(FindingCode.CsumItemsOverlap, Severity.Error,
                $"csum item {key} (new checksums of btrfstune --csum) covers [{start}, {end}), the previous one up to {_prevChangeEnd}",
                Bytenr: start, Tree: ObjectIds.CsumTree, Key: key, Expected: $"start >= {_prevChangeEnd}", Found: start.ToString()));
        _prevChangeEnd = Math.Max(_prevChangeEnd, end);
        _havePrevChange = true;
        Add(_changeCovered, start, end);
    }

    private static void Add(List<(ulong Start, ulong End)> list, ulong start, ulong end)
    {
        if (list.Count > 0 && start <= list[^1].End && start >= list[^1].Start)
        {
            if (end > list[^1].End) list[^1] = (list[^1].Start, end);
        }
        else list.Add((start, end));
    }

    /// <summary>btrfs check's "csum exists for X-Y but there is no extent record": every checksummed range lies in
    /// EXTENT_ITEMs (read forward from the extent leaves beside the sorted coverage).</summary>
    private void CsumsInsideExtents()
    {
        var cov = Normalize(_covered);
        var change = Normalize(_changeCovered);
        var extents = new AllocatedRanges(_vol, ctx.Scan.ExtentLeaves, extentItemsOnly: true);
        var inside = new List<(ulong Start, ulong End)>();
        foreach (var (source, list) in new[] { ("", cov), (" (new checksums of btrfstune --csum)", change) })
        {
            if (list.Count == 0) continue;
            if (!ReferenceEquals(list, cov)) extents = new AllocatedRanges(_vol, ctx.Scan.ExtentLeaves, extentItemsOnly: true);
            foreach (var (s, e) in list)
            {
                inside.Clear();
                extents.In(s, e, inside);
                ulong at = s;
                foreach (var (xs, xe) in inside)
                {
                    if (xs > at) NoExtent(at, xs, source);
                    if (xe > at) at = xe;
                }
                if (at < e) NoExtent(at, e, source);
            }
        }
    }

    private void NoExtent(ulong start, ulong end, string source)
    {
        bool hidden = ctx.Scan.ExtentItemsHidden(start, end);
        _findings.Add(new Finding(FindingCode.CsumWithoutDataExtent, hidden ? Severity.Warning : Severity.Error,
            $"checksums{source} for [{start}, {end}) ({end - start} bytes), where no EXTENT_ITEM is allocated" +
            (hidden ? " (unverifiable: the extent-tree block that would hold it is unreadable)" : ""),
            Bytenr: start, Tree: ObjectIds.CsumTree, Expected: "an allocated data extent", Found: "no extent item"));
    }

    private static List<(ulong Start, ulong End)> Normalize(List<(ulong Start, ulong End)> list)
    {
        list.Sort();
        var r = new List<(ulong Start, ulong End)>(list.Count);
        foreach (var x in list)
        {
            if (r.Count > 0 && x.Start <= r[^1].End) { if (x.End > r[^1].End) r[^1] = (r[^1].Start, x.End); }
            else r.Add(x);
        }
        return r;
    }

    /// <summary>Bytes of [start, end) the merged <paramref name="cov"/> covers.</summary>
    private static ulong Covered(List<(ulong Start, ulong End)> cov, ulong start, ulong end)
    {
        int lo = 0, hi = cov.Count;
        while (lo < hi) { int m = (lo + hi) >>> 1; if (cov[m].End <= start) lo = m + 1; else hi = m; }
        ulong n = 0;
        for (int i = lo; i < cov.Count && cov[i].Start < end; i++)
            n += Math.Min(end, cov[i].End) - Math.Max(start, cov[i].Start);
        return n;
    }

    /// <summary>process_file_extent's csum counts: a REG extent of an inode without NODATASUM, and any compressed one,
    /// has checksums for all of its range; a REG extent of a NODATASUM inode has none; a PREALLOC extent has none unless
    /// some REG file extent uses the same disk extent (check_prealloc_extent_written).</summary>
    private void FileExtentClaims()
    {
        var cov = Normalize(_covered);
        var segments = ctx.Scan.CsumNeeds;
        bool treesIncomplete = ctx.Scan.Unreadable.Count > 0;
        HashSet<ulong>? written = null;
        var bad = new List<(FindingCode Code, Severity Severity, DataCsumNeed Need, string What, string Expected, string Found)>();
        foreach (var (array, count) in segments)
            foreach (ref readonly var n in array.AsSpan(0, count))
            {
                ulong length = n.Length;
                ulong found = Covered(cov, n.Start, n.End);
                byte f = n.Flags;
                if ((f & DataCsumNeed.Prealloc) != 0)
                {
                    if (found == 0) continue;
                    written ??= WrittenExtents(segments);
                    if (written.Contains(n.DiskBytenr)) continue;
                    bad.Add((FindingCode.UnexpectedDataCsum, treesIncomplete ? Severity.Warning : Severity.Error, n,
                        $"a PREALLOC extent no file has written to has checksums for {found} of its {length} bytes", "none", found.ToString()));
                    continue;
                }
                if (found < length && ((f & DataCsumNeed.Compressed) != 0 || (f & (DataCsumNeed.NoDataSum | DataCsumNeed.InodeUnknown)) == 0))
                {
                    if (Hidden(n.Start, n.End)) continue; // an unreadable csum tree block may hold them: 900 says what is unverified
                    bad.Add((FindingCode.DataCsumMissing, Severity.Error, n,
                        ((f & DataCsumNeed.Compressed) != 0 ? "a compressed extent" : "a file extent of an inode without NODATASUM") +
                        $" has checksums for only {found} of its {length} bytes", length.ToString(), found.ToString()));
                }
                else if (found > 0 && (f & DataCsumNeed.NoDataSum) != 0 && (f & DataCsumNeed.Compressed) == 0)
                {
                    bad.Add((FindingCode.UnexpectedDataCsum, Severity.Error, n,
                        $"a file extent of a NODATASUM inode has checksums for {found} of its {length} bytes", "none", found.ToString()));
                }
            }
        if (bad.Count == 0) return;
        var users = Users(bad.Select(b => b.Need.DiskBytenr).Distinct().Take(MaxLocated).ToHashSet());
        foreach (var (code, severity, n, what, expected, found) in bad)
        {
            string who = users.TryGetValue(n.DiskBytenr, out var u)
                ? "used by " + string.Join(", ", u.Take(3).Select(x => $"{ObjectIds.TreeName(x.Tree)} inode {x.Ino} file offset {x.Offset}")) + (u.Count > 3 ? $" and {u.Count - 3} more" : "")
                : "its file extents not located";
            _findings.Add(new Finding(code, severity, $"data [{n.Start}, {n.End}) of extent {n.DiskBytenr} ({who}): {what}",
                Bytenr: n.DiskBytenr, Expected: expected, Found: found));
        }
    }

    private const int MaxLocated = 256;

    private static HashSet<ulong> WrittenExtents(List<(DataCsumNeed[] Array, int Count)> segments)
    {
        var w = new HashSet<ulong>();
        foreach (var (array, count) in segments)
            foreach (ref readonly var n in array.AsSpan(0, count))
                if ((n.Flags & DataCsumNeed.Prealloc) == 0) w.Add(n.DiskBytenr);
        return w;
    }

    /// <summary>Only when there are findings: the file extents (tree, inode, file offset) that use the named disk extents,
    /// found by one more walk of the subvolume trees, so a message can say which files are concerned.</summary>
    private Dictionary<ulong, List<(ulong Tree, ulong Ino, ulong Offset)>> Users(HashSet<ulong> extents)
    {
        var finder = new UserFinder(extents);
        var walker = new TreeWalker(_vol, new FindingBag());
        var visited = new HashSet<ulong>();
        foreach (var r in ctx.Roots.Where(r => r.IsFsTree && !r.IsLog && r.Id != ObjectIds.DataRelocTree))
            walker.Walk(r, finder, new WalkOptions { Validate = false, Visited = visited });
        return finder.Found;
    }

    private sealed class UserFinder(HashSet<ulong> extents) : ITreeVisitor
    {
        public readonly Dictionary<ulong, List<(ulong Tree, ulong Ino, ulong Offset)>> Found = [];

        public bool OnBlock(in BlockContext bc, TreeBlock block, bool valid)
        {
            var view = block.View;
            if (!valid || !view.IsLeaf) return valid;
            for (int i = 0; i < view.Count; i++)
            {
                if (!view.TryGetItem(i, out var key, out var data) || key.ItemType != ItemType.ExtentData || data.Length < FileExtentItem.RegularSize) continue;
                var fe = new FileExtentItem(data);
                if (fe.IsInline || !extents.Contains(fe.DiskBytenr)) continue;
                if (!Found.TryGetValue(fe.DiskBytenr, out var list)) Found[fe.DiskBytenr] = list = [];
                list.Add((bc.Tree.Id, key.ObjectId, key.Offset));
            }
            return true;
        }
    }

    /// <summary>btrfstune --csum names the new type in a TEMPORARY_ITEM (CSUM_CHANGE, TEMPORARY_ITEM, type) of the root tree.</summary>
    private void FindChangeTarget()
    {
        var rootTree = ctx.Roots.FirstOrDefault(r => r.Id == ObjectIds.RootTree);
        if (rootTree == null) return;
        var finder = new TemporaryItemFinder();
        new TreeWalker(_vol, new FindingBag()).Walk(rootTree, finder, new WalkOptions { Validate = false });
        if (finder.Type is { } t && Checksum.IsKnown((ushort)t))
        {
            _changeType = (ChecksumType)t;
            _changeCsumSize = Checksum.Length(_changeType.Value);
        }
    }

    private void ChangeNote()
    {
        if ((_vol.Super.Flags & Superblock.FlagChangingDataCsum) == 0) return;
        ulong bytes = 0;
        foreach (var (s, e) in Normalize(_changeCovered)) bytes += e - s;
        _findings.Add(new Finding(FindingCode.CsumChangeInProgress, Severity.Info,
            _changeType is { } t
                ? $"data checksum change to {Checksum.Name((ushort)t)} in progress (superblock CHANGING_DATA_CSUM, btrfstune --csum interrupted): {_changeItems} csum items under CSUM_CHANGE cover {bytes} bytes " +
                  $"with {Checksum.Name((ushort)t)} checksums beside the {Checksum.Name((ushort)_vol.CsumType)} ones, checked with {Checksum.Name((ushort)t)}'s size. btrfs check 6.19 sizes them with " +
                  $"{Checksum.Name((ushort)_vol.CsumType)}'s and reports them as overlapping; `btrfstune --csum {Checksum.Name((ushort)t)}` resumes the change"
                : "data checksum change in progress (superblock CHANGING_DATA_CSUM) but no TEMPORARY_ITEM names the new type: the CSUM_CHANGE items are not checked",
            Tree: ObjectIds.CsumTree));
    }

    private sealed class TemporaryItemFinder : ITreeVisitor
    {
        public ulong? Type;

        public bool OnBlock(in BlockContext bc, TreeBlock block, bool valid)
        {
            var view = block.View;
            if (!valid || !view.IsLeaf) return valid;
            for (int i = 0; i < view.Count; i++)
                if (view.TryItemKey(i, out var key) && key.ObjectId == ObjectIds.CsumChange && key.ItemType == ItemType.TemporaryItem)
                    Type = key.Offset;
            return true;
        }
    }
}
