using System.Collections.Concurrent;
using System.Text.RegularExpressions;
using BtrfsRefcheck.Tests.Oracle;

namespace BtrfsRefcheck.Tests.Sources;

/// <summary>
/// Valid filesystems from other sources than our own fixture scripts (<c>testdata/sources/</c>, made by
/// <c>scripts/make-source-fixtures.sh</c>; one note per image in its README): mkfs 6.19 defaults, squota, quota,
/// raid-stripe-tree, zoned; metadumps restored by btrfs-image 6.2 and 6.19; ext4 converted; seed + sprout; a
/// half-dropped snapshot; relocation trees. Images named <c>X-devN</c> form the set <c>X</c>; <c>seed-sprout-seed</c>
/// and <c>seed-sprout-sprout</c> form the set <c>seed-sprout</c> (sprout first: it is the filesystem checked).
/// Expanded once per process into a temporary directory.
/// </summary>
public static class SourceFixtures
{
    private static readonly Regex DevSuffix = new(@"^(?<set>.+)-dev(?<n>\d+)$", RegexOptions.CultureInvariant);
    private static readonly ConcurrentDictionary<string, Lazy<string>> expanded = new(StringComparer.Ordinal);
    private static readonly Lazy<string> tempDir = new(() => TempDirs.CreateForProcess("btrfs-refcheck-sources"));

    /// <summary><c>testdata/sources</c>.</summary>
    public static string Dir => Path.Combine(KernelFixtures.TestDataDir, "sources");

    /// <summary>Set name → gz names of its images, the filesystem to check first.</summary>
    public static IReadOnlyDictionary<string, List<string>> Sets()
    {
        var sets = new SortedDictionary<string, List<(int N, string Gz)>>(StringComparer.Ordinal);
        if (!Directory.Exists(Dir)) return new Dictionary<string, List<string>>();
        foreach (var path in Directory.GetFiles(Dir, "*.img.gz"))
        {
            var gz = Path.GetFileName(path);
            var name = gz[..^".img.gz".Length];
            string set; int n;
            var m = DevSuffix.Match(name);
            if (m.Success) { set = m.Groups["set"].Value; n = int.Parse(m.Groups["n"].Value); }
            else if (name.StartsWith("seed-sprout-", StringComparison.Ordinal)) { set = "seed-sprout"; n = name.EndsWith("-sprout", StringComparison.Ordinal) ? 0 : 1; }
            else { set = name; n = 0; }
            if (!sets.TryGetValue(set, out var list)) sets[set] = list = [];
            list.Add((n, gz));
        }
        return sets.ToDictionary(kv => kv.Key, kv => kv.Value.OrderBy(x => x.N).Select(x => x.Gz).ToList(), StringComparer.Ordinal);
    }

    /// <summary>Every set as xunit rows.</summary>
    public static IEnumerable<object[]> All => Sets().Keys.Select(k => new object[] { k });

    /// <summary>The expanded images of a set (shared: never write to them).</summary>
    public static IReadOnlyList<string> Images(string set) =>
        Sets().TryGetValue(set, out var gz) ? gz.Select(Expand).ToList()
            : throw new ArgumentException($"source fixture '{set}' is not in {Dir}");

    private static string Expand(string gzName) =>
        expanded.GetOrAdd(gzName, n => new Lazy<string>(() =>
        {
            var dest = Path.Combine(tempDir.Value, n[..^".gz".Length]);
            KernelFixtures.ExpandTo(Path.Combine(Dir, n), dest);
            return dest;
        }, LazyThreadSafetyMode.ExecutionAndPublication)).Value;
}
