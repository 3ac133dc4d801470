using BtrfsRefcheck.Checks;
using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Forge;
using BtrfsRefcheck.Tests.Forge;
using BtrfsRefcheck.Tests.Oracle;
using BtrfsRefcheck.Tests.Sources;
using BtrfsRefcheck.Volume;
using Xunit.Abstractions;
using ImageForge = BtrfsRefcheck.Forge.Forge;

namespace BtrfsRefcheck.Tests.Volume;

/// <summary>
/// A btrfs-image dump read in place says what the filesystem itself says (issue 15): on every fixture (all checksum
/// types, node sizes, profiles, the kernel's RAID sets and log tree) and every forged defect, the findings (code, bytenr,
/// severity) on the dump are those on the image, minus what a dump cannot show (<see cref="DumpCannotShow"/>); and where
/// <c>btrfs-image -r</c> restores the dump, the restored image says the same again. The summary counts (trees, blocks,
/// items, extent items, back-refs) are equal too, so the dump was read in full. Dumps are made here with btrfs-image 6.2
/// and 6.19, or taken from testdata/sources (made by scripts/make-source-fixtures.sh).
/// </summary>
public class MetadumpEquivalenceTests(ITestOutputHelper output)
{
    /// <summary>What a dump does not hold: superblock mirrors (copies other than 0, their generations), the devices
    /// (missing, unknown, sizes, stripes past their end), and the other copies of mirrored blocks (one copy is dumped).</summary>
    internal static bool DumpCannotShow(Finding f) =>
        f.Code is FindingCode.SuperblockGenerationMismatch or FindingCode.SuperblockCopyTruncated or FindingCode.SuperblockCopyNeverWritten
            or FindingCode.DeviceMissing or FindingCode.DeviceDuplicate or FindingCode.DeviceSizeMismatch
            or FindingCode.StripeBeyondDevice or FindingCode.ChunkBeyondDevice or FindingCode.TreeBlockBadCopy
        || (f.Code is FindingCode.SuperblockBadMagic or FindingCode.SuperblockBadChecksum or FindingCode.SuperblockBytenrMismatch
                or FindingCode.SuperblockUnknownChecksumType && f.Mirror is > 0);

    private static (List<Finding> Findings, CheckReport Report, bool IsDump, bool Sanitized) Check(IReadOnlyList<string> paths)
    {
        var findings = new FindingBag();
        using var vol = BtrfsVolume.Open(paths, null, findings);
        var report = Checker.Run(vol, findings);
        Diagnostics.PassCodes.AssertDeclared(report);
        return (findings.Items.ToList(), report, vol.Metadump != null, vol.NamesSanitized);
    }

    private static List<string> Keys(IEnumerable<Finding> findings) =>
        findings.Where(f => !DumpCannotShow(f)).Select(f => $"{(int)f.Code} {f.Code} @{f.Bytenr?.ToString() ?? "-"} {f.Severity}")
            .Order(StringComparer.Ordinal).ToList();

    private static string Counts(CheckStats s) =>
        $"trees {s.Trees} blocks {s.TreeBlocks} nodes {s.Nodes} leaves {s.Leaves} items {s.Items} unreadable {s.UnreadableBlocks} " +
        $"extents {s.ExtentItems}/{s.MetadataExtentItems}/{s.DataExtentItems} bg {s.BlockGroups} inline {s.InlineRefs} keyed {s.KeyedRefs} " +
        $"tbr {s.TreeBlockRefs} sbr {s.SharedBlockRefs} edr {s.ExtentDataRefs} sdr {s.SharedDataRefs} eor {s.ExtentOwnerRefs} fe {s.FileExtents}";

    /// <summary>The dump says what the image says; <paramref name="sameCounts"/>: and it read every block the image did.</summary>
    private void AssertSame(string what, IReadOnlyList<string> image, string dump, bool sameCounts = true)
    {
        var raw = Check(image);
        var dumped = Check([dump]);
        Assert.True(dumped.IsDump, $"{dump} was not recognised as a metadata dump");
        foreach (var f in raw.Findings) output.WriteLine($"  image: {f.Severity} {f}");
        foreach (var f in dumped.Findings) output.WriteLine($"  dump:  {f.Severity} {f}");
        Assert.Equal(Keys(raw.Findings), Keys(dumped.Findings));
        if (sameCounts) Assert.Equal(Counts(raw.Report.Stats), Counts(dumped.Report.Stats));
        output.WriteLine($"{what}: {raw.Findings.Count(f => !DumpCannotShow(f))} findings equal; {Counts(dumped.Report.Stats)}");
    }

    // ---- the committed dumps of the kernel fixtures (testdata/sources), against the images they were made from ----

    private static readonly Dictionary<string, string[]> SourceImages = new(StringComparer.Ordinal)
    {
        ["kernel-snapshots"] = ["kernel-snapshots"],
        ["kernel-logtree"] = ["kernel-logtree"],
        ["kernel-raid0"] = ["kernel-raid0-dev1", "kernel-raid0-dev2"],
        ["kernel-raid1"] = ["kernel-raid1-dev1", "kernel-raid1-dev2"],
        ["kernel-raid10"] = ["kernel-raid10-dev1", "kernel-raid10-dev2", "kernel-raid10-dev3", "kernel-raid10-dev4"],
        ["kernel-raid1c3"] = ["kernel-raid1c3-dev1", "kernel-raid1c3-dev2", "kernel-raid1c3-dev3"],
        ["kernel-raid5"] = ["kernel-raid5-dev1", "kernel-raid5-dev2", "kernel-raid5-dev3"],
        ["kernel-raid6"] = ["kernel-raid6-dev1", "kernel-raid6-dev2", "kernel-raid6-dev3", "kernel-raid6-dev4"],
    };

    public static IEnumerable<object[]> CommittedDumps =>
        Directory.Exists(SourceFixtures.Dir)
            ? Directory.GetFiles(SourceFixtures.Dir, "*.metadump-*").Select(Path.GetFileName).Order(StringComparer.Ordinal).Select(n => new object[] { n! })
            : [];

    [Fact]
    public void EveryCommittedDumpHasItsImage()
    {
        var dumps = CommittedDumps.Select(r => (string)r[0]).ToList();
        Assert.True(dumps.Count >= 16, $"{dumps.Count} dumps in {SourceFixtures.Dir}");
        Assert.All(dumps, d => Assert.True(SourceImages.ContainsKey(d[..d.IndexOf(".metadump", StringComparison.Ordinal)]), $"{d}: which image was it made from?"));
    }

    /// <summary>Each committed dump (6.2 and 6.19, one device or a whole RAID set in one file) against its images (all
    /// devices), and against its restored image where <c>btrfs-image -r</c> made one (a multi-device set restored onto one
    /// device: the findings, not the counts, since the restore rewrites the chunk tree).</summary>
    [Theory]
    [MemberData(nameof(CommittedDumps))]
    public void CommittedDumpSaysWhatItsImageSays(string dumpName)
    {
        string set = dumpName[..dumpName.IndexOf(".metadump", StringComparison.Ordinal)];
        string version = dumpName[(dumpName.LastIndexOf('-') + 1)..];
        var dump = Path.Combine(SourceFixtures.Dir, dumpName);
        var images = SourceImages[set].Select(KernelFixtures.Expand).ToList();
        AssertSame($"{dumpName} vs {string.Join(", ", SourceImages[set])}", images, dump);
        var restoredSet = $"{set}.restored-{version}";
        if (SourceFixtures.Sets().ContainsKey(restoredSet))
            AssertSame($"{dumpName} vs {restoredSet}", SourceFixtures.Images(restoredSet), dump, sameCounts: images.Count == 1);
        else output.WriteLine($"{set}: btrfs-image -r made no restored image (testdata/sources/README.md says why)");
    }

    /// <summary>The other verbs read a dump as they read the image: <c>dump-tree</c> prints every tree of the dump exactly as
    /// of the image, but for the checksums of the blocks btrfs-image rewrote (crc32c over their zeroed free space and csum
    /// items); <c>dump-super</c> prints the same superblock, and says what the file is.</summary>
    [Fact]
    public void DumpTreeAndDumpSuperReadTheDumpAsTheImage()
    {
        var dump = Path.Combine(SourceFixtures.Dir, "kernel-snapshots.metadump-619");
        var image = KernelFixtures.Expand("kernel-snapshots");
        static string[] Run(params string[] args)
        {
            var (o, e) = (new StringWriter(), new StringWriter());
            Assert.True(BtrfsRefcheck.Cli.Program.Run(args, o, e) == 0, e.ToString());
            return o.ToString().Split('\n');
        }
        static bool Comparable(string l) => !l.StartsWith("checksum stored", StringComparison.Ordinal) && !l.StartsWith('#') && !l.StartsWith("superblock:", StringComparison.Ordinal);
        var fromImage = Run("dump-tree", image);
        var fromDump = Run("dump-tree", dump);
        Assert.Equal(fromImage.Length, fromDump.Length);
        Assert.Equal(fromImage.Where(Comparable), fromDump.Where(Comparable));
        Assert.Contains(fromImage.Zip(fromDump), p => p.First != p.Second); // the rewritten checksums: the dump was read, not the image
        var superDump = Run("dump-super", dump);
        Assert.Equal(Run("dump-super", image).Where(Comparable), superDump.Where(Comparable));
        Assert.Contains(superDump, l => l.Contains("is a btrfs-image metadata dump", StringComparison.Ordinal));
    }

    /// <summary><c>--check-data-csum</c> on a dump verifies nothing and reports nothing about data: the dump holds no data,
    /// which the not-checkable note says once; the image's own run does verify its data.</summary>
    [Fact]
    public void DataChecksumsOnADumpAreNotCheckableNotVerified()
    {
        var dump = Path.Combine(SourceFixtures.Dir, "kernel-snapshots.metadump-619");
        var image = KernelFixtures.Expand("kernel-snapshots");
        static string Run(string path)
        {
            var (o, e) = (new StringWriter(), new StringWriter());
            Assert.True(BtrfsRefcheck.Cli.Program.Run(["check", "--check-data-csum", path], o, e) == 0, e.ToString());
            return o.ToString();
        }
        string onDump = Run(dump), onImage = Run(image);
        Assert.Matches(@"data verified [1-9]\d* bytes", onImage);
        Assert.DoesNotMatch(@"data verified [1-9]", onDump);
        Assert.DoesNotContain("1302", onDump);
        Assert.Contains("note: not checkable from a metadata dump: data checksums", onDump);
    }

    // ---- dumps made here, with both versions, of every mkfs fixture and every forged defect ----

    public static IEnumerable<object[]> MkfsCases =>
        MkfsFixtures.All.SelectMany(s => new[] { "6.2", "6.19" }.Select(v => new object[] { s.Name, v }));

    /// <summary>Every mkfs configuration (crc32c, xxhash, sha256, blake2b; 4 KiB and 64 KiB nodes; no skinny metadata;
    /// mixed; single and DUP metadata) dumped with <c>btrfs-image -c9 -t4</c> of each version.</summary>
    [ProgsTheory]
    [MemberData(nameof(MkfsCases))]
    public void MkfsFixtureDumpSaysWhatTheImageSays(string fixture, string version)
    {
        var progs = Progs.Version(version);
        if (!progs.Available) { output.WriteLine($"skipped: {progs.WhyMissing}"); return; }
        var image = MkfsFixtures.Get(fixture);
        var dump = MakeDump(progs, image, out string? refused);
        Assert.True(refused == null, $"btrfs-image {version} refused {fixture}: {refused}");
        try
        {
            AssertSame($"{fixture} dumped by {version}", [image], dump!);
            AssertRestoredSaysTheSame(progs, dump!, [image], csumIsCrc32c: fixture is not ("xxhash" or "sha256" or "blake2"));
        }
        finally { File.Delete(dump!); }
    }

    /// <summary>Format 1 (<c>btrfs-image -d</c> of 6.19's EXPERIMENTAL build: "_DUmP_v1", data extents dumped too, items up
    /// to 256 MiB): read like format 0.</summary>
    [Progs619Theory]
    [InlineData("crc32c")]
    [InlineData("xxhash")]
    [InlineData("mixed")]
    public void DataDumpSaysWhatTheImageSays(string fixture)
    {
        var image = MkfsFixtures.Get(fixture);
        var dump = MakeDump(Progs.V619, image, out string? refused, "-d");
        Assert.True(refused == null, $"btrfs-image 6.19 -d refused {fixture}: {refused}");
        try
        {
            using (var vol = BtrfsVolume.Open([dump!])) Assert.Equal(1, vol.Metadump!.FormatVersion);
            AssertSame($"{fixture} dumped with data by 6.19", [image], dump!);
        }
        finally { File.Delete(dump!); }
    }

    /// <summary><c>btrfs-image -s</c> (random names) and <c>-ss</c> (names of the same crc32c where it finds one, random
    /// where not): the dump says it once and checks no name hash, so it says what the image says. That the names do break
    /// their hashes in the dump (so the switch is what keeps it silent) is counted on the dump's fs tree.</summary>
    [ProgsTheory]
    [InlineData("-s")]
    [InlineData("-ss")]
    public void SanitizedNamesAreNotHashChecked(string sanitize)
    {
        var image = MkfsFixtures.Get("crc32c");
        var dump = MakeDump(Progs.V62, image, out string? refused, sanitize);
        Assert.True(refused == null, $"btrfs-image {sanitize} refused: {refused}");
        try
        {
            int broken = 0;
            using (var vol = BtrfsVolume.Open([dump!]))
            {
                Assert.True(vol.NamesSanitized, "the root tree's DIR_ITEM \"default\" should carry another name");
                Assert.Contains(vol.Notes, n => n.Contains("btrfs-image -s or -ss", StringComparison.Ordinal));
                var fs = BtrfsRefcheck.Trees.TreeRoots.Enumerate(vol, new FindingBag()).Single(r => r.Id == BtrfsRefcheck.Format.ObjectIds.FsTree);
                broken = BrokenNameHashes(vol, fs.Bytenr);
            }
            output.WriteLine($"{sanitize}: {broken} DIR_ITEM names of the fs tree no longer match their key's hash");
            // -s: random names; -ss keeps each hash where it finds a collision (names of 5 bytes and more)
            if (sanitize == "-s") Assert.True(broken > 0, "btrfs-image -s replaces every name with random characters");
            AssertSame($"crc32c dumped with {sanitize}", [image], dump!);
            using var restoredCheck = new TempRestore(Progs.V62, dump!);
            Assert.True(restoredCheck.Path != null, "btrfs-image -r of a crc32c dump");
            AssertSame($"crc32c dumped with {sanitize}, restored", [restoredCheck.Path!], dump!);
        }
        finally { File.Delete(dump!); }
    }

    private sealed class TempRestore : IDisposable
    {
        public string? Path { get; }
        public TempRestore(ProgsOracle progs, string dump)
        {
            var p = dump + ".restored";
            Path = progs.RunRaw("btrfs-image", "-r", dump, p).ExitCode == 0 ? p : null;
        }
        public void Dispose() { if (Path != null) File.Delete(Path); }
    }

    private static int BrokenNameHashes(BtrfsVolume vol, ulong bytenr)
    {
        var view = vol.ReadTreeBlock(bytenr).Block!.View;
        int broken = 0;
        if (!view.IsLeaf)
        {
            for (int i = 0; i < view.Count; i++) broken += BrokenNameHashes(vol, view.KeyPtr(i).BlockPtr);
            return broken;
        }
        for (int i = 0; i < view.Count; i++)
        {
            var key = view.ItemKey(i);
            if (key.ItemType != BtrfsRefcheck.Format.ItemType.DirItem) continue;
            foreach (var e in new BtrfsRefcheck.Format.Items.DirItem(view.ItemData(i)))
                if (BtrfsRefcheck.Format.Items.RawCrc32C.Update(~1u, e.Name) != key.Offset) broken++;
        }
        return broken;
    }

    /// <summary>btrfs-image refuses to dump these forged images (it reads each block the extent tree lists, verified):
    /// a block with no valid copy, or an extent item of a tree block that is not one.</summary>
    private static readonly HashSet<string> RefusedByBtrfsImage = new(StringComparer.Ordinal)
    {
        "tree-block-checksum-mismatch",
    };

    public static IEnumerable<object[]> ForgeCases => ForgeTests.Cases.Where(r => !ForgeFixtures.IsKernel((string)r[1]) || ForgeFixtures.Images((string)r[1]).Count == 1);

    /// <summary>Every forged defect of <see cref="ForgeTests"/>: forged, dumped with btrfs-image 6.2, checked both ways.
    /// A reachable block without an extent item (504) is one btrfs-image leaves out (it dumps what the extent tree
    /// lists): on the dump it is 132 at the same address, with the 900 that says what it hides; all else is equal.</summary>
    [ProgsTheory]
    [MemberData(nameof(ForgeCases))]
    public void ForgedDefectOnTheDumpIsTheDefectOnTheImage(string defectName, string fixture)
    {
        using var img = ImageForge.CopyAll(ForgeFixtures.Images(fixture), ForgeFixtures.TempDir);
        var defect = Defects.Get(defectName).Apply(img);
        output.WriteLine($"{defectName} on {fixture}: {defect.Description}");
        var dump = MakeDump(Progs.V62, img.Path, out string? refused);
        if (refused != null)
        {
            output.WriteLine($"btrfs-image refuses it: {refused}");
            Assert.True(RefusedByBtrfsImage.Contains(defectName), $"btrfs-image 6.2 refused {defectName} on {fixture}: {refused}");
            return;
        }
        Assert.False(RefusedByBtrfsImage.Contains(defectName), $"btrfs-image now dumps {defectName}: take it off the refused list");
        try
        {
            var raw = Check(img.Paths);
            var dumped = Check([dump!]);
            foreach (var f in raw.Findings) output.WriteLine($"  image: {f.Severity} {f}");
            foreach (var f in dumped.Findings) output.WriteLine($"  dump:  {f.Severity} {f}");
            var missing = dumped.Findings.Where(f => f.Code == FindingCode.TreeBlockNotInDump).Select(f => f.Bytenr).ToHashSet();
            // 504 on the image is 132 (and its 900) on the dump, at the same block
            // and what the missing block hides is said as such: the subvolume it belongs to is not checked (819), and the
            // data extents only its file extents referenced are suspected orphans, as warnings that name the unreadable
            // block (which extents those are depends on how the fixture's inodes fell into leaves)
            var onDump = dumped.Findings.Where(f => !(missing.Contains(f.Bytenr) && f.Code == FindingCode.SubtreeNotChecked) && !HiddenByMissing(f, missing))
                .Select(f => f.Code == FindingCode.TreeBlockNotInDump ? f with { Code = FindingCode.TreeBlockNoExtentItem } : f);
            Assert.Equal(Keys(raw.Findings), Keys(onDump));
            if (missing.Count == 0) Assert.Equal(Counts(raw.Report.Stats), Counts(dumped.Report.Stats));
            else Assert.Equal(FindingCode.TreeBlockNoExtentItem, defect.Expected); // the only defect that hides a block from btrfs-image
            // the CLI's verdict on the dump is the image's (as far as the dump can show it: a bad copy is not in it)
            var (o, e) = (new StringWriter(), new StringWriter());
            bool errors = raw.Findings.Any(f => f.Severity == Severity.Error && !DumpCannotShow(f));
            Assert.Equal(errors ? 1 : 0, BtrfsRefcheck.Cli.Program.Run(["check", "-q", dump!], o, e));
            AssertRestoredSaysTheSame(Progs.V62, dump!, img.Paths, csumIsCrc32c: fixture is not ("xxhash" or "sha256" or "blake2"), missing);
        }
        finally { File.Delete(dump!); }
    }

    /// <summary><c>btrfs-image -r</c> of the dump: it fails for every filesystem whose checksum is not crc32c (it rewrites
    /// the superblock with a crc32c checksum: "superblock checksum mismatch"), which is recorded; where it succeeds, the
    /// restored image says what the image says (a restored image shows no more than the dump). A block the dump does not
    /// hold (<paramref name="missing"/>, 132 on the dump) is zeros on the restored image: 300 there instead of 504.</summary>
    private void AssertRestoredSaysTheSame(ProgsOracle progs, string dump, IReadOnlyList<string> image, bool csumIsCrc32c, HashSet<ulong?>? missing = null)
    {
        var restored = dump + ".restored";
        try
        {
            var (code, stdout, stderr) = progs.RunRaw("btrfs-image", "-r", dump, restored);
            bool ok = code == 0 && File.Exists(restored) && Opens(restored);
            output.WriteLine($"btrfs-image {progs.Name} -r: exit {code}{(ok ? "" : ", not usable: " + (stderr + stdout).Trim().Split('\n').LastOrDefault())}");
            if (!csumIsCrc32c) { Assert.False(ok, "btrfs-image -r now restores a dump of a non-crc32c filesystem: compare it"); return; }
            Assert.True(ok, $"btrfs-image {progs.Name} -r failed on a crc32c dump: {stderr}");
            var raw = Check(image);
            var back = Check([restored]);
            foreach (var f in back.Findings) output.WriteLine($"  restored: {f.Severity} {f}");
            missing ??= [];
            var onRestored = back.Findings.Where(f => !(missing.Contains(f.Bytenr) && f.Code == FindingCode.SubtreeNotChecked) && !HiddenByMissing(f, missing))
                .Select(f => missing.Contains(f.Bytenr) && f.Code == FindingCode.TreeBlockChecksumMismatch ? f with { Code = FindingCode.TreeBlockNoExtentItem } : f);
            Assert.Equal(Keys(raw.Findings), Keys(onRestored));
        }
        finally { File.Delete(restored); }
    }

    /// <summary>What a block the dump lacks hides, said as such (see <see cref="ForgedDefectOnTheDumpIsTheDefectOnTheImage"/>).</summary>
    private static bool HiddenByMissing(Finding f, HashSet<ulong?> missing) => missing.Count > 0 &&
        (f.Code == FindingCode.SubvolumeNotChecked ||
         f.Severity == Severity.Warning && f.Code == FindingCode.OrphanDataExtentItem && f.Message.Contains("may be a consequence of the", StringComparison.Ordinal));

    private static bool Opens(string path)
    {
        try { using var v = BtrfsVolume.Open([path], null, new FindingBag()); return true; }
        catch (VolumeException) { return false; }
    }

    /// <summary><c>btrfs-image -c9 -t4 IMAGE DUMP</c>; null with btrfs-image's complaint when it fails.</summary>
    private static string? MakeDump(ProgsOracle progs, string image, out string? refused, params string[] extra)
    {
        var dump = Path.Combine(ForgeFixtures.TempDir, $"dump-{Guid.NewGuid():N}.metadump");
        var (code, stdout, stderr) = progs.RunRaw("btrfs-image", ["-c9", "-t4", .. extra, image, dump]);
        refused = null;
        if (code == 0 && File.Exists(dump)) return dump;
        File.Delete(dump);
        refused = $"exit {code}: {(stderr + stdout).Trim().Replace('\n', ' ')}";
        return null;
    }
}
