using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Trees.ItemValidation;
using static BtrfsRefcheck.Tests.TreesTests.ItemBytes;

namespace BtrfsRefcheck.Tests.TreesTests;

/// <summary>DIR_ITEM, DIR_INDEX and XATTR_ITEM.</summary>
public class DirItemValidatorTests
{
    private static readonly BtrfsKey Prev = Key(256, ItemType.InodeRef, 256);
    private static ItemCheckContext DirItem(string name, ulong ino = 256) => TestContexts.For(Key(ino, ItemType.DirItem, NameHash(name)), prevKey: Prev);
    private static ItemCheckContext DirIndex(ulong index = 2) => TestContexts.For(Key(256, ItemType.DirIndex, index), prevKey: Prev);
    private static ItemCheckContext Xattr(string name) => TestContexts.For(Key(256, ItemType.XattrItem, NameHash(name)), prevKey: Prev);
    private static readonly BtrfsKey XattrLocation = BtrfsKey.Min;

    [Fact]
    public void NameHashIsCrc32cSeededWithMinusTwo()
    {
        // (ROOT_TREE_DIR DIR_ITEM 2378154706) "default" in every mkfs.btrfs root tree.
        Assert.Equal(2378154706UL, NameHash("default"));
    }

    [Fact]
    public void ValidEntriesPass()
    {
        Validate.Clean(DirItem("file.txt"), DirEntry("file.txt"));
        Validate.Clean(DirIndex(), DirEntry("file.txt"));
        Validate.Clean(DirItem("sub"), DirEntry("sub", Key(256, ItemType.RootItem, ulong.MaxValue), type: 2));
        Validate.Clean(Xattr("user.a"), DirEntry("user.a", XattrLocation, type: 8, data: [1, 2, 3]));
        // two names colliding on the hash share a DIR_ITEM
        Validate.Clean(DirItem("a"), Concat(DirEntry("a"), DirEntry("a", Key(258, ItemType.InodeItem, 0))));
        // encrypted entry: type FILE | 0x80
        Validate.Clean(DirIndex(), DirEntry("x", type: 0x81));
    }

    [Fact]
    public void DirItemNameHashMismatch()
    {
        var f = Validate.One(FindingCode.DirItemInvalid, "not the name hash", DirItem("other"), DirEntry("file.txt"));
        Assert.Equal($"0x{NameHash("file.txt"):x}", f.Expected);
    }

    [Fact]
    public void XattrNameHashMismatch() =>
        Validate.One(FindingCode.DirItemInvalid, "not the name hash", Xattr("user.b"), DirEntry("user.a", XattrLocation, type: 8));

    [Fact]
    public void DirIndexKeyOffsetIsNotAHash() => Validate.Clean(DirIndex(12345), DirEntry("file.txt"));

    [Fact]
    public void EntryOfAnotherInodeThanThePreviousKey() =>
        Validate.One(FindingCode.DirItemInvalid, "is missing", DirItem("file.txt", ino: 300), DirEntry("file.txt"));

    [Fact]
    public void EmptyItem() => Validate.One(FindingCode.DirItemInvalid, "empty item", DirIndex(), []);

    [Fact]
    public void HeaderCrossesItemEnd() =>
        Validate.One(FindingCode.DirItemInvalid, "header at item offset 31 crosses", DirItem("a"), Concat(DirEntry("a"), new byte[29]));

    [Fact]
    public void NameCrossesItemEnd() =>
        Validate.One(FindingCode.DirItemInvalid, "crosses the item end", DirIndex(), DirEntry("abc", nameLen: 4));

    [Fact]
    public void DataCrossesItemEnd() =>
        Validate.One(FindingCode.DirItemInvalid, "crosses the item end", Xattr("user.a"), DirEntry("user.a", XattrLocation, type: 8, data: [1], dataLen: 2));

    [Theory]
    [InlineData((byte)0)]
    [InlineData((byte)9)]
    [InlineData((byte)0x80)]
    [InlineData((byte)0x7f)]
    public void InvalidType(byte type) => Validate.One(FindingCode.DirItemInvalid, "invalid type", DirIndex(), DirEntry("f", type: type));

    [Fact]
    public void XattrItemWithFileType() =>
        Validate.One(FindingCode.DirItemInvalid, "of an XATTR_ITEM has type FILE", Xattr("user.a"), DirEntry("user.a", XattrLocation, type: 1));

    [Fact]
    public void XattrTypeInADirItem() =>
        Validate.One(FindingCode.DirItemInvalid, "type XATTR outside an XATTR_ITEM", DirItem("f"), DirEntry("f", type: 8));

    [Fact]
    public void EmptyName() => Validate.One(FindingCode.DirItemInvalid, "empty name", DirIndex(), DirEntry(""));

    [Fact]
    public void NameTooLong() => Validate.One(FindingCode.DirItemInvalid, "name_len 256", DirIndex(), DirEntry(new string('n', 256)));

    [Fact]
    public void NameAndDataBeyondALeaf()
    {
        // 16 KiB nodes: BTRFS_MAX_XATTR_SIZE = 16384 - 101 - 25 - 30 = 16228.
        var f = Validate.One(FindingCode.DirItemInvalid, "beyond what a leaf holds", Xattr("user.a"),
            DirEntry("user.a", XattrLocation, type: 8, data: new byte[16228 - 6 + 1]));
        Assert.Equal("<= 16228", f.Expected);
        Validate.Clean(Xattr("user.a"), DirEntry("user.a", XattrLocation, type: 8, data: new byte[16228 - 6]));
    }

    [Fact]
    public void DataOnANonXattrEntry() => Validate.One(FindingCode.DirItemInvalid, "carries data_len 3", DirIndex(), DirEntry("f", data: [1, 2, 3]));

    [Fact]
    public void DirIndexWithTwoEntries() =>
        Validate.One(FindingCode.DirItemInvalid, "DIR_INDEX holds 2 entries", DirIndex(), Concat(DirEntry("a"), DirEntry("b")));

    [Fact]
    public void TransidIsNotChecked() => Validate.Clean(DirIndex(), DirEntry("f", transid: 1795529385)); // as mkfs --rootdir leaves it

    [Fact]
    public void LocationToANonSubvolumeTree() =>
        Validate.One(FindingCode.DirItemInvalid, "not a subvolume", DirItem("s"), DirEntry("s", Key(ObjectIds.ExtentTree, ItemType.RootItem, ulong.MaxValue), type: 2));

    [Fact]
    public void LocationToRootIdZero() =>
        Validate.One(FindingCode.DirItemInvalid, "root id 0", DirItem("s"), DirEntry("s", Key(0, ItemType.RootItem, ulong.MaxValue), type: 2));

    [Fact]
    public void LocationInodeOutOfRange() =>
        Validate.One(FindingCode.DirItemInvalid, "location objectid 255", DirIndex(), DirEntry("f", Key(255, ItemType.InodeItem, 0)));

    [Fact]
    public void LocationInodeWithOffset() =>
        Validate.One(FindingCode.DirItemInvalid, "location key offset 1", DirIndex(), DirEntry("f", Key(257, ItemType.InodeItem, 1)));

    [Fact]
    public void LocationOfAnotherType() =>
        Validate.One(FindingCode.DirItemInvalid, "location key type EXTENT_DATA", DirIndex(), DirEntry("f", Key(257, ItemType.ExtentData, 0)));

    [Fact]
    public void XattrLocationNotZero() =>
        Validate.One(FindingCode.DirItemInvalid, "XATTR_ITEM has location key", Xattr("user.a"), DirEntry("user.a", Key(257, ItemType.InodeItem, 0), type: 8));
}
