using System.Collections.Concurrent;
using BtrfsRefcheck.Checks;
using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Tests.Oracle;
using BtrfsRefcheck.Volume;
using Xunit.Abstractions;

namespace BtrfsRefcheck.Tests.Volume;

/// <summary>
/// The kernel-written sets with striped metadata made by <c>scripts/make-raid-fixtures.sh</c>
/// (<c>testdata/kernel-raid{10,5,6,0,1c3}-devN.img.gz</c>, see testdata/README.md). Their ~330 tree blocks are spread
/// over ~100 stripe units of 64 KiB on every device, in chunks whose stripe order differs from the devid order, so a
/// wrong logical-to-physical mapping cannot go unnoticed.
/// <list type="bullet">
/// <item>With every device: no warning or error, no unreadable block, the same number of tree blocks as
/// <c>btrfs inspect-internal dump-tree</c> (run on read-only loop devices, which progs needs to see the other devices),
/// and every copy of every block progs prints reads back identically.</item>
/// <item>With one device left out: the volume opens and names the missing devid; mirrored profiles (RAID10, RAID1C3)
/// still read every block from the other copy; RAID5/6 (no parity rebuild) and RAID0 explain what they cannot read.</item>
/// </list>
/// All tests share one xunit collection (never in parallel with each other), and loop devices are attached under a
/// process-wide lock and a cross-process file lock: the images have fixed fsids, and two sets of loop devices with the
/// same fsid registered at once would confuse the kernel and progs.
/// </summary>
[Collection(RaidFixtureCollection.Name)]
public class RaidFixtureTests(ITestOutputHelper output)
{
    /// <summary>One committed set: <c>testdata/NAME-dev1.img.gz</c> ... <c>-devN</c>, devid i in <c>-devi</c>.</summary>
    public sealed record RaidSet(string Name, int Devices, RaidProfile Profile, int MinTreeBlocks)
    {
        /// <summary>Survives the loss of any one device: mirrors, or parity (RAID5/6 rebuild a lost data stripe from P).</summary>
        public bool Mirrored => Profile is RaidProfile.Raid10 or RaidProfile.Raid1C3 or RaidProfile.Raid5 or RaidProfile.Raid6;
        public IReadOnlyList<string> GzNames => Enumerable.Range(1, Devices).Select(i => $"{Name}-dev{i}.img.gz").ToList();
        public override string ToString() => Name;
    }

    public static readonly IReadOnlyDictionary<string, RaidSet> Sets = new[]
    {
        new RaidSet("kernel-raid10", 4, RaidProfile.Raid10, 300),
        new RaidSet("kernel-raid5", 3, RaidProfile.Raid5, 300),
        new RaidSet("kernel-raid6", 4, RaidProfile.Raid6, 300),
        new RaidSet("kernel-raid0", 2, RaidProfile.Raid0, 300),
        new RaidSet("kernel-raid1c3", 3, RaidProfile.Raid1C3, 100),
    }.ToDictionary(s => s.Name);

    public static IEnumerable<object[]> SetNames => Sets.Keys.Select(n => new object[] { n });

    /// <summary>Every (set, devid to leave out).</summary>
    public static IEnumerable<object[]> Degraded =>
        Sets.Values.SelectMany(s => Enumerable.Range(1, s.Devices).Select(d => new object[] { s.Name, d }));

    private static readonly ConcurrentDictionary<string, IReadOnlyList<ProgsBlock>> progsDumps = new();
    private static readonly ConcurrentDictionary<string, CheckStats> fullStats = new();

    private static IReadOnlyList<string> Images(RaidSet set)
    {
        foreach (var gz in set.GzNames)
            Assert.True(KernelFixtures.Exists(gz), $"{KernelFixtures.GzPath(gz)} is missing: run `sudo scripts/make-raid-fixtures.sh`");
        return set.GzNames.Select(KernelFixtures.Expand).ToList();
    }

    [ProgsTheory]
    [MemberData(nameof(SetNames))]
    public void AllDevices_CleanEveryBlockReadAndSameBlocksAsDumpTree(string name)
    {
        var set = Sets[name];
        var images = Images(set);
        var blocks = ProgsDumpAttached(set, images);
        var progsBytenrs = blocks.Select(b => b.Bytenr).Distinct().Order().ToList();
        Assert.True(progsBytenrs.Count >= set.MinTreeBlocks,
            $"{name}: dump-tree printed {progsBytenrs.Count} distinct tree blocks, the fixture should have >= {set.MinTreeBlocks}");

        var findings = new FindingBag();
        using var vol = BtrfsVolume.Open(images, null, findings);
        var report = Checker.Run(vol, findings);
        var bad = findings.Items.Where(f => f.IsProblem()).ToList();
        Assert.True(bad.Count == 0, $"{name}: {bad.Count} error/warning findings:\n  " + string.Join("\n  ", bad.Take(30)));
        Assert.Equal(0, report.Stats.UnreadableBlocks);
        Assert.Equal(progsBytenrs.Count, report.Stats.TreeBlocks);
        fullStats[name] = report.Stats;

        // the fixture is what it claims: every chunk has the set's profile, every device is present
        Assert.All(vol.Chunks.Chunks, c => Assert.Equal(set.Profile, c.Profile));
        Assert.Empty(vol.MissingDevices);
        Assert.Equal(set.Devices, vol.Devices.Count);

        // every block progs prints: copy 0 is good (no failed copy before it), and every further copy is identical
        var unitsPerDevice = new Dictionary<ulong, HashSet<ulong>>();
        var buf = new byte[vol.NodeSize];
        foreach (var bytenr in progsBytenrs)
        {
            var read = vol.ReadTreeBlock(bytenr);
            Assert.True(read.Ok && read.Failures.Count == 0, $"{name}: block {bytenr}: {read.Describe()}");
            Assert.Equal(0, read.Block!.Copy);
            var chunk = vol.Chunks.Find(bytenr)!;
            for (int copy = 0; copy < chunk.Copies; copy++)
            {
                // RAID5/6 copy 1 is the block rebuilt from P and the row's other data stripes: it must equal copy 0 too
                Assert.True(vol.TryReadLogical(bytenr, buf, copy, out var problem), $"{name}: block {bytenr} copy {copy}: {problem}");
                Assert.True(buf.AsSpan().SequenceEqual(read.Block.Bytes), $"{name}: block {bytenr}: copy {copy} differs from copy 0");
                var loc = chunk.ParityStripes > 0 ? chunk.ParityRow(bytenr, out _).Target : chunk.Map(bytenr, copy, out _);
                if (!unitsPerDevice.TryGetValue(loc.DevId, out var units)) unitsPerDevice[loc.DevId] = units = [];
                units.Add(loc.Offset / 65536);
            }
        }
        var spread = string.Join(", ", unitsPerDevice.OrderBy(kv => kv.Key).Select(kv => $"devid {kv.Key}: {kv.Value.Count}"));
        output.WriteLine($"{name}: {progsBytenrs.Count} tree blocks (progs and ours); distinct 64 KiB units holding them: {spread}");
        // striped sets: the blocks must really be spread over every device (what makes a mapping error visible)
        Assert.Equal(set.Devices, unitsPerDevice.Count);
        if (set.Profile is not RaidProfile.Raid1C3)
            Assert.All(unitsPerDevice.Values, u => Assert.True(u.Count >= 15, spread));
    }

    [Theory]
    [MemberData(nameof(Degraded))]
    public void OneDeviceMissing_OpensNamesItAndExplainsWhatIsUnreadable(string name, int missing)
    {
        var set = Sets[name];
        var images = Images(set).Where((_, i) => i + 1 != missing).ToList();

        var findings = new FindingBag();
        CheckReport report;
        IReadOnlyList<ulong> missingDevids;
        using (var vol = BtrfsVolume.Open(images, null, findings))
        {
            report = Checker.Run(vol, findings);
            missingDevids = vol.MissingDevices.Select(d => d.DevId).ToList();
        }
        var items = findings.Items;
        var s = report.Stats;
        var where = $"{name} without devid {missing}";
        output.WriteLine($"{where}: tree blocks read {s.TreeBlocks}, unreadable {s.UnreadableBlocks}; findings: " +
            string.Join(", ", findings.Counts.OrderBy(kv => kv.Key).Select(kv => $"{kv.Key} {kv.Value}")));

        if (set.Mirrored)
        {
            // every block has a copy on another device
            var others = items.Where(f => f.IsProblem() && f.Code != FindingCode.DeviceMissing).ToList();
            Assert.True(others.Count == 0, $"{where}: findings besides DeviceMissing:\n  " + string.Join("\n  ", others.Take(30)));
            Assert.Equal(0, s.UnreadableBlocks);
            Assert.Equal(FullStats(set).TreeBlocks, s.TreeBlocks);
        }
        else
        {
            // RAID0: some blocks are gone. Each is reported, with the
            // subtree it hides, and the reason is the missing device (or, when the chunk tree itself is on the missing
            // device, that the chunk holding the block is unknown).
            Assert.True(s.UnreadableBlocks > 0, $"{where}: no block unreadable, yet the metadata is striped over every device");
            bool chunkTreeLost = items.Any(f => f.Code == FindingCode.TreeBlockUnreadable && f.Tree == ObjectIds.ChunkTree);
            var reasons = items.Where(f => f.Code is FindingCode.TreeBlockUnreadable
                || (chunkTreeLost && f.Code == FindingCode.LogicalAddressUnmapped)).ToList();
            var hidden = items.Where(f => f.Code == FindingCode.SubtreeNotChecked && f.Message.Contains(": unreadable block ", StringComparison.Ordinal))
                .Select(f => f.Bytenr).ToHashSet();
            Assert.True(hidden.Count == s.UnreadableBlocks,
                $"{where}: {s.UnreadableBlocks} unreadable blocks, {hidden.Count} SubtreeNotChecked findings for unreadable blocks");
            foreach (var b in hidden)
                Assert.True(reasons.Any(f => f.Bytenr == b), $"{where}: unreadable block {b} has no TreeBlockUnreadable finding");
            foreach (var f in reasons.Where(f => f.Code == FindingCode.TreeBlockUnreadable))
                Assert.True(f.Message.Contains($"devid {missing} is missing", StringComparison.Ordinal), $"{where}: unreadable for another reason: {f}");
            var consequences = items.Where(f => f.IsProblem() && f.Code is not (FindingCode.DeviceMissing
                or FindingCode.TreeBlockUnreadable or FindingCode.SubtreeNotChecked)).ToList();
            output.WriteLine($"  other warning/error findings (consequences of the unreadable blocks): {consequences.Count}" +
                string.Concat(consequences.DistinctBy(f => f.Code).Select(f => "\n    e.g. " + f)));
        }

        var deviceMissing = items.Where(f => f.Code == FindingCode.DeviceMissing).ToList();
        Assert.True(deviceMissing.Count == 1 && deviceMissing[0].Message.Contains($"devid {missing} ", StringComparison.Ordinal),
            $"{where}: expected one DeviceMissing finding naming devid {missing}; MissingDevices = [{string.Join(", ", missingDevids)}], " +
            $"DeviceMissing findings = [{string.Join("; ", deviceMissing)}]; findings:\n  " + string.Join("\n  ", items.Take(12)));
        Assert.Equal([(ulong)missing], missingDevids);
    }

    /// <summary>Our stats with every device present (computed here when the all-devices test has not run yet).</summary>
    private static CheckStats FullStats(RaidSet set) => fullStats.GetOrAdd(set.Name, _ =>
    {
        var findings = new FindingBag();
        using var vol = BtrfsVolume.Open(Images(set), null, findings);
        return Checker.Run(vol, findings).Stats;
    });

    // ---- progs on loop devices -------------------------------------------------------------------------------------

    private static readonly object loopLock = new();
    private static readonly string crossProcessLockPath = Path.Combine(Path.GetTempPath(), "btrfs-refcheck-raid-fixtures.lock");

    /// <summary>
    /// Full <c>dump-tree</c> of a multi-device set, parsed (cached per set). progs finds the other devices of a
    /// filesystem only among block devices, so the images are attached read-only (<c>losetup --find --show -r</c>),
    /// scanned, dumped from the first loop device, and always detached and forgotten again.
    /// </summary>
    private static IReadOnlyList<ProgsBlock> ProgsDumpAttached(RaidSet set, IReadOnlyList<string> images) =>
        progsDumps.GetOrAdd(set.Name, _ =>
        {
            if (Progs.Find("losetup") is null)
                Assert.Fail("losetup (util-linux) not found: this test attaches the images to read-only loop devices so that btrfs-progs sees every device of the set");
            if (!Environment.IsPrivilegedProcess)
                Assert.Fail("this test must run as root: it attaches the images to read-only loop devices (losetup) so that btrfs-progs sees every device of the set (CI runs the tests as root)");
            lock (loopLock)
            {
                using var crossProcess = AcquireCrossProcessLock();
                var loops = new List<string>();
                try
                {
                    foreach (var img in images)
                    {
                        var (code, stdout, stderr) = Progs.RunRaw("losetup", "--find", "--show", "-r", img);
                        if (code != 0 || !stdout.Trim().StartsWith("/dev/", StringComparison.Ordinal))
                            Assert.Fail($"losetup --find --show -r {img} exited {code}: {stderr.Trim()} (needs root and loop device support)");
                        loops.Add(stdout.Trim());
                    }
                    var scan = Progs.RunRaw("btrfs", ["device", "scan", .. loops]);
                    Assert.True(scan.ExitCode == 0, $"btrfs device scan {string.Join(' ', loops)} exited {scan.ExitCode}: {scan.Stderr}");
                    var dump = Progs.RunRaw("btrfs", TimeSpan.FromMinutes(5), "inspect-internal", "dump-tree", loops[0]);
                    Assert.True(dump.ExitCode == 0, $"btrfs inspect-internal dump-tree {loops[0]} exited {dump.ExitCode}: {dump.Stderr}");
                    return DumpTreeParser.Parse(dump.Stdout);
                }
                finally
                {
                    foreach (var loop in loops)
                    {
                        Progs.RunRaw("btrfs", "device", "scan", "--forget", loop);
                        Progs.RunRaw("losetup", "-d", loop);
                    }
                }
            }
        });

    /// <summary>An exclusive lock on a file in TMP (flock), so test processes running at the same time never attach
    /// the same fixed-fsid images at once.</summary>
    private static FileStream AcquireCrossProcessLock()
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(5);
        while (true)
        {
            try
            {
                return new FileStream(crossProcessLockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException) when (DateTime.UtcNow < deadline)
            {
                Thread.Sleep(200);
            }
        }
    }
}

/// <summary>Puts every <see cref="RaidFixtureTests"/> test into one collection: they never run in parallel.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class RaidFixtureCollection
{
    public const string Name = "kernel RAID fixtures (loop devices)";
}
