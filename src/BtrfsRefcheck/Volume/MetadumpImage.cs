using System.IO.Compression;
using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;

namespace BtrfsRefcheck.Volume;

/// <summary>A btrfs-image metadata dump read in place (btrfs-progs <c>image/</c>): the clusters are indexed once by a
/// sequential pass over their 1 KiB headers (item logical start -> payload offset and size in the file), and each item
/// is decompressed when a block inside it is read, into a small cache of decompressed items shared by the scan's
/// threads. Nothing is restored to memory or disk as a whole.
/// <para>What btrfs-image wrote, and what that means for a check: every tree block the extent tree lists (and the log
/// trees' blocks, and the v1 free space cache's data) by its LOGICAL address, once, whatever the profile and however
/// many devices; the superblock of the device it was given as the item at 65536; each tree block with its leaf free
/// space, csum items' contents and inline file data zeroed, names replaced with <c>-s</c>/<c>-ss</c>, and its
/// checksum recomputed as crc32c over the whole block (image/common.c <c>csum_block</c>), whatever the filesystem's
/// checksum type. Data blocks, the other superblock copies and the devices' sizes are not in it.</para></summary>
public sealed class MetadumpImage : IBlockSource
{
    /// <summary>The logical start of the superblock's item (BTRFS_SUPER_INFO_OFFSET).</summary>
    public const ulong SuperblockItem = 65536;

    private readonly BlockDevice _file;
    private readonly ulong[] _start;   // sorted; duplicates resolved (the later item in the file wins, as restore writes it)
    private readonly long[] _offset;   // payload offset in the file
    private readonly int[] _stored;    // payload size in the file
    private readonly bool[] _zlib;     // the cluster's compression
    private readonly int[] _raw;       // raw size once decompressed (0: not yet)
    private readonly int _maxItem;
    private readonly ItemCache _cache;

    /// <summary>The dump's path.</summary>
    public string Path => _file.Path;

    /// <summary>Dump format: 0 (every btrfs-image), 1 (btrfs-image -d of an EXPERIMENTAL build: data too).</summary>
    public int FormatVersion { get; }
    public int Clusters { get; }
    /// <summary>Items indexed (the superblock's not counted).</summary>
    public int Items => _start.Length;

    /// <summary>The superblock bytes of the item at 65536 (null when the dump has none).</summary>
    public byte[]? Superblock { get; }

    /// <summary>What the index pass found wrong, with the file offset (a truncated or overwritten dump): reported as
    /// 130 by <see cref="MetadumpOpen"/>; what follows such a place is not read.</summary>
    public IReadOnlyList<(long Offset, string Problem)> Damage { get; }

    /// <summary>Whether <paramref name="dev"/> starts with a dump's cluster magic (any format).</summary>
    public static bool Detect(BlockDevice dev)
    {
        Span<byte> magic = stackalloc byte[8];
        return dev.Read(0, magic) == 8 && MetadumpCluster.IsMetadump(magic);
    }

    private MetadumpImage(BlockDevice file, int version, int clusters, List<(ulong Start, long Offset, int Stored, bool Zlib)> items,
        List<(long, string)> damage, int cacheItems)
    {
        _file = file;
        FormatVersion = version;
        Clusters = clusters;
        _maxItem = MetadumpCluster.MaxItemBytes(version);
        Damage = damage;
        // the superblock: the first item at 65536 (btrfs-image adds it first)
        int sb = items.FindIndex(x => x.Start == SuperblockItem);
        if (sb >= 0)
        {
            var it = items[sb];
            items.RemoveAt(sb);
            var buf = new byte[Math.Max(it.Stored, Format.Superblock.Size)];
            int n = Inflate(it.Offset, it.Stored, it.Zlib, buf, out string? problem);
            if (problem == null && n >= Format.Superblock.Size) Superblock = buf.AsSpan(0, Format.Superblock.Size).ToArray();
            else damage.Add((it.Offset, $"the superblock's item cannot be read: {problem ?? $"{n} bytes"}"));
        }
        // sorted by logical start; of two items at one start, the later one in the file (restore writes it last)
        var order = Enumerable.Range(0, items.Count).ToArray();
        Array.Sort(order, (a, b) => items[a].Start != items[b].Start ? items[a].Start.CompareTo(items[b].Start) : a.CompareTo(b));
        var kept = new List<int>(order.Length);
        foreach (int i in order)
        {
            if (kept.Count > 0 && items[kept[^1]].Start == items[i].Start) kept[^1] = i;
            else kept.Add(i);
        }
        _start = new ulong[kept.Count];
        _offset = new long[kept.Count];
        _stored = new int[kept.Count];
        _zlib = new bool[kept.Count];
        _raw = new int[kept.Count];
        for (int k = 0; k < kept.Count; k++)
            (_start[k], _offset[k], _stored[k], _zlib[k]) = items[kept[k]];
        _cache = new ItemCache(cacheItems, Math.Min(_maxItem, MetadumpCluster.MaxItemBytes(0)));
    }

    /// <summary>Indexes the dump on <paramref name="file"/> (which <see cref="Detect"/> accepted): one sequential pass
    /// over the cluster headers, skipping the payloads. Throws <see cref="VolumeException"/> only when not even the first
    /// cluster is usable; later damage is listed in <see cref="Damage"/>.</summary>
    internal static MetadumpImage Open(BlockDevice file, int cacheItems)
    {
        var hdr = new byte[MetadumpCluster.Size];
        if (file.Read(0, hdr) < hdr.Length) throw new VolumeException($"{file.Path}: a metadata dump shorter than its first cluster header ({file.Length} bytes)");
        ulong magic = new MetadumpCluster(hdr).Magic;
        int version = MetadumpCluster.Version(magic);
        var items = new List<(ulong, long, int, bool)>();
        var damage = new List<(long, string)>();
        int clusters = 0;
        long pos = 0;
        while (pos < file.Length)
        {
            int n = file.Read(pos, hdr);
            if (n < hdr.Length)
            {
                if (hdr.AsSpan(0, n).ContainsAnyExcept((byte)0)) damage.Add((pos, $"the dump ends inside a cluster header ({n} of {hdr.Length} bytes)"));
                break;
            }
            var c = new MetadumpCluster(hdr);
            if (c.Magic != magic)
            {
                if (hdr.AsSpan().ContainsAnyExcept((byte)0))
                    damage.Add((pos, $"no cluster magic at file offset {pos} (0x{c.Magic:x16}, expected 0x{magic:x16}): the rest of the dump is not read"));
                break;
            }
            if (c.NrItems > MetadumpCluster.MaxItems || c.Compress > MetadumpCluster.CompressZlib)
            {
                damage.Add((pos, $"cluster at file offset {pos}: nritems {c.NrItems} (at most {MetadumpCluster.MaxItems}), compression {c.Compress} (0 or 1): the rest of the dump is not read"));
                break;
            }
            if (c.Bytenr != (ulong)pos)
                damage.Add((pos, $"cluster at file offset {pos} says it was written at {c.Bytenr}"));
            clusters++;
            long p = pos + MetadumpCluster.Size;
            bool truncated = false;
            for (int i = 0; i < (int)c.NrItems; i++)
            {
                var (logical, stored) = c.Item(i);
                long cap = (long)MetadumpCluster.MaxItemBytes(version) + (1 << 20); // zlib's worst case stays far below
                if (stored == 0 || stored > cap || p + stored > file.Length)
                {
                    damage.Add((p, stored == 0 || stored > cap
                        ? $"cluster at file offset {pos}, item {i} (logical {logical}): stored size {stored} is impossible"
                        : $"cluster at file offset {pos}, item {i} (logical {logical}): its {stored} bytes run past the end of the dump ({file.Length} bytes): the dump is truncated"));
                    truncated = true;
                    break;
                }
                items.Add((logical, p, (int)stored, c.Compress == MetadumpCluster.CompressZlib));
                p += stored;
            }
            if (truncated) break;
            pos = (p + MetadumpCluster.Size - 1) & ~(long)(MetadumpCluster.Size - 1);
        }
        return new MetadumpImage(file, version, clusters, items, damage, cacheItems);
    }

    // ---- IBlockSource: one copy, by logical address; blocks resealed with crc32c ----

    public int Copies(Chunk chunk) => 1;

    public ChecksumType? ResealedWith => ChecksumType.Crc32c;

    public ulong ReadOrder(Chunk chunk, ulong logical)
    {
        int i = Floor(logical);
        if (i < 0) return ulong.MaxValue;
        return ((ulong)_offset[i] << 20) | Math.Min((logical - _start[i]) >> 12, 0xFFFFF);
    }

    public void WillNeed(Chunk chunk, ulong logical, ulong length)
    {
        for (int i = Math.Max(0, Floor(logical)); i < _start.Length && _start[i] < logical + length; i++)
            _file.WillNeed(_offset[i], _stored[i]);
    }

    public CopyFailure? Read(Chunk chunk, ulong logical, int copy, Span<byte> dest)
    {
        int done = 0;
        while (done < dest.Length)
        {
            ulong at = logical + (ulong)done;
            int i = Floor(at);
            ulong within = i < 0 ? ulong.MaxValue : at - _start[i];
            int known = i < 0 ? 0 : Volatile.Read(ref _raw[i]);
            if (i < 0 || within >= (ulong)_maxItem || (known > 0 && within >= (ulong)known)) return NotInDump(at);
            int got = _cache.Copy(this, i, (int)within, dest[done..], out string? problem);
            if (problem != null)
                return new CopyFailure(0, FindingCode.MetadumpItemCorrupt, $"dump item at logical {_start[i]} (file offset {_offset[i]}, {_stored[i]} bytes): {problem}");
            if (got == 0) return NotInDump(at);
            done += got;
        }
        return null;
    }

    private static CopyFailure NotInDump(ulong logical) =>
        new(0, FindingCode.TreeBlockNotInDump, $"logical {logical} is not in the metadata dump: btrfs-image dumps every tree block the extent tree lists (and the log trees), so this block has no extent item (504 on the filesystem itself) or the dump is incomplete (130)");

    /// <summary>The item with the largest start at or below <paramref name="logical"/>; -1 when none.</summary>
    private int Floor(ulong logical)
    {
        int lo = 0, hi = _start.Length - 1, found = -1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >>> 1;
            if (_start[mid] <= logical) { found = mid; lo = mid + 1; }
            else hi = mid - 1;
        }
        return found;
    }

    /// <summary>Decompresses item <paramref name="i"/> into <paramref name="dest"/>; its raw size, or -1 with a problem.</summary>
    private int InflateItem(int i, byte[] dest, out string? problem)
    {
        int n = Inflate(_offset[i], _stored[i], _zlib[i], dest, out problem);
        if (problem == null) Volatile.Write(ref _raw[i], n);
        return n;
    }

    [ThreadStatic] private static byte[]? t_compressed;

    private int Inflate(long offset, int stored, bool zlib, byte[] dest, out string? problem)
    {
        problem = null;
        if (!zlib)
        {
            if (stored > dest.Length) { problem = $"stored item of {stored} bytes, more than the {dest.Length} a dump item holds"; return -1; }
            int got = _file.Read(offset, dest.AsSpan(0, stored));
            if (got < stored) { problem = $"short read: {got} of {stored} bytes"; return -1; }
            return stored;
        }
        var comp = t_compressed is { } t && t.Length >= stored ? t : t_compressed = new byte[Math.Max(stored, 320 << 10)];
        int read = _file.Read(offset, comp.AsSpan(0, stored));
        if (read < stored) { problem = $"short read: {read} of {stored} bytes"; return -1; }
        try
        {
            using var z = new ZLibStream(new MemoryStream(comp, 0, stored, writable: false), CompressionMode.Decompress);
            int total = 0;
            while (total < dest.Length)
            {
                int r = z.Read(dest, total, dest.Length - total);
                if (r == 0) break;
                total += r;
            }
            if (total == dest.Length && z.ReadByte() >= 0) { problem = $"decompresses to more than {dest.Length} bytes"; return -1; }
            if (total == 0) { problem = "decompresses to nothing"; return -1; }
            return total;
        }
        catch (InvalidDataException e)
        {
            problem = $"cannot be decompressed (zlib: {e.Message})";
            return -1;
        }
    }

    /// <summary>The decompressed items most recently read, a fixed set of buffers. A miss decompresses outside the lock
    /// into the thread's spare buffer, which then takes the place of the least recently used entry (whose buffer becomes
    /// the thread's spare): no allocation per item. Bytes are copied out under the lock, so a buffer is never reused
    /// while read. Items larger than a format-0 item (data in a format-1 dump) are decompressed per read, uncached.</summary>
    private sealed class ItemCache(int capacity, int bufferSize)
    {
        private readonly object _lock = new();
        private readonly int[] _item = Enumerable.Repeat(-1, Math.Max(2, capacity)).ToArray();
        private readonly byte[]?[] _buf = new byte[Math.Max(2, capacity)][];
        private readonly int[] _len = new int[Math.Max(2, capacity)];
        private readonly long[] _used = new long[Math.Max(2, capacity)];
        private readonly Dictionary<int, int> _slotOf = [];
        private readonly Dictionary<int, ManualResetEventSlim> _inflight = [];
        private long _clock;

        [ThreadStatic] private static byte[]? t_spare;

        /// <summary>Copies item <paramref name="i"/>'s bytes from <paramref name="within"/> into <paramref name="dest"/>;
        /// how many (0: the item ends before). A problem when the item cannot be decompressed.</summary>
        public int Copy(MetadumpImage dump, int i, int within, Span<byte> dest, out string? problem)
        {
            problem = null;
            ManualResetEventSlim? mine = null;
            while (mine == null)
            {
                ManualResetEventSlim? theirs;
                lock (_lock)
                {
                    if (_slotOf.TryGetValue(i, out int s)) return CopyOut(s, within, dest);
                    // another thread is decompressing this item (the scan's threads meet at the items their batches
                    // share): wait for it rather than decompress it twice
                    if (!_inflight.TryGetValue(i, out theirs)) _inflight[i] = mine = new ManualResetEventSlim();
                }
                if (theirs != null && !theirs.Wait(TimeSpan.FromSeconds(30))) break;
            }
            try { return Fill(dump, i, within, dest, out problem); }
            finally
            {
                if (mine != null)
                {
                    lock (_lock) _inflight.Remove(i);
                    mine.Set();
                }
            }
        }

        private int Fill(MetadumpImage dump, int i, int within, Span<byte> dest, out string? problem)
        {
            problem = null;
            var spare = t_spare is { } t && t.Length == bufferSize ? t : new byte[bufferSize];
            if (dump._maxItem > bufferSize && (dump._raw[i] > bufferSize || (!dump._zlib[i] && dump._stored[i] > bufferSize)))
                return Uncached(dump, i, within, dest, out problem);
            int n = dump.InflateItem(i, spare, out problem);
            if (problem != null)
            {
                t_spare = spare;
                // a format-1 item too large for the cache's buffers: read it on its own
                return problem.StartsWith("decompresses to more", StringComparison.Ordinal) && dump._maxItem > bufferSize
                    ? Uncached(dump, i, within, dest, out problem) : 0;
            }
            lock (_lock)
            {
                if (_slotOf.TryGetValue(i, out int s)) { t_spare = spare; return CopyOut(s, within, dest); }
                int victim = 0;
                for (int k = 1; k < _item.Length; k++) if (_used[k] < _used[victim]) victim = k;
                if (_item[victim] >= 0) _slotOf.Remove(_item[victim]);
                t_spare = _buf[victim] ?? new byte[bufferSize];
                _buf[victim] = spare;
                _len[victim] = n;
                _item[victim] = i;
                _slotOf[i] = victim;
                return CopyOut(victim, within, dest);
            }
        }

        private int CopyOut(int s, int within, Span<byte> dest)
        {
            _used[s] = ++_clock;
            int n = Math.Max(0, Math.Min(dest.Length, _len[s] - within));
            if (n > 0) _buf[s].AsSpan(within, n).CopyTo(dest);
            return n;
        }

        private static int Uncached(MetadumpImage dump, int i, int within, Span<byte> dest, out string? problem)
        {
            var buf = new byte[dump._raw[i] > 0 ? dump._raw[i] : dump._maxItem];
            int n = dump.InflateItem(i, buf, out problem);
            if (problem != null) return 0;
            int c = Math.Max(0, Math.Min(dest.Length, n - within));
            buf.AsSpan(within, c).CopyTo(dest);
            return c;
        }
    }
}
