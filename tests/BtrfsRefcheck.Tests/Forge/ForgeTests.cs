using System.Security.Cryptography;
using BtrfsRefcheck.Checks;
using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Forge;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Tests.Oracle;
using BtrfsRefcheck.Volume;
using Xunit.Abstractions;
using ImageForge = BtrfsRefcheck.Forge.Forge;

namespace BtrfsRefcheck.Tests.Forge;

/// <summary>Fixture ids the forge tests use: an mkfs fixture name (<c>crc32c</c>, <c>noskinny</c>, ...) or a committed
/// kernel image set (<c>kernel-snapshots</c>, <c>kernel-raid1</c> = dev1 + dev2).</summary>
internal static class ForgeFixtures
{
    public static bool IsKernel(string id) => id.StartsWith("kernel-", StringComparison.Ordinal);

    public static string[] GzNames(string id) => id == "kernel-raid1" ? ["kernel-raid1-dev1", "kernel-raid1-dev2"] : [id];

    /// <summary>Usable here: mkfs fixtures need btrfs-progs, kernel fixtures their committed images.</summary>
    public static bool Available(string id) => IsKernel(id) ? GzNames(id).All(KernelFixtures.Exists) : Progs.Available;

    /// <summary>Where forged copies go: a per-process temp directory removed at exit (and swept after a crash).</summary>
    public static string TempDir => tempDir.Value;

    private static readonly Lazy<string> tempDir = new(() => TempDirs.CreateForProcess("btrfs-refcheck-forge"));

    /// <summary>The pristine image paths (shared: never write to them; <see cref="ImageForge.CopyAll"/> copies them).</summary>
    public static IReadOnlyList<string> Images(string id) =>
        IsKernel(id) ? GzNames(id).Select(KernelFixtures.Expand).ToList() : [MkfsFixtures.Get(id)];
}

/// <summary>Every forged defect, on the fixture it needs, run through <see cref="Checker.Run"/>: the findings of
/// severity Warning or Error must be exactly the ones the forge promises (code, bytenr, severity), the CLI must exit 1,
/// and what <c>btrfs check --readonly</c> says about the same image is written to the test output (its verdicts are
/// not asserted: they are the peer's opinion, collected for the README table).</summary>
public class ForgeTests(ITestOutputHelper output)
{
    /// <summary>(defect, fixture) rows. mkfs rows need btrfs-progs, kernel rows the committed image; rows that cannot
    /// run here are left out (<see cref="ForgeFixturesTests"/> fails when the kernel images are missing).</summary>
    public static readonly (string Defect, string Fixture)[] Rows =
    [
        ("duplicate-tree-block-ref", "crc32c"),
        ("duplicate-tree-block-ref", "noskinny"),
        ("duplicate-tree-block-ref", "xxhash"),
        ("duplicate-tree-block-ref", "sha256"),
        ("duplicate-tree-block-ref", "blake2"),
        ("duplicate-tree-block-ref", "node4k"),
        ("duplicate-tree-block-ref", "node64k"),
        ("duplicate-tree-block-ref", "kernel-snapshots"),
        ("duplicate-tree-block-ref-keyed", "crc32c"),
        ("duplicate-tree-block-ref-keyed", "noskinny"),
        ("stale-tree-block-ref", "crc32c"),
        ("stale-tree-block-ref", "noskinny"),
        ("replace-tree-block-ref-root", "crc32c"),
        ("replace-tree-block-ref-root", "noskinny"),
        ("missing-tree-block-ref", "kernel-snapshots"),
        ("metadata-refs-mismatch", "crc32c"),
        ("metadata-refs-mismatch", "noskinny"),
        ("data-refs-mismatch", "crc32c"),
        ("tree-block-no-extent-item", "crc32c"),
        ("tree-block-no-extent-item", "noskinny"),
        ("metadata-extent-leaked", "crc32c"),
        ("metadata-extent-leaked", "noskinny"),
        ("metadata-level-mismatch", "crc32c"),
        ("metadata-level-mismatch", "noskinny"),
        ("inline-refs-out-of-order", "kernel-snapshots"),
        ("unknown-inline-ref-type", "crc32c"),
        ("unknown-inline-ref-type", "noskinny"),
        ("unknown-inline-ref-type-in-place", "crc32c"),
        ("data-ref-count-mismatch", "crc32c"),
        ("data-extent-no-extent-item", "crc32c"),
        ("orphan-data-extent-item", "crc32c"),
        ("extent-overlap", "crc32c"),
        ("block-group-used-mismatch", "crc32c"),
        ("super-bytes-used-mismatch", "crc32c"),
        ("tree-block-bad-copy", "crc32c"),
        ("tree-block-bad-copy", "mdup"),
        ("tree-block-checksum-mismatch", "crc32c"),
        ("tree-block-checksum-mismatch", "msingle"),
    ];

    public static IEnumerable<object[]> Cases =>
        Rows.Where(r => ForgeFixtures.Available(r.Fixture)).Select(r => new object[] { r.Defect, r.Fixture });

    [Theory]
    [MemberData(nameof(Cases))]
    public void ForgedDefectYieldsExactlyItsFindings(string defectName, string fixture)
    {
        using var img = ImageForge.CopyAll(ForgeFixtures.Images(fixture), ForgeFixtures.TempDir);
        var defect = Defects.Get(defectName).Apply(img);
        output.WriteLine($"{defectName} on {fixture}: {defect.Description}");

        var findings = Check(img.Paths);
        var bad = findings.Where(f => f.IsProblem()).ToList();
        foreach (var f in findings) output.WriteLine($"  ours: {f.Severity} {f}");
        Assert.Equal(Keys(defect.AllExpected.Select(e => (e.Code, e.Bytenr, e.Severity))),
                     Keys(bad.Select(f => (f.Code, f.Bytenr ?? ulong.MaxValue, f.Severity))));
        if (defect.Mirror is { } mirror)
            Assert.Equal(mirror, Assert.Single(bad, f => f.Code == defect.Expected).Mirror);

        // The CLI's verdict: errors found, exit code 1.
        var (o, e) = (new StringWriter(), new StringWriter());
        int exit = BtrfsRefcheck.Cli.Program.Run([.. img.Paths], o, e);
        Assert.True(exit == 1, $"btrfs-refcheck exited {exit}:\n{o}\n{e}");

        RecordProgsVerdict(defectName, fixture, defect, img.Paths);
    }

    /// <summary>The fixtures are clean before the forge touches them, so every finding above is the forge's.</summary>
    [Theory]
    [MemberData(nameof(Fixtures))]
    public void PristineFixtureIsClean(string fixture)
    {
        var bad = Check(ForgeFixtures.Images(fixture)).Where(f => f.IsProblem()).ToList();
        Assert.True(bad.Count == 0, $"{fixture}: " + string.Join("\n  ", bad.Take(10)));
    }

    public static IEnumerable<object[]> Fixtures =>
        Rows.Select(r => r.Fixture).Append("kernel-raid1").Distinct().Where(ForgeFixtures.Available).Select(f => new object[] { f });

    /// <summary>RAID1 across two devices: copy 0 of a block lives on one device, copy 1 on the other. Damaging copy 0
    /// writes to the first device only; the checker reports mirror 0 bad and reads the block from the second.</summary>
    [Fact]
    public void BadCopyOnRaid1PairIsReadFromTheOtherDevice()
    {
        if (!ForgeFixtures.Available("kernel-raid1")) return; // ForgeFixturesTests fails instead
        using var img = ImageForge.CopyAll(ForgeFixtures.Images("kernel-raid1"), ForgeFixtures.TempDir);
        var defect = img.TreeBlockBadCopy(0);
        var bad = Check(img.Paths).Where(f => f.IsProblem()).ToList();
        var f = Assert.Single(bad);
        Assert.Equal((FindingCode.TreeBlockBadCopy, defect.Bytenr, 0), (f.Code, f.Bytenr!.Value, f.Mirror!.Value));
    }

    [ProgsFact]
    public void BadCopyOfOnlyCopyIsNotApplicable()
    {
        using var img = ImageForge.Copy(MkfsFixtures.Get("msingle"), ForgeFixtures.TempDir);
        var ex = Assert.Throws<ForgeNotApplicableException>(() => img.TreeBlockBadCopy(0));
        Assert.Contains("DUP or RAID1", ex.Message);
    }

    /// <summary>mkfs images have one back-ref per extent: the defects that need two refs of one extent say so and
    /// write nothing.</summary>
    [ProgsFact]
    public void TwoRefDefectsAreNotApplicableOnMkfsImages()
    {
        using var img = ImageForge.Copy(MkfsFixtures.Get("crc32c"), ForgeFixtures.TempDir);
        Assert.Throws<ForgeNotApplicableException>(() => img.InlineRefsOutOfOrder());
        Assert.Throws<ForgeNotApplicableException>(() => img.MissingTreeBlockRef());
        Assert.DoesNotContain(Check(img.Paths), f => f.IsProblem());
    }

    /// <summary>The raw primitive: a flipped byte with a recomputed checksum is a valid but different block (no
    /// checksum finding); the same flip without the fix is a bad copy.</summary>
    [ProgsFact]
    public void CorruptBytesFixChecksumKeepsTheBlockReadable()
    {
        using var img = ImageForge.Copy(MkfsFixtures.Get("crc32c"), ForgeFixtures.TempDir);
        ulong csumRoot;
        using (var vol = BtrfsVolume.Open(img.Paths))
            csumRoot = Trees.TreeRoots.Enumerate(vol, new FindingBag()).Single(r => r.Id == ObjectIds.CsumTree).Bytenr;
        img.CorruptBytes(csumRoot, copy: 1, offset: Header.GenerationAt + 7, fixChecksum: true); // generation's top byte
        var bad = Check(img.Paths).Where(f => f.IsProblem()).ToList();
        // copy 0 is still the good original, so the checker never looks at copy 1.
        Assert.Empty(bad);
        img.CorruptBytes(csumRoot, copy: 0, offset: Header.GenerationAt + 7, fixChecksum: false);
        bad = Check(img.Paths).Where(f => f.IsProblem()).ToList();
        // copy 0 is now bad; copy 1 passes the checksum but its generation is absurd, which the validator reports.
        Assert.Contains(bad, f => f.Code == FindingCode.TreeBlockBadCopy && f.Bytenr == csumRoot && f.Mirror == 0);
        Assert.Contains(bad, f => f.Code == FindingCode.TreeBlockGenerationMismatch && f.Bytenr == csumRoot);
    }

    [ProgsFact]
    public void SuperblockPatchRewritesEveryCopyWithAValidChecksum()
    {
        using var img = ImageForge.Copy(MkfsFixtures.Get("crc32c"), ForgeFixtures.TempDir);
        img.PatchSuperblockU64(Superblock.BytesUsedAt, 12345);
        using var vol = BtrfsVolume.Open(img.Paths);
        var copies = vol.AllCopies.Where(c => c.Superblock is { MagicMatches: true }).ToList();
        Assert.True(copies.Count >= 2, "a 512 MiB image holds the copies at 64 KiB and 64 MiB");
        Assert.All(copies, c => Assert.True(c.IsValid && c.Superblock!.BytesUsed == 12345, $"copy {c.Mirror}: {c.Problem}"));
    }

    /// <summary>The command line: lists every defect, copies SOURCE to OUT and forges OUT only.</summary>
    [ProgsFact]
    public void CommandLineForgesTheCopyAndLeavesTheSourceAlone()
    {
        var (o, e) = (new StringWriter(), new StringWriter());
        Assert.Equal(0, BtrfsRefcheck.Forge.Program.Run(["--list"], o, e));
        Assert.All(Defects.All, d => Assert.Contains(d.Name, o.ToString()));

        var src = MkfsFixtures.Get("crc32c");
        var before = Sha(src);
        var dest = Path.Combine(MkfsFixtures.FixtureRoot, $"forge-cli-{Guid.NewGuid():N}.img");
        try
        {
            o = new StringWriter();
            Assert.Equal(0, BtrfsRefcheck.Forge.Program.Run(["duplicate-tree-block-ref", src, dest], o, e));
            Assert.Contains("expect 500 DuplicateTreeBlockRef", o.ToString());
            Assert.Equal(before, Sha(src));
            Assert.Equal(new FileInfo(src).Length, new FileInfo(dest).Length);
            Assert.Contains(Check([dest]), f => f.Code == FindingCode.DuplicateTreeBlockRef);
            Assert.Equal(2, BtrfsRefcheck.Forge.Program.Run(["no-such-defect", src, dest], o, e));
        }
        finally { File.Delete(dest); }
    }

    [ProgsFact]
    public void DisposeDeletesTheCopy()
    {
        string path;
        using (var img = ImageForge.Copy(MkfsFixtures.Get("crc32c"), ForgeFixtures.TempDir))
        {
            path = img.Path;
            Assert.True(File.Exists(path));
            Assert.NotEqual(MkfsFixtures.Get("crc32c"), path);
        }
        Assert.False(File.Exists(path));
    }

    private static List<Finding> Check(IReadOnlyList<string> paths)
    {
        var findings = new FindingBag();
        using var vol = BtrfsVolume.Open(paths, null, findings);
        BtrfsRefcheck.Tests.Diagnostics.PassCodes.AssertDeclared(Checker.Run(vol, findings));
        return findings.Items.ToList();
    }

    private static List<string> Keys(IEnumerable<(FindingCode Code, ulong Bytenr, Severity Severity)> items) =>
        items.Select(x => $"{(int)x.Code} {x.Code} @{x.Bytenr} {x.Severity}").Order(StringComparer.Ordinal).ToList();

    private static string Sha(string path)
    {
        using var s = File.OpenRead(path);
        return Convert.ToHexString(SHA256.HashData(s));
    }

    /// <summary>Writes btrfs check's verdict on the forged image to the test output, with a markdown table row.
    /// btrfs check takes one image; a multi-device set is not given to it.</summary>
    private void RecordProgsVerdict(string defectName, string fixture, ForgedDefect defect, IReadOnlyList<string> paths)
    {
        if (!Progs.Available || paths.Count != 1) return;
        var (code, stdout, stderr) = Progs.CheckReadonly(paths[0]);
        var lines = ProblemLines(stderr + "\n" + stdout);
        output.WriteLine($"  btrfs check --readonly: exit {code}");
        foreach (var l in lines) output.WriteLine($"    {l}");
        string ours = string.Join(", ", defect.AllExpected.Select(x => (int)x.Code).Distinct());
        string msg = string.Join("; ", lines.Take(3)).Replace("|", "\\|");
        output.WriteLine($"  TABLE | {defectName} | {fixture} | {ours} | {code} | {(msg.Length == 0 ? "(no problem reported)" : msg)} |");
    }

    /// <summary>btrfs check's lines that mention a problem: everything but its progress and summary lines.</summary>
    internal static List<string> ProblemLines(string text)
    {
        string[] routine =
        [
            "Opening filesystem", "Checking filesystem on", "UUID:", "[1/7]", "[2/7]", "[3/7]", "[4/7]", "[5/7]", "[6/7]", "[7/7]",
            "found ", "total csum bytes", "total tree bytes", "total fs tree bytes", "total extent tree bytes",
            "btree space waste", "file data blocks allocated", "referenced ", "cache and super generation",
        ];
        return text.Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0 && !routine.Any(r => l.StartsWith(r, StringComparison.Ordinal)))
            .Distinct().Take(8).ToList();
    }
}

/// <summary>The kernel fixtures the forge rows need must be committed: rows that silently vanish are not tests.</summary>
public class ForgeFixturesTests
{
    [Fact]
    public void KernelFixturesForForgeRowsArePresent()
    {
        var missing = ForgeTests.Rows.Select(r => r.Fixture).Append("kernel-raid1").Distinct()
            .Where(ForgeFixtures.IsKernel).Where(f => !ForgeFixtures.Available(f)).ToList();
        Assert.True(missing.Count == 0, $"kernel fixtures missing from {KernelFixtures.TestDataDir}: {string.Join(", ", missing)} (run scripts/make-kernel-fixtures.sh)");
    }
}
