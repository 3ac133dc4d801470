using System.Collections.Concurrent;
using System.IO.Compression;

namespace BtrfsRefcheck.Tests.Oracle;

/// <summary>
/// Committed kernel-made images (<c>testdata/*.img.gz</c>), expanded once per process into a temporary directory
/// (sparse) that is removed at process exit.
/// </summary>
public static class KernelFixtures
{
    /// <summary>The committed image names (may not all exist yet).</summary>
    public static readonly IReadOnlyList<string> KnownNames =
    [
        "kernel-snapshots.img.gz",
        "kernel-raid1-dev1.img.gz",
        "kernel-raid1-dev2.img.gz",
        "kernel-logtree.img.gz",
    ];

    private static readonly Lazy<string> repoRoot = new(FindRepoRoot);
    private static readonly ConcurrentDictionary<string, Lazy<string>> expanded = new(StringComparer.Ordinal);
    private static readonly Lazy<string> tempDir = new(() => TempDirs.CreateForProcess("btrfs-refcheck-kernel"));

    /// <summary>The repository root: the first ancestor of <see cref="AppContext.BaseDirectory"/> containing BtrfsCheck.sln.</summary>
    public static string RepoRoot => repoRoot.Value;

    /// <summary><c>RepoRoot/testdata</c>.</summary>
    public static string TestDataDir => Path.Combine(RepoRoot, "testdata");

    /// <summary>Directory receiving expanded images (<c>TMP/btrfs-refcheck-kernel-PID</c>; created on first use, deleted at process exit).</summary>
    public static string TempDir => tempDir.Value;

    /// <summary>Path of a committed gz image (name with or without <c>.img.gz</c>).</summary>
    public static string GzPath(string gzName) => Path.Combine(TestDataDir, Normalize(gzName));

    /// <summary>True if the committed image exists.</summary>
    public static bool Exists(string gzName) => File.Exists(GzPath(gzName));

    /// <summary>Names of <c>testdata/*.img.gz</c> files that exist now.</summary>
    public static IReadOnlyList<string> Present() =>
        Directory.Exists(TestDataDir)
            ? Directory.GetFiles(TestDataDir, "*.img.gz").Select(Path.GetFileName).OfType<string>().Order(StringComparer.Ordinal).ToList()
            : [];

    /// <summary>
    /// Decompresses <c>testdata/NAME.img.gz</c> into a temporary sparse file once per process and returns its path
    /// (<c>TempDir/NAME.img</c>). Thread-safe. Callers must not modify the file (copy it with <see cref="SparseFile.Copy"/>).
    /// </summary>
    public static string Expand(string gzName)
    {
        var name = Normalize(gzName);
        return expanded.GetOrAdd(name, n => new Lazy<string>(() =>
        {
            var src = Path.Combine(TestDataDir, n);
            if (!File.Exists(src))
                throw new FileNotFoundException($"committed image '{src}' does not exist", src);
            var dest = Path.Combine(TempDir, n[..^".gz".Length]);
            ExpandTo(src, dest);
            return dest;
        }, LazyThreadSafetyMode.ExecutionAndPublication)).Value;
    }

    /// <summary>Decompresses any gzip file to <paramref name="destPath"/>, sparsely (64 KiB all-zero chunks are skipped).</summary>
    public static long ExpandTo(string gzPath, string destPath)
    {
        using var file = new FileStream(gzPath, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
        using var gz = new GZipStream(file, CompressionMode.Decompress);
        return SparseFile.CopyFrom(gz, destPath);
    }

    private static string Normalize(string gzName)
    {
        var n = Path.GetFileName(gzName);
        if (n.EndsWith(".img.gz", StringComparison.Ordinal))
            return n;
        if (n.EndsWith(".img", StringComparison.Ordinal))
            return n + ".gz";
        return n + ".img.gz";
    }

    private static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "BtrfsCheck.sln")))
                return dir.FullName;
        throw new DirectoryNotFoundException($"BtrfsCheck.sln not found above {AppContext.BaseDirectory}");
    }
}
