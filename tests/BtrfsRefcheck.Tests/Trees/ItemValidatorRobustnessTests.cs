using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Trees;
using BtrfsRefcheck.Trees.ItemValidation;
using static BtrfsRefcheck.Tests.TreesTests.ItemBytes;

namespace BtrfsRefcheck.Tests.TreesTests;

/// <summary>Validators never throw, whatever the bytes: every item type the switch knows (and unknown ones), every
/// length from 0 to past a valid item, random content, with and without a previous item.</summary>
public class ItemValidatorRobustnessTests
{
    private static readonly (ItemType Type, ulong Offset, byte[] Valid)[] Samples =
    [
        (ItemType.InodeItem, 0, Inode()),
        (ItemType.InodeRef, 256, InodeRef((2, "name"), (3, "other"))),
        (ItemType.InodeExtref, ExtrefHash(256, "x"), InodeExtref((256, 2, "x"))),
        (ItemType.DirItem, NameHash("f"), DirEntry("f")),
        (ItemType.DirIndex, 2, DirEntry("f")),
        (ItemType.XattrItem, NameHash("user.x"), DirEntry("user.x", BtrfsKey.Min, type: 8, data: [1, 2])),
        (ItemType.ExtentData, 0, RegularExtent()),
        (ItemType.ExtentData, 0, InlineExtent(30)),
        (ItemType.ExtentCsum, 13631488, new byte[40]),
        (ItemType.RootItem, 0, RootItem()),
        (ItemType.RootRef, 256, RootRef("sv")),
        (ItemType.RootBackref, 5, RootRef("sv")),
        (ItemType.ExtentItem, 8192, Extent(2, FlagData, inline: [InlineDataRef(5, 257, 0, 1), InlineSharedDataRef(30425088, 1)])),
        (ItemType.ExtentItem, 16384, Extent(1, FlagTree, info: (Key(256, ItemType.InodeItem, 0), 0), inline: InlineTreeBlockRef(5))),
        (ItemType.MetadataItem, 0, Extent(2, FlagTree, inline: [InlineTreeBlockRef(5), InlineSharedBlockRef(30425088)])),
        (ItemType.TreeBlockRef, 5, []),
        (ItemType.SharedBlockRef, 30425088, []),
        (ItemType.SharedDataRef, 30425088, [1, 0, 0, 0]),
        (ItemType.ExtentDataRef, 1, DataRef(5, 257, 0, 1)),
        (ItemType.BlockGroupItem, 8388608, BlockGroup()),
        (ItemType.FreeSpaceInfo, 8388608, FreeSpaceInfo()),
        (ItemType.FreeSpaceExtent, 4096, []),
        (ItemType.FreeSpaceBitmap, 8388608, new byte[256]),
        (ItemType.DevExtent, 13631488, DevExtent()),
        (ItemType.DevItem, 1, DevItem()),
        (ItemType.ChunkItem, 13631488, Chunk(BlockGroupFlags.Metadata | BlockGroupFlags.Dup)),
        ((ItemType)250, 0, new byte[30]),
    ];

    public static IEnumerable<object[]> Indexes => Enumerable.Range(0, Samples.Length).Select(i => new object[] { i });

    [Theory]
    [MemberData(nameof(Indexes))]
    public void NeverThrows(int index)
    {
        var (type, offset, valid) = Samples[index];
        var key = new BtrfsKey(13631488, (byte)type, offset);
        var rng = new Random(index);
        var bag = new FindingBag();
        var r = new ItemReporter(bag);
        var prevKeys = new BtrfsKey?[] { null, key with { Offset = 0 }, key with { ObjectId = 0, Offset = ulong.MaxValue } };
        for (int len = 0; len <= valid.Length + 40; len++)
        {
            var truncated = Resize(valid, len);
            var random = new byte[len];
            rng.NextBytes(random);
            foreach (var prev in prevKeys)
                foreach (var data in new[] { truncated, random })
                {
                    var c = TestContexts.For(key, ObjectIds.ExtentTree, prev) with { FreeSpaceInfo = prev };
                    ItemValidator.ValidateItem(c, data, random, r);
                    ItemValidator.ValidateItem(c with { Tree = ObjectIds.ChunkTree, IsLog = true, CsumSize = 0, SectorSize = 0 }, data, [], r);
                }
        }
        // Random bytes are found wrong somewhere, so the validator did look at them.
        if (type != (ItemType)250) Assert.NotEqual(0, bag.Counts.Values.Sum());
    }
}
