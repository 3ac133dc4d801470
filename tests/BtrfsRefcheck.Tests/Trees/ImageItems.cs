using System.Text.RegularExpressions;
using BtrfsRefcheck.Checks;
using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Tests.Oracle;
using BtrfsRefcheck.Trees;
using BtrfsRefcheck.Volume;

namespace BtrfsRefcheck.Tests.TreesTests;

/// <summary>One item of a real image, where the walk found it.</summary>
internal sealed record LeafItem(TreeRoot Tree, ulong Leaf, int Slot, int NrItems, BtrfsKey Key, byte[] Data)
{
    public override string ToString() => $"{Tree.Name} leaf {Leaf} slot {Slot}/{NrItems} key {Key.ToDisplayString()} size {Data.Length}";
}

/// <summary>Reads every item of every tree of an image (read-only), and runs the whole checker.</summary>
internal static class ImageItems
{
    /// <summary>Every leaf item, each leaf once (blocks shared by snapshots are visited under the first tree that reaches them).</summary>
    public static List<LeafItem> All(IReadOnlyList<string> paths)
    {
        using var vol = BtrfsVolume.Open(paths, null, new FindingBag());
        var scratch = new FindingBag();
        var collector = new Collector();
        var walker = new TreeWalker(vol, scratch);
        var visited = new HashSet<ulong>();
        foreach (var root in TreeRoots.Enumerate(vol, scratch))
            walker.Walk(root, collector, new WalkOptions { Visited = visited });
        return collector.Items;
    }

    /// <summary><see cref="Checker.Run"/> over the image; every finding, the volume's included.</summary>
    public static List<Finding> Check(IReadOnlyList<string> paths)
    {
        var findings = new FindingBag();
        using var vol = BtrfsVolume.Open(paths, null, findings);
        BtrfsRefcheck.Tests.Diagnostics.PassCodes.AssertDeclared(Checker.Run(vol, findings));
        return findings.Items.ToList();
    }

    private sealed class Collector : ITreeVisitor
    {
        public List<LeafItem> Items { get; } = [];

        public bool OnBlock(in BlockContext ctx, TreeBlock block, bool valid)
        {
            var view = block.View;
            if (!valid || !view.IsLeaf) return valid;
            for (int i = 0; i < view.Count; i++)
                Items.Add(new LeafItem(ctx.Tree, block.Logical, i, view.Count, view.ItemKey(i), view.ItemData(i).ToArray()));
            return true;
        }
    }
}

/// <summary>The clean images: every mkfs fixture (<c>mkfs:NAME</c>) and every committed kernel image
/// (<c>kernel:NAME</c>; <c>X-devN</c> images form the multi-device set <c>kernel:X</c>).</summary>
internal static class CleanImages
{
    private static readonly Regex DevSuffix = new(@"^(?<set>.+)-dev(?<n>\d+)$", RegexOptions.CultureInvariant);

    public static IEnumerable<object[]> Mkfs => MkfsFixtures.All.Select(s => new object[] { "mkfs:" + s.Name });

    public static IEnumerable<object[]> Kernel => KernelSets().Keys.Order(StringComparer.Ordinal).Select(k => new object[] { k });

    public static IReadOnlyList<string> Paths(string id) =>
        id.StartsWith("mkfs:", StringComparison.Ordinal)
            ? [MkfsFixtures.Get(id["mkfs:".Length..])]
            : KernelSets()[id].Select(KernelFixtures.Expand).ToList();

    private static Dictionary<string, List<string>> KernelSets()
    {
        var sets = new Dictionary<string, List<(int N, string Gz)>>(StringComparer.Ordinal);
        foreach (var gz in KernelFixtures.Present())
        {
            var name = gz[..^".img.gz".Length];
            var m = DevSuffix.Match(name);
            var set = "kernel:" + (m.Success ? m.Groups["set"].Value : name);
            if (!sets.TryGetValue(set, out var list)) sets[set] = list = [];
            list.Add((m.Success ? int.Parse(m.Groups["n"].Value) : 0, gz));
        }
        return sets.ToDictionary(kv => kv.Key, kv => kv.Value.OrderBy(x => x.N).Select(x => x.Gz).ToList(), StringComparer.Ordinal);
    }
}
