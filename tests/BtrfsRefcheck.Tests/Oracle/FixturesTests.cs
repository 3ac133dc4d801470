using System.IO.Compression;

namespace BtrfsRefcheck.Tests.Oracle;

/// <summary>Tests of the fixture machinery: mkfs images build and pass btrfs check; gz expansion is exact and sparse.</summary>
public class FixturesTests
{
    [ProgsTheory]
    [MemberData(nameof(MkfsFixtures.Names), MemberType = typeof(MkfsFixtures))]
    public void MkfsFixture_BuildsAndPassesBtrfsCheck(string name)
    {
        var path = MkfsFixtures.Get(name);
        Assert.True(File.Exists(path));
        Assert.Equal(MkfsFixtures.DefaultImageSize, new FileInfo(path).Length);
        Assert.Same(path, MkfsFixtures.Get(name));

        var (code, stdout, stderr) = Progs.CheckReadonly(path);
        Assert.True(code == 0, $"btrfs check --readonly {name} exited {code}\n{stdout}\n{stderr}");

        var s = OracleCache.FixtureSuper(name);
        Assert.Equal(name, s["label"]);
        Assert.Equal(MkfsFixtures.Spec(name).Uuid, s["fsid"]);
        Assert.True(s.Matches("magic"));
    }

    [ProgsTheory]
    [InlineData("node4k", 4096)]
    [InlineData("node64k", 65536)]
    [InlineData("crc32c", 16384)]
    [InlineData("mixed", 4096)]
    public void MkfsFixture_HasRequestedNodeSize(string name, int nodesize) =>
        Assert.Equal((ulong)nodesize, OracleCache.FixtureSuper(name).U64("nodesize"));

    [ProgsFact]
    public void MkfsFixtures_HaveRequestedFeaturesAndProfiles()
    {
        Assert.DoesNotContain("SKINNY_METADATA", OracleCache.FixtureSuper("noskinny").FlagNames["incompat_flags"]);
        Assert.Contains("MIXED_GROUPS", OracleCache.FixtureSuper("mixed").FlagNames["incompat_flags"]);

        static IEnumerable<string> ChunkTypes(string fixture) =>
            OracleCache.Fixture(fixture).SelectMany(b => b.Items).Where(i => i.Chunk is not null).Select(i => i.Chunk!.Type);

        Assert.Contains("METADATA|single", ChunkTypes("msingle"));
        Assert.DoesNotContain(ChunkTypes("msingle"), t => t.StartsWith("METADATA|DUP"));
        Assert.Contains("METADATA|DUP", ChunkTypes("mdup"));
        Assert.Contains("DATA|METADATA|single", ChunkTypes("mixed"));
    }

    [ProgsFact]
    public void MkfsFixture_FsTreeMatchesContentTree()
    {
        var content = MkfsFixtures.ContentDir;
        var entries = Directory.EnumerateFileSystemEntries(content, "*", SearchOption.AllDirectories).ToList();
        var files = entries.Where(e => File.Exists(e) && !new FileInfo(e).Attributes.HasFlag(FileAttributes.ReparsePoint)).ToList();
        Assert.Equal(MkfsFixtures.FileCount, files.Count);
        Assert.Equal(4, files.Count(f => new FileInfo(f).Length == 0));
        Assert.Equal(3, files.Count(f => new FileInfo(f).Length >= 2 << 20));
        Assert.InRange(files.Sum(f => new FileInfo(f).Length), 10L << 20, 30L << 20);

        var fs = OracleCache.Fixture("crc32c").Where(b => b.Owner == ProgsKeyFormat.FsTree).SelectMany(b => b.Items).ToList();
        // every entry plus the top directory (256) has an inode item
        Assert.Equal(entries.Count + 1, fs.Count(i => i.Key.Type == ProgsKeyFormat.InodeItem));
        Assert.Equal(entries.Count, fs.Count(i => i.Key.Type == ProgsKeyFormat.DirIndex));
        Assert.Contains(fs, i => i.Key.Type == ProgsKeyFormat.DirIndex && i.Body[0].EndsWith("type SYMLINK"));
    }

    [ProgsFact]
    public void MkfsFixtures_AreThreadSafe()
    {
        var paths = Enumerable.Range(0, 8).AsParallel().Select(_ => MkfsFixtures.Get("msingle")).Distinct().ToList();
        Assert.Single(paths);
    }

    [ProgsFact]
    public void CopyToTemp_GivesIndependentIdenticalCopy()
    {
        var src = MkfsFixtures.Get("node4k");
        var copy = MkfsFixtures.CopyToTemp("node4k");
        try
        {
            Assert.NotEqual(src, copy);
            Assert.True(FilesEqual(src, copy));
            Assert.True(AllocatedBytes(copy) < new FileInfo(copy).Length / 4, "copy should be sparse");
        }
        finally
        {
            File.Delete(copy);
        }
    }

    [Fact]
    public void RepoRoot_ContainsSolution()
    {
        Assert.True(File.Exists(Path.Combine(KernelFixtures.RepoRoot, "BtrfsCheck.sln")));
        Assert.EndsWith("testdata", KernelFixtures.TestDataDir);
    }

    [Fact]
    public void ExpandTo_ReproducesContentAndLengthExactly()
    {
        var dir = Path.Combine(Path.GetTempPath(), "btrfs-refcheck-gz-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            var rng = new Random(7);
            var data = new byte[(5 << 20) + 12345]; // odd length, ends with zeros
            rng.NextBytes(data.AsSpan(100, 1000));
            rng.NextBytes(data.AsSpan(3 << 20, 70000));
            data[(4 << 20) + 1] = 1;
            var raw = Path.Combine(dir, "x.img");
            File.WriteAllBytes(raw, data);
            var gz = raw + ".gz";
            using (var f = File.Create(gz))
            using (var z = new GZipStream(f, CompressionLevel.Fastest))
                z.Write(data);

            var outPath = Path.Combine(dir, "out.img");
            Assert.Equal(data.LongLength, KernelFixtures.ExpandTo(gz, outPath));
            Assert.Equal(data, File.ReadAllBytes(outPath));
            if (Progs.Find("stat") is not null)
                Assert.True(AllocatedBytes(outPath) < data.Length / 2, "expanded file should be sparse");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void CommittedImages_ExpandOnceAndAreBtrfs()
    {
        var present = KernelFixtures.Present();
        foreach (var name in present)
        {
            var path = KernelFixtures.Expand(name);
            Assert.Same(path, KernelFixtures.Expand(name));
            Assert.Equal(path, KernelFixtures.Expand(name.Replace(".img.gz", "")));
            using (var f = File.OpenRead(path))
            {
                var magic = new byte[8];
                f.Seek(0x10000 + 0x40, SeekOrigin.Begin);
                f.ReadExactly(magic);
                Assert.Equal("_BHRfS_M"u8.ToArray(), magic);
            }
            if (Progs.Available)
                Assert.True(DumpSuperParser.Parse(Progs.DumpSuper(path)).Matches("csum"));
        }
    }

    private static bool FilesEqual(string a, string b)
    {
        using var fa = File.OpenRead(a);
        using var fb = File.OpenRead(b);
        if (fa.Length != fb.Length)
            return false;
        var ba = new byte[1 << 20];
        var bb = new byte[1 << 20];
        while (true)
        {
            int na = fa.ReadAtLeast(ba, ba.Length, throwOnEndOfStream: false);
            int nb = fb.ReadAtLeast(bb, bb.Length, throwOnEndOfStream: false);
            if (na != nb || !ba.AsSpan(0, na).SequenceEqual(bb.AsSpan(0, nb)))
                return false;
            if (na == 0)
                return true;
        }
    }

    private static long AllocatedBytes(string path) =>
        long.Parse(Progs.Run("stat", "-c", "%b", path).Trim()) * 512;
}
