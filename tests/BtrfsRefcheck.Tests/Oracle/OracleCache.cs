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

    /// <summary>Raw <c>dump-tree [args] image</c> output of the v6.2 oracle (cached).</summary>
    public static string DumpTreeText(string image, params string[] args) => DumpTreeText(Progs.V62, image, args);

    /// <summary>Raw <c>dump-tree [args] image</c> output of <paramref name="oracle"/> (cached).</summary>
    public static string DumpTreeText(ProgsOracle oracle, string image, params string[] args) =>
        text.GetOrAdd(oracle.Name + "\0tree\0" + image + "\0" + string.Join("\0", args),
            _ => new Lazy<string>(() => oracle.DumpTree(image, args))).Value;

    /// <summary>Parsed <c>dump-tree [args] image</c> output of the v6.2 oracle (cached).</summary>
    public static IReadOnlyList<ProgsBlock> DumpTree(string image, params string[] args) => DumpTree(Progs.V62, image, args);

    /// <summary>Parsed <c>dump-tree [args] image</c> output of <paramref name="oracle"/> (cached).</summary>
    public static IReadOnlyList<ProgsBlock> DumpTree(ProgsOracle oracle, string image, params string[] args) =>
        trees.GetOrAdd(oracle.Name + "\0" + image + "\0" + string.Join("\0", args),
            _ => new Lazy<IReadOnlyList<ProgsBlock>>(() => DumpTreeParser.Parse(DumpTreeText(oracle, image, args)))).Value;

    /// <summary>Raw <c>dump-super [args] image</c> output of the v6.2 oracle (cached).</summary>
    public static string DumpSuperText(string image, params string[] args) => DumpSuperText(Progs.V62, image, args);

    /// <summary>Raw <c>dump-super [args] image</c> output of <paramref name="oracle"/> (cached).</summary>
    public static string DumpSuperText(ProgsOracle oracle, string image, params string[] args) =>
        text.GetOrAdd(oracle.Name + "\0super\0" + image + "\0" + string.Join("\0", args),
            _ => new Lazy<string>(() => oracle.DumpSuper(image, args))).Value;

    /// <summary>Parsed <c>dump-super -f image</c> of the v6.2 oracle (cached).</summary>
    public static ProgsSuper DumpSuperFull(string image) => DumpSuperFull(Progs.V62, image);

    /// <summary>Parsed <c>dump-super -f image</c> of <paramref name="oracle"/> (cached).</summary>
    public static ProgsSuper DumpSuperFull(ProgsOracle oracle, string image) =>
        supers.GetOrAdd(oracle.Name + "\0" + image, _ => new Lazy<ProgsSuper>(() => DumpSuperParser.Parse(DumpSuperText(oracle, image, "-f")))).Value;

    /// <summary>Parsed full dump-tree of the named mkfs fixture.</summary>
    public static IReadOnlyList<ProgsBlock> Fixture(string name) => DumpTree(MkfsFixtures.Get(name));

    /// <summary>Parsed dump-super -f of the named mkfs fixture.</summary>
    public static ProgsSuper FixtureSuper(string name) => DumpSuperFull(MkfsFixtures.Get(name));
}
