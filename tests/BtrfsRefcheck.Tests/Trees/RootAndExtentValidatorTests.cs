using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Format.Items;
using BtrfsRefcheck.Trees.ItemValidation;
using static BtrfsRefcheck.Tests.TreesTests.ItemBytes;

namespace BtrfsRefcheck.Tests.TreesTests;

/// <summary>ROOT_ITEM, ROOT_REF / ROOT_BACKREF, EXTENT_ITEM / METADATA_ITEM and keyed back-refs.</summary>
public class RootAndExtentValidatorTests
{
    private static ItemCheckContext Root(ulong id = ObjectIds.FsTree, ulong offset = 0) =>
        TestContexts.For(Key(id, ItemType.RootItem, offset), ObjectIds.RootTree);

    [Fact]
    public void ValidRootItemsPass()
    {
        Validate.Clean(Root(), RootItem());
        Validate.Clean(Root(), RootItem(size: BtrfsRefcheck.Format.Items.RootItem.LegacySize, genV2: 0)); // before generation_v2
        Validate.Clean(Root(256, 90), RootItem(flags: 1, level: 7, dropLevel: 7, lastSnapshot: 100, inodeFlags: 1UL << 31));
        Validate.Clean(Root(ObjectIds.TreeReloc, 256), RootItem());
    }

    [Fact]
    public void RelocTreeOfANonSubvolume() =>
        Validate.One(FindingCode.RootItemInvalid, "relocation tree for EXTENT_TREE", Root(ObjectIds.TreeReloc, ObjectIds.ExtentTree), RootItem());

    [Fact]
    public void RelocTreeOfRootZero() => Validate.One(FindingCode.RootItemInvalid, "relocation tree for 0", Root(ObjectIds.TreeReloc, 0), RootItem());

    [Fact]
    public void RootIdZero() => Validate.One(FindingCode.RootItemInvalid, "root id 0", Root(0), RootItem());

    [Theory]
    [InlineData(240)]
    [InlineData(438)]
    [InlineData(440)]
    public void RootItemWrongSize(int size) => Validate.One(FindingCode.RootItemInvalid, $"invalid item size {size}", Root(), RootItem(size: size));

    [Fact]
    public void RootItemShorterThanLegacyIsLeftToRootEnumeration()
    {
        Validate.Clean(Root(), RootItem(size: 200));
        Validate.One(FindingCode.RootItemInvalid, "invalid item size 200", Root() with { Tree = ObjectIds.UuidTree }, RootItem(size: 200));
    }

    [Theory]
    [InlineData("root generation")]
    [InlineData("root generation_v2")]
    [InlineData("root last_snapshot")]
    [InlineData("root inode generation")]
    [InlineData("root inode transid")]
    public void RootGenerationsNewerThanSuper(string field)
    {
        var d = field switch
        {
            "root generation" => RootItem(gen: Gen + 1),
            "root generation_v2" => RootItem(genV2: Gen + 1),
            "root last_snapshot" => RootItem(lastSnapshot: Gen + 1),
            "root inode transid" => RootItem(inodeTransid: Gen + 1),
            _ => RootItem(inodeGen: Gen + 1),
        };
        Validate.One(FindingCode.ItemGenerationTooNew, $"{field} 101", Root(), d);
    }

    [Fact]
    public void RootBytenrNotAligned() => Validate.One(FindingCode.RootItemInvalid, "root bytenr 30425089", Root(), RootItem(bytenr: 30425089));

    [Fact]
    public void RootLevelTooHigh() => Validate.One(FindingCode.RootItemInvalid, "invalid root level 8", Root(), RootItem(level: 8));

    [Fact]
    public void RootDropLevelTooHigh() => Validate.One(FindingCode.RootItemInvalid, "invalid drop_level 8", Root(), RootItem(dropLevel: 8));

    [Fact]
    public void RootUnknownFlags() => Validate.One(FindingCode.RootItemInvalid, "unknown root flags 0x2", Root(), RootItem(flags: 3));

    [Fact]
    public void RootInodeUnknownFlags() => Validate.One(FindingCode.InodeItemInvalid, "root inode flags", Root(), RootItem(inodeFlags: 1UL << 20));

    // ---- ROOT_REF / ROOT_BACKREF

    private static ItemCheckContext Ref(ItemType t = ItemType.RootRef) => TestContexts.For(Key(5, t, 256), ObjectIds.RootTree);

    [Fact]
    public void ValidRootRefsPass()
    {
        Validate.Clean(Ref(), RootRef("subvol"));
        Validate.Clean(Ref(ItemType.RootBackref), RootRef(new string('s', 255)));
    }

    [Fact]
    public void RootRefTooShort() => Validate.One(FindingCode.RootRefInvalid, "invalid item size 17", Ref(), Resize(RootRef(""), 17));

    [Fact]
    public void RootRefEmptyName()
    {
        var d = RootRef("x", nameLen: 0);
        Assert.Equal(2, Validate.Run(Ref(), d).Count); // empty name, and one byte more than the name says
        Validate.One(FindingCode.RootRefInvalid, "empty name", Ref(ItemType.RootBackref), RootRef(""));
    }

    [Fact]
    public void RootRefNameTooLong()
    {
        string n = new('n', 256);
        Validate.One(FindingCode.RootRefInvalid, "name_len 256", Ref(), RootRef(n));
    }

    [Fact]
    public void RootRefSizeDoesNotMatchTheName()
    {
        var f = Validate.One(FindingCode.RootRefInvalid, "does not match name_len 6", Ref(), RootRef("subvol", extra: 1));
        Assert.Equal(("18 + 6 = 24", "25"), (f.Expected, f.Found));
        Validate.One(FindingCode.RootRefInvalid, "does not match name_len 7", Ref(), RootRef("subvol", nameLen: 7));
    }

    // ---- EXTENT_ITEM / METADATA_ITEM

    private const ulong Bytenr = 30425088;
    private static ItemCheckContext Ext(ItemType t, ulong offset, ulong bytenr = Bytenr, bool skinny = true, bool squota = false)
    {
        var c = TestContexts.For(new BtrfsKey(bytenr, (byte)t, offset), ObjectIds.ExtentTree);
        ulong f = c.IncompatFlags;
        f = skinny ? f | Features.IncompatSkinnyMetadata : f & ~Features.IncompatSkinnyMetadata;
        if (squota) f |= Features.IncompatSimpleQuota;
        return c with { IncompatFlags = f };
    }

    private static ItemCheckContext Data(ulong length = 8192) => Ext(ItemType.ExtentItem, length);
    private static ItemCheckContext Meta(ulong level = 0) => Ext(ItemType.MetadataItem, level);
    private static readonly (BtrfsKey, byte) Info = (Key(256, ItemType.InodeItem, 0), 0);

    [Fact]
    public void ValidExtentItemsPass()
    {
        Validate.Clean(Meta(1), Extent(1, FlagTree, inline: InlineTreeBlockRef(5)));
        Validate.Clean(Meta(), Extent(2, FlagTree | FlagFull, inline: [InlineSharedBlockRef(30441472), InlineSharedBlockRef(30425088)]));
        Validate.Clean(Ext(ItemType.ExtentItem, 16384, skinny: false), Extent(1, FlagTree, info: Info, inline: InlineTreeBlockRef(2)));
        Validate.Clean(Data(), Extent(3, FlagData, inline: [InlineDataRef(5, 257, 0, 2), InlineSharedDataRef(30425088, 1)]));
        Validate.Clean(Data(), Extent(1, FlagData, inline: InlineDataRef(ObjectIds.RootTree, 260, 0, 1))); // v1 space cache
        Validate.Clean(Data(), Extent(1, FlagData, inline: InlineDataRef(ObjectIds.DataRelocTree, 257, 4096, 1)));
        Validate.Clean(Ext(ItemType.ExtentItem, 8192, squota: true), Extent(1, FlagData, inline: [InlineDataRef(5, 257, 0, 1), InlineOwnerRef(5)]));
    }

    [Fact]
    public void MetadataItemWithoutSkinnyMetadata() =>
        Validate.One(FindingCode.ExtentItemMalformed, "without SKINNY_METADATA", Ext(ItemType.MetadataItem, 0, skinny: false), Extent(1, FlagTree, inline: InlineTreeBlockRef(5)));

    [Fact]
    public void ExtentBytenrNotAligned() =>
        Validate.One(FindingCode.ExtentItemMalformed, "extent bytenr (key objectid) 30425089", Ext(ItemType.MetadataItem, 0, Bytenr + 1), Extent(1, FlagTree, inline: InlineTreeBlockRef(5)));

    [Fact]
    public void MetadataItemLevelTooHigh() =>
        Validate.One(FindingCode.ExtentItemMalformed, "invalid tree level 8 in the key offset", Meta(8), Extent(1, FlagTree, inline: InlineTreeBlockRef(5)));

    [Fact]
    public void TreeBlockInfoLevelTooHigh() =>
        Validate.One(FindingCode.ExtentItemMalformed, "invalid level 8 in tree_block_info", Ext(ItemType.ExtentItem, 16384, skinny: false),
            Extent(1, FlagTree, info: (Key(256, ItemType.InodeItem, 0), 8), inline: InlineTreeBlockRef(5)));

    [Fact]
    public void ExtentGenerationNewerThanSuper() =>
        Validate.One(FindingCode.ItemGenerationTooNew, "extent generation 101", Meta(), Extent(1, FlagTree, gen: Gen + 1, inline: InlineTreeBlockRef(5)));

    [Fact]
    public void RefsZero() => Validate.One(FindingCode.ExtentItemMalformed, "refs 0", Data(), Extent(0, FlagData));

    [Fact]
    public void DataExtentLengthZero() => Validate.One(FindingCode.ExtentItemMalformed, "data extent length (key offset) 0", Data(0), Extent(1, FlagData, inline: InlineDataRef(5, 257, 0, 1)));

    [Fact]
    public void DataExtentLengthNotAligned() => Validate.One(FindingCode.ExtentItemMalformed, "not aligned", Data(8193), Extent(1, FlagData, inline: InlineDataRef(5, 257, 0, 1)));

    [Fact]
    public void DataExtentWithFullBackref() =>
        Validate.One(FindingCode.ExtentItemMalformed, "FULL_BACKREF", Data(), Extent(1, FlagData | FlagFull, inline: InlineSharedDataRef(30425088, 1)));

    [Fact]
    public void InlineSharedBlockRefParentNotAligned() =>
        Validate.One(FindingCode.ExtentItemMalformed, "names parent 30425089", Meta(), Extent(1, FlagTree | FlagFull, inline: InlineSharedBlockRef(30425089)));

    [Fact]
    public void InlineSharedDataRefParentZero() =>
        Validate.One(FindingCode.ExtentItemMalformed, "names parent 0", Data(), Extent(1, FlagData, inline: InlineSharedDataRef(0, 1)));

    [Fact]
    public void InlineSharedDataRefCountZero() =>
        Validate.One(FindingCode.ExtentItemMalformed, "has count 0", Data(), Extent(1, FlagData, inline: [InlineSharedDataRef(30425088, 0), InlineDataRef(5, 257, 0, 1)]));

    [Fact]
    public void InlineDataRefOfATreeWithoutFiles() =>
        Validate.One(FindingCode.ExtentItemMalformed, "names root EXTENT_TREE", Data(), Extent(1, FlagData, inline: InlineDataRef(ObjectIds.ExtentTree, 257, 0, 1)));

    [Fact]
    public void InlineDataRefInodeOutOfRange() =>
        Validate.One(FindingCode.ExtentItemMalformed, "names inode 255", Data(), Extent(1, FlagData, inline: InlineDataRef(5, 255, 0, 1)));

    [Fact]
    public void InlineDataRefOffsetNotAligned() =>
        Validate.One(FindingCode.ExtentItemMalformed, "file offset 100 not aligned", Data(), Extent(1, FlagData, inline: InlineDataRef(5, 257, 100, 1)));

    [Fact]
    public void InlineDataRefCountZero() =>
        Validate.One(FindingCode.ExtentItemMalformed, "has count 0", Data(), Extent(1, FlagData, inline: [InlineDataRef(5, 257, 0, 0), InlineSharedDataRef(30425088, 1)]));

    [Fact]
    public void OwnerRefWithoutSimpleQuotaIsAWarning() =>
        Validate.One(FindingCode.ExtentItemMalformed, "without SIMPLE_QUOTA", Data(), Extent(1, FlagData, inline: [InlineDataRef(5, 257, 0, 1), InlineOwnerRef(5)]),
            severity: Severity.Warning);

    /// <summary>One ExtentItemMalformed at the extent (bytenr = the key objectid, not the leaf) whose message holds <paramref name="text"/>.</summary>
    private static void AtExtent(string text, ItemType type, ulong offset, byte[] data, ulong bytenr = 13631488, ulong tree = ObjectIds.ExtentTree)
    {
        var c = tree == ObjectIds.ExtentTree ? Ext(type, offset, bytenr) : TestContexts.For(new BtrfsKey(bytenr, (byte)type, offset), tree);
        var f = Validate.Unplaced(c, data);
        Assert.True(f.Count == 1, $"expected one finding, got {f.Count}:\n  " + string.Join("\n  ", f));
        Assert.Equal((FindingCode.ExtentItemMalformed, bytenr, ObjectIds.ExtentTree, c.Slot, c.Key), (f[0].Code, f[0].Bytenr!.Value, f[0].Tree!.Value, f[0].Slot!.Value, f[0].Key!.Value));
        Assert.Contains(text, f[0].Message);
    }

    [Fact]
    public void WhatKeepsAnExtentItemFromBeingDecodedIsReportedAtTheExtent()
    {
        AtExtent("EXTENT_ITEM of 23 bytes, need at least 24", ItemType.ExtentItem, 8192, new byte[23]);
        AtExtent("must have exactly one of DATA and TREE_BLOCK", ItemType.MetadataItem, 0, Extent(1, FlagData | FlagTree));
        AtExtent("METADATA_ITEM without the TREE_BLOCK flag", ItemType.MetadataItem, 0, Extent(1, FlagData, inline: InlineDataRef(5, 257, 0, 1)));
        AtExtent("the inline refs after it are not checked", ItemType.ExtentItem, 8192, Extent(1, FlagData, inline: InlineDataRef(5, 257, 0, 1)[..20]));
        AtExtent("too short for tree_block_info", ItemType.ExtentItem, 16384, Extent(1, FlagTree));
        Assert.Equal(ExtentItemShape.TooShort, ExtentItemValidator.ShapeOf(new BtrfsKey(1, (byte)ItemType.ExtentItem, 8192), new byte[23]));
        Assert.Equal(ExtentItemShape.NoTreeBlockInfo, ExtentItemValidator.ShapeOf(new BtrfsKey(1, (byte)ItemType.ExtentItem, 16384), Extent(1, FlagTree)));
        Assert.Equal(ExtentItemShape.Decodable, ExtentItemValidator.ShapeOf(new BtrfsKey(1, (byte)ItemType.MetadataItem, 0), Extent(1, FlagTree)));
    }

    [Fact]
    public void WhatTheExtentReferencesPassDecidesIsNotReported()
    {
        Validate.Clean(Data(), Extent(1, FlagData, inline: [InlineDataRef(5, 257, 0, 1), [177, 0, 0]])); // unknown inline type: 508
        Validate.Clean(Meta(), Extent(2, FlagTree, inline: [InlineTreeBlockRef(5), InlineTreeBlockRef(7)])); // out of order: 507
        Validate.Clean(Meta(), Extent(1, FlagTree, inline: [InlineTreeBlockRef(5), InlineTreeBlockRef(5)]));  // refs below inline refs: 503
        // outside the extent tree an extent item is no extent's record: a short one is not decoded by anyone
        Validate.Clean(TestContexts.For(new BtrfsKey(Bytenr, (byte)ItemType.ExtentItem, 8192), ObjectIds.CsumTree), new byte[23]);
    }

    // ---- keyed back-refs

    private static ItemCheckContext Keyed(ItemType t, ulong offset, ulong bytenr = Bytenr, ulong tree = ObjectIds.ExtentTree) =>
        TestContexts.For(new BtrfsKey(bytenr, (byte)t, offset), tree);

    [Fact]
    public void ValidKeyedRefsPass()
    {
        Validate.Clean(Keyed(ItemType.TreeBlockRef, 5), []);
        Validate.Clean(Keyed(ItemType.SharedBlockRef, 30441472), []);
        Validate.Clean(Keyed(ItemType.SharedDataRef, 30441472), [1, 0, 0, 0]);
        Validate.Clean(Keyed(ItemType.ExtentDataRef, 12345), DataRef(5, 257, 0, 1));
        Validate.Clean(Keyed(ItemType.ExtentDataRef, 12345), Concat(DataRef(5, 257, 0, 1), DataRef(256, 300, 4096, 2))); // hash collision
    }

    [Fact]
    public void KeyedRefBytenrNotAligned() => Validate.One(FindingCode.KeyedBackrefInvalid, "extent bytenr (key objectid)", Keyed(ItemType.TreeBlockRef, 5, Bytenr + 4), []);

    [Fact]
    public void TreeBlockRefRootZero() => Validate.One(FindingCode.KeyedBackrefInvalid, "root id (key offset) 0", Keyed(ItemType.TreeBlockRef, 0), []);

    [Theory]
    [InlineData(ItemType.SharedBlockRef, 0UL)]
    [InlineData(ItemType.SharedBlockRef, 30441473UL)]
    [InlineData(ItemType.SharedDataRef, 0UL)]
    [InlineData(ItemType.SharedDataRef, 30441474UL)]
    public void SharedRefParentInvalid(ItemType t, ulong parent) =>
        Validate.One(FindingCode.KeyedBackrefInvalid, "parent block", Keyed(t, parent), t == ItemType.SharedDataRef ? [1, 0, 0, 0] : []);

    [Fact]
    public void SharedDataRefCountZero() => Validate.One(FindingCode.KeyedBackrefInvalid, "count 0", Keyed(ItemType.SharedDataRef, 30441472), [0, 0, 0, 0]);

    [Fact]
    public void SharedDataRefTooLarge() => Validate.One(FindingCode.KeyedBackrefInvalid, "invalid item size 5", Keyed(ItemType.SharedDataRef, 30441472), [1, 0, 0, 0, 0]);

    [Fact]
    public void ExtentDataRefSizeNotAMultiple() =>
        Validate.One(FindingCode.KeyedBackrefInvalid, "invalid item size 30", Keyed(ItemType.ExtentDataRef, 1), Concat(DataRef(5, 257, 0, 1), [0, 0]));

    [Theory]
    [InlineData(2UL, 257UL, 0UL, 1u, "names root EXTENT_TREE")]
    [InlineData(5UL, 5UL, 0UL, 1u, "names inode 5")]
    [InlineData(5UL, 257UL, 512UL, 1u, "file offset 512 not aligned")]
    [InlineData(5UL, 257UL, 0UL, 0u, "count 0")]
    public void ExtentDataRefFieldsInvalid(ulong root, ulong ino, ulong offset, uint count, string text) =>
        Validate.One(FindingCode.KeyedBackrefInvalid, text, Keyed(ItemType.ExtentDataRef, 1), Concat(DataRef(5, 257, 0, 1), DataRef(root, ino, offset, count)));

    [Fact]
    public void KeyedRefsThatCannotBeDecodedAreMalformedExtentsInTheExtentTree()
    {
        AtExtent("keyed TREE_BLOCK_REF has 1 bytes of data, expected 0", ItemType.TreeBlockRef, 5, [1]);
        AtExtent("keyed SHARED_DATA_REF has 2 bytes, expected 4", ItemType.SharedDataRef, 30441472, [1, 0]);
        AtExtent("keyed EXTENT_DATA_REF has 27 bytes, expected 28", ItemType.ExtentDataRef, 1, new byte[27]);
        Assert.False(KeyedRefValidator.Decodable(ItemType.SharedDataRef, 3));
        Assert.True(KeyedRefValidator.Decodable(ItemType.TreeBlockRef, 1));
        // outside the extent tree a wrong size is the keyed ref's own rule
        Validate.One(FindingCode.KeyedBackrefInvalid, "invalid item size 1", Keyed(ItemType.TreeBlockRef, 5, tree: ObjectIds.CsumTree), [1]);
    }
}
