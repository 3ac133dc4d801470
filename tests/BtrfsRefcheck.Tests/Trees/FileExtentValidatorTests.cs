using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Trees.ItemValidation;
using static BtrfsRefcheck.Tests.TreesTests.ItemBytes;

namespace BtrfsRefcheck.Tests.TreesTests;

/// <summary>EXTENT_DATA and EXTENT_CSUM.</summary>
public class FileExtentValidatorTests
{
    private static readonly BtrfsKey InodeKey = Key(257, ItemType.InodeItem, 0);
    private static ItemCheckContext Ctx(ulong fileOffset = 0, BtrfsKey? prev = null, ulong tree = ObjectIds.FsTree) =>
        TestContexts.For(Key(257, ItemType.ExtentData, fileOffset), tree, prev ?? InodeKey);

    [Fact]
    public void ValidExtentsPass()
    {
        Validate.Clean(Ctx(), InlineExtent(100));
        Validate.Clean(Ctx(), InlineExtent(40, ramBytes: 3000, compression: 1)); // compressed inline: no size rule
        Validate.Clean(Ctx(8192), RegularExtent());
        Validate.Clean(Ctx(8192), RegularExtent(type: 2)); // prealloc
        Validate.Clean(Ctx(8192), RegularExtent(diskBytenr: 0, diskNum: 0, num: 65536, ram: 65536)); // hole
        Validate.Clean(Ctx(8192), RegularExtent(diskNum: 4096, offset: 4096, num: 8192, ram: 16384, compression: 3)); // part of a compressed extent
    }

    [Fact]
    public void FileOffsetNotAligned()
    {
        var f = Validate.One(FindingCode.FileExtentInvalid, "file offset (key offset) 100 is not aligned to sectorsize 4096", Ctx(100), RegularExtent());
        Assert.Equal(("multiple of 4096", "100"), (f.Expected, f.Found));
    }

    [Fact]
    public void ExtentOfAnotherInodeThanThePreviousKey() =>
        Validate.One(FindingCode.FileExtentInvalid, "is missing", Ctx(0, Key(256, ItemType.ExtentData, 0)), RegularExtent());

    [Fact]
    public void ShorterThanTheInlineHeader() =>
        Validate.One(FindingCode.FileExtentInvalid, "invalid item size 20", Ctx(), Resize(InlineExtent(0), 20));

    [Fact]
    public void InvalidType() => Validate.One(FindingCode.FileExtentInvalid, "invalid type 3", Ctx(), RegularExtent(type: 3));

    [Fact]
    public void InvalidCompression() => Validate.One(FindingCode.FileExtentInvalid, "invalid compression 4", Ctx(), RegularExtent(compression: 4));

    [Fact]
    public void Encrypted() => Validate.One(FindingCode.FileExtentInvalid, "invalid encryption 1", Ctx(), RegularExtent(encryption: 1));

    [Fact]
    public void GenerationNewerThanSuper() =>
        Validate.One(FindingCode.ItemGenerationTooNew, "file extent generation 101", Ctx(), RegularExtent(gen: Gen + 1));

    [Fact]
    public void InlineExtentNotAtOffsetZero() => Validate.One(FindingCode.FileExtentInvalid, "inline extent at file offset 4096", Ctx(4096), InlineExtent(10));

    [Fact]
    public void UncompressedInlineSizeDiffersFromRamBytes()
    {
        var f = Validate.One(FindingCode.FileExtentInvalid, "has ram_bytes 101", Ctx(), InlineExtent(100, ramBytes: 101));
        Assert.Equal(("item size 21 + ram_bytes = 122", "121"), (f.Expected, f.Found));
    }

    [Theory]
    [InlineData(52)]
    [InlineData(54)]
    public void RegularExtentWrongSizeInALogTree(int size) =>
        Validate.One(FindingCode.FileExtentInvalid, "invalid item size", Ctx(tree: ObjectIds.TreeLog), Resize(RegularExtent(), size));

    [Fact]
    public void RegularExtentTooLarge() => Validate.One(FindingCode.FileExtentInvalid, "invalid item size 60", Ctx(), RegularExtent(extra: 7));

    [Fact]
    public void ShortRegularExtentHasNoDataReference() =>
        Validate.One(FindingCode.ItemUndecodable, "file extent item of 52 bytes, a Regular extent needs 53", Ctx(), Resize(RegularExtent(), 52));

    [Theory]
    [InlineData("ram_bytes")]
    [InlineData("disk_bytenr")]
    [InlineData("disk_num_bytes")]
    [InlineData("offset")]
    [InlineData("num_bytes")]
    public void FieldNotAligned(string field)
    {
        var d = field switch
        {
            "ram_bytes" => RegularExtent(ram: 8193, compression: 1),
            "disk_bytenr" => RegularExtent(diskBytenr: 13631488 + 512),
            "disk_num_bytes" => RegularExtent(diskNum: 8192 + 1, ram: 8192),
            "offset" => RegularExtent(offset: 1, num: 4096),
            _ => RegularExtent(num: 4097),
        };
        Validate.One(FindingCode.FileExtentInvalid, $"{field} ", Ctx(), d);
    }

    [Fact]
    public void ExtentEndOverflows() =>
        Validate.One(FindingCode.FileExtentInvalid, "overflows", Ctx(ulong.MaxValue - 4095), RegularExtent(diskBytenr: 0, diskNum: 0, num: 8192, ram: 8192));

    [Fact]
    public void CompressedExtentUsedPastRamBytesIsAnError() =>
        Validate.One(FindingCode.FileExtentInvalid, "reaches past ram_bytes 8192 of the compressed extent", Ctx(),
            RegularExtent(diskNum: 4096, offset: 4096, num: 8192, ram: 8192, compression: 1));

    [Fact]
    public void UncompressedExtentUsedPastRamBytesIsAWarning() =>
        Validate.One(FindingCode.FileExtentInvalid, "reaches past ram_bytes", Ctx(), RegularExtent(offset: 4096, num: 8192, ram: 8192),
            severity: Severity.Warning);

    [Fact]
    public void OverlapsThePreviousExtent()
    {
        var prevKey = Key(257, ItemType.ExtentData, 0);
        var f = Validate.One(FindingCode.FileExtentInvalid, "ends at 8192", Ctx(4096, prevKey), RegularExtent(), RegularExtent());
        Assert.Equal(("previous end <= 4096", "8192"), (f.Expected, f.Found));
        Validate.Clean(Ctx(8192, prevKey), RegularExtent(), RegularExtent());
    }

    [Fact]
    public void OverlapsThePreviousInlineExtentRoundedToTheSector()
    {
        var prevKey = Key(257, ItemType.ExtentData, 0);
        // ram_bytes 100 from file offset 0 ends at 100, which the kernel rounds up to the sector: 4096.
        Validate.One(FindingCode.FileExtentInvalid, "ends at 4096", Ctx(0, prevKey), RegularExtent(), InlineExtent(100));
        Validate.Clean(Ctx(4096, prevKey), RegularExtent(), InlineExtent(100));
    }

    // ---- EXTENT_CSUM

    private static ItemCheckContext Csum(ulong start, BtrfsKey? prev = null, ulong objectId = ObjectIds.ExtentCsum) =>
        TestContexts.For(new BtrfsKey(objectId, (byte)ItemType.ExtentCsum, start), ObjectIds.CsumTree, prev);

    [Fact]
    public void ValidCsumItemsPass()
    {
        Validate.Clean(Csum(13631488), new byte[4 * 10]);
        Validate.Clean(Csum(13631488 + 40960, Key(ObjectIds.ExtentCsum, ItemType.ExtentCsum, 13631488)), new byte[8], new byte[4 * 10]);
    }

    [Fact]
    public void CsumObjectid() => Validate.One(FindingCode.CsumItemInvalid, "invalid key objectid 5", Csum(13631488, objectId: 5), new byte[4]);

    [Fact]
    public void CsumStartNotAligned() => Validate.One(FindingCode.CsumItemInvalid, "not aligned", Csum(13631488 + 1), new byte[4]);

    [Fact]
    public void CsumSizeNotAMultiple()
    {
        var f = Validate.One(FindingCode.CsumItemInvalid, "item size 6 is not a multiple of the checksum size 4", Csum(13631488), new byte[6]);
        Assert.Equal(("multiple of 4", "6"), (f.Expected, f.Found));
        Validate.Clean(Csum(13631488) with { CsumSize = 32 }, new byte[64]);
        Validate.One(FindingCode.CsumItemInvalid, Csum(13631488) with { CsumSize = 32 }, new byte[40]);
    }

    [Fact]
    public void CsumOverlapsThePreviousItem() =>
        Validate.One(FindingCode.CsumItemInvalid, "covers up to 13672448", Csum(13631488 + 36864, Key(ObjectIds.ExtentCsum, ItemType.ExtentCsum, 13631488)),
            new byte[8], new byte[4 * 10]);
}
