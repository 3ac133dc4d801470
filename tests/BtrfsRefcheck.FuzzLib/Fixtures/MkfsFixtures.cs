using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;

namespace BtrfsRefcheck.Tests.Oracle;

/// <summary>
/// A named mkfs.btrfs configuration. <see cref="Args"/> are the spec-specific options; every image also gets
/// <c>-f -L NAME -U UUID --rootdir CONTENT</c> (see <see cref="MkfsFixtures.Get"/>).
/// </summary>
public sealed record MkfsSpec(string Name, params string[] Args)
{
    /// <summary>Deterministic fsid derived from the name (MD5 of <c>btrfs-refcheck:NAME</c>), passed as <c>-U</c>.</summary>
    public string Uuid => DeriveUuid(Name);

    /// <summary>Image file size (sparse).</summary>
    public long ImageSize { get; init; } = MkfsFixtures.DefaultImageSize;

    /// <summary>Full mkfs.btrfs argument list for writing <paramref name="imagePath"/> from <paramref name="contentDir"/>.</summary>
    public string[] MkfsArgs(string imagePath, string contentDir) =>
        ["-f", "-L", Name, "-U", Uuid, "--rootdir", contentDir, .. Args, imagePath];

    /// <inheritdoc/>
    public override string ToString() => Args.Length == 0 ? Name : $"{Name} ({string.Join(' ', Args)})";

    private static string DeriveUuid(string name)
    {
        var h = MD5.HashData(Encoding.UTF8.GetBytes("btrfs-refcheck:" + name));
        h[6] = (byte)((h[6] & 0x0F) | 0x40); // version 4 / RFC 4122 variant, cosmetic
        h[8] = (byte)((h[8] & 0x3F) | 0x80);
        var hex = Convert.ToHexStringLower(h);
        return $"{hex[..8]}-{hex[8..12]}-{hex[12..16]}-{hex[16..20]}-{hex[20..]}";
    }
}

/// <summary>
/// Images created at test time by the installed mkfs.btrfs from a deterministic <c>--rootdir</c> content tree.
/// Process-wide, thread-safe cache under <see cref="FixtureRoot"/> (deleted at process exit, best effort).
/// Images must not be modified by tests; use <see cref="CopyToTemp"/> for a private writable copy.
/// </summary>
public static class MkfsFixtures
{
    /// <summary>Size of every image (sparse): 512 MiB.</summary>
    public const long DefaultImageSize = 512L * 1024 * 1024;

    /// <summary>Seed of the content generator.</summary>
    public const int ContentSeed = 0x5EED_B7F5;

    /// <summary>Number of regular files in the content tree.</summary>
    public const int FileCount = 300;

    /// <summary>All named specs.</summary>
    public static readonly IReadOnlyList<MkfsSpec> All =
    [
        new("crc32c"),
        new("xxhash", "--csum", "xxhash"),
        new("sha256", "--csum", "sha256"),
        new("blake2", "--csum", "blake2"),
        new("node4k", "-n", "4096"),
        new("node64k", "-n", "65536"),
        new("noskinny", "-O", "^skinny-metadata"),
        new("mixed", "--mixed"),
        new("msingle", "-m", "single"),
        new("mdup", "-m", "dup"),
    ];

    private static readonly ConcurrentDictionary<string, Lazy<string>> images = new(StringComparer.Ordinal);
    private static readonly ConcurrentDictionary<string, TimeSpan> creationTimes = new(StringComparer.Ordinal);
    private static readonly Lazy<string> fixtureRoot = new(CreateFixtureRoot);
    private static readonly Lazy<string> content = new(GenerateContent);
    private static int copyCounter;

    /// <summary>Temp directory holding content and images: <c>TMP/btrfs-refcheck-fixtures-PID</c>.</summary>
    public static string FixtureRoot => fixtureRoot.Value;

    /// <summary>The generated <c>--rootdir</c> content tree (created on first use).</summary>
    public static string ContentDir => content.Value;

    /// <summary>Spec names as xunit <c>[MemberData]</c> rows.</summary>
    public static IEnumerable<object[]> Names => All.Select(s => new object[] { s.Name });

    /// <summary>Wall time spent creating each image so far (mkfs only, excluding content generation).</summary>
    public static IReadOnlyDictionary<string, TimeSpan> CreationTimes => creationTimes;

    /// <summary>The spec called <paramref name="name"/>.</summary>
    public static MkfsSpec Spec(string name) =>
        All.FirstOrDefault(s => s.Name == name) ?? throw new ArgumentException($"unknown mkfs fixture '{name}'", nameof(name));

    /// <summary>Path of the image for <paramref name="name"/>, created on first use (thread-safe, once per process).</summary>
    public static string Get(string name)
    {
        var spec = Spec(name);
        return images.GetOrAdd(name, _ => new Lazy<string>(() => Create(spec), LazyThreadSafetyMode.ExecutionAndPublication)).Value;
    }

    /// <summary>A private, writable sparse copy of the fixture image (in <see cref="FixtureRoot"/>, removed at exit).</summary>
    public static string CopyToTemp(string name)
    {
        var src = Get(name);
        var dest = Path.Combine(FixtureRoot, $"{name}-copy{Interlocked.Increment(ref copyCounter)}.img");
        SparseFile.Copy(src, dest);
        return dest;
    }

    private static string Create(MkfsSpec spec)
    {
        var contentDir = ContentDir;
        var path = Path.Combine(FixtureRoot, spec.Name + ".img");
        var tmp = path + ".partial";
        File.Delete(tmp);
        using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write))
            fs.SetLength(spec.ImageSize);
        var sw = System.Diagnostics.Stopwatch.StartNew();
        Progs.Run("mkfs.btrfs", spec.MkfsArgs(tmp, contentDir));
        creationTimes[spec.Name] = sw.Elapsed;
        File.Move(tmp, path, overwrite: true);
        return path;
    }

    private static string CreateFixtureRoot() => TempDirs.CreateForProcess("btrfs-refcheck-fixtures");

    /// <summary>
    /// Generates the content tree (seeded, so identical in every run): 300 regular files in nested directories —
    /// 4 empty, 3 of 2–8 MiB, 30 of 8–200 KiB, the rest 1 B–3 KiB (mostly inline extents) — plus an empty
    /// directory, a relative symlink and a 5-level deep directory chain. About 20 MiB in total.
    /// </summary>
    private static string GenerateContent()
    {
        var root = Path.Combine(FixtureRoot, "rootdir");
        var tmp = root + ".partial";
        if (Directory.Exists(tmp))
            Directory.Delete(tmp, recursive: true);
        Directory.CreateDirectory(tmp);

        var rng = new Random(ContentSeed);
        var dirs = new List<string> { "" };
        for (int i = 0; i < 8; i++)
        {
            dirs.Add($"dir{i}");
            for (int j = 0; j < 1 + i % 3; j++)
                dirs.Add($"dir{i}/sub{j}");
        }
        dirs.Add("dir0/sub0/deep1/deep2/deep3/deep4/deep5");
        foreach (var d in dirs)
            Directory.CreateDirectory(Path.Combine(tmp, d));
        Directory.CreateDirectory(Path.Combine(tmp, "empty-dir"));

        var stamp = new DateTime(2024, 1, 2, 3, 4, 5, DateTimeKind.Utc);
        string? firstSmall = null;
        for (int k = 0; k < FileCount; k++)
        {
            int size = k switch
            {
                < 4 => 0,
                < 7 => rng.Next(2 << 20, 8 << 20),
                < 37 => rng.Next(8 << 10, 200 << 10),
                _ => rng.Next(1, 3073),
            };
            var dir = dirs[rng.Next(dirs.Count)];
            var rel = Path.Combine(dir, $"file{k:D3}{(k % 5 == 0 ? ".txt" : ".bin")}");
            var bytes = new byte[size];
            if (k % 5 == 0)
            {
                // text-like content
                for (int i = 0; i < size; i++)
                    bytes[i] = (byte)(i % 64 == 63 ? '\n' : 'a' + rng.Next(26));
            }
            else
            {
                rng.NextBytes(bytes);
            }
            var full = Path.Combine(tmp, rel);
            File.WriteAllBytes(full, bytes);
            File.SetLastWriteTimeUtc(full, stamp.AddMinutes(k));
            if (k >= 37 && firstSmall is null && dir.Length == 0)
                firstSmall = rel;
        }
        File.CreateSymbolicLink(Path.Combine(tmp, "dir1", "link-to-file"), "../" + (firstSmall ?? "dir0"));

        if (Directory.Exists(root))
            Directory.Delete(root, recursive: true);
        Directory.Move(tmp, root);
        return root;
    }
}
