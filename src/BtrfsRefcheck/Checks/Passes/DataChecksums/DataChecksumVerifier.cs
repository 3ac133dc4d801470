using System.Collections.Concurrent;
using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Trees;
using BtrfsRefcheck.Volume;

namespace BtrfsRefcheck.Checks;

/// <summary>Reads every data sector the csum tree covers, every copy of it, and verifies it against its checksum with
/// the filesystem's algorithm. One thread walks the csum tree in key order (logical order: within a chunk, the
/// devices' physical order) and cuts its items into runs of up to <see cref="UnitBytes"/> inside one chunk, asking
/// the kernel to read each run ahead (posix_fadvise WILLNEED) as it queues it; one worker per core takes the runs in
/// that order, reads each copy and hashes it. Only a bad sector costs more: its files are looked up then.</summary>
internal sealed class DataChecksumVerifier(CheckContext ctx)
{
    private const int UnitBytes = 2 << 20;

    /// <summary>How far ahead of the workers the read-ahead runs: the queue holds this many bytes of runs.</summary>
    private const int AheadBytes = 64 << 20;
    private const int MaxResolvedSectors = 256;

    /// <summary>A run of sectors with their checksums (copied out of the csum leaf).</summary>
    private sealed record Unit(ulong Logical, int Sectors, byte[] Csums, Chunk Chunk);

    private readonly BtrfsVolume _vol = ctx.Volume;
    private readonly ChecksumType _type = ctx.Volume.CsumType;
    private readonly int _csumSize = Checksum.Length(ctx.Volume.CsumType);
    private readonly int _sector = (int)ctx.Volume.SectorSize;
    private int _resolved;
    private FilePaths? _paths;
    private ProgressCounter? _progress;
    private readonly object _pathsLock = new();
    public long BytesVerified;
    public long SectorsBad;

    public void Run()
    {
        var csumRoot = ctx.Roots.FirstOrDefault(r => r.Id == ObjectIds.CsumTree && r.Source == RootSource.RootItem);
        if (csumRoot == null) return;
        // a dump read in place holds no data: the volume's not-checkable note says so once, no finding (issue 15)
        if (_vol.Metadump != null) return;
        if (_vol.IsRestoredMetadump)
        {
            ctx.Findings.Add(new Finding(FindingCode.DataChecksumsNotVerified, Severity.Info,
                "a restored metadata dump holds no data (btrfs-image writes zeros there): data checksums are not verified"));
            return;
        }
        int workers = Math.Max(1, ctx.DegreeOfParallelism ?? Environment.ProcessorCount);
        _progress = new ProgressCounter(ctx.Observer, "data checksums", "MiB", Math.Max(1, EstimatedMiB()), every: 16);
        using var queue = new BlockingCollection<Unit>(boundedCapacity: Math.Max(workers * 2, AheadBytes / UnitBytes));
        var threads = new Task[workers];
        for (int i = 0; i < workers; i++)
            threads[i] = Task.Factory.StartNew(() =>
            {
                var buffer = new byte[UnitBytes];
                foreach (var unit in queue.GetConsumingEnumerable()) Verify(unit, buffer);
            }, TaskCreationOptions.LongRunning);
        try
        {
            new TreeWalker(_vol, new FindingBag()).Walk(csumRoot, new Producer(this, queue), new WalkOptions { Validate = false });
        }
        finally
        {
            queue.CompleteAdding();
            Task.WaitAll(threads);
        }
        _progress.Finish();
    }

    /// <summary>What progress counts toward: the data block groups' used bytes, every copy (the csum-covered part is
    /// at most that: nodatasum files have none).</summary>
    private long EstimatedMiB()
    {
        long bytes = 0;
        foreach (var bg in ctx.Scan.BlockGroups)
            if ((bg.Flags & (ulong)BlockGroupFlags.Data) != 0 && _vol.Chunks.Find(bg.Start) is { } chunk)
                bytes += (long)bg.Used * CopiesOf(chunk);
        return bytes >> 20;
    }

    private sealed class Producer(DataChecksumVerifier v, BlockingCollection<Unit> queue) : ITreeVisitor
    {
        public bool OnBlock(in BlockContext bc, TreeBlock block, bool valid)
        {
            var view = block.View;
            if (!view.IsLeaf) return true;
            for (int i = 0; i < view.Count; i++)
            {
                if (!view.TryGetItem(i, out var key, out var data)) continue;
                if (key.ObjectId != ObjectIds.ExtentCsum || key.ItemType != ItemType.ExtentCsum) continue;
                int sectors = data.Length / v._csumSize;
                ulong logical = key.Offset;
                int at = 0;
                while (at < sectors)
                {
                    var chunk = v._vol.Chunks.Find(logical);
                    if (chunk == null) break; // the csum tree's own rules say so; nothing to read here
                    ulong room = (chunk.End - logical) / (ulong)v._sector;
                    int n = (int)Math.Min((ulong)Math.Min(sectors - at, UnitBytes / v._sector), room);
                    if (n <= 0) break;
                    var csums = data.Slice(at * v._csumSize, n * v._csumSize).ToArray();
                    v.ReadAhead(chunk, logical, (ulong)n * (ulong)v._sector);
                    queue.Add(new Unit(logical, n, csums, chunk));
                    at += n;
                    logical += (ulong)n * (ulong)v._sector;
                }
            }
            return false;
        }
    }

    private int CopiesOf(Chunk chunk) => chunk.Profile is RaidProfile.Raid5 or RaidProfile.Raid6 ? 1 : chunk.Copies;

    private void ReadAhead(Chunk chunk, ulong logical, ulong length)
    {
        for (int c = 0; c < CopiesOf(chunk); c++)
            for (ulong off = 0; off < length;)
            {
                var loc = chunk.Map(logical + off, c, out ulong contiguous);
                ulong n = Math.Min(length - off, contiguous);
                _vol.DeviceById(loc.DevId)?.WillNeed((long)loc.Offset, (long)n);
                off += n;
            }
    }

    private void Verify(Unit unit, byte[] buffer)
    {
        int copies = CopiesOf(unit.Chunk);
        int length = unit.Sectors * _sector;
        var span = buffer.AsSpan(0, length);
        Span<byte> computed = stackalloc byte[Checksum.FieldSize];
        List<(int Sector, int Copy, string Device, ulong Physical, string Found)>? bad = null;
        for (int c = 0; c < copies; c++)
        {
            int readable = Read(unit, c, span, out var devices);
            if (readable < 0) continue; // a copy on a missing device: the device set reported it (110)
            for (int s = 0; s < unit.Sectors; s++)
            {
                var want = unit.Csums.AsSpan(s * _csumSize, _csumSize);
                string found;
                if ((s + 1) * _sector > readable) found = "unreadable";
                else
                {
                    Checksum.Compute(_type, span.Slice(s * _sector, _sector), computed);
                    if (computed[.._csumSize].SequenceEqual(want)) continue;
                    found = Checksum.ToHex(_type, computed);
                }
                var (dev, phys) = devices(s);
                (bad ??= []).Add((s, c, dev, phys, found));
            }
        }
        Interlocked.Add(ref BytesVerified, length);
        _progress?.Add(Math.Max(1, ((long)length * copies) >> 20));
        if (bad != null) Report(unit, copies, bad);
    }

    /// <summary>Reads copy <paramref name="copy"/> of the unit into <paramref name="dest"/>; returns how many bytes
    /// from the start were read (-1: part of the copy is on a missing device), and where each sector lives.</summary>
    private int Read(Unit unit, int copy, Span<byte> dest, out Func<int, (string Device, ulong Physical)> where)
    {
        var pieces = new List<(int Start, string Device, ulong Physical)>();
        int readable = -1;
        for (int off = 0; off < dest.Length;)
        {
            var loc = unit.Chunk.Map(unit.Logical + (ulong)off, copy, out ulong contiguous);
            int n = (int)Math.Min((ulong)(dest.Length - off), contiguous);
            var dev = _vol.DeviceById(loc.DevId);
            if (dev == null) { where = _ => ("", 0); return -1; }
            pieces.Add((off, dev.Path, loc.Offset));
            int got = dev.Read((long)loc.Offset, dest.Slice(off, n));
            if (got < n && readable < 0) readable = off + got;
            off += n;
        }
        if (readable < 0) readable = dest.Length;
        int sector = _sector;
        where = s =>
        {
            int at = s * sector;
            var p = pieces.Last(x => x.Start <= at);
            return (p.Device, p.Physical + (ulong)(at - p.Start));
        };
        return readable;
    }

    private void Report(Unit unit, int copies, List<(int Sector, int Copy, string Device, ulong Physical, string Found)> bad)
    {
        copies -= MissingCopies(unit, copies);
        foreach (var group in bad.GroupBy(b => b.Sector))
        {
            ulong logical = unit.Logical + (ulong)group.Key * (ulong)_sector;
            string want = Checksum.ToHex(_type, Pad(unit.Csums.AsSpan(group.Key * _csumSize, _csumSize)));
            Interlocked.Increment(ref SectorsBad);
            string files = Files(logical);
            var list = group.ToList();
            if (list.Count == copies)
            {
                ctx.Findings.Add(new Finding(FindingCode.DataChecksumMismatch, Severity.Error,
                    $"data sector {logical}: {(copies == 1 ? "its only copy fails" : $"all {copies} copies fail")} the {Checksum.Name((ushort)_type)} checksum"
                    + $" ({string.Join("; ", list.Select(b => $"copy {b.Copy} on {b.Device} at {b.Physical}: {b.Found}"))}){files}",
                    Bytenr: logical, Tree: ObjectIds.CsumTree, Device: list[0].Device, Mirror: list[0].Copy,
                    Expected: want, Found: list[0].Found));
                continue;
            }
            foreach (var b in list)
                ctx.Findings.Add(new Finding(FindingCode.DataChecksumBadCopy, Severity.Warning,
                    $"data sector {logical}: copy {b.Copy} on {b.Device} at {b.Physical} fails the {Checksum.Name((ushort)_type)} checksum"
                    + $" ({b.Found}); {copies - list.Count} other cop{(copies - list.Count == 1 ? "y is" : "ies are")} good and the kernel reads those (a scrub rewrites the bad one){files}",
                    Bytenr: logical, Tree: ObjectIds.CsumTree, Device: b.Device, Mirror: b.Copy, Expected: want, Found: b.Found));
        }
    }

    /// <summary>Copies of the unit that lie (partly) on a missing device and were therefore not read.</summary>
    private int MissingCopies(Unit unit, int copies)
    {
        int missing = 0;
        for (int c = 0; c < copies; c++)
            for (ulong off = 0, length = (ulong)unit.Sectors * (ulong)_sector; off < length;)
            {
                var loc = unit.Chunk.Map(unit.Logical + off, c, out ulong contiguous);
                if (_vol.DeviceById(loc.DevId) == null) { missing++; break; }
                off += Math.Min(length - off, contiguous);
            }
        return missing;
    }

    private static byte[] Pad(ReadOnlySpan<byte> csum)
    {
        var field = new byte[Checksum.FieldSize];
        csum.CopyTo(field);
        return field;
    }

    /// <summary>"; used by /a/b, /c" for the first bad sectors (each costs a few tree look-ups).</summary>
    private string Files(ulong logical)
    {
        if (Interlocked.Increment(ref _resolved) > MaxResolvedSectors) return "";
        List<string> paths;
        lock (_pathsLock) paths = (_paths ??= new FilePaths(ctx)).Of(logical);
        return paths.Count == 0 ? "; no file found for it" : "; used by " + string.Join(", ", paths);
    }
}
