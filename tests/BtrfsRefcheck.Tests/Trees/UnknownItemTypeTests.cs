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
        var c = TestContexts.For(new BtrfsKey(257, type, 0), ObjectIds.FsTree);
        var f = Validate.One(FindingCode.ItemUnknownType, c, [1, 2, 3, 4], severity: Severity.Warning);
        Assert.Equal(type.ToString(), f.Found);
    }

    [Fact]
    public void FreeSpaceCacheHeaderIsKnown() =>
        Validate.Clean(TestContexts.For(new BtrfsKey(ObjectIds.FreeSpace, 0, 30408704), ObjectIds.RootTree), new byte[41]);
}
