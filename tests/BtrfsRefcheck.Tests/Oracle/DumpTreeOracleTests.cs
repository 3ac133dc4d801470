using System.Text.RegularExpressions;

namespace BtrfsRefcheck.Tests.Oracle;

/// <summary>
/// Runs the installed <c>btrfs inspect-internal dump-tree</c> on mkfs fixtures and checks that the parsed output is
/// structurally self-consistent (counts, key order, parent/child links, backrefs of a fresh filesystem).
/// </summary>
public class DumpTreeOracleTests
{
    /// <summary>Fixtures used for the structural checks: default, small nodes (multi-level trees), non-skinny, mixed.</summary>
    public static IEnumerable<object[]> StructureFixtures =>
        new[] { "crc32c", "node4k", "noskinny", "mixed", "node64k" }.Select(n => new object[] { n });

    private static readonly Regex FileExtentDisk = new(@"^extent data disk byte (\d+) nr (\d+)$");

    [ProgsTheory]
    [MemberData(nameof(StructureFixtures))]
    public void ItemCounts_MatchHeaders(string fixture)
    {
        var blocks = OracleCache.Fixture(fixture);
        Assert.NotEmpty(blocks);
        foreach (var b in blocks)
        {
            if (b.IsLeaf)
            {
                Assert.Equal(b.NrItems, b.Items.Count);
                Assert.Empty(b.Ptrs);
                Assert.Equal(Enumerable.Range(0, b.NrItems), b.Items.Select(i => i.Slot));
            }
            else
            {
                Assert.Equal(b.NrItems, b.Ptrs.Count);
                Assert.Empty(b.Items);
                Assert.Equal(Enumerable.Range(0, b.NrItems), b.Ptrs.Select(p => p.Slot));
            }
        }
    }

    [ProgsTheory]
    [MemberData(nameof(StructureFixtures))]
    public void Keys_AreStrictlyAscendingWithinEachBlock(string fixture)
    {
        foreach (var b in OracleCache.Fixture(fixture))
        {
            var keys = b.IsLeaf ? b.Items.Select(i => i.Key).ToList() : b.Ptrs.Select(p => p.Key).ToList();
            for (int i = 1; i < keys.Count; i++)
                Assert.True(keys[i - 1] < keys[i], $"block {b.Bytenr} slot {i}: {keys[i - 1]} !< {keys[i]}");
        }
    }

    [ProgsTheory]
    [MemberData(nameof(StructureFixtures))]
    public void KeyText_RoundTripsThroughFormatter(string fixture)
    {
        int n = 0;
        foreach (var b in OracleCache.Fixture(fixture))
        {
            foreach (var i in b.Items)
            {
                Assert.Equal(i.KeyText, ProgsKeyFormat.Format(i.Key));
                n++;
            }
            foreach (var p in b.Ptrs)
                Assert.Equal(p.KeyText, ProgsKeyFormat.Format(p.Key));
            Assert.Equal(b.OwnerText, ProgsKeyFormat.FormatObjectId(b.Owner, 0));
        }
        Assert.True(n > 100, $"only {n} items");
    }

    [ProgsTheory]
    [MemberData(nameof(StructureFixtures))]
    public void BlockHeaders_AreConsistentWithTreeAndSuper(string fixture)
    {
        var blocks = OracleCache.Fixture(fixture);
        var super = OracleCache.FixtureSuper(fixture);
        var fsid = MkfsFixtures.Spec(fixture).Uuid;
        Assert.Equal(blocks.Count, blocks.Select(b => b.Bytenr).Distinct().Count());
        foreach (var b in blocks)
        {
            Assert.Equal(fsid, b.FsUuid);
            Assert.NotNull(b.ChunkUuid);
            Assert.Equal(1UL, b.Flags & 1); // WRITTEN
            Assert.Equal("WRITTEN", b.FlagsText);
            Assert.Equal(1, b.BackrefRevision);
            Assert.True(b.Generation <= super.U64("generation"));
            Assert.NotNull(b.TreeHeaderObjectId);
            Assert.Equal(b.TreeHeaderObjectId, b.Owner); // fresh image: no shared/relocated blocks
            Assert.True(b.FreeSpace >= 0);
        }
        var rootTree = blocks.Where(b => b.TreeHeader == "root tree").ToList();
        Assert.Equal(super.U64("root"), rootTree[0].Bytenr);
        Assert.Equal((int)super.U64("root_level"), rootTree[0].Level);
        var chunkTree = blocks.Where(b => b.TreeHeader == "chunk tree").ToList();
        Assert.Equal(super.U64("chunk_root"), chunkTree[0].Bytenr);
    }

    [ProgsTheory]
    [MemberData(nameof(StructureFixtures))]
    public void NodePointers_MatchChildBlocks(string fixture)
    {
        var blocks = OracleCache.Fixture(fixture);
        var byBytenr = blocks.ToDictionary(b => b.Bytenr);
        var referenced = new HashSet<ulong>();
        foreach (var node in blocks.Where(b => !b.IsLeaf))
        {
            foreach (var p in node.Ptrs)
            {
                Assert.True(byBytenr.TryGetValue(p.BlockPtr, out var child), $"child {p.BlockPtr} of {node.Bytenr} not printed");
                Assert.Equal(node.Level - 1, child!.Level);
                Assert.Equal(p.Generation, child.Generation);
                Assert.Equal(node.Owner, child.Owner);
                Assert.Equal(node.TreeHeader, child.TreeHeader);
                var firstKey = child.IsLeaf ? child.Items[0].Key : child.Ptrs[0].Key;
                Assert.Equal(p.Key, firstKey);
                Assert.True(referenced.Add(p.BlockPtr), $"block {p.BlockPtr} referenced twice");
            }
        }
        // every tree has exactly one unreferenced block: its root
        foreach (var tree in blocks.GroupBy(b => b.TreeHeader))
            Assert.Single(tree, b => !referenced.Contains(b.Bytenr));
    }

    [ProgsFact]
    public void SmallNodeFixture_HasMultiLevelTrees()
    {
        var blocks = OracleCache.Fixture("node4k");
        Assert.Contains(blocks, b => b.Level >= 1 && b.Owner == ProgsKeyFormat.FsTree);
        Assert.Contains(blocks, b => b.Level >= 1 && b.Owner == ProgsKeyFormat.ExtentTree);
    }

    [ProgsTheory]
    [MemberData(nameof(StructureFixtures))]
    public void RootTree_HasRootItemsForCoreTrees(string fixture)
    {
        var rootItems = OracleCache.Fixture(fixture)
            .Where(b => b.TreeHeader == "root tree")
            .SelectMany(b => b.Items)
            .Where(i => i.Key.Type == ProgsKeyFormat.RootItem)
            .Select(i => i.Key.ObjectId)
            .ToHashSet();
        foreach (var id in new[] { ProgsKeyFormat.ExtentTree, ProgsKeyFormat.DevTree, ProgsKeyFormat.FsTree,
                     ProgsKeyFormat.CsumTree, ProgsKeyFormat.UuidTree, ProgsKeyFormat.FreeSpaceTree, ProgsKeyFormat.DataRelocTree })
            Assert.Contains(id, rootItems);

        // every tree printed under a "... tree key (X ROOT_ITEM o)" header has that ROOT_ITEM in the root tree
        var headerTrees = OracleCache.Fixture(fixture).Where(b => b.TreeHeaderKey is not null).Select(b => b.TreeHeaderObjectId!.Value).ToHashSet();
        Assert.Subset(rootItems, headerTrees);
    }

    [ProgsTheory]
    [MemberData(nameof(StructureFixtures))]
    public void EveryTreeBlock_HasOneTreeBlockExtentItemWithItsOwnerAsOnlyRef(string fixture)
    {
        var blocks = OracleCache.Fixture(fixture);
        var super = OracleCache.FixtureSuper(fixture);
        var nodesize = super.U64("nodesize");
        bool skinny = super.FlagNames.GetValueOrDefault("incompat_flags", []).Contains("SKINNY_METADATA");
        var extentItems = blocks.Where(b => b.Owner == ProgsKeyFormat.ExtentTree).SelectMany(b => b.Items)
            .Where(i => i.Extent is { IsTreeBlock: true })
            .ToDictionary(i => i.Key.ObjectId);

        Assert.Equal(blocks.Count, extentItems.Count);
        foreach (var b in blocks)
        {
            Assert.True(extentItems.TryGetValue(b.Bytenr, out var item), $"no extent item for block {b.Bytenr}");
            var e = item!.Extent!;
            if (skinny)
            {
                Assert.Equal(new ProgsKey(b.Bytenr, ProgsKeyFormat.MetadataItem, (ulong)b.Level), item.Key);
                Assert.Null(e.TreeBlockKey);
            }
            else
            {
                Assert.Equal(new ProgsKey(b.Bytenr, ProgsKeyFormat.ExtentItem, nodesize), item.Key);
                Assert.NotNull(e.TreeBlockKey);
            }
            Assert.Equal(b.Level, e.TreeBlockLevel);
            Assert.Equal(["TREE_BLOCK"], e.Flags);
            Assert.Equal(1UL, e.Refs);
            Assert.Equal(e.Refs, (ulong)e.InlineRefs.Count);
            var r = Assert.Single(e.InlineRefs);
            Assert.Equal(ProgsKeyFormat.TreeBlockRef, r.Type);
            Assert.Equal(b.Owner, r.Root);
            Assert.Equal(b.Generation, e.Generation);
        }
    }

    [ProgsTheory]
    [MemberData(nameof(StructureFixtures))]
    public void DataExtentRefs_MatchFileExtentItems(string fixture)
    {
        var blocks = OracleCache.Fixture(fixture);
        // (disk bytenr) -> list of (root, inode, file offset) from EXTENT_DATA items in all subvolume trees
        var fileRefs = new Dictionary<ulong, List<(ulong Root, ulong Ino, ulong Offset)>>();
        foreach (var b in blocks.Where(b => b.Owner == ProgsKeyFormat.FsTree || b.Owner == ProgsKeyFormat.DataRelocTree))
        {
            foreach (var i in b.Items.Where(i => i.Key.Type == ProgsKeyFormat.ExtentData && i.Body.Count >= 2))
            {
                var m = FileExtentDisk.Match(i.Body[1]);
                if (!m.Success || m.Groups[1].Value == "0")
                    continue; // inline extent or hole
                var disk = ulong.Parse(m.Groups[1].Value);
                if (!fileRefs.TryGetValue(disk, out var list))
                    fileRefs[disk] = list = [];
                list.Add((b.Owner, i.Key.ObjectId, i.Key.Offset)); // mkfs never writes partial-extent refs
            }
        }
        Assert.NotEmpty(fileRefs);

        var dataItems = blocks.Where(b => b.Owner == ProgsKeyFormat.ExtentTree).SelectMany(b => b.Items)
            .Where(i => i.Extent is { IsData: true }).ToList();
        Assert.Equal(fileRefs.Count, dataItems.Count);
        foreach (var item in dataItems)
        {
            var e = item.Extent!;
            Assert.Equal(ProgsKeyFormat.ExtentItem, item.Key.Type);
            Assert.Equal(["DATA"], e.Flags);
            Assert.True(fileRefs.TryGetValue(item.Key.ObjectId, out var refs), $"no file extent references {item.Key}");
            Assert.Equal((ulong)refs!.Count, e.Refs);
            Assert.Equal(e.Refs, e.InlineRefCountSum);
            Assert.All(e.InlineRefs, r => Assert.Equal(ProgsKeyFormat.ExtentDataRef, r.Type));
            Assert.Equal(
                refs.Select(r => (r.Root, r.Ino, r.Offset)).Order(),
                e.InlineRefs.SelectMany(r => Enumerable.Repeat((r.Root, r.ObjectId, r.Offset), (int)r.Count)).Order());
        }

        // a fresh mkfs image has no keyed back references
        Assert.DoesNotContain(blocks.SelectMany(b => b.Items), i => i.Key.Type is ProgsKeyFormat.TreeBlockRef
            or ProgsKeyFormat.SharedBlockRef or ProgsKeyFormat.ExtentDataRef or ProgsKeyFormat.SharedDataRef);
    }

    [ProgsFact]
    public void TreeOption_PrintsOnlyThatTree()
    {
        var image = MkfsFixtures.Get("node4k");
        var full = OracleCache.Fixture("node4k").Where(b => b.Owner == ProgsKeyFormat.FsTree).ToList();
        var only = DumpTreeParser.Parse(Progs.DumpTree(image, "-t", "5"));
        Assert.Equal(full.Select(b => b.Bytenr), only.Select(b => b.Bytenr));
        Assert.All(only, b => Assert.Equal(ProgsKeyFormat.FsTree, b.TreeHeaderObjectId));
        Assert.Equal(full.Sum(b => b.Items.Count), only.Sum(b => b.Items.Count));

        var chunk = DumpTreeParser.Parse(Progs.DumpTree(image, "-t", "chunk"));
        Assert.All(chunk, b => Assert.Equal("chunk tree", b.TreeHeader));
        Assert.Contains(chunk.SelectMany(b => b.Items), i => i.Chunk is not null);
    }

    [ProgsFact]
    public void BlockOption_PrintsTheSameBlockWithoutTreeHeader()
    {
        var image = MkfsFixtures.Get("node4k");
        var full = OracleCache.Fixture("node4k");
        foreach (var expected in new[] { full.First(b => !b.IsLeaf), full.First(b => b.IsLeaf && b.Owner == ProgsKeyFormat.ExtentTree) })
        {
            var b = Assert.Single(DumpTreeParser.Parse(Progs.DumpTree(image, "-b", expected.Bytenr.ToString())));
            Assert.Null(b.TreeHeader);
            Assert.Equal(expected.Bytenr, b.Bytenr);
            Assert.Equal(expected.Level, b.Level);
            Assert.Equal(expected.Generation, b.Generation);
            Assert.Equal(expected.Owner, b.Owner);
            Assert.Equal(expected.Items.Select(i => (i.Key, i.ItemOff, i.ItemSize)), b.Items.Select(i => (i.Key, i.ItemOff, i.ItemSize)));
            Assert.Equal(expected.Ptrs.Select(p => (p.Key, p.BlockPtr, p.Generation)), b.Ptrs.Select(p => (p.Key, p.BlockPtr, p.Generation)));
        }
    }

    [ProgsFact]
    public void ChunkItems_MatchSysChunkArrayAndDevExtents()
    {
        var blocks = OracleCache.Fixture("crc32c");
        var super = OracleCache.FixtureSuper("crc32c");
        var chunks = blocks.Where(b => b.Owner == ProgsKeyFormat.ChunkTree).SelectMany(b => b.Items)
            .Where(i => i.Chunk is not null).Select(i => i.Chunk!).ToList();
        Assert.NotEmpty(chunks);
        foreach (var sys in super.SysChunks)
            Assert.Contains(chunks, c => c.Key == sys.Key && c.Length == sys.Length && c.Type == sys.Type
                                       && c.Stripes.SequenceEqual(sys.Stripes));
        var devExtents = blocks.Where(b => b.Owner == ProgsKeyFormat.DevTree).SelectMany(b => b.Items)
            .Where(i => i.Key.Type == ProgsKeyFormat.DevExtent).Select(i => (i.Key.ObjectId, i.Key.Offset)).ToHashSet();
        foreach (var c in chunks)
            foreach (var s in c.Stripes)
                Assert.Contains((s.DevId, s.Offset), devExtents);
        Assert.Equal(chunks.Sum(c => c.Stripes.Count), devExtents.Count);
    }
}
