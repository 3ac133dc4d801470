using System.Collections.Concurrent;

namespace BtrfsRefcheck.Tests.Oracle;

/// <summary>
/// Process-wide cache of btrfs-progs outputs for unmodified fixture images, so several tests can share one
/// dump-tree/dump-super run. Keys include the image path and the arguments.
/// </summary>
public static class OracleCache
{
    private static readonly ConcurrentDictionary<string, Lazy<string>> text = new(StringComparer.Ordinal);
    private static readonly ConcurrentDictionary<string, Lazy<IReadOnlyList<ProgsBlock>>> trees = new(StringComparer.Ordinal);
    private static readonly ConcurrentDictionary<string, Lazy<ProgsSuper>> supers = new(StringComparer.Ordinal);

    /// <summary>Raw <c>dump-tree [args] image</c> output (cached).</summary>
    public static string DumpTreeText(string image, params string[] args) =>
        text.GetOrAdd("tree\0" + image + "\0" + string.Join("\0", args),
            _ => new Lazy<string>(() => Progs.DumpTree(image, args))).Value;

    /// <summary>Parsed <c>dump-tree [args] image</c> output (cached).</summary>
    public static IReadOnlyList<ProgsBlock> DumpTree(string image, params string[] args) =>
        trees.GetOrAdd(image + "\0" + string.Join("\0", args),
            _ => new Lazy<IReadOnlyList<ProgsBlock>>(() => DumpTreeParser.Parse(DumpTreeText(image, args)))).Value;

    /// <summary>Raw <c>dump-super [args] image</c> output (cached).</summary>
    public static string DumpSuperText(string image, params string[] args) =>
        text.GetOrAdd("super\0" + image + "\0" + string.Join("\0", args),
            _ => new Lazy<string>(() => Progs.DumpSuper(image, args))).Value;

    /// <summary>Parsed <c>dump-super -f image</c> (cached).</summary>
    public static ProgsSuper DumpSuperFull(string image) =>
        supers.GetOrAdd(image, _ => new Lazy<ProgsSuper>(() => DumpSuperParser.Parse(DumpSuperText(image, "-f")))).Value;

    /// <summary>Parsed full dump-tree of the named mkfs fixture.</summary>
    public static IReadOnlyList<ProgsBlock> Fixture(string name) => DumpTree(MkfsFixtures.Get(name));

    /// <summary>Parsed dump-super -f of the named mkfs fixture.</summary>
    public static ProgsSuper FixtureSuper(string name) => DumpSuperFull(MkfsFixtures.Get(name));
}
