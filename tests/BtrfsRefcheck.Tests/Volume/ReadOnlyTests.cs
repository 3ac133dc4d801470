using System.Reflection;
using System.Security.Cryptography;
using BtrfsRefcheck.Cli;
using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Tests.Differential;
using BtrfsRefcheck.Tests.Oracle;
using BtrfsRefcheck.Volume;
using Microsoft.Win32.SafeHandles;

namespace BtrfsRefcheck.Tests.Volume;

/// <summary>
/// The reader never writes. Every CLI verb (text and JSON) leaves the image's bytes, length and last-write time
/// unchanged; and the handles <see cref="BlockDevice"/> holds are opened read-only at the OS level, so nothing in the
/// process could write through them. (Permission bits prove nothing when the tests run as root, hence the handle check.)
/// </summary>
public class ReadOnlyTests
{
    private static readonly string[][] Verbs =
    [
        ["check"],
        ["check", "--json"],
        ["check", "--quiet"],
        ["dump-super"],
        ["dump-super", "--all"],
        ["dump-super", "--all", "--json"],
        ["dump-tree"],
        ["dump-tree", "--json"],
        ["dump-tree", "--tree", "extent"],
    ];

    /// <summary>A kernel image with a log tree (else an mkfs image) and a small two-device set when present.</summary>
    public static IEnumerable<object[]> Fixtures
    {
        get
        {
            var kernel = DiffFixtures.Kernel.Select(r => (string)r[0]).ToList();
            yield return [kernel.Contains("kernel:kernel-logtree") ? "kernel:kernel-logtree" : "mkfs:crc32c"];
            if (kernel.Contains("kernel:kernel-raid1")) yield return ["kernel:kernel-raid1"];
        }
    }

    [ProgsTheory]
    [MemberData(nameof(Fixtures))]
    public void EveryVerb_LeavesTheImageUnchanged(string fixture)
    {
        var dir = Directory.CreateTempSubdirectory("btrfs-refcheck-ro-");
        try
        {
            var images = DiffFixtures.Images(fixture).Select((src, i) =>
            {
                var dest = Path.Combine(dir.FullName, $"dev{i}.img");
                SparseFile.Copy(src, dest);
                // an old, exact timestamp: a write (or a touch) would move it
                File.SetLastWriteTimeUtc(dest, new DateTime(2020, 2, 3, 4, 5, 6, 789, DateTimeKind.Utc));
                return dest;
            }).ToList();
            var before = images.Select(Snapshot).ToList();

            using (var vol = BtrfsVolume.Open(images))
            {
                var blockArgs = new[] { "dump-tree", "--block", vol.Super.Root.ToString() };
                foreach (var args in Verbs.Append(blockArgs))
                {
                    var stdout = new StringWriter();
                    var stderr = new StringWriter();
                    int code = Program.Run([.. args, .. images], stdout, stderr);
                    Assert.True(code is ExitCodes.Ok or ExitCodes.Findings,
                        $"{string.Join(' ', args)} exited {code}: {stderr}");
                    Assert.True(stdout.ToString().Length > 0, $"{string.Join(' ', args)} printed nothing");
                }
            }

            var after = images.Select(Snapshot).ToList();
            for (int i = 0; i < images.Count; i++)
            {
                Assert.Equal(before[i].Length, after[i].Length);
                Assert.Equal(before[i].LastWrite, after[i].LastWrite);
                Assert.Equal(before[i].Sha256, after[i].Sha256);
            }
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [ProgsFact]
    public void DeviceHandles_AreOpenedReadOnly()
    {
        var image = MkfsFixtures.CopyToTemp("crc32c");
        try
        {
            var superBefore = new byte[4096];
            using (var fs = File.OpenRead(image)) { fs.Position = 65536; fs.ReadExactly(superBefore); }
            using (var vol = BtrfsVolume.Open([image]))
            {
                var dev = Assert.Single(vol.Devices);
                var handle = HandleOf(dev);
                Assert.False(handle.IsInvalid);
                Assert.False(handle.IsClosed);

                // the kernel's view: the descriptor's access mode is O_RDONLY (flags & O_ACCMODE == 0)
                var fd = handle.DangerousGetHandle().ToInt64();
                var fdinfo = File.ReadAllLines($"/proc/self/fdinfo/{fd}");
                var flagsLine = Assert.Single(fdinfo, l => l.StartsWith("flags:", StringComparison.Ordinal));
                var flags = Convert.ToInt64(flagsLine["flags:".Length..].Trim(), 8);
                Assert.Equal(0L, flags & 3); // O_RDONLY = 0, O_WRONLY = 1, O_RDWR = 2
                Assert.Equal(Path.GetFullPath(image), new FileInfo($"/proc/self/fd/{fd}").LinkTarget);

                // and a write through it is refused
                Assert.Throws<UnauthorizedAccessException>(() => RandomAccess.Write(handle, new byte[] { 0x42 }, 65536));
                Assert.True(vol.ReadTreeBlock(vol.Super.Root).Ok);
            }
            var superAfter = new byte[4096];
            using (var fs = File.OpenRead(image)) { fs.Position = 65536; fs.ReadExactly(superAfter); }
            Assert.Equal(superBefore, superAfter);
        }
        finally
        {
            File.Delete(image);
        }
    }

    [ProgsFact]
    public void FailedOpen_ClosesEveryHandleItOpened()
    {
        // the second path belongs to another filesystem: Open throws, and must not leak the first device's handle.
        // Private names (hard links: /proc/self/fd shows the name a file was opened by), so that no test running in
        // parallel holds them open.
        var dir = Directory.CreateTempSubdirectory("btrfs-refcheck-fd-");
        var a = Path.Combine(dir.FullName, "a.img");
        var b = Path.Combine(dir.FullName, "b.img");
        Progs.Run("ln", MkfsFixtures.Get("msingle"), a);
        Progs.Run("ln", MkfsFixtures.Get("mdup"), b);
        try
        {
            Assert.Equal(0, OpenFdsTo(a, b));
            Assert.Throws<VolumeException>(() => BtrfsVolume.Open([a, b], null, new FindingBag()));
            Assert.Equal(0, OpenFdsTo(a, b));
            using (BtrfsVolume.Open([a]))
                Assert.Equal(1, OpenFdsTo(a, b)); // the probe itself sees open handles
            Assert.Equal(0, OpenFdsTo(a, b));
        }
        finally
        {
            dir.Delete(recursive: true); // removes the links only
        }
    }

    private static int OpenFdsTo(params string[] paths)
    {
        var full = paths.Select(Path.GetFullPath).ToHashSet();
        int n = 0;
        foreach (var fd in Directory.EnumerateFileSystemEntries("/proc/self/fd"))
        {
            try { if (new FileInfo(fd).LinkTarget is { } t && full.Contains(t)) n++; }
            catch (IOException) { } // closed meanwhile
        }
        return n;
    }

    private static SafeFileHandle HandleOf(BlockDevice dev)
    {
        var field = typeof(BlockDevice).GetFields(BindingFlags.Instance | BindingFlags.NonPublic | BindingFlags.Public)
            .SingleOrDefault(f => f.FieldType == typeof(SafeFileHandle));
        Assert.True(field != null, "BlockDevice no longer holds a SafeFileHandle field: update this test to find its OS handle");
        return (SafeFileHandle)field!.GetValue(dev)!;
    }

    private sealed record FileState(long Length, DateTime LastWrite, string Sha256);

    private static FileState Snapshot(string path)
    {
        var info = new FileInfo(path);
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1 << 20);
        return new FileState(info.Length, info.LastWriteTimeUtc, Convert.ToHexString(SHA256.HashData(fs)));
    }
}
