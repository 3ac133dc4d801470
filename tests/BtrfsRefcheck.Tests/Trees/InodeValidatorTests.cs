using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Trees.ItemValidation;
using static BtrfsRefcheck.Tests.TreesTests.ItemBytes;

namespace BtrfsRefcheck.Tests.TreesTests;

/// <summary>INODE_ITEM, INODE_REF, INODE_EXTREF and the rules they share (missing INODE_ITEM before an inode's items).</summary>
public class InodeValidatorTests
{
    private static readonly BtrfsKey InodeKey = Key(257, ItemType.InodeItem, 0);
    private static ItemCheckContext Ctx(BtrfsKey key, BtrfsKey? prev = null, ulong tree = ObjectIds.FsTree) => TestContexts.For(key, tree, prev);

    [Theory]
    [InlineData(0x81A4u)] // regular 0644
    [InlineData(0x41EDu)] // directory 0755
    [InlineData(0xA1FFu)] // symlink 0777
    [InlineData(0x61B0u)] // block device
    [InlineData(0x2190u)] // char device
    [InlineData(0x11A4u)] // fifo
    [InlineData(0xC1EDu)] // socket
    [InlineData(0x8FFFu)] // regular with setuid, setgid, sticky
    public void ValidInodeItemsPass(uint mode) => Validate.Clean(Ctx(InodeKey), Inode(mode: mode));

    [Theory]
    [InlineData(6UL)]            // ROOT_TREE_DIR
    [InlineData(256UL)]
    public void ValidInodeNumbersPass(ulong ino) => Validate.Clean(Ctx(Key(ino, ItemType.InodeItem, 0)), Inode());

    /// <summary>FREE_INO is a valid inode number to the kernel's tree-checker (no 410), but it is the old inode cache,
    /// which btrfs check 6.19 fails: 425, once.</summary>
    [Fact]
    public void FreeInoInodeIsTheOldInodeCache() =>
        Validate.One(FindingCode.DeprecatedInodeCache, Ctx(Key(18446744073709551604UL, ItemType.InodeItem, 0)), Inode());

    [Fact]
    public void InodeKeyObjectidOutOfRange() =>
        Validate.One(FindingCode.InodeItemInvalid, "invalid key objectid 7", Ctx(Key(7, ItemType.InodeItem, 0)), Inode());

    [Fact]
    public void InodeKeyOffsetNotZero() =>
        Validate.One(FindingCode.InodeItemInvalid, "invalid key offset 1", Ctx(Key(257, ItemType.InodeItem, 1)), Inode());

    [Theory]
    [InlineData(159)]
    [InlineData(161)]
    [InlineData(0)]
    public void InodeWrongSize(int size)
    {
        var f = Validate.One(FindingCode.InodeItemInvalid, "invalid item size", Ctx(InodeKey), Inode(size: size));
        Assert.Equal(("160", size.ToString()), (f.Expected, f.Found));
    }

    [Fact]
    public void InodeGenerationNewerThanSuper()
    {
        var f = Validate.One(FindingCode.ItemGenerationTooNew, "inode generation 101", Ctx(InodeKey), Inode(gen: Gen + 1, transid: 50));
        Assert.Equal(("<= 100", "101"), (f.Expected, f.Found));
    }

    [Fact]
    public void InodeTransidNewerThanSuper() =>
        Validate.One(FindingCode.ItemGenerationTooNew, "inode transid 101", Ctx(InodeKey), Inode(gen: 50, transid: Gen + 1));

    [Fact]
    public void LogTreeInodesMayBeOneTransactionAhead()
    {
        var log = Ctx(InodeKey, tree: ObjectIds.TreeLog);
        Validate.Clean(log, Inode(gen: Gen + 1, transid: Gen + 1));
        Validate.One(FindingCode.ItemGenerationTooNew, "superblock generation 100 + 1 (log tree)", log, Inode(gen: Gen + 2, transid: Gen));
    }

    [Fact]
    public void InodeUnknownModeBits() =>
        Validate.One(FindingCode.InodeItemInvalid, "unknown mode bits 0x10000", Ctx(InodeKey), Inode(mode: 0x181A4));

    [Theory]
    [InlineData(0x01A4u)] // no type
    [InlineData(0x31A4u)] // 0030000
    [InlineData(0xF1A4u)] // 0170000
    [InlineData(0xE1A4u)] // 0160000
    public void InodeInvalidFileType(uint mode) =>
        Validate.One(FindingCode.InodeItemInvalid, "invalid file type", Ctx(InodeKey), Inode(mode: mode));

    [Fact]
    public void DirectoryWithTwoLinks() =>
        Validate.One(FindingCode.InodeItemInvalid, "directory with nlink 2", Ctx(InodeKey), Inode(mode: 0x41ED, nlink: 2));

    [Fact]
    public void RegularFileMayHaveManyLinks() => Validate.Clean(Ctx(InodeKey), Inode(nlink: 1000));

    [Fact]
    public void InodeKnownFlagsPass() => Validate.Clean(Ctx(InodeKey), Inode(flags: 0xFFFUL | 1UL << 31 | 1UL << 32));

    [Fact]
    public void InodeUnknownIncompatFlag() =>
        Validate.One(FindingCode.InodeItemInvalid, "unknown incompat inode flags 0x1000", Ctx(InodeKey), Inode(flags: 1UL << 12));

    [Fact]
    public void InodeUnknownRoCompatFlagIsAWarning() =>
        Validate.One(FindingCode.InodeItemInvalid, "unknown ro-compat inode flags 0x200000000", Ctx(InodeKey), Inode(flags: 1UL << 33),
            severity: Severity.Warning);

    // ---- INODE_REF

    private static readonly BtrfsKey RefKey = Key(257, ItemType.InodeRef, 256);

    [Fact]
    public void ValidInodeRefsPass()
    {
        Validate.Clean(Ctx(RefKey, prev: InodeKey), InodeRef((2, "a")));
        Validate.Clean(Ctx(RefKey, prev: InodeKey), InodeRef((2, "file.txt"), (3, new string('x', 255))));
    }

    [Fact]
    public void InodeRefOfAnotherInodeThanThePreviousKey()
    {
        var f = Validate.One(FindingCode.InodeRefInvalid, "INODE_ITEM of inode 257 is missing", Ctx(RefKey, prev: Key(256, ItemType.DirIndex, 5)), InodeRef((2, "a")));
        Assert.Equal(("previous objectid 257", "256"), (f.Expected, f.Found));
    }

    [Fact]
    public void MissingInodeIsNotCheckedOutsideSubvolumeTreesOrAtSlotZero()
    {
        var other = Key(256, ItemType.DirIndex, 5);
        Validate.Clean(Ctx(RefKey, prev: other, tree: ObjectIds.TreeLog), InodeRef((2, "a")));
        Validate.Clean(Ctx(RefKey, prev: other, tree: ObjectIds.RootTree), InodeRef((2, "a")));
        Validate.Clean(TestContexts.For(RefKey, slot: 0), InodeRef((2, "a")));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(10)]
    public void InodeRefTooSmall(int size) =>
        Validate.One(FindingCode.InodeRefInvalid, "invalid item size", Ctx(RefKey, InodeKey), Resize(InodeRef((2, "a")), size));

    [Fact]
    public void InodeRefSecondHeaderTruncated() =>
        Validate.One(FindingCode.InodeRefInvalid, "entry header at item offset 11 crosses", Ctx(RefKey, InodeKey), Concat(InodeRef((2, "a")), new byte[5]));

    [Fact]
    public void InodeRefNameCrossesItemEnd()
    {
        var d = InodeRef((2, "abc"));
        d[8] = 4; // name_len 4, 3 bytes present
        Validate.One(FindingCode.InodeRefInvalid, "crosses the item end", Ctx(RefKey, InodeKey), d);
    }

    [Fact]
    public void InodeRefEmptyName() =>
        Validate.One(FindingCode.InodeRefInvalid, "empty name", Ctx(RefKey, InodeKey), InodeRef((2, "a"), (3, "")));

    [Fact]
    public void InodeRefNameTooLong() =>
        Validate.One(FindingCode.InodeRefInvalid, "name_len 256", Ctx(RefKey, InodeKey), InodeRef((2, new string('n', 256))));

    // ---- INODE_EXTREF

    private static ItemCheckContext ExtrefCtx(ulong parent, string name) =>
        Ctx(Key(257, ItemType.InodeExtref, ExtrefHash(parent, name)), InodeKey);

    [Fact]
    public void ExtrefHashIsCrc32cSeededWithTheParent()
    {
        // crc32c(seed, data) without the final inversion; seed 0xFFFFFFFF and no data leaves the seed.
        Assert.Equal(0xFFFFFFFFUL, ExtrefHash(0xFFFFFFFF, ""));
        // Only the low 32 bits of the parent seed the hash, as the kernel's u32 crc32c() parameter.
        Assert.Equal(ExtrefHash(256, "name"), ExtrefHash(256 + (1UL << 32), "name"));
        Assert.NotEqual(ExtrefHash(256, "name"), ExtrefHash(257, "name"));
        // Known key from kernel-snapshots (btrfs inspect-internal dump-tree): (5840 INODE_EXTREF 609116380), parent 5839.
        Assert.Equal(609116380UL, ExtrefHash(5839, "L80-" + new string('x', 200)));
    }

    [Fact]
    public void ValidExtrefPasses()
    {
        Validate.Clean(ExtrefCtx(256, "link"), InodeExtref((256, 5, "link")));
        // two entries colliding on the hash
        Validate.Clean(ExtrefCtx(256, "link"), InodeExtref((256, 5, "link"), (256 + (1UL << 32), 6, "link")));
    }

    [Fact]
    public void ExtrefKeyOffsetNotTheHash()
    {
        var f = Validate.One(FindingCode.InodeRefInvalid, "not the hash of parent 256", ExtrefCtx(256, "other"), InodeExtref((256, 5, "link")));
        Assert.Equal($"0x{ExtrefHash(256, "link"):x}", f.Expected);
    }

    [Fact]
    public void ExtrefHeaderTruncated() =>
        Validate.One(FindingCode.InodeRefInvalid, "entry header at item offset 22 crosses", ExtrefCtx(256, "link"),
            Concat(InodeExtref((256, 5, "link")), new byte[17]));

    [Fact]
    public void ExtrefNameCrossesItemEnd()
    {
        var d = InodeExtref((256, 5, "link"));
        d[16] = 5;
        Validate.One(FindingCode.InodeRefInvalid, "crosses the item end", ExtrefCtx(256, "link"), d);
    }

    [Fact]
    public void ExtrefEmptyName() => Validate.One(FindingCode.InodeRefInvalid, "empty name", ExtrefCtx(256, ""), InodeExtref((256, 5, "")));

    [Fact]
    public void ExtrefNameTooLong()
    {
        string n = new('n', 300);
        Validate.One(FindingCode.InodeRefInvalid, "name_len 300", ExtrefCtx(256, n), InodeExtref((256, 5, n)));
    }

    [Fact]
    public void EmptyExtref() => Validate.One(FindingCode.InodeRefInvalid, "empty item", ExtrefCtx(256, ""), []);

    [Fact]
    public void ExtrefOfAnotherInodeThanThePreviousKey() =>
        Validate.One(FindingCode.InodeRefInvalid, "is missing",
            Ctx(Key(257, ItemType.InodeExtref, ExtrefHash(256, "x")), Key(256, ItemType.InodeItem, 0)), InodeExtref((256, 5, "x")));
}
