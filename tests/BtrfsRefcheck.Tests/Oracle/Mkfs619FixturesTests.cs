namespace BtrfsRefcheck.Tests.Oracle;

/// <summary>The mkfs 6.19 fixtures have the features they are named after (read back with v6.19's dump-super and dump-tree).</summary>
public class Mkfs619FixturesTests
{
    public static IEnumerable<object[]> Names => Mkfs619Fixtures.All.Select(s => new object[] { s.Name });

    [Progs619Theory]
    [MemberData(nameof(Names))]
    public void EachFixtureHasItsFeatures(string name)
    {
        var spec = Mkfs619Fixtures.Spec(name);
        var images = Mkfs619Fixtures.Get(name);
        Assert.Equal(spec.Devices, images.Count);
        var super = OracleCache.DumpSuperFull(Progs.V619, images[0]);
        Assert.Equal(spec.Uuid, super["fsid"]);
        Assert.Equal((ulong)spec.Devices, super.U64("num_devices"));
        Assert.Equal((ulong)spec.ImageSize * (ulong)spec.Devices, super.U64("total_bytes"));
        var compatRo = super.FlagNames.GetValueOrDefault("compat_ro_flags", []);
        var incompat = super.FlagNames.GetValueOrDefault("incompat_flags", []);
        Assert.Contains("BLOCK_GROUP_TREE", compatRo); // v6.19's default
        Assert.Contains("FREE_SPACE_TREE", compatRo);
        switch (name)
        {
            case "squota": Assert.Contains("SIMPLE_QUOTA", incompat); break;
            case "rst-dup" or "rst-raid1": Assert.Contains("RAID_STRIPE_TREE", incompat); break;
            case "zoned": Assert.Contains("ZONED", incompat); break;
            default: Assert.DoesNotContain(incompat, f => f is "SIMPLE_QUOTA" or "RAID_STRIPE_TREE" or "ZONED"); break;
        }

        var blocks = OracleCache.DumpTree(Progs.V619, images[0]);
        var rootItems = blocks.Where(b => b.TreeHeader == "root tree").SelectMany(b => b.Items)
            .Where(i => i.Key.Type == ProgsKeyFormat.RootItem).Select(i => i.Key.ObjectId).ToHashSet();
        Assert.Contains(ProgsKeyFormat.BlockGroupTree, rootItems);
        Assert.Equal(name is "quota" or "squota", rootItems.Contains(ProgsKeyFormat.QuotaTree));
        Assert.Equal(name.StartsWith("rst-", StringComparison.Ordinal), rootItems.Contains(ProgsKeyFormat.RaidStripeTree));
        // block groups live in the block group tree, none in the extent tree
        Assert.Contains(blocks, b => b.TreeHeaderObjectId == ProgsKeyFormat.BlockGroupTree && b.Items.Any(i => i.Key.Type == ProgsKeyFormat.BlockGroupItem));
        Assert.DoesNotContain(blocks, b => b.TreeHeaderObjectId == ProgsKeyFormat.ExtentTree && b.Items.Any(i => i.Key.Type == ProgsKeyFormat.BlockGroupItem));
        bool hasData = blocks.Where(b => b.TreeHeaderObjectId == ProgsKeyFormat.ExtentTree).SelectMany(b => b.Items).Any(i => i.Extent is { IsData: true });
        Assert.Equal(spec.RootDir, hasData);
        Assert.Equal(spec.RootDir, spec.WhyNoContent == null);
    }
}
