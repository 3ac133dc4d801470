using System.Text.Json;
using System.Xml.Linq;
using BtrfsRefcheck.Cli;
using BtrfsRefcheck.Cli.Verbs.Scan;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Forge;
using BtrfsRefcheck.Tests.Forge;
using BtrfsRefcheck.Tests.Oracle;
using BtrfsRefcheck.Tests.Sources;
using ImageForge = BtrfsRefcheck.Forge.Forge;

namespace BtrfsRefcheck.Tests.Cli;

/// <summary>A directory tree like a CI job's: a single-device image (logtree), the kernel RAID1 pair in a
/// subdirectory, the seed + sprout pair, a damaged copy of kernel-snapshots (a tree block's checksum broken by the
/// forge), and what is not btrfs: random bytes, a gzip-compressed image, a btrfs-image dump. The pristine images are
/// symbolic links to the shared expanded fixtures (the scan only reads).</summary>
public sealed class ScanTree : IDisposable
{
    public string Root { get; }
    public string Logtree => Path.Combine(Root, "single", "logtree.img");
    public string Raid1Dev1 => Path.Combine(Root, "sets", "raid1", "dev1.img");
    public string Raid1Dev2 => Path.Combine(Root, "sets", "raid1", "dev2.img");
    public string Seed => Path.Combine(Root, "sets", "seed", "seed.img");
    public string Sprout => Path.Combine(Root, "sets", "seed", "sprout.img");
    public string Damaged { get; }
    public string Random => Path.Combine(Root, "other", "random.bin");
    public string Gz => Path.Combine(Root, "other", "logtree.img.gz");
    public string Dump => Path.Combine(Root, "other", "raid1.metadump");
    private readonly ForgedImage _damaged;

    public ScanTree()
    {
        Root = Path.Combine(ForgeFixtures.TempDir, "scan-tree");
        foreach (var d in new[] { "single", "sets/raid1", "sets/seed", "damaged", "other" }) Directory.CreateDirectory(Path.Combine(Root, d));
        File.CreateSymbolicLink(Logtree, KernelFixtures.Expand("kernel-logtree"));
        File.CreateSymbolicLink(Raid1Dev1, KernelFixtures.Expand("kernel-raid1-dev1"));
        File.CreateSymbolicLink(Raid1Dev2, KernelFixtures.Expand("kernel-raid1-dev2"));
        var seedSprout = SourceFixtures.Images("seed-sprout"); // sprout first
        File.CreateSymbolicLink(Sprout, seedSprout[0]);
        File.CreateSymbolicLink(Seed, seedSprout[1]);
        _damaged = ImageForge.CopyAll(ForgeFixtures.Images("kernel-snapshots"), Path.Combine(Root, "damaged"));
        Defects.Get("tree-block-checksum-mismatch").Apply(_damaged);
        Damaged = Assert.Single(_damaged.Paths);
        var bytes = new byte[1 << 20];
        new Random(15).NextBytes(bytes);
        File.WriteAllBytes(Random, bytes);
        File.Copy(KernelFixtures.GzPath("kernel-logtree"), Gz);
        File.Copy(Path.Combine(SourceFixtures.Dir, "kernel-raid1.metadump-619"), Dump);
    }

    public void Dispose()
    {
        _damaged.Dispose();
        try { Directory.Delete(Root, recursive: true); } catch (IOException) { }
    }
}

/// <summary><c>scan</c> on <see cref="ScanTree"/>: which filesystems it finds and how it groups their devices, the
/// verdicts, exit codes, the JSON array and the JUnit report; and the grouping rules on their own.</summary>
public class ScanTests(ScanTree tree) : IClassFixture<ScanTree>
{
    private static (int Code, string Stdout, string Stderr) Run(params string[] args)
    {
        var (o, e) = (new StringWriter(), new StringWriter());
        int code = BtrfsRefcheck.Cli.Program.Run(args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    private static List<JsonElement> Json(string stdout)
    {
        using var doc = JsonDocument.Parse(stdout);
        Assert.Equal(JsonValueKind.Array, doc.RootElement.ValueKind);
        return doc.RootElement.EnumerateArray().Select(e => e.Clone()).ToList();
    }

    private static string[] Strings(JsonElement e, string name) => e.GetProperty(name).EnumerateArray().Select(x => x.GetString()!).ToArray();

    [Fact]
    public void Json_GroupsDevicesIntoFilesystems_WithTheirVerdicts()
    {
        var r = Run("scan", "--json", tree.Root);
        Assert.Equal(ExitCodes.Findings, r.Code); // the damaged copy has errors
        Assert.Equal("", r.Stderr);
        var items = Json(r.Stdout);
        Assert.All(items, i =>
        {
            Assert.Equal("btrfs-refcheck.scan", i.GetProperty("format").GetString());
            Assert.Equal(1, i.GetProperty("version").GetInt32());
        });
        var fs = items.Where(i => i.GetProperty("type").GetString() == "filesystem").ToList();
        var byDevices = fs.ToDictionary(f => string.Join(" ", Strings(f, "devices")));

        // grouping: the RAID1 pair is one filesystem (in devid order); the seed alone, and again with its sprout
        // the btrfs-image dump is a filesystem of its own, checked in place
        var expected = new List<string> { tree.Logtree, $"{tree.Raid1Dev1} {tree.Raid1Dev2}", tree.Seed, tree.Sprout, tree.Damaged, tree.Dump };
        Assert.Equal(expected.Order(StringComparer.Ordinal), byDevices.Keys.Order(StringComparer.Ordinal));
        Assert.Equal([tree.Seed], Strings(byDevices[tree.Sprout], "seed_devices"));
        Assert.True(byDevices[tree.Dump].GetProperty("dump").GetBoolean());
        Assert.False(byDevices[tree.Seed].GetProperty("dump").GetBoolean());
        Assert.Equal("5a1e0002-b7f5-4c3e-9d2a-000000000002", byDevices[tree.Dump].GetProperty("fsid").GetString());
        Assert.Empty(Strings(byDevices[tree.Seed], "seed_devices"));
        Assert.Equal("5a1e0002-b7f5-4c3e-9d2a-000000000002", byDevices[$"{tree.Raid1Dev1} {tree.Raid1Dev2}"].GetProperty("fsid").GetString());
        Assert.Equal("5a1e0107-b7f5-4c3e-9d2a-000000000107", byDevices[tree.Seed].GetProperty("fsid").GetString());

        // verdicts: every pristine set clean, the damaged copy with the forged defect
        foreach (var (devices, f) in byDevices)
        {
            bool damaged = devices == tree.Damaged;
            Assert.True((damaged ? "errors" : "clean") == f.GetProperty("verdict").GetString(), devices);
            Assert.Equal(damaged, f.GetProperty("errors").GetInt64() > 0);
            var codes = f.GetProperty("findings").EnumerateArray().Select(x => x.GetProperty("code").GetInt32()).ToHashSet();
            Assert.Equal(damaged, codes.Contains((int)BtrfsRefcheck.Diagnostics.FindingCode.TreeBlockChecksumMismatch));
            Assert.True(f.GetProperty("estimated_memory_mib").GetInt64() >= ScanRunner.FixedMiB);
        }
        var damagedFs = byDevices[tree.Damaged];
        long errorsByCode = damagedFs.GetProperty("findings").EnumerateArray().Where(x => x.GetProperty("severity").GetString() == "error")
            .Select(x => x.GetProperty("code").GetInt32()).Distinct()
            .Sum(c => damagedFs.GetProperty("counts_by_code").GetProperty(c.ToString()).GetInt64());
        Assert.Equal(damagedFs.GetProperty("errors").GetInt64(), errorsByCode);

        // what is not btrfs is listed as skipped, with why
        var skipped = items.Where(i => i.GetProperty("type").GetString() == "skipped")
            .ToDictionary(i => i.GetProperty("path").GetString()!, i => i.GetProperty("reason").GetString()!);
        Assert.StartsWith("not btrfs", skipped[tree.Random]);
        Assert.StartsWith("gzip-compressed", skipped[tree.Gz]);
        Assert.DoesNotContain(tree.Dump, skipped.Keys);
        Assert.Equal(items.Count, fs.Count + skipped.Count);
    }

    [Fact]
    public void Text_OneLinePerFilesystem_SkippedPaths_Summary()
    {
        var r = Run("scan", tree.Root);
        Assert.Equal(ExitCodes.Findings, r.Code);
        var lines = r.Stdout.TrimEnd().Split('\n').Select(l => l.TrimEnd('\r')).ToList();
        const int fsCount = 6; // the dump included
        Assert.Equal(fsCount, lines.Count(l => l.StartsWith("clean ", StringComparison.Ordinal) || l.StartsWith("ERRORS ", StringComparison.Ordinal)));
        var damagedLine = Assert.Single(lines, l => l.StartsWith("ERRORS ", StringComparison.Ordinal));
        Assert.Contains(tree.Damaged, damagedLine);
        Assert.Contains("300 TreeBlockChecksumMismatch x", damagedLine);
        Assert.Single(lines, l => l.Contains(tree.Sprout) && l.Contains($"+ seed {tree.Seed}"));
        Assert.Single(lines, l => l.StartsWith("skipped ", StringComparison.Ordinal) && l.Contains(tree.Random));
        Assert.StartsWith($"scan: {fsCount} filesystems ({fsCount - 1} clean, 1 with errors, 0 not checked), 2 paths skipped", lines[^1]);
    }

    [Fact]
    public void JUnit_IsWellFormed_AndItsCountsAgreeWithItsTestCases()
    {
        string file = Path.Combine(ForgeFixtures.TempDir, "scan-junit.xml");
        var r = Run("scan", "--json", "--junit", file, tree.Root);
        Assert.Equal(ExitCodes.Findings, r.Code);
        var items = Json(r.Stdout);
        var doc = XDocument.Load(file); // throws if not well-formed
        var suites = doc.Root!;
        Assert.Equal("testsuites", suites.Name.LocalName);
        var suite = Assert.Single(suites.Elements("testsuite"));
        var cases = suite.Elements("testcase").ToList();
        int Attr(XElement e, string name) => int.Parse(e.Attribute(name)!.Value);
        foreach (var e in new[] { suites, suite })
        {
            Assert.Equal(cases.Count, Attr(e, "tests"));
            Assert.Equal(cases.Count(c => c.Element("failure") != null), Attr(e, "failures"));
            Assert.Equal(cases.Count(c => c.Element("error") != null), Attr(e, "errors"));
            Assert.Equal(cases.Count(c => c.Element("skipped") != null), Attr(e, "skipped"));
            Assert.True(double.Parse(e.Attribute("time")!.Value, System.Globalization.CultureInfo.InvariantCulture) >= 0);
        }
        // one test case per JSON entry: filesystems as test cases, skipped paths as skipped ones
        Assert.Equal(items.Count, cases.Count);
        Assert.Equal(items.Count(i => i.GetProperty("type").GetString() == "skipped"), Attr(suite, "skipped"));
        Assert.Equal(1, Attr(suite, "failures"));
        Assert.Equal(0, Attr(suite, "errors"));
        var failed = Assert.Single(cases, c => c.Element("failure") != null);
        Assert.Contains(tree.Damaged, failed.Attribute("name")!.Value);
        Assert.Contains("300 TreeBlockChecksumMismatch", failed.Element("failure")!.Value);
        Assert.Contains("verdict: ERRORS FOUND", failed.Element("failure")!.Value);
        Assert.All(cases, c => Assert.True(c.Elements().Count(e => e.Name.LocalName is "failure" or "error" or "skipped") <= 1));
    }

    [Fact]
    public void CleanSetsOnly_ExitZero_SameResultWithOneJobAndATinyMemoryBudget()
    {
        var a = Run("scan", "--json", Path.Combine(tree.Root, "single"), Path.Combine(tree.Root, "sets"));
        var b = Run("scan", "--json", "--jobs", "1", "--memory-budget", "1", Path.Combine(tree.Root, "single"), Path.Combine(tree.Root, "sets"));
        Assert.Equal(ExitCodes.Ok, a.Code);
        Assert.Equal(ExitCodes.Ok, b.Code);
        static string Shape(string json) => string.Join("\n", Json(json).Select(i =>
            $"{string.Join(" ", Strings(i, "devices"))} | {string.Join(" ", Strings(i, "seed_devices"))} | {i.GetProperty("verdict").GetString()} | {i.GetProperty("errors")} {i.GetProperty("warnings")}"));
        Assert.Equal(Shape(a.Stdout), Shape(b.Stdout));
        Assert.Equal(4, Json(a.Stdout).Count);
    }

    [Fact]
    public void NoValidSuperblock_IsNotChecked_Exit3()
    {
        string dir = Path.Combine(ForgeFixtures.TempDir, "scan-badsum");
        Directory.CreateDirectory(dir);
        string bad = Path.Combine(dir, "badsum.img");
        SparseFile.Copy(KernelFixtures.Expand("kernel-logtree"), bad);
        using (var fs = new FileStream(bad, FileMode.Open, FileAccess.ReadWrite))
            foreach (var off in Superblock.MirrorOffsets.Where(o => o + Superblock.Size <= fs.Length))
            {
                fs.Position = off + Superblock.LabelAt;
                int b = fs.ReadByte();
                fs.Position = off + Superblock.LabelAt;
                fs.WriteByte((byte)(b ^ 0x20));
            }
        var r = Run("scan", dir, tree.Logtree);
        Assert.Equal(ExitCodes.CannotCheck, r.Code);
        var line = Assert.Single(r.Stdout.Split('\n'), l => l.StartsWith("NOT CHECKED", StringComparison.Ordinal));
        Assert.Contains(bad, line);
        Assert.Contains("no valid superblock", line);
        Assert.Single(r.Stdout.Split('\n'), l => l.StartsWith("clean", StringComparison.Ordinal) && l.Contains(tree.Logtree));
    }

    [Fact]
    public void DevidTwiceInAMultiDeviceSet_IsNotChecked_CopiesOfASingleDevice_AreEachChecked()
    {
        string dir = Path.Combine(ForgeFixtures.TempDir, "scan-twice");
        Directory.CreateDirectory(dir);
        SparseFile.Copy(KernelFixtures.Expand("kernel-raid1-dev1"), Path.Combine(dir, "dev1-copy.img"));
        SparseFile.Copy(KernelFixtures.Expand("kernel-logtree"), Path.Combine(dir, "logtree-copy.img"));
        var r = Run("scan", "--json", dir, tree.Raid1Dev1, tree.Raid1Dev2, tree.Logtree);
        Assert.Equal(ExitCodes.CannotCheck, r.Code);
        var items = Json(r.Stdout);
        var raid = Assert.Single(items, i => i.GetProperty("fsid").GetString() == "5a1e0002-b7f5-4c3e-9d2a-000000000002");
        Assert.Equal("not_checked", raid.GetProperty("verdict").GetString());
        Assert.Contains("devid 1", raid.GetProperty("reason").GetString());
        Assert.Equal(3, Strings(raid, "devices").Length);
        var logtrees = items.Where(i => i.GetProperty("fsid").GetString() == "5a1e0003-b7f5-4c3e-9d2a-000000000003").ToList();
        Assert.Equal(2, logtrees.Count);
        Assert.All(logtrees, l => Assert.Equal("clean", l.GetProperty("verdict").GetString()));
    }

    [Fact]
    public void MissingPath_OneLineOnStderr_Exit3_NothingScanned()
    {
        string missing = Path.Combine(tree.Root, "does-not-exist.img");
        var r = Run("scan", tree.Logtree, missing);
        Assert.Equal(ExitCodes.CannotCheck, r.Code);
        Assert.Equal("", r.Stdout);
        var line = Assert.Single(r.Stderr.TrimEnd().Split('\n'));
        Assert.StartsWith("btrfs-refcheck: ", line);
        Assert.Contains(missing, line);
    }

    [Fact]
    public void AFileReachedTwice_IsListedOnce_ByItsOwnName()
    {
        string dir = Path.Combine(ForgeFixtures.TempDir, "scan-alias");
        Directory.CreateDirectory(dir);
        string real = Path.Combine(dir, "b-real.img");
        SparseFile.Copy(KernelFixtures.Expand("kernel-logtree"), real);
        File.CreateSymbolicLink(Path.Combine(dir, "a-link.img"), real);
        var r = Run("scan", "--json", dir, dir);
        Assert.Equal(ExitCodes.Ok, r.Code);
        var only = Assert.Single(Json(r.Stdout));
        Assert.Equal([real], Strings(only, "devices"));
    }

    /// <summary>The scheduler keeps to its limits: one job, or a budget below every estimate, runs the checks one at a
    /// time (a check larger than the budget still runs, alone); a budget that holds them all lets them overlap up to
    /// the job count, never beyond it, and never holds more estimated memory than the budget while two run.</summary>
    [Theory]
    [InlineData(1, 100_000L)]
    [InlineData(8, 1L)]
    [InlineData(2, 100_000L)]
    [InlineData(8, 30L)]
    public void Scheduler_KeepsToJobsAndMemoryBudget(int jobs, long budgetMiB)
    {
        var entries = ScanInventory.Find([Path.Combine(tree.Root, "single"), Path.Combine(tree.Root, "sets"), Path.Combine(tree.Root, "damaged")]);
        var groups = ScanGroups.Group(entries);
        var finished = new List<FsResult>();
        var runner = new ScanRunner(new ScanSettings { Jobs = jobs, MemoryBudgetMiB = budgetMiB }, entries, finished.Add, TextWriter.Null);
        var results = runner.Run(groups);
        Assert.Equal(5, results.Count);
        Assert.Equal(results, finished);
        Assert.All(results, r => Assert.True(r.EstimatedMiB >= ScanRunner.FixedMiB && r.Verdict is ScanVerdict.Clean or ScanVerdict.Errors, r.Reason));
        Assert.InRange(runner.PeakRunning, 1, jobs);
        if (budgetMiB < results.Min(r => r.EstimatedMiB)) Assert.Equal(1, runner.PeakRunning);
        if (runner.PeakRunning > 1) Assert.True(runner.PeakMiB <= budgetMiB, $"{runner.PeakMiB} MiB held with a budget of {budgetMiB}");
    }

    [Theory]
    [InlineData("--jobs", "0")]
    [InlineData("--memory-budget", "12X")]
    [InlineData("--memory-budget", "-5")]
    public void BadOption_Usage(string option, string value)
    {
        var r = Run("scan", option, value, tree.Logtree);
        Assert.Equal(ExitCodes.Usage, r.Code);
        Assert.Equal("", r.Stdout);
        Assert.Single(r.Stderr.TrimEnd().Split('\n'));
    }

    [Theory]
    [InlineData("512", 512)]
    [InlineData("512M", 512)]
    [InlineData("4G", 4096)]
    [InlineData("1t", 1 << 20)]
    [InlineData("2048K", 2)]
    public void MemoryBudget_Sizes(string text, long mib) => Assert.Equal(mib, BtrfsRefcheck.Cli.Verbs.ScanVerb.ParseSize(text));
}

/// <summary>The grouping rules on records alone (no images).</summary>
public class ScanGroupsTests
{
    private static readonly Guid A = Guid.Parse("00000000-0000-0000-0000-00000000000a"), B = Guid.Parse("00000000-0000-0000-0000-00000000000b");

    private static BtrfsDevice Dev(string path, Guid fsid, ulong devid, ulong gen = 10, ulong numDevices = 2, bool seeding = false) =>
        new(path, fsid, devid, Guid.NewGuid(), gen, numDevices, seeding);

    [Fact]
    public void OneSetPerFsid_DevicesInDevidOrder()
    {
        var g = ScanGroups.Group([Dev("z", A, 2), Dev("y", A, 1), Dev("x", B, 1, numDevices: 1)]);
        Assert.Equal(["x", "y|z"], g.Select(x => string.Join("|", x.Devices)));
        Assert.All(g, x => Assert.Null(x.CannotCheck));
    }

    [Fact]
    public void CopiesOfASingleDeviceFilesystem_EachItsOwn()
    {
        var g = ScanGroups.Group([Dev("a", A, 1, numDevices: 1), Dev("b", A, 1, numDevices: 1)]);
        Assert.Equal(["a", "b"], g.Select(x => string.Join("|", x.Devices)));
    }

    [Fact]
    public void MultiDeviceDevidTwice_SplitByGeneration_ElseNotCheckable()
    {
        var split = ScanGroups.Group([Dev("a1", A, 1, gen: 5), Dev("a2", A, 2, gen: 5), Dev("b1", A, 1, gen: 9), Dev("b2", A, 2, gen: 9)]);
        Assert.Equal(["a1|a2", "b1|b2"], split.Select(x => string.Join("|", x.Devices)));
        Assert.All(split, x => Assert.Null(x.CannotCheck));
        var stuck = Assert.Single(ScanGroups.Group([Dev("a1", A, 1), Dev("a2", A, 2), Dev("c1", A, 1)]));
        Assert.Contains("devid 1", stuck.CannotCheck);
    }

    [Fact]
    public void DamagedAndDumps_AreFilesystemsOfTheirOwn()
    {
        var g = ScanGroups.Group([new DamagedDevice("d", A, "no valid superblock"), new DumpFile("m"), Dev("a", A, 1, numDevices: 1), new SkippedPath("s", "not btrfs")]);
        Assert.Equal(["a", "d", "m"], g.Select(x => string.Join("|", x.Devices)));
        Assert.Equal("no valid superblock", g.Single(x => x.Devices[0] == "d").CannotCheck);
        Assert.True(g.Single(x => x.Devices[0] == "m").IsDump);
    }

    [Fact]
    public void SeedsOf_MatchesDevidAndDeviceUuid_OfSeedingDevicesOnly()
    {
        var seed = Dev("seed", B, 1, numDevices: 1, seeding: true);
        var notSeed = Dev("other", B, 1, numDevices: 1) with { DevUuid = seed.DevUuid };
        var missing = new[] { new BtrfsRefcheck.Volume.DevItemInfo(1, seed.DevUuid, B, 0, 0), new BtrfsRefcheck.Volume.DevItemInfo(3, Guid.NewGuid(), A, 0, 0) };
        Assert.Equal(["seed"], ScanGroups.SeedsOf(missing, [notSeed, seed]));
        Assert.Empty(ScanGroups.SeedsOf(missing, [notSeed]));
    }
}
