using BtrfsRefcheck.Tests.Damage;
using BtrfsRefcheck.Tests.Sources;
using BtrfsRefcheck.Tests.TreesTests;
using Xunit.Abstractions;

namespace BtrfsRefcheck.Tests.ChecksTests;

/// <summary>The subvolume pass's fast path (names verified by fingerprints, <c>NameFingerprint</c>) on every valid image:
/// it verifies every subvolume tree, so a healthy filesystem never builds the exact join's records, and the check says
/// exactly what the exact join alone says. (Its other half, that it verifies no damaged tree, is
/// <see cref="SubvolumeDamageTests.FastPathRejectsEveryNameDefect"/>.)</summary>
public class SubvolumeFastPathTests(ITestOutputHelper output)
{
    public static IEnumerable<object[]> Images =>
        CleanImages.Mkfs.Concat(CleanImages.Kernel).Concat(SourceFixtures.All.Select(s => new object[] { "source:" + s[0] }));

    private static IReadOnlyList<string> Paths(string id) =>
        id.StartsWith("source:", StringComparison.Ordinal) ? SourceFixtures.Images(id["source:".Length..]) : CleanImages.Paths(id);

    [Theory]
    [MemberData(nameof(Images))]
    public void FastPathVerifiesEveryTreeOfAValidImage(string id)
    {
        var paths = Paths(id);
        var (fast, fastStats) = SubvolumeDamageTests.CheckWith(paths, exactOnly: false);
        var (exact, exactStats) = SubvolumeDamageTests.CheckWith(paths, exactOnly: true);
        output.WriteLine($"{id}: fast {fastStats.SubvolumeTreesFast}, joined {fastStats.SubvolumeTreesJoined}; exact only: joined {exactStats.SubvolumeTreesJoined}");
        Assert.True(fastStats.SubvolumeTreesFast >= 1, $"{id}: no subvolume tree verified");
        Assert.Equal(0, fastStats.SubvolumeTreesJoined);
        Assert.Equal(fastStats.SubvolumeTreesFast, exactStats.SubvolumeTreesJoined);
        Assert.Equal(exact.Select(f => $"{f.Severity} {f}"), fast.Select(f => $"{f.Severity} {f}"));
    }
}
