using BtrfsRefcheck.Checks;
using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Format.Items;
using BtrfsRefcheck.Tests.Forge;
using BtrfsRefcheck.Tests.Oracle;
using BtrfsRefcheck.Tests.Sources;
using BtrfsRefcheck.Volume;
using Xunit.Abstractions;
using static BtrfsRefcheck.Tests.Damage.DamageSupport;
using ImageForge = BtrfsRefcheck.Forge.Forge;

namespace BtrfsRefcheck.Tests.Damage;

/// <summary>--check-data-csum: one data byte flipped on a real image, in one copy or in all, and found by sector,
/// device, copy and file, as btrfs check 6.19 --check-data-csum finds it ("mirror N bytenr X csum ..."); the same
/// image without the option is clean (the data is not read).</summary>
public class DataChecksumDamageTests(ITestOutputHelper output)
{
    /// <summary>A sector the csum tree covers: the <paramref name="nth"/> sector of the first EXTENT_CSUM item.</summary>
    private static ulong CoveredSector(IReadOnlyList<string> paths, int nth)
    {
        using var vol = Open(paths);
        var root = Root(paths, ObjectIds.CsumTree);
        ulong at = root.Bytenr;
        while (true)
        {
            var view = vol.ReadTreeBlock(at).Block!.View;
            if (!view.IsLeaf) { at = view.KeyPtr(0).BlockPtr; continue; }
            for (int i = 0; i < view.Count; i++)
                if (view.TryGetItem(i, out var key, out var data) && key.ItemType == ItemType.ExtentCsum)
                {
                    int sectors = data.Length / Checksum.Length(vol.CsumType);
                    return key.Offset + (ulong)Math.Min(nth, sectors - 1) * vol.SectorSize;
                }
            throw new InvalidOperationException("no EXTENT_CSUM item in the first csum leaf");
        }
    }

    /// <summary>Flips one byte of copy <paramref name="copy"/> of the sector at <paramref name="logical"/>; returns the device path.</summary>
    private static string Flip(IReadOnlyList<string> paths, ulong logical, int copy)
    {
        string device;
        ulong physical;
        using (var vol = Open(paths))
        {
            var loc = vol.Chunks.Find(logical)!.Map(logical + 100, copy, out _);
            device = vol.DeviceById(loc.DevId)!.Path;
            physical = loc.Offset;
        }
        using var fs = new FileStream(device, FileMode.Open, FileAccess.ReadWrite);
        fs.Position = (long)physical;
        int b = fs.ReadByte();
        fs.Position = (long)physical;
        fs.WriteByte((byte)(b ^ 0x5A));
        return device;
    }

    private static List<Finding> CheckData(IReadOnlyList<string> paths)
    {
        var findings = new FindingBag();
        using var vol = BtrfsVolume.Open(paths, null, findings);
        var report = Checker.Run(vol, findings, verifyDataChecksums: true);
        BtrfsRefcheck.Tests.Diagnostics.PassCodes.AssertDeclared(report);
        Assert.True(report.Stats.DataBytesVerified > 0, "data was verified");
        return findings.Items.ToList();
    }

    /// <summary>btrfs check 6.19 --check-data-csum: exit code and its "mirror N bytenr X" lines.</summary>
    private (int Exit, List<string> Mirrors) Progs619(IReadOnlyList<string> paths)
    {
        using var loops = paths.Count > 1 ? LoopSet.TryAttach(paths) : null;
        Assert.True(paths.Count == 1 || loops != null, "a multi-device set needs loop devices (root) for btrfs check");
        var (code, stdout, stderr) = Progs.V619.RunRaw("btrfs", "check", "--readonly", "--check-data-csum", loops?.Devices[0] ?? paths[0]);
        var mirrors = (stdout + "\n" + stderr).Split('\n').Where(l => l.StartsWith("mirror ", StringComparison.Ordinal))
            .Select(l => string.Join(' ', l.Split(' ').Take(4))).ToList();
        output.WriteLine($"btrfs check 6.19 --check-data-csum: exit {code}\n  " + string.Join("\n  ", mirrors));
        return (code, mirrors);
    }

    /// <summary>1300 on the only copy (kernel-snapshots: single data, crc32c): an error naming the sector, the device,
    /// and the file that uses it; without the option the check is clean.</summary>
    [Progs619Fact, Covers(FindingCode.DataChecksumMismatch)]
    public void FlippedByteInTheOnlyCopyIsAnError()
    {
        using var img = Copy("kernel-snapshots");
        AssertExactly(output, CheckData(img.Paths));
        ulong sector = CoveredSector(img.Paths, 3);
        string device = Flip(img.Paths, sector, 0);
        AssertExactly(output, Check(img.Paths));
        var findings = CheckData(img.Paths);
        AssertExactly(output, findings, Want.Error(FindingCode.DataChecksumMismatch, sector, mirror: 0));
        var f = findings.Single(x => x.Code == FindingCode.DataChecksumMismatch);
        Assert.Equal(device, f.Device);
        Assert.Matches("used by /[^ <]", f.Message);
        var (exit, mirrors) = Progs619(img.Paths);
        Assert.Equal(1, exit);
        Assert.Equal([$"mirror 1 bytenr {sector}"], mirrors);
        AssertCliFindsErrors([.. img.Paths, "--check-data-csum"], FindingCode.DataChecksumMismatch);
    }

    /// <summary>1301 on one copy of RAID1 data (kernel-raid1): a warning naming the bad copy and its device (the other
    /// copy is good); btrfs check 6.19 counts it as an error of that mirror. Both copies bad: 1300.</summary>
    [Progs619Fact, Covers(FindingCode.DataChecksumBadCopy)]
    public void FlippedByteInOneRaid1CopyIsAWarningInBothAnError()
    {
        using var img = Copy("kernel-raid1");
        ulong sector = CoveredSector(img.Paths, 1);
        using (var vol = Open(img.Paths)) Assert.Equal(2, vol.Chunks.Find(sector)!.Copies);
        string device = Flip(img.Paths, sector, 1);
        var findings = CheckData(img.Paths);
        AssertExactly(output, findings, Want.Warning(FindingCode.DataChecksumBadCopy, sector, mirror: 1));
        Assert.Equal(device, findings.Single(x => x.Code == FindingCode.DataChecksumBadCopy).Device);
        Assert.Equal(0, RunCli(["check", "-q", "--check-data-csum", .. img.Paths]).Exit);
        var (exit, mirrors) = Progs619(img.Paths);
        Assert.Equal(1, exit);
        Assert.Equal([$"mirror 2 bytenr {sector}"], mirrors);

        Flip(img.Paths, sector, 0);
        AssertExactly(output, CheckData(img.Paths), Want.Error(FindingCode.DataChecksumMismatch, sector));
        (exit, mirrors) = Progs619(img.Paths);
        Assert.Equal(1, exit);
        Assert.Equal([$"mirror 1 bytenr {sector}", $"mirror 2 bytenr {sector}"], mirrors.Order(StringComparer.Ordinal));
    }

    /// <summary>The first sector of a compressed data extent of the top-level subvolume (its checksums cover the
    /// compressed bytes as stored).</summary>
    private static ulong CompressedSector(IReadOnlyList<string> paths)
    {
        using var vol = Open(paths);
        ulong? Find(ulong bytenr, int depth)
        {
            if (depth > Header.MaxLevel || vol.ReadTreeBlock(bytenr).Block is not { } block) return null;
            var view = block.View;
            for (int i = 0; i < view.Count; i++)
            {
                if (!view.IsLeaf)
                {
                    if (Find(view.KeyPtr(i).BlockPtr, depth + 1) is { } found) return found;
                    continue;
                }
                if (view.TryGetItem(i, out var key, out var data) && key.ItemType == ItemType.ExtentData && data.Length >= FileExtentItem.RegularSize
                    && new FileExtentItem(data) is var fe && fe.Compression != 0 && fe.DiskBytenr != 0)
                    return fe.DiskBytenr;
            }
            return null;
        }
        return Find(Root(paths, ObjectIds.FsTree).Bytenr, 0) ?? throw new InvalidOperationException("no compressed extent in the fs tree");
    }

    /// <summary>Every checksum type other than crc32c (kernel-csum-xxhash, -sha256, -blake2: mkfs 6.19 --csum, data written
    /// by the kernel with zstd, lzo and zlib compression): clean, then one byte flipped inside a compressed extent, found
    /// as btrfs check 6.19 finds it (crc32c: kernel-snapshots above).</summary>
    [Progs619Theory]
    [InlineData("kernel-csum-xxhash", ChecksumType.XxHash64)]
    [InlineData("kernel-csum-sha256", ChecksumType.Sha256)]
    [InlineData("kernel-csum-blake2", ChecksumType.Blake2b)]
    public void EveryChecksumTypeIsVerifiedCompressedExtentsAsStored(string set, ChecksumType type)
    {
        using var img = ImageForge.CopyAll(SourceFixtures.Images(set), ForgeFixtures.TempDir);
        using (var vol = Open(img.Paths)) Assert.Equal(type, vol.CsumType);
        AssertExactly(output, CheckData(img.Paths));
        ulong sector = CompressedSector(img.Paths);
        Flip(img.Paths, sector, 0);
        var findings = CheckData(img.Paths);
        AssertExactly(output, findings, Want.Error(FindingCode.DataChecksumMismatch, sector));
        Assert.Matches("used by /[^ <]", findings.Single(f => f.Code == FindingCode.DataChecksumMismatch).Message);
        var (exit, mirrors) = Progs619(img.Paths);
        Assert.Equal(1, exit);
        Assert.Equal([$"mirror 1 bytenr {sector}"], mirrors);
    }

    /// <summary>A RAID1 pair given without its second device: the copies there are not read (110 names the device), the
    /// first device's copies are verified, and a bad one of them is then the only copy read: an error.</summary>
    [Fact]
    public void CopiesOnAMissingDeviceAreNotRead()
    {
        using var img = Copy("kernel-raid1");
        var one = new[] { img.Paths[0] };
        var findings = new FindingBag();
        using (var vol = BtrfsVolume.Open(one, null, findings))
        {
            var report = Checker.Run(vol, findings, verifyDataChecksums: true);
            Assert.True(report.Stats.DataBytesVerified > 0, "the present copies were verified");
        }
        Assert.Contains(findings.Items, f => f.Code == FindingCode.DeviceMissing);
        Assert.DoesNotContain(findings.Items, f => f.Code is FindingCode.DataChecksumMismatch or FindingCode.DataChecksumBadCopy);
    }

    private sealed class ProgressRecorder : ICheckObserver
    {
        public readonly System.Collections.Concurrent.ConcurrentQueue<(string Pass, long Done, long Total, string Unit)> Events = new();
        public void Progress(string pass, long done, long total, string unit) => Events.Enqueue((pass, done, total, unit));
    }

    /// <summary>The pass counts MiB verified (every copy) toward the data block groups' used bytes and ends at its total.</summary>
    [Fact]
    public void DataChecksumsReportProgress()
    {
        var rec = new ProgressRecorder();
        var findings = new FindingBag();
        using var vol = BtrfsVolume.Open(ForgeFixtures.Images("kernel-snapshots"), null, findings);
        Checker.Run(vol, findings, rec, verifyDataChecksums: true);
        var mine = rec.Events.Where(e => e.Pass == "data checksums").ToList();
        Assert.NotEmpty(mine);
        Assert.All(mine, e => { Assert.Equal("MiB", e.Unit); Assert.InRange(e.Done, 0, e.Total); });
        Assert.Equal(mine[^1].Total, mine[^1].Done);
        Assert.True(mine[^1].Total >= 45, $"total {mine[^1].Total} MiB: at least the 46 MB verified");
    }

    /// <summary>1302: a restored metadata dump has no data to verify (btrfs check skips it too).</summary>
    [Fact, Covers(FindingCode.DataChecksumsNotVerified)]
    public void RestoredMetadumpIsNotVerified()
    {
        var findings = new FindingBag();
        using var vol = BtrfsVolume.Open(SourceFixtures.Images("kernel-snapshots.restored-619"), null, findings);
        var report = Checker.Run(vol, findings, verifyDataChecksums: true);
        AssertExactly(output, findings.Items.ToList());
        Assert.Single(findings.Items, f => f.Code == FindingCode.DataChecksumsNotVerified && f.Severity == Severity.Info);
        Assert.Equal(0, report.Stats.DataBytesVerified);
    }
}
