using BtrfsRefcheck.Diagnostics;

namespace BtrfsRefcheck.Tests.Diagnostics;

/// <summary>The bag stores at most <see cref="FindingBag.MaxStoredPerCode"/> findings of a code, but every count it gives
/// (per code, per code and severity, per severity) is exact past that cap: the CLI's error and warning totals come from
/// <see cref="FindingBag.Count"/> and its <c>counts_by_code</c> from <see cref="FindingBag.Counts"/>, and the two must agree.</summary>
public class FindingBagTests
{
    [Fact]
    public void CountsAreExactPastTheStorageCap()
    {
        const int Cap = FindingBag.MaxStoredPerCode;
        var bag = new FindingBag();
        // One code well past the cap, all errors; a second past the cap with mixed severities; a third under it.
        for (int i = 0; i < Cap + 2_500; i++)
            bag.Add(new Finding(FindingCode.DuplicateTreeBlockRef, Severity.Error, "dup", Bytenr: (ulong)i));
        for (int i = 0; i < Cap + 100; i++)
            bag.Add(new Finding(FindingCode.ExtentOutsideBlockGroup, i % 3 == 0 ? Severity.Warning : Severity.Error, "outside", Bytenr: (ulong)i));
        for (int i = 0; i < 7; i++)
            bag.Add(new Finding(FindingCode.SuperblockCopyNeverWritten, Severity.Info, "note", Mirror: i));

        Assert.Equal(Cap + Cap + 7, bag.Items.Count); // storage is bounded per code
        Assert.Equal(Cap + 2_500, bag.Counts[FindingCode.DuplicateTreeBlockRef]);
        Assert.Equal(Cap + 100, bag.Counts[FindingCode.ExtentOutsideBlockGroup]);
        Assert.Equal(7, bag.Counts[FindingCode.SuperblockCopyNeverWritten]);

        long outsideWarnings = Enumerable.Range(0, Cap + 100).Count(i => i % 3 == 0);
        long errors = Cap + 2_500 + (Cap + 100 - outsideWarnings);
        Assert.Equal(errors, bag.Count(Severity.Error));
        Assert.Equal(errors + outsideWarnings, bag.Count(Severity.Warning));
        Assert.Equal(errors + outsideWarnings + 7, bag.Count(Severity.Info));

        // Per code and severity: sums to the per-code totals and to the per-severity totals.
        var bySeverity = bag.CountsBySeverity;
        Assert.Equal(outsideWarnings, bySeverity[(FindingCode.ExtentOutsideBlockGroup, Severity.Warning)]);
        foreach (var (code, n) in bag.Counts)
            Assert.Equal(n, bySeverity.Where(kv => kv.Key.Code == code).Sum(kv => kv.Value));
        foreach (var s in Enum.GetValues<Severity>())
            Assert.Equal(bag.Count(s) - (s == Severity.Error ? 0 : bag.Count(s + 1)),
                         bySeverity.Where(kv => kv.Key.Severity == s).Sum(kv => kv.Value));
        Assert.Equal(bag.Counts.Values.Sum(), bag.Count(Severity.Info));
    }

    [Fact]
    public void ConcurrentAddsAreAllCounted()
    {
        var bag = new FindingBag();
        Parallel.For(0, 8, t =>
        {
            for (int i = 0; i < 5_000; i++)
                bag.Add(new Finding(FindingCode.StaleDataRef, Severity.Error, "stale", Bytenr: (ulong)(t * 5_000 + i)));
        });
        Assert.Equal(40_000, bag.Counts[FindingCode.StaleDataRef]);
        Assert.Equal(40_000, bag.Count(Severity.Error));
        Assert.Equal(FindingBag.MaxStoredPerCode, bag.Items.Count);
    }
}
