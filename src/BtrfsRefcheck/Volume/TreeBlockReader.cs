using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;

namespace BtrfsRefcheck.Volume;

/// <summary>The mirrored/parity tree-block reader: maps a logical address through the chunk map, reads each copy in
/// turn from its <see cref="IBlockSource"/> (the devices: DUP, RAID1*, RAID10 mirrors, RAID5/6 copy 1 rebuilt from P;
/// or a metadata dump: one copy), verifies checksum, bytenr and fsid, and caches verified blocks (LRU). Never throws
/// for bad data: what failed on each copy is in the <see cref="TreeBlockRead"/>.</summary>
public sealed class TreeBlockReader
{
    private readonly Superblock _super;
    private readonly ChunkMap _chunks;
    private readonly IBlockSource _source;
    private readonly IReadOnlyList<byte[]> _seedFsids;
    private readonly BlockCache _cache;

    internal TreeBlockReader(Superblock super, ChunkMap chunks, IBlockSource source, IReadOnlyList<byte[]> seedFsids, int cacheBlocks)
    {
        _super = super;
        _chunks = chunks;
        _source = source;
        _seedFsids = seedFsids;
        _cache = new BlockCache(Math.Max(16, cacheBlocks));
    }

    private uint NodeSize => _super.NodeSize;
    private ChecksumType CsumType => _super.CsumType;

    /// <summary>The checksum type of the tree blocks read: the superblock's, or crc32c for a metadata dump.</summary>
    private ChecksumType BlockCsumType => _source.ResealedWith ?? _super.CsumType;

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
        return _source.Read(chunk, logical, 0, dest[..(int)len]) == null;
    }

    /// <summary>The tree block at <paramref name="offset"/> in <paramref name="buffer"/>, where <see cref="TryReadRun"/>
    /// read copy 0 (<paramref name="readOk"/>: whether it did), when that copy verifies; no copy is made. Null otherwise:
    /// the caller then uses <see cref="ReadTreeBlockUncached"/>, which tries every copy and says what failed.</summary>
    public TreeBlock? VerifiedInPlace(ulong logical, bool readOk, byte[] buffer, int offset)
    {
        int size = (int)NodeSize;
        return readOk && VerifyTreeBlock(logical, buffer.AsSpan(offset, size), 0) == null ? new TreeBlock(logical, buffer, offset, size, 0) : null;
    }

    /// <summary>The tree block at <paramref name="logical"/>: copy 0 read into <paramref name="buffer"/> (a node size) and
    /// used in place when it verifies, else every copy (<see cref="ReadTreeBlockUncached"/>, a block of its own); null when
    /// none verifies. For walks that read each block once and are done with it before the next.</summary>
    public TreeBlock? ReadInto(ulong logical, byte[] buffer) =>
        VerifiedInPlace(logical, TryReadRun(logical, 1, buffer), buffer, 0) ?? ReadTreeBlockUncached(logical).Block;

    /// <summary>The physical offset of copy 0 of <paramref name="logical"/> on its device; ulong.MaxValue when
    /// unmapped. Sorting reads by it issues each device's reads in ascending order and keeps the devices of a
    /// multi-device set interleaved (sorting by device first would read them one after the other).</summary>
    public ulong PhysicalOrder(ulong logical)
    {
        var chunk = _chunks.Find(logical);
        return chunk == null ? ulong.MaxValue : _source.ReadOrder(chunk, logical);
    }

    /// <summary>Read-ahead: asks the kernel to start reading copy 0 of <paramref name="count"/> blocks from
    /// <paramref name="logical"/> (one request per stripe piece); the scan hints the runs it will read next.</summary>
    public void ReadAhead(ulong logical, int count)
    {
        var chunk = _chunks.Find(logical);
        ulong len = (ulong)count * NodeSize;
        if (chunk == null || logical + len > chunk.End) return;
        _source.WillNeed(chunk, logical, len);
    }

    /// <summary>Checks one copy's bytes: checksum, bytenr, fsid. Null when good.</summary>
    public CopyFailure? VerifyTreeBlock(ulong logical, ReadOnlySpan<byte> block, int copy)
    {
        Span<byte> csum = stackalloc byte[Checksum.FieldSize];
        var h = new Header(block);
        var type = BlockCsumType;
        if (!Checksum.Verify(type, block, csum) && (_source.ResealedWith != null || !VerifiesWithNewCsumType(block)))
            return new CopyFailure(copy, FindingCode.TreeBlockChecksumMismatch,
                $"checksum mismatch: have {Checksum.ToHex(type, h.Csum)}, computed {Checksum.ToHex(type, csum)}" +
                (_source.ResealedWith != null && type != CsumType ? $" ({Checksum.Name((ushort)type)}, as btrfs-image reseals the blocks it dumps)" : ""));
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
        int copies = _source.Copies(chunk);
        for (int copy = 0; copy < copies; copy++)
        {
            var fail = _source.Read(chunk, logical, copy, buf) ?? VerifyTreeBlock(logical, buf, copy);
            if (fail == null) return new TreeBlockRead(logical, new TreeBlock(logical, buf, copy), failures);
            failures.Add(fail);
        }
        return new TreeBlockRead(logical, null, failures);
    }

    /// <summary>Reads raw bytes of one copy of a logical range (for data and dumps). Returns false with a reason on failure.</summary>
    public bool TryReadLogical(ulong logical, Span<byte> dest, int copy, out string? problem)
    {
        problem = null;
        var chunk = _chunks.Find(logical);
        if (chunk == null) { problem = $"logical {logical} is in no chunk"; return false; }
        if (logical + (ulong)dest.Length > chunk.End) { problem = "range crosses the end of its chunk"; return false; }
        int copies = _source.Copies(chunk);
        if (copy >= copies) { problem = copies == chunk.Copies ? $"chunk has {copies} copies" : $"{copies} copy can be read here (a metadata dump)"; return false; }
        var fail = _source.Read(chunk, logical, copy, dest);
        problem = fail?.Reason;
        return fail == null;
    }

}
