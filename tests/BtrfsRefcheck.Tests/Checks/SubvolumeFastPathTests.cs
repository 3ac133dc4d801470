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
        // in windows of one distinct leaf (every inode across leaves crosses a window's end): the same
        var (windowed, windowedStats) = SubvolumeDamageTests.CheckWith(paths, exactOnly: false, window: 1);
        Assert.Equal((fastStats.SubvolumeTreesFast, 0), (windowedStats.SubvolumeTreesFast, windowedStats.SubvolumeTreesJoined));
        Assert.Equal(fast.Select(f => $"{f.Severity} {f}"), windowed.Select(f => $"{f.Severity} {f}"));
    }

    /// <summary>The summarizer reuses one accumulator for the inodes inside a leaf: a reset one is a new one, every field
    /// (a field added to InodeAcc and forgotten in Reset fails here).</summary>
    [Fact]
    public void ResetAccumulatorIsANewOne()
    {
        var fields = typeof(BtrfsRefcheck.Checks.InodeAcc).GetFields(System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.NonPublic);
        var dirty = new BtrfsRefcheck.Checks.InodeAcc(9);
        foreach (var f in fields)
            f.SetValue(dirty, f.FieldType switch
            {
                var t when t == typeof(bool) => true,
                var t when t == typeof(uint) => 3u,
                var t when t == typeof(int) => 3,
                var t when t == typeof(ulong) => 3UL,
                var t when t == typeof(string) => "x",
                var t when t == typeof(BtrfsRefcheck.Format.BtrfsKey) => new BtrfsRefcheck.Format.BtrfsKey(1, 2, 3),
                var t when t == typeof(BtrfsRefcheck.Checks.RefTuple) => new BtrfsRefcheck.Checks.RefTuple { Parent = 1, Index = 2 },
                var t when t == typeof(List<BtrfsRefcheck.Checks.RefTuple>) => new List<BtrfsRefcheck.Checks.RefTuple>(),
                var t => throw new InvalidOperationException($"InodeAcc.{f.Name}: a field of type {t} this test does not know"),
            });
        dirty.Reset(7);
        var fresh = new BtrfsRefcheck.Checks.InodeAcc(7);
        Assert.True(fields.Length > 20);
        foreach (var f in fields) Assert.True(Equals(f.GetValue(fresh), f.GetValue(dirty)), $"InodeAcc.{f.Name} not reset");
    }
}
