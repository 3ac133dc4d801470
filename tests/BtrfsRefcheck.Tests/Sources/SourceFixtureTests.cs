using System.Diagnostics;
using BtrfsRefcheck.Checks;
using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Tests.Oracle;
using BtrfsRefcheck.Trees;
using BtrfsRefcheck.Volume;
using Xunit.Abstractions;

namespace BtrfsRefcheck.Tests.Sources;

/// <summary>
/// Silence on healthy filesystems from every source (issue 10): each set in <c>testdata/sources</c> checks clean (no
/// error, no warning but 1102 exactly where btrfs check 6.19 names mkfs 6.2's stale free-space keys), still has the property it was made for, and btrfs check 6.19's verdict on it is the one
/// recorded here, line by line.
/// </summary>
public class SourceFixtureTests(ITestOutputHelper output)
{
    /// <summary>mkfs 6.2 with DUP metadata leaves two free-space-tree keys of its temporary chunks; btrfs check 6.19
    /// fails every such filesystem for them. Harmless to the kernel: our free space pass warns (1102), at exactly these keys.</summary>
    private static readonly string[] StaleMkfs62SpaceKeys =
    [
        "Space key logical 1048576 length 4194304 has no corresponding block group",
        "Space key logical 5242880 length 8388608 has no corresponding block group",
    ];

    /// <summary>What each set is for, asserted on the image so it cannot silently lose it, and btrfs check 6.19's
    /// verdict on it (exit code and every line that is not its usual progress or summary). The lines were recorded
    /// from the committed images: remaking them (scripts/make-source-fixtures.sh) can move the addresses they name.</summary>
    private sealed record Expectation(string Purpose, Action<BtrfsVolume, IReadOnlyList<TreeRoot>, CheckReport> Property,
        int Progs619Exit, string[] Progs619Lines);

    private static Expectation Restored(string what, string[] extraLines) => new(
        $"{what}, dumped with btrfs-image -c9 and restored with btrfs-image -r",
        (v, _, _) => Assert.True(v.IsRestoredMetadump, "superblock flag METADUMP or METADUMP_V2"),
        1, [.. extraLines, .. StaleMkfs62SpaceKeys]);

    /// <summary>btrfs-image -r rewrites a multi-device filesystem onto one device, keeping the DEV_ITEM of the device the
    /// dump came through: btrfs check 6.19 warns that its sizes differ from the superblock's (and names that device).</summary>
    private static string[] RestoredRaid(int device, long treeTotal, long superTotal, long? treeUsed = null, long? superUsed = null) =>
    [
        $"WARNING: device {device}'s total_bytes was {treeTotal} in tree but {superTotal} in superblock",
        .. treeUsed is { } tu ? [$"WARNING: device {device}'s bytes_used was {tu} in tree but {superUsed} in superblock"] : Array.Empty<string>(),
        "Space key logical 13631488 length 8388608 has no corresponding block group",
    ];

    /// <summary>mkfs 6.19 --csum TYPE with data written by the kernel, compressed (for --check-data-csum on every type).</summary>
    private static Expectation CsumType(ChecksumType type, string compression) => new(
        $"mkfs 6.19 --csum {type}, data written by the kernel with compress-force={compression}",
        (v, _, report) =>
        {
            Assert.Equal(type, v.CsumType);
            Assert.True(report.Stats.DataExtentItems > 0, "data extents");
        }, 0, []);

    private static readonly Dictionary<string, Expectation> Expected = new(StringComparer.Ordinal)
    {
        ["kernel-snapshots.restored-62"] = Restored("kernel-snapshots", []),
        ["kernel-snapshots.restored-619"] = Restored("kernel-snapshots", []),
        ["kernel-logtree.restored-62"] = Restored("kernel-logtree", []),
        ["kernel-logtree.restored-619"] = Restored("kernel-logtree", []),
        ["kernel-raid1.restored-62"] = Restored("the kernel RAID1 pair", RestoredRaid(2, 177209344, 167772160)),
        ["kernel-raid1.restored-619"] = Restored("the kernel RAID1 pair", RestoredRaid(2, 177209344, 167772160)),
        ["kernel-raid5.restored-62"] = Restored("the kernel RAID5 set", RestoredRaid(2, 462422016, 234881024, 369098752, 184549376)),
        ["kernel-raid5.restored-619"] = Restored("the kernel RAID5 set", RestoredRaid(2, 462422016, 234881024, 369098752, 184549376)),
        ["kernel-raid6.restored-62"] = Restored("the kernel RAID6 set", RestoredRaid(4, 391118848, 201326592, 310378496, 155189248)),
        ["kernel-raid6.restored-619"] = Restored("the kernel RAID6 set", RestoredRaid(3, 391118848, 201326592, 310378496, 155189248)),
        ["kernel-raid10.restored-62"] = Restored("the kernel RAID10 set", RestoredRaid(4, 378535936, 201326592, 318767104, 159383552)),
        ["kernel-raid10.restored-619"] = Restored("the kernel RAID10 set", RestoredRaid(3, 378535936, 201326592, 318767104, 159383552)),
        ["kernel-raid1c3.restored-62"] = Restored("the kernel RAID1C3 set", RestoredRaid(3, 183500800, 167772160)),
        ["kernel-raid1c3.restored-619"] = Restored("the kernel RAID1C3 set", RestoredRaid(3, 183500800, 167772160)),
        ["mkfs619-defaults"] = new("mkfs 6.19 defaults (block-group-tree) with kernel writes",
            (v, roots, _) =>
            {
                Assert.True((v.Super.CompatRoFlags & Features.CompatRoBlockGroupTree) != 0, "compat_ro BLOCK_GROUP_TREE");
                Assert.Contains(roots, r => r.Id == ObjectIds.BlockGroupTree);
            }, 0, []),
        ["mkfs619-squota"] = new("mkfs 6.19 -O squota with kernel writes, snapshot, reflinks",
            (v, _, report) =>
            {
                Assert.True((v.Super.IncompatFlags & Features.IncompatSimpleQuota) != 0, "incompat SIMPLE_QUOTA");
                Assert.True(report.Stats.ExtentOwnerRefs > 0, "EXTENT_OWNER_REF inline refs");
            }, 0, []),
        ["mkfs619-quota"] = new("mkfs 6.19 -O quota with kernel writes and a level-1 qgroup",
            (_, roots, _) => Assert.Contains(roots, r => r.Id == ObjectIds.QuotaTree), 0, []),
        ["kernel-qgroups"] = new("quotas enabled by the kernel: level-1 and level-2 qgroups, snapshots sharing nodes, reflinks",
            (_, roots, _) =>
            {
                Assert.Contains(roots, r => r.Id == ObjectIds.QuotaTree);
                Assert.True(roots.Count(r => r.Id >= ObjectIds.FirstFree && r.Id <= ObjectIds.LastFree) >= 7, "seven subvolumes and snapshots");
            }, 0, []),
        ["kernel-squota"] = new("simple quotas enabled by the kernel after data was written (enable_gen above 1)",
            (v, _, report) =>
            {
                Assert.True((v.Super.IncompatFlags & Features.IncompatSimpleQuota) != 0, "incompat SIMPLE_QUOTA");
                Assert.True(report.Stats.ExtentOwnerRefs > 0, "EXTENT_OWNER_REF inline refs");
            }, 0, []),
        ["kernel-csum-xxhash"] = CsumType(ChecksumType.XxHash64, "zstd"),
        ["kernel-csum-sha256"] = CsumType(ChecksumType.Sha256, "lzo"),
        ["kernel-csum-blake2"] = CsumType(ChecksumType.Blake2b, "zlib"),
        ["mkfs619-rst"] = new("mkfs 6.19 -O raid-stripe-tree, RAID1 on two devices",
            (v, roots, _) =>
            {
                Assert.True((v.Super.IncompatFlags & Features.IncompatRaidStripeTree) != 0, "incompat RAID_STRIPE_TREE");
                Assert.Contains(roots, r => r.Id == ObjectIds.RaidStripeTree);
                Assert.Equal(2, v.Devices.Count);
            }, 0, []),
        ["mkfs619-zoned"] = new("mkfs 6.19 -O zoned on a 4 GiB image (emulated zones)",
            (v, _, _) => Assert.True(v.IsZoned, "incompat ZONED"), 0, []),
        ["convert-ext4"] = new("ext4 converted by btrfs-convert 6.2",
            (v, roots, _) => Assert.Contains(roots, r => r.Id >= ObjectIds.FirstFree && r.Id <= ObjectIds.LastFree), 0,
            [
                "WARNING: chunk[1048576 27889664) is not fully aligned to BTRFS_STRIPE_LEN (65536)",
                "WARNING: chunk[27889664 33554432) is not fully aligned to BTRFS_STRIPE_LEN (65536)",
                "WARNING: chunk[134217728 161058816) is not fully aligned to BTRFS_STRIPE_LEN (65536)",
                "WARNING: chunk[161058816 167772160) is not fully aligned to BTRFS_STRIPE_LEN (65536)",
            ]),
        ["seed-sprout"] = new("a seed device (btrfstune -S 1) with a sprout added and written",
            (v, _, _) =>
            {
                Assert.Equal(2, v.Devices.Count);
                var seed = v.AllCopies.First(c => c.Device == v.Devices[1] && c.IsValid).Superblock!;
                Assert.True((seed.Flags & Superblock.FlagSeeding) != 0, "the seed's superblock has SEEDING");
                Assert.NotEqual(seed.Fsid, v.Super.Fsid);
            }, 1, StaleMkfs62SpaceKeys),
        ["kernel-halfdropped"] = new("a deleted snapshot captured while the cleaner was dropping it",
            (_, roots, _) => Assert.Contains(roots, r => r.IsDropping), 0, []),
        ["kernel-reloc"] = new("an interrupted balance: relocation trees on disk",
            (_, roots, _) => Assert.Contains(roots, r => r.IsReloc), 1, StaleMkfs62SpaceKeys),
        ["kernel-spacecache-v1"] = new("the v1 space cache written by kernel 6.18 (mkfs 6.2 without the free-space tree, mounted -o space_cache=v1), one cache with a bitmap",
            (v, roots, _) =>
            {
                Assert.True((v.Super.CompatRoFlags & Features.CompatRoFreeSpaceTree) == 0, "no FREE_SPACE_TREE");
                Assert.Equal(v.Super.Generation, v.Super.CacheGeneration);
                var headers = V1Headers(v, roots);
                Assert.True(headers.Count >= 2, $"{headers.Count} v1 cache headers");
                Assert.Contains(headers, h => new BtrfsRefcheck.Format.Items.FreeSpaceHeader(h.Data).NumBitmaps > 0);
            }, 0, []),
        ["kernel-spacecache-v1-to-v2"] = new("kernel-spacecache-v1 mounted once with -o space_cache=v2: the kernel built the free-space tree and removed the v1 cache",
            (v, roots, _) =>
            {
                Assert.True((v.Super.CompatRoFlags & (Features.CompatRoFreeSpaceTree | Features.CompatRoFreeSpaceTreeValid)) ==
                    (Features.CompatRoFreeSpaceTree | Features.CompatRoFreeSpaceTreeValid), "FREE_SPACE_TREE and _VALID");
                Assert.Equal(0UL, v.Super.CacheGeneration);
                Assert.Empty(V1Headers(v, roots));
            }, 0, []),
        ["mkfs619-bgt-changing"] = new("btrfstune --convert-to-block-group-tree interrupted",
            (v, _, _) => Assert.True((v.Super.Flags & Superblock.FlagChangingBgTree) != 0, "superblock flag CHANGING_BG_TREE"), 0, []),
        // btrfs check 6.19 does not understand its own interrupted data checksum change: it sees the CSUM_CHANGE items
        // as overlapping the old ones (the csum tree pass of issue 14 decides what to check there)
        ["mkfs619-csum-changing"] = new("btrfstune --csum interrupted while writing the new data checksums",
            (v, _, _) => Assert.True((v.Super.Flags & Superblock.FlagChangingDataCsum) != 0, "superblock flag CHANGING_DATA_CSUM"), 1,
            [
                "ERROR: csum overlap, current bytenr=13631488 prev_end=17891328, eb=30474240 slot=1",
                "there are no extents for csum range 16175104-17891328",
                "csum exists for 13631488-17891328 but there is no extent record",
                "ERROR: errors found in csum tree",
            ]),
        // ... nor can it open one interrupted while rewriting tree blocks (the chunk root already has the new type)
        ["mkfs619-csum-changing-meta"] = new("btrfstune --csum interrupted while rewriting tree block checksums",
            (v, _, _) =>
            {
                Assert.True((v.Super.Flags & Superblock.FlagChangingMetaCsum) != 0, "superblock flag CHANGING_META_CSUM");
                Assert.Contains(v.Notes, n => n.Contains("CHANGING_META_CSUM", StringComparison.Ordinal));
            }, 1,
            [
                "checksum verify failed on 22052864 wanted 0xd8b13518 found 0x07613d9d",
                "Csum didn't match",
                "ERROR: cannot read chunk root",
                "ERROR: cannot open file system",
            ]),
    };

    private static List<TreeSearch.FoundItem> V1Headers(BtrfsVolume v, IReadOnlyList<TreeRoot> roots) =>
        TreeSearch.Range(v, roots.First(r => r.Id == ObjectIds.RootTree), new BtrfsKey(ObjectIds.FreeSpace, 0, 0), new BtrfsKey(ObjectIds.FreeSpace, 0, ulong.MaxValue));

    /// <summary>Every committed source image has an expectation (what it is for and 6.19's verdict).</summary>
    [Fact]
    public void EverySourceFixtureHasAnExpectation()
    {
        var sets = SourceFixtures.Sets().Keys.ToList();
        Assert.True(sets.Count >= 10, $"testdata/sources holds {sets.Count} sets: {string.Join(", ", sets)}");
        Assert.All(sets, s => Assert.True(Expected.ContainsKey(s), $"{s}: no expectation in SourceFixtureTests"));
    }

    [Theory]
    [MemberData(nameof(SourceFixtures.All), MemberType = typeof(SourceFixtures))]
    public void ChecksCleanAndKeepsItsPurpose(string set)
    {
        var exp = Expected[set];
        output.WriteLine($"{set}: {exp.Purpose}");
        var findings = new FindingBag();
        using var vol = BtrfsVolume.Open(SourceFixtures.Images(set), null, findings);
        var report = Checker.Run(vol, findings);
        foreach (var n in vol.Notes) output.WriteLine("note: " + n);
        foreach (var f in findings.Items) output.WriteLine($"{f.Severity} {f}");
        // mkfs 6.2's stale free-space entries: our warning 1102 at exactly the keys btrfs check 6.19 names (issue 14)
        var staleWanted = exp.Progs619Lines.Select(Differential.CheckDifferentialTests.StaleKeyLogical).OfType<ulong>().Order().ToList();
        var staleOurs = findings.Items.Where(f => f.Code == FindingCode.FreeSpaceStaleMkfsEntries && f.Severity == Severity.Warning).Select(f => f.Bytenr ?? 0).Order().ToList();
        Assert.Equal(staleWanted, staleOurs);
        var bad = findings.Items.Where(f => f.IsProblem()).ToList();
        Assert.True(bad.Count == 0, $"{set}: {bad.Count} errors/warnings:\n  " + string.Join("\n  ", bad.Take(20)));
        var roots = TreeRoots.Enumerate(vol, new FindingBag());
        exp.Property(vol, roots, report);

        var (o, e) = (new StringWriter(), new StringWriter());
        Assert.Equal(0, BtrfsRefcheck.Cli.Program.Run(["check", "-q", .. SourceFixtures.Images(set)], o, e));
    }

    /// <summary>btrfs check --readonly 6.19 on the same filesystem: exactly the recorded exit code and lines. Multi-device
    /// sets are attached read-only to loop devices so that progs finds every device (skipped where that is impossible).</summary>
    [Progs619Theory]
    [MemberData(nameof(SourceFixtures.All), MemberType = typeof(SourceFixtures))]
    public void Progs619VerdictIsTheRecordedOne(string set)
    {
        var exp = Expected[set];
        var images = SourceFixtures.Images(set);
        using var loops = images.Count > 1 ? LoopSet.TryAttach(images) : null;
        if (images.Count > 1 && loops == null)
        {
            output.WriteLine($"{set}: a multi-device set needs loop devices (root) for btrfs check to see every device; not run here");
            return;
        }
        var target = loops?.Devices[0] ?? images[0];
        var (code, stdout, stderr) = Progs.V619.CheckReadonly(target);
        var lines = ProblemLines(stdout + "\n" + stderr);
        output.WriteLine($"btrfs check 6.19 on {set}: exit {code}\n  " + string.Join("\n  ", lines));
        Assert.Equal(exp.Progs619Exit, code);
        Assert.Equal(exp.Progs619Lines.Order(StringComparer.Ordinal), lines.Order(StringComparer.Ordinal));
    }

    /// <summary>The lines of btrfs check's output that are neither its phase headers nor its closing summary.</summary>
    internal static List<string> ProblemLines(string text) =>
        text.Split('\n').Select(l => l.TrimEnd()).Where(l => l.Length > 0 && !(
            l.StartsWith('[') || l.StartsWith("Opening filesystem", StringComparison.Ordinal) || l.StartsWith("Checking filesystem", StringComparison.Ordinal) ||
            l.StartsWith("UUID:", StringComparison.Ordinal) || l.StartsWith("found ", StringComparison.Ordinal) || l.StartsWith("total ", StringComparison.Ordinal) ||
            l.StartsWith("btree space waste", StringComparison.Ordinal) || l.StartsWith("file data blocks", StringComparison.Ordinal) ||
            l.StartsWith(" referenced", StringComparison.Ordinal) || l.StartsWith("no error found", StringComparison.Ordinal) ||
            // progs scans every block device; other processes' loop devices come and go meanwhile
            l.StartsWith("ERROR: cannot scan /dev/", StringComparison.Ordinal))).Distinct().ToList();
}

/// <summary>Images attached read-only (<c>losetup -r</c>) to loop devices, detached and forgotten by btrfs on dispose.</summary>
internal sealed class LoopSet : IDisposable
{
    public List<string> Devices { get; } = [];

    public static LoopSet? TryAttach(IReadOnlyList<string> images)
    {
        if (Environment.UserName != "root" || Progs.Find("losetup") is null || !File.Exists("/dev/loop-control")) return null;
        var set = new LoopSet();
        try
        {
            foreach (var img in images)
            {
                var (code, stdout, _) = Progs.RunRaw("losetup", "-r", "-f", "--show", img);
                if (code != 0) { set.Dispose(); return null; }
                set.Devices.Add(stdout.Trim());
            }
            return set;
        }
        catch (Exception e) when (e is IOException or TimeoutException or FileNotFoundException)
        {
            set.Dispose();
            return null;
        }
    }

    public void Dispose()
    {
        foreach (var d in Devices)
        {
            try
            {
                Progs.RunRaw("btrfs", "device", "scan", "--forget", d);
                Progs.RunRaw("losetup", "-d", d);
            }
            catch (Exception e) when (e is IOException or TimeoutException or FileNotFoundException) { Debug.WriteLine(e.Message); }
        }
    }
}
