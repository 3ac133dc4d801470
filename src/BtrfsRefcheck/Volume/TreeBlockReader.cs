using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;

namespace BtrfsRefcheck.Volume;

/// <summary>The mirrored/parity tree-block reader: maps a logical address through the chunk map, reads each copy in
/// turn (DUP, RAID1*, RAID10 mirrors; RAID5/6 copy 1 rebuilt from P), verifies checksum, bytenr and fsid, and caches
/// verified blocks (LRU). Never throws for bad data: what failed on each copy is in the <see cref="TreeBlockRead"/>.</summary>
public sealed class TreeBlockReader
{
    private readonly Superblock _super;
    private readonly ChunkMap _chunks;
    private readonly IReadOnlyDictionary<ulong, BlockDevice> _byDevId;
    private readonly IReadOnlyList<byte[]> _seedFsids;
    private readonly BlockCache _cache;

    internal TreeBlockReader(Superblock super, ChunkMap chunks, IReadOnlyDictionary<ulong, BlockDevice> byDevId, IReadOnlyList<byte[]> seedFsids, int cacheBlocks)
    {
        _super = super;
        _chunks = chunks;
        _byDevId = byDevId;
        _seedFsids = seedFsids;
        _cache = new BlockCache(Math.Max(16, cacheBlocks));
    }

    private uint NodeSize => _super.NodeSize;
    private ChecksumType CsumType => _super.CsumType;

    /// <summary>Reads the tree block at <paramref name="logical"/>: tries each copy until one has a good checksum,
    /// the right bytenr and this filesystem's fsid. Cached. Never throws for bad data.</summary>
    public TreeBlockRead ReadTreeBlock(ulong logical)
    {
        if (_cache.TryGet(logical, out var cached)) return cached;
        var result = ReadTreeBlockUncached(logical);
        _cache.Add(result);
        return result;
    }

    public (long Hits, long Misses) CacheStats => (_cache.Hits, _cache.Misses);

    /// <summary>What an unreadable block of the chunk tree hides while the chunk map is loaded (900): the chunks it holds
    /// are unknown, so addresses in them cannot be mapped. (What an unreadable or invalid block hides from the walks is
    /// said by BlockSteps.NotChecked; both are this reader's findings about blocks it could not give.)</summary>
    internal static void ChunksHidden(FindingBag findings, ulong bytenr, TreeBlockRead read) =>
        findings.Add(new Finding(FindingCode.SubtreeNotChecked, Severity.Warning,
            $"chunk tree block {bytenr} is unreadable ({read.Describe()}): the chunks it holds are unknown, so addresses in them cannot be mapped",
            Bytenr: bytenr, Tree: ObjectIds.ChunkTree));

    /// <summary>Reads <paramref name="count"/> consecutive tree blocks starting at <paramref name="logical"/> from copy 0
    /// in as few reads as the mapping allows, into <paramref name="dest"/> (count * nodesize bytes). False when the run
    /// leaves its chunk or a read comes up short: the caller then reads block by block. Nothing is verified or cached.</summary>
    public bool TryReadRun(ulong logical, int count, Span<byte> dest)
    {
        var chunk = _chunks.Find(logical);
        ulong len = (ulong)count * NodeSize;
        if (chunk == null || logical + len > chunk.End) return false;
        return ReadCopy(chunk, logical, 0, dest[..(int)len]) == null;
    }

    /// <summary>The tree block at <paramref name="offset"/> in <paramref name="buffer"/>, where <see cref="TryReadRun"/>
    /// read copy 0 (<paramref name="readOk"/>: whether it did), when that copy verifies; no copy is made. Null otherwise:
    /// the caller then uses <see cref="ReadTreeBlockUncached"/>, which tries every copy and says what failed.</summary>
    public TreeBlock? VerifiedInPlace(ulong logical, bool readOk, byte[] buffer, int offset)
    {
        int size = (int)NodeSize;
        return readOk && VerifyTreeBlock(logical, buffer.AsSpan(offset, size), 0) == null ? new TreeBlock(logical, buffer, offset, size, 0) : null;
    }

    /// <summary>The physical offset of copy 0 of <paramref name="logical"/> on its device; ulong.MaxValue when
    /// unmapped. Sorting reads by it issues each device's reads in ascending order and keeps the devices of a
    /// multi-device set interleaved (sorting by device first would read them one after the other).</summary>
    public ulong PhysicalOrder(ulong logical)
    {
        var chunk = _chunks.Find(logical);
        return chunk == null ? ulong.MaxValue : chunk.Map(logical, 0, out _).Offset;
    }

    /// <summary>Read-ahead: asks the kernel to start reading copy 0 of <paramref name="count"/> blocks from
    /// <paramref name="logical"/> (one request per stripe piece); the scan hints the runs it will read next.</summary>
    public void ReadAhead(ulong logical, int count)
    {
        var chunk = _chunks.Find(logical);
        ulong len = (ulong)count * NodeSize;
        if (chunk == null || logical + len > chunk.End) return;
        for (ulong done = 0; done < len;)
        {
            var loc = chunk.Map(logical + done, 0, out ulong contiguous);
            ulong n = Math.Min(len - done, contiguous);
            if (loc.Offset <= long.MaxValue && _byDevId.TryGetValue(loc.DevId, out var dev)) dev.WillNeed((long)loc.Offset, (long)n);
            done += n;
        }
    }

    /// <summary>Checks one copy's bytes: checksum, bytenr, fsid. Null when good.</summary>
    public CopyFailure? VerifyTreeBlock(ulong logical, ReadOnlySpan<byte> block, int copy)
    {
        Span<byte> csum = stackalloc byte[Checksum.FieldSize];
        var h = new Header(block);
        if (!Checksum.Verify(CsumType, block, csum) && !VerifiesWithNewCsumType(block))
            return new CopyFailure(copy, FindingCode.TreeBlockChecksumMismatch,
                $"checksum mismatch: have {Checksum.ToHex(CsumType, h.Csum)}, computed {Checksum.ToHex(CsumType, csum)}");
        if (h.Bytenr != logical)
            return new CopyFailure(copy, FindingCode.TreeBlockBytenrMismatch, $"header bytenr {h.Bytenr}, expected {logical}");
        if (!h.Fsid.SequenceEqual(_super.MetadataFsidBytes) && !IsSeedFsid(h.Fsid))
            return new CopyFailure(copy, FindingCode.TreeBlockFsidMismatch,
                $"header fsid {Uuids.Format(h.Fsid)}, expected {Uuids.Format(_super.MetadataFsidBytes)}");
        return null;
    }

    private int _newCsumType = -1;
    private static readonly ChecksumType[] CsumTypes = Enum.GetValues<ChecksumType>(); // the four the format defines

    /// <summary>While btrfstune --csum rewrites tree blocks (superblock CHANGING_META_CSUM), each block carries the old
    /// type (the superblock's) or the new one: the first other known type a block verifies with is taken as the new
    /// type, and from then on only it. (The new type is also named by the root tree's CSUM_CHANGE TEMPORARY_ITEM, but
    /// the root tree itself may already carry it.)</summary>
    private bool VerifiesWithNewCsumType(ReadOnlySpan<byte> block)
    {
        if ((_super.Flags & Superblock.FlagChangingMetaCsum) == 0) return false;
        int known = Volatile.Read(ref _newCsumType);
        foreach (var t in CsumTypes)
        {
            if (t == CsumType || (known >= 0 && (int)t != known) || !Checksum.Verify(t, block)) continue;
            if (known < 0) Interlocked.CompareExchange(ref _newCsumType, (int)t, -1);
            return Volatile.Read(ref _newCsumType) == (int)t;
        }
        return false;
    }

    /// <summary>A seed device's fsid: blocks written while the filesystem was that seed keep it in their header.</summary>
    private bool IsSeedFsid(ReadOnlySpan<byte> fsid)
    {
        foreach (var s in _seedFsids) if (fsid.SequenceEqual(s)) return true;
        return false;
    }

    /// <summary>Like <see cref="ReadTreeBlock"/> but bypasses the cache (for single passes over all metadata).</summary>
    public TreeBlockRead ReadTreeBlockUncached(ulong logical)
    {
        int size = (int)NodeSize;
        var failures = new List<CopyFailure>();
        var chunk = _chunks.Find(logical);
        if (chunk == null)
        {
            failures.Add(new CopyFailure(0, FindingCode.LogicalAddressUnmapped, $"logical {logical} is in no chunk"));
            return new TreeBlockRead(logical, null, failures);
        }
        if (logical + (ulong)size > chunk.End)
        {
            failures.Add(new CopyFailure(0, FindingCode.LogicalAddressUnmapped,
                $"block [{logical}, {logical + (ulong)size}) crosses the end of chunk [{chunk.Logical}, {chunk.End})"));
            return new TreeBlockRead(logical, null, failures);
        }
        var buf = GC.AllocateUninitializedArray<byte>(size); // every byte is read (or the copy fails and is dropped)
        for (int copy = 0; copy < chunk.Copies; copy++)
        {
            var fail = ReadCopy(chunk, logical, copy, buf) ?? VerifyTreeBlock(logical, buf, copy);
            if (fail == null) return new TreeBlockRead(logical, new TreeBlock(logical, buf, copy), failures);
            failures.Add(fail);
        }
        return new TreeBlockRead(logical, null, failures);
    }

    private CopyFailure? ReadCopy(Chunk chunk, ulong logical, int copy, Span<byte> dest)
    {
        if (copy == 1 && chunk.Profile is RaidProfile.Raid5 or RaidProfile.Raid6) return RebuildFromParity(chunk, logical, dest);
        int done = 0;
        while (done < dest.Length)
        {
            var loc = chunk.Map(logical + (ulong)done, copy, out ulong contiguous);
            int n = (int)Math.Min((ulong)(dest.Length - done), contiguous);
            if (!_byDevId.TryGetValue(loc.DevId, out var dev))
                return new CopyFailure(copy, FindingCode.TreeBlockUnreadable, $"device devid {loc.DevId} is missing", loc.DevId, loc.Offset, DeviceMissing: true);
            if (loc.Offset > long.MaxValue)
                return new CopyFailure(copy, FindingCode.StripeBeyondDevice, $"physical offset {loc.Offset} is out of range", loc.DevId, loc.Offset);
            int got = dev.Read((long)loc.Offset, dest.Slice(done, n));
            if (got < n)
                return new CopyFailure(copy, FindingCode.StripeBeyondDevice,
                    $"short read at devid {loc.DevId} physical {loc.Offset}: {got} of {n} bytes (device is {dev.Length} bytes)", loc.DevId, loc.Offset);
            done += n;
        }
        return null;
    }

    private static void XorInto(Span<byte> acc, ReadOnlySpan<byte> src)
    {
        int i = 0;
        if (System.Numerics.Vector.IsHardwareAccelerated)
            for (int w = System.Numerics.Vector<byte>.Count; i + w <= acc.Length; i += w)
                (new System.Numerics.Vector<byte>(acc[i..]) ^ new System.Numerics.Vector<byte>(src[i..])).CopyTo(acc[i..]);
        for (; i < acc.Length; i++) acc[i] ^= src[i];
    }

    /// <summary>RAID5/6 with one data stripe lost: data = P xor the row's other data stripes, piece by piece.</summary>
    private CopyFailure? RebuildFromParity(Chunk chunk, ulong logical, Span<byte> dest)
    {
        int done = 0;
        byte[] tmp = new byte[Math.Min(dest.Length, 1 << 16)];
        while (done < dest.Length)
        {
            var (target, others) = chunk.ParityRow(logical + (ulong)done, out ulong contiguous);
            int n = (int)Math.Min((ulong)(dest.Length - done), contiguous);
            var piece = dest.Slice(done, n);
            piece.Clear();
            foreach (var loc in others)
            {
                if (!_byDevId.TryGetValue(loc.DevId, out var dev))
                    return new CopyFailure(1, FindingCode.TreeBlockUnreadable,
                        $"parity rebuild impossible: device devid {loc.DevId} is missing too", loc.DevId, loc.Offset, DeviceMissing: true);
                if (tmp.Length < n) tmp = new byte[n];
                int got = loc.Offset > long.MaxValue ? 0 : dev.Read((long)loc.Offset, tmp.AsSpan(0, n));
                if (got < n)
                    return new CopyFailure(1, FindingCode.StripeBeyondDevice, $"parity rebuild: short read at devid {loc.DevId} physical {loc.Offset}", loc.DevId, loc.Offset);
                XorInto(piece, tmp.AsSpan(0, n));
            }
            done += n;
        }
        return null;
    }

    /// <summary>Reads raw bytes of one copy of a logical range (for data and dumps). Returns false with a reason on failure.</summary>
    public bool TryReadLogical(ulong logical, Span<byte> dest, int copy, out string? problem)
    {
        problem = null;
        var chunk = _chunks.Find(logical);
        if (chunk == null) { problem = $"logical {logical} is in no chunk"; return false; }
        if (logical + (ulong)dest.Length > chunk.End) { problem = "range crosses the end of its chunk"; return false; }
        if (copy >= chunk.Copies) { problem = $"chunk has {chunk.Copies} copies"; return false; }
        var fail = ReadCopy(chunk, logical, copy, dest);
        problem = fail?.Reason;
        return fail == null;
    }

}
