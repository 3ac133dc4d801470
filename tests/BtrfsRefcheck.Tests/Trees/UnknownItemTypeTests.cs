using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;

namespace BtrfsRefcheck.Tests.TreesTests;

/// <summary>An item of a type we do not know is noted (401, a warning), never decoded and never an exception.</summary>
public class UnknownItemTypeTests
{
    [Theory]
    [InlineData((byte)2)]
    [InlineData((byte)170)]
    [InlineData((byte)255)]
    public void UnknownTypeIsNotedAsAWarning(byte type)
    {
        var c = TestContexts.For(new BtrfsKey(257, type, 0), ObjectIds.CsumTree);
        var f = Validate.One(FindingCode.ItemUnknownType, c, [1, 2, 3, 4], severity: Severity.Warning);
        Assert.Equal(type.ToString(), f.Found);
    }

    /// <summary>In a subvolume tree (fs tree, subvolume, data reloc, relocation tree) an unknown type, or a known one that
    /// belongs elsewhere, is an error, as btrfs check 6.19 reports it; the log tree keeps its own items.</summary>
    [Theory]
    [InlineData((byte)2, ObjectIds.FsTree)]
    [InlineData((byte)255, 256UL)]
    [InlineData((byte)ItemType.ChunkItem, ObjectIds.DataRelocTree)]
    [InlineData((byte)ItemType.ExtentCsum, ObjectIds.TreeReloc)]
    public void ItemOfNoSubvolumeTypeInASubvolumeTreeIsAnError(byte type, ulong tree)
    {
        var f = Validate.One(FindingCode.ItemNotInSubvolumeTree, TestContexts.For(new BtrfsKey(257, type, 0), tree), [1, 2, 3, 4]);
        Assert.Equal(Severity.Error, f.Severity);
        Validate.Clean(TestContexts.For(new BtrfsKey(ObjectIds.FreeSpace, 0, 0), ObjectIds.FsTree), new byte[41]);
    }

    [Fact]
    public void FreeSpaceCacheHeaderIsKnown() =>
        Validate.Clean(TestContexts.For(new BtrfsKey(ObjectIds.FreeSpace, 0, 30408704), ObjectIds.RootTree), new byte[41]);
}
