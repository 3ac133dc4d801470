using Xunit.Abstractions;
using System.Collections.Concurrent;
using System.Text.RegularExpressions;
using BtrfsRefcheck.Checks;
using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Tests.Differential;
using BtrfsRefcheck.Tests.Oracle;
using BtrfsRefcheck.Trees;
using BtrfsRefcheck.Volume;

namespace BtrfsRefcheck.Tests.Volume;

/// <summary>
/// <see cref="Chunk.Map"/> for every profile on synthesized chunks with hand-computed addresses; half-open chunk
/// intervals in <see cref="Chunk.Contains"/> and <see cref="ChunkMap.Find"/>; <c>btrfs-map-logical</c> as an oracle on
/// real images; and real multi-device mkfs sets (complete, and with one device left out).
/// </summary>
public class ChunkMapTests(ITestOutputHelper output)
{
    private const ulong KiB = 1024, MiB = 1024 * KiB, GiB = 1024 * MiB;
    private const ulong StripeLen = 64 * KiB; // 65536
    private const ulong L = 1 * GiB;          // logical start of every synthesized chunk

    /// <summary>Stripe i lives on devid i + 1 at physical (i + 1) * 256 MiB, so every expected address reads as
    /// "stripe base + row * 64 KiB + offset in the stripe unit".</summary>
    private static ulong Base(int i) => (ulong)(i + 1) * 256 * MiB;

    private static Chunk Make(BlockGroupFlags profile, int stripes, ushort subStripes = 1, ulong length = 2 * GiB,
        StripeLocation[]? explicitStripes = null) => new()
    {
        Logical = L,
        Length = length,
        StripeLen = StripeLen,
        Type = BlockGroupFlags.Metadata | profile,
        SubStripes = subStripes,
        Stripes = explicitStripes ?? Enumerable.Range(0, stripes).Select(i => new StripeLocation((ulong)i + 1, Base(i), Guid.Empty)).ToArray(),
    };

    private static void AssertMaps(Chunk c, ulong offsetInChunk, int copy, ulong devid, ulong physical, ulong contiguous)
    {
        var loc = c.Map(L + offsetInChunk, copy, out var cont);
        Assert.Equal((devid, physical), (loc.DevId, loc.Offset));
        Assert.Equal(contiguous, cont);
    }

    // ---- SINGLE / DUP / RAID1 / RAID1C3 / RAID1C4: every copy is the whole chunk on one stripe ----------------------

    [Fact]
    public void Single_OneCopy_OffsetAddsToTheStripe()
    {
        var c = Make(0, 1);
        Assert.Equal(RaidProfile.Single, c.Profile);
        Assert.Equal(1, c.Copies);
        // 0x12345 into the chunk: stripe 0 (devid 1) at 256 MiB + 0x12345; contiguous to the chunk end: 2 GiB - 0x12345
        AssertMaps(c, 0x12345, 0, 1, Base(0) + 0x12345, 2 * GiB - 0x12345);
        Assert.Throws<ArgumentOutOfRangeException>(() => c.Map(L, 1, out _));
    }

    [Fact]
    public void Dup_TwoCopiesOnTheSameDevice()
    {
        var c = Make(BlockGroupFlags.Dup, 2, explicitStripes: [new(1, 22 * MiB, Guid.Empty), new(1, 30 * MiB, Guid.Empty)]);
        Assert.Equal(2, c.Copies);
        // copy 0: 22 MiB + 16 KiB; copy 1: 30 MiB + 16 KiB; both devid 1
        AssertMaps(c, 16 * KiB, 0, 1, 22 * MiB + 16 * KiB, 2 * GiB - 16 * KiB);
        AssertMaps(c, 16 * KiB, 1, 1, 30 * MiB + 16 * KiB, 2 * GiB - 16 * KiB);
        Assert.Throws<ArgumentOutOfRangeException>(() => c.Map(L, 2, out _));
    }

    [Theory]
    [InlineData(BlockGroupFlags.Raid1, 2)]
    [InlineData(BlockGroupFlags.Raid1C3, 3)]
    [InlineData(BlockGroupFlags.Raid1C4, 4)]
    public void Mirrors_CopyNIsStripeN(BlockGroupFlags profile, int copies)
    {
        var c = Make(profile, copies);
        Assert.Equal(copies, c.Copies);
        const ulong x = 3 * MiB + 4321;
        // copy k: devid k + 1 at (k + 1) * 256 MiB + x, contiguous to the chunk end
        for (int k = 0; k < copies; k++)
            AssertMaps(c, x, k, (ulong)k + 1, Base(k) + x, 2 * GiB - x);
        Assert.Throws<ArgumentOutOfRangeException>(() => c.Map(L + x, copies, out _));
        Assert.Throws<ArgumentOutOfRangeException>(() => c.Map(L + x, -1, out _));
    }

    // ---- RAID0: stripe_nr = off / 64K; device = stripe_nr % n; row = stripe_nr / n ----------------------------------

    [Theory]
    // off = 200 KiB = 204800: stripe_nr 3 (3 * 65536 = 196608), in-stripe 8192; device 3 % 3 = 0, row 3 / 3 = 1
    //   → devid 1 at 256 MiB + 1 * 65536 + 8192; contiguous 65536 - 8192 = 57344
    [InlineData(204800UL, 1UL, 65536UL + 8192, 57344UL)]
    // off = 4 * 65536 + 10 = 262154: stripe_nr 4, in-stripe 10; device 4 % 3 = 1, row 1 → devid 2 at 512 MiB + 65536 + 10
    [InlineData(262154UL, 2UL, 65536UL + 10, 65526UL)]
    // off = 65535: stripe_nr 0, in-stripe 65535; device 0, row 0 → devid 1 at 256 MiB + 65535; one byte left in the unit
    [InlineData(65535UL, 1UL, 65535UL, 1UL)]
    // off = 65536: stripe_nr 1 → device 1, row 0 → devid 2 at 512 MiB + 0
    [InlineData(65536UL, 2UL, 0UL, 65536UL)]
    public void Raid0_ThreeStripes(ulong off, ulong devid, ulong intoStripe, ulong contiguous)
    {
        var c = Make(BlockGroupFlags.Raid0, 3, length: 3 * 64 * MiB);
        Assert.Equal(1, c.Copies);
        AssertMaps(c, off, 0, devid, Base((int)devid - 1) + intoStripe, contiguous);
        Assert.Throws<ArgumentOutOfRangeException>(() => c.Map(L + off, 1, out _));
    }

    // ---- RAID10: factor = n / sub_stripes; device = (stripe_nr % factor) * sub + copy; row = stripe_nr / factor -------

    [Theory]
    // 4 stripes, sub 2, factor 2. off = 200 KiB: stripe_nr 3, in-stripe 8192; (3 % 2) * 2 = 2 → copy 0 devid 3, copy 1
    // devid 4; row 3 / 2 = 1 → base + 65536 + 8192
    [InlineData(4, 204800UL, 0, 3UL, 65536UL + 8192)]
    [InlineData(4, 204800UL, 1, 4UL, 65536UL + 8192)]
    // off = 100: stripe_nr 0 → devices 0/1, row 0
    [InlineData(4, 100UL, 0, 1UL, 100UL)]
    [InlineData(4, 100UL, 1, 2UL, 100UL)]
    // 6 stripes, sub 2, factor 3. off = 7 * 65536 + 5: stripe_nr 7; (7 % 3) * 2 = 2 → copy 0 devid 3, copy 1 devid 4;
    // row 7 / 3 = 2 → base + 2 * 65536 + 5
    [InlineData(6, 7 * 65536UL + 5, 0, 3UL, 2 * 65536UL + 5)]
    [InlineData(6, 7 * 65536UL + 5, 1, 4UL, 2 * 65536UL + 5)]
    // 6 stripes: off = 5 * 65536: stripe_nr 5; (5 % 3) * 2 = 4 → devids 5/6; row 1
    [InlineData(6, 5 * 65536UL, 0, 5UL, 65536UL)]
    [InlineData(6, 5 * 65536UL, 1, 6UL, 65536UL)]
    public void Raid10(int stripes, ulong off, int copy, ulong devid, ulong intoStripe)
    {
        var c = Make(BlockGroupFlags.Raid10, stripes, subStripes: 2);
        Assert.Equal(2, c.Copies);
        AssertMaps(c, off, copy, devid, Base((int)devid - 1) + intoStripe, StripeLen - off % StripeLen);
        Assert.Throws<ArgumentOutOfRangeException>(() => c.Map(L + off, 2, out _));
    }

    // ---- RAID5/6: data stripes d = n - parity; stripe_nr = off / 64K; data index = stripe_nr % d; row = stripe_nr / d;
    //      device = (row + data index) % n (parity rotates); physical = base + row * 64K + in-stripe ---------------------

    [Theory]
    // RAID5, 3 stripes (2 data + P). off = k * 65536 + 1:
    // k=0: row 0, d 0 → (0+0)%3 = 0 → devid 1, base + 0 + 1
    [InlineData(0, 1UL, 0UL)]
    // k=1: row 0, d 1 → (0+1)%3 = 1 → devid 2, base + 1          (row 0 parity on device 2)
    [InlineData(1, 2UL, 0UL)]
    // k=2: row 1, d 0 → (1+0)%3 = 1 → devid 2, base + 65536 + 1
    [InlineData(2, 2UL, 65536UL)]
    // k=3: row 1, d 1 → (1+1)%3 = 2 → devid 3, base + 65536 + 1  (row 1 parity on device 0)
    [InlineData(3, 3UL, 65536UL)]
    // k=4: row 2, d 0 → (2+0)%3 = 2 → devid 3, base + 131072 + 1
    [InlineData(4, 3UL, 131072UL)]
    // k=5: row 2, d 1 → (2+1)%3 = 0 → devid 1, base + 131072 + 1 (row 2 parity on device 1)
    [InlineData(5, 1UL, 131072UL)]
    public void Raid5_ThreeStripes_ParityRotates(int k, ulong devid, ulong rowOffset)
    {
        var c = Make(BlockGroupFlags.Raid5, 3);
        Assert.Equal(2, c.Copies); // copy 0: the data stripe; copy 1: its rebuild from parity (ParityRow)
        Assert.Equal(1, c.ParityStripes);
        ulong off = (ulong)k * StripeLen + 1;
        AssertMaps(c, off, 0, devid, Base((int)devid - 1) + rowOffset + 1, StripeLen - 1);
        Assert.Throws<ArgumentOutOfRangeException>(() => c.Map(L + off, 1, out _));
        // The rebuild reads the row's other data stripe and P (the device left over in the row): 3 distinct devices.
        var (target, others) = c.ParityRow(L + off, out ulong contiguous);
        Assert.Equal(devid, target.DevId);
        Assert.Equal(Base((int)devid - 1) + rowOffset + 1, target.Offset);
        Assert.Equal(2, others.Length);
        Assert.Equal(3, others.Select(o => o.DevId).Append(target.DevId).Distinct().Count());
        Assert.All(others, o => Assert.Equal(Base((int)o.DevId - 1) + rowOffset + 1, o.Offset));
        Assert.Equal(StripeLen - 1, contiguous);
        // row r's parity sits on device (r + 2) % 3
        ulong row = rowOffset / StripeLen;
        Assert.Equal((row + 2) % 3 + 1, others[^1].DevId);
    }

    [Theory]
    // RAID6, 4 stripes (2 data + P + Q). off = k * 65536 + 1:
    // k=0: row 0, d 0 → 0 → devid 1, + 0
    [InlineData(0, 1UL, 0UL)]
    // k=1: row 0, d 1 → 1 → devid 2, + 0                     (row 0: P on device 2, Q on device 3)
    [InlineData(1, 2UL, 0UL)]
    // k=5: row 2, d 1 → (2+1)%4 = 3 → devid 4, + 2 * 65536
    [InlineData(5, 4UL, 131072UL)]
    // k=6: row 3, d 0 → (3+0)%4 = 3 → devid 4, + 3 * 65536
    [InlineData(6, 4UL, 196608UL)]
    // k=7: row 3, d 1 → (3+1)%4 = 0 → devid 1, + 3 * 65536   (row 3: P on device 1, Q on device 2)
    [InlineData(7, 1UL, 196608UL)]
    public void Raid6_FourStripes_ParityRotates(int k, ulong devid, ulong rowOffset)
    {
        var c = Make(BlockGroupFlags.Raid6, 4);
        Assert.Equal(2, c.Copies); // copy 1 rebuilds from P (a single lost device); Q is not used
        Assert.Equal(2, c.ParityStripes);
        ulong off = (ulong)k * StripeLen + 1;
        AssertMaps(c, off, 0, devid, Base((int)devid - 1) + rowOffset + 1, StripeLen - 1);
    }

    [Fact]
    public void Raid5_DataNeverLandsOnTheRowsParityDevice()
    {
        // over 300 rows of a 5-device RAID5 (4 data): the 4 data units of row r use 4 distinct devices, and the one left
        // over, the parity device, is (r + 4) % 5
        var c = Make(BlockGroupFlags.Raid5, 5);
        for (ulong row = 0; row < 300; row++)
        {
            var used = new HashSet<ulong>();
            for (ulong d = 0; d < 4; d++)
            {
                var loc = c.Map(L + (row * 4 + d) * StripeLen, 0, out _);
                Assert.True(used.Add(loc.DevId));
                Assert.Equal(Base((int)loc.DevId - 1) + row * StripeLen, loc.Offset);
            }
            var parity = Assert.Single(Enumerable.Range(1, 5).Select(i => (ulong)i).Except(used));
            Assert.Equal((row + 4) % 5 + 1, parity);
        }
    }

    // ---- half-open intervals -----------------------------------------------------------------------------------------

    [Fact]
    public void Chunk_IsHalfOpen()
    {
        var c = Make(0, 1, length: 256 * MiB);
        Assert.Equal(L + 256 * MiB, c.End);
        Assert.True(c.Contains(L));
        Assert.True(c.Contains(c.End - 1));
        Assert.False(c.Contains(c.End));
        Assert.False(c.Contains(L - 1));
        AssertMaps(c, 256 * MiB - 1, 0, 1, Base(0) + 256 * MiB - 1, 1); // last byte: one byte contiguous
        Assert.Throws<ArgumentOutOfRangeException>(() => c.Map(c.End, 0, out _));
        Assert.Throws<ArgumentOutOfRangeException>(() => c.Map(L - 1, 0, out _));
    }

    [Fact]
    public void Raid0_ContiguousStopsAtTheChunkEnd()
    {
        // 3 stripes, length 6 * 65536 - 50 = 393166 (a synthetic length that ends inside a stripe unit);
        // off = length - 100 = 393066: stripe_nr 5 (327680), in-stripe 65386 → device 5 % 3 = 2, row 5 / 3 = 1
        //   → devid 3 at 768 MiB + 65536 + 65386; 150 bytes left in the unit but only 100 in the chunk
        var c = Make(BlockGroupFlags.Raid0, 3, length: 6 * StripeLen - 50);
        AssertMaps(c, 6 * StripeLen - 150, 0, 3, Base(2) + 65536 + 65386, 100);
        Assert.Throws<ArgumentOutOfRangeException>(() => c.Map(c.End, 0, out _));
    }

    [Fact]
    public void ChunkMap_Find_IsHalfOpen_AndAdjacentChunksDoNotOverlap()
    {
        var map = new ChunkMap();
        var a = Make(0, 1, length: 256 * MiB);                                              // [1 GiB, 1.25 GiB)
        var b = new Chunk { Logical = a.End, Length = 8 * MiB, StripeLen = StripeLen, Type = BlockGroupFlags.System, SubStripes = 1, Stripes = a.Stripes };
        var c = new Chunk { Logical = b.End + GiB, Length = MiB, StripeLen = StripeLen, Type = BlockGroupFlags.Data, SubStripes = 1, Stripes = a.Stripes };
        Assert.Null(map.TryAdd(b));
        Assert.Null(map.TryAdd(c));
        Assert.Null(map.TryAdd(a)); // adjacent to b: [a.Logical, a.End) and [a.End, b.End) share no byte
        Assert.Equal(new[] { a, b, c }, map.Chunks);

        Assert.Same(a, map.Find(a.Logical));
        Assert.Same(a, map.Find(a.End - 1));
        Assert.Same(b, map.Find(a.End));      // a's end is b's first byte
        Assert.Same(b, map.Find(b.End - 1));
        Assert.Null(map.Find(b.End));         // the gap after b
        Assert.Null(map.Find(c.Logical - 1));
        Assert.Same(c, map.Find(c.Logical));
        Assert.Same(c, map.Find(c.End - 1));
        Assert.Null(map.Find(c.End));         // past the last chunk
        Assert.Null(map.Find(a.Logical - 1));
        Assert.Null(map.Find(0));
        Assert.Null(map.Find(ulong.MaxValue));

        // one byte of overlap at either side is a clash, and nothing is added
        var overlapEnd = new Chunk { Logical = b.End - 1, Length = MiB, StripeLen = StripeLen, Type = BlockGroupFlags.Data, SubStripes = 1, Stripes = a.Stripes };
        var overlapStart = new Chunk { Logical = c.Logical - MiB, Length = MiB + 1, StripeLen = StripeLen, Type = BlockGroupFlags.Data, SubStripes = 1, Stripes = a.Stripes };
        Assert.Same(b, map.TryAdd(overlapEnd));
        Assert.Same(c, map.TryAdd(overlapStart));
        Assert.Equal(3, map.Chunks.Count);
        var inGap = new Chunk { Logical = b.End, Length = c.Logical - b.End, StripeLen = StripeLen, Type = BlockGroupFlags.Data, SubStripes = 1, Stripes = a.Stripes };
        Assert.Null(map.TryAdd(inGap)); // exactly fills the gap
        Assert.Same(inGap, map.Find(b.End));
        Assert.Same(c, map.Find(inGap.End));
    }

    // ---- btrfs-map-logical as the oracle on real images ----------------------------------------------------------------

    private static readonly Regex MirrorLine = new(@"^mirror (\d+) logical (\d+) physical (\d+) device (.*)$", RegexOptions.Multiline);

    public static IEnumerable<object[]> MapLogicalFixtures =>
        new[] { "mkfs:msingle", "mkfs:mdup", "mkfs:node4k", "mkfs:mixed" }.Select(f => new object[] { f })
            .Concat(DiffFixtures.KernelMultiDevice);

    /// <summary>For tree blocks across the image, every mirror <c>btrfs-map-logical</c> prints maps to the same physical
    /// address (and, where it names the device, the same device) as <see cref="Chunk.Map"/> of that copy. Multi-device
    /// kernel sets are given to progs the way <see cref="DiffFixtures.Progs"/> found it can read them (loop devices for
    /// striped sets).</summary>
    [ProgsTheory]
    [MemberData(nameof(MapLogicalFixtures))]
    public void Map_AgreesWithBtrfsMapLogical(string fixture)
    {
        Assert.NotNull(Progs.Find("btrfs-map-logical"));
        var images = DiffFixtures.Images(fixture);
        var progsView = DiffFixtures.Progs(fixture);
        output.WriteLine($"{fixture}: {progsView.How}");
        if (progsView.Mode == ProgsMode.Unavailable) return;
        using var vol = DiffFixtures.Open(fixture);
        // one process per block (slower on loop devices: progs probes every block device): an evenly spread sample
        var all = AllTreeBlocks(vol);
        int sample = progsView.Mode == ProgsMode.Loop ? 24 : 40;
        var blocks = all.Where((_, i) => i % Math.Max(1, all.Count / sample) == 0).ToList();
        var firstInLeaf = progsView.Dumps[0].Blocks
            .Where(b => b.TreeHeaderObjectId == ProgsKeyFormat.ExtentTree && b.IsLeaf && b.Items.Count > 0)
            .Select(b => b.Items[0].Key.ObjectId).ToHashSet();
        var diffs = new List<string>();
        int compared = 0, skipped = 0;
        Assert.True(DiffFixtures.WithProgsDevices(fixture, devices =>
        {
            foreach (var bytenr in blocks)
            {
                var chunk = vol.Chunks.Find(bytenr)!;
                var (code, stdout, stderr) = Progs.RunRaw("btrfs-map-logical", "-l", bytenr.ToString(), "-b", vol.NodeSize.ToString(), devices[0]);
                // once in a full run under heavy load (load average 20) v6.2 exited 0 and printed no mirror for a block
                // it maps when run again: the answer of a run that printed nothing is asked for a second time
                if (code == 0 && !MirrorLine.IsMatch(stdout))
                    (code, stdout, stderr) = Progs.RunRaw("btrfs-map-logical", "-l", bytenr.ToString(), "-b", vol.NodeSize.ToString(), devices[0]);
                if (code != 0)
                {
                    // v6.2's btrfs-map-logical fails (exit 1, often silently) for a block whose extent item is the first
                    // item of an extent tree leaf: its backward extent search does not step into the previous leaf. That
                    // is a progs quirk, not a mapping answer; any other failure is reported.
                    if (firstInLeaf.Contains(bytenr)) { skipped++; continue; }
                    diffs.Add($"btrfs-map-logical -l {bytenr} exited {code}: {stdout.Trim()} {stderr.Trim()}");
                    continue;
                }
                // RAID5/6: progs prints the data stripe as mirror 1 (and, with all devices present, P/Q as more mirrors)
                var mirrors = MirrorLine.Matches(stdout).Select(m => (Mirror: int.Parse(m.Groups[1].Value), Physical: ulong.Parse(m.Groups[3].Value),
                    Device: m.Groups[4].Value.Trim())).DistinctBy(m => m.Mirror).ToList();
                if (chunk.ParityStripes == 0 && mirrors.Count != chunk.Copies)
                    diffs.Add($"block {bytenr}: progs prints {mirrors.Count} mirrors, our {chunk.Profile} chunk has {chunk.Copies} copies");
                foreach (var m in mirrors.Where(m => m.Mirror - 1 < (chunk.ParityStripes > 0 ? 1 : chunk.Copies)))
                {
                    var loc = chunk.Map(bytenr, m.Mirror - 1, out var contiguous);
                    compared++;
                    if (loc.Offset != m.Physical) diffs.Add($"block {bytenr} mirror {m.Mirror}: physical progs {m.Physical}, ours {loc.Offset} (devid {loc.DevId})");
                    if (contiguous < vol.NodeSize) diffs.Add($"block {bytenr} mirror {m.Mirror}: only {contiguous} contiguous bytes");
                    if (m.Device != "(null)")
                    {
                        int index = devices.ToList().FindIndex(d => Path.GetFullPath(d) == Path.GetFullPath(m.Device));
                        var ours = vol.DeviceById(loc.DevId)?.Path;
                        if (index < 0 || ours == null || Path.GetFullPath(images[index]) != Path.GetFullPath(ours))
                            diffs.Add($"block {bytenr} mirror {m.Mirror}: device progs {m.Device} (image {(index < 0 ? "?" : images[index])}), ours devid {loc.DevId} = {ours ?? "none"}");
                    }
                }
            }
        }), "progs could not be given the fixture");
        Assert.True(diffs.Count == 0, DiffFixtures.Report($"{fixture}: Chunk.Map vs btrfs-map-logical", diffs));
        Assert.True(skipped * 10 <= blocks.Count, $"btrfs-map-logical could not map {skipped} of {blocks.Count} blocks");
        Assert.True(compared >= blocks.Count - skipped, $"compared {compared} mirrors for {blocks.Count - skipped} blocks");
    }

    // ---- multi-device mkfs sets ------------------------------------------------------------------------------------------

    public static IEnumerable<object[]> MultiDeviceSpecs => MultiDeviceSets.Specs.Keys.Select(k => new object[] { k });

    [ProgsTheory]
    [MemberData(nameof(MultiDeviceSpecs))]
    public void MultiDeviceMkfs_CheckerClean_EveryCopyOfEveryTreeBlockReads(string spec)
    {
        var (dataProfile, metaProfile) = MultiDeviceSets.Specs[spec];
        var images = MultiDeviceSets.Get(spec);
        var findings = new FindingBag();
        using var vol = BtrfsVolume.Open(images, null, findings);
        Assert.Equal(4UL, vol.Super.NumDevices);
        Assert.Equal(4, vol.DevItems.Count);
        Assert.Empty(vol.MissingDevices);

        // mkfs made what was asked (otherwise this test would check some other profile)
        Assert.Contains(vol.Chunks.Chunks, c => (c.Type & BlockGroupFlags.Data) != 0 && c.Profile == dataProfile);
        Assert.Contains(vol.Chunks.Chunks, c => (c.Type & BlockGroupFlags.Metadata) != 0 && c.Profile == metaProfile);

        var report = Checker.Run(vol, findings);
        var bad = findings.Items.Where(f => f.IsProblem()).ToList();
        Assert.True(bad.Count == 0, $"{spec}: " + string.Join("\n", bad.Take(20)));
        Assert.True(report.Stats.TreeBlocks > 5);

        var csum = new byte[Checksum.FieldSize];
        var devicesUsed = new HashSet<ulong>();
        foreach (var bytenr in AllTreeBlocks(vol))
        {
            var read = vol.ReadTreeBlock(bytenr);
            Assert.True(read.Block != null && read.Failures.Count == 0, $"block {bytenr}: {read.Describe()}");
            var chunk = vol.Chunks.Find(bytenr)!;
            Assert.True(chunk.Profile == metaProfile || (chunk.Type & BlockGroupFlags.System) != 0,
                $"tree block {bytenr} is in a {chunk.Type.Describe()} chunk, expected {metaProfile}");
            for (int copy = 0; copy < chunk.Copies; copy++)
            {
                var buf = new byte[vol.NodeSize];
                Assert.True(vol.TryReadLogical(bytenr, buf, copy, out var problem), $"block {bytenr} copy {copy}: {problem}");
                Assert.True(Checksum.Verify(vol.CsumType, buf, csum), $"block {bytenr} copy {copy} ({chunk.Profile}): checksum mismatch");
                Assert.Equal(bytenr, new Header(buf).Bytenr);
                devicesUsed.Add(chunk.ParityStripes > 0 ? chunk.ParityRow(bytenr, out _).Target.DevId : chunk.Map(bytenr, copy, out _).DevId);
            }
        }
        if (metaProfile is RaidProfile.Raid1C3 or RaidProfile.Raid1C4 or RaidProfile.Raid10)
            Assert.True(devicesUsed.Count >= 3, $"tree blocks were read from devids {string.Join(",", devicesUsed)} only");
    }

    [ProgsTheory]
    [InlineData("raid1-raid1c3")]
    [InlineData("raid5-raid6")]
    public void OneDeviceLeftOut_VolumeOpens_ReportsIt_AndReadsEveryTreeBlock(string spec)
    {
        var images = MultiDeviceSets.Get(spec);
        List<ulong> blocks;
        ulong missingDevid;
        string missingPath;
        using (var full = BtrfsVolume.Open(images))
        {
            blocks = AllTreeBlocks(full);
            // leave out the device holding copy 0 of the root tree's root block, so the fallback is certainly exercised
            missingDevid = full.Chunks.Find(full.Super.Root)!.Map(full.Super.Root, 0, out _).DevId;
            missingPath = full.DeviceById(missingDevid)!.Path;
        }

        var findings = new FindingBag();
        using var vol = BtrfsVolume.Open(images.Where(p => p != missingPath).ToList(), null, findings);
        var missing = Assert.Single(vol.MissingDevices);
        Assert.Equal(missingDevid, missing.DevId);
        var f = Assert.Single(findings.Items, x => x.Code == FindingCode.DeviceMissing);
        Assert.Contains($"devid {missingDevid} ", f.Message);

        var unreadable = new List<string>();
        int fellBack = 0;
        foreach (var bytenr in blocks)
        {
            var read = vol.ReadTreeBlock(bytenr);
            if (read.Block == null) unreadable.Add($"block {bytenr} ({vol.Chunks.Find(bytenr)!.Profile}): {read.Describe()}");
            else if (read.Failures.Count > 0) fellBack++;
        }
        Assert.True(unreadable.Count == 0, DiffFixtures.Report($"{spec} without devid {missingDevid}: unreadable tree blocks", unreadable));
        Assert.True(fellBack > 0, "no read needed the missing device: the test did not exercise the fallback");

        // with every block readable, the one thing wrong is the missing device
        Checker.Run(vol, findings);
        var codes = findings.Items.Where(x => x.IsProblem()).Select(x => x.Code).Distinct().ToList();
        Assert.Equal([FindingCode.DeviceMissing], codes);
    }

    internal static List<ulong> AllTreeBlocks(BtrfsVolume vol)
    {
        var findings = new FindingBag();
        var visited = new HashSet<ulong>();
        var walker = new TreeWalker(vol, findings);
        foreach (var root in TreeRoots.Enumerate(vol, findings))
            walker.Walk(root, new NullVisitor(), new WalkOptions { Visited = visited });
        return visited.Order().ToList();
    }

    private sealed class NullVisitor : ITreeVisitor
    {
        public bool OnBlock(in BlockContext ctx, TreeBlock block, bool valid) => true;
    }
}

/// <summary>
/// Four-device sets made by mkfs.btrfs at test time (without <c>--rootdir</c>: v6.2 refuses it with several devices), on
/// 512 MiB sparse files, once per process.
/// </summary>
public static class MultiDeviceSets
{
    public static readonly IReadOnlyDictionary<string, (RaidProfile Data, RaidProfile Metadata)> Specs =
        new Dictionary<string, (RaidProfile, RaidProfile)>
        {
            ["raid1-raid1c3"] = (RaidProfile.Raid1, RaidProfile.Raid1C3),
            ["raid1c4-raid1c4"] = (RaidProfile.Raid1C4, RaidProfile.Raid1C4),
            ["raid0-raid10"] = (RaidProfile.Raid0, RaidProfile.Raid10),
            ["raid5-raid6"] = (RaidProfile.Raid5, RaidProfile.Raid6),
            ["raid6-raid5"] = (RaidProfile.Raid6, RaidProfile.Raid5),
        };

    private static readonly ConcurrentDictionary<string, Lazy<IReadOnlyList<string>>> sets = new(StringComparer.Ordinal);
    private static readonly Lazy<string> dir = new(() => TempDirs.CreateForProcess("btrfs-refcheck-multidev"));

    /// <summary>The four image paths of a set, created on first use. Do not modify them.</summary>
    public static IReadOnlyList<string> Get(string spec) =>
        sets.GetOrAdd(spec, s => new Lazy<IReadOnlyList<string>>(() => Create(s), LazyThreadSafetyMode.ExecutionAndPublication)).Value;

    private static IReadOnlyList<string> Create(string spec)
    {
        var (data, meta) = Specs[spec];
        var paths = Enumerable.Range(1, 4).Select(i => Path.Combine(dir.Value, $"{spec}-dev{i}.img")).ToList();
        foreach (var p in paths)
        {
            using var fs = new FileStream(p, FileMode.Create, FileAccess.Write);
            fs.SetLength((long)MkfsFixtures.DefaultImageSize);
        }
        Progs.Run("mkfs.btrfs", ["-f", "-L", spec, "-d", data.ToString().ToLowerInvariant(), "-m", meta.ToString().ToLowerInvariant(), .. paths]);
        return paths;
    }
}
