using Xunit.Abstractions;
using BtrfsRefcheck.Checks;
using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Tests.Oracle;

namespace BtrfsRefcheck.Tests.Differential;

/// <summary>
/// <see cref="Checker.Run"/> against <c>btrfs check --readonly</c> on every fixture: both find nothing wrong, and every
/// count in our <see cref="CheckStats"/> equals the same count taken from progs' dump-tree output.
/// </summary>
public class CheckDifferentialTests(ITestOutputHelper output)
{
    [ProgsTheory]
    [MemberData(nameof(DiffFixtures.All), MemberType = typeof(DiffFixtures))]
    public void CleanForBothAndCountsMatchDumpTree(string fixture)
    {
        var problems = new List<string>();
        var progs = DiffFixtures.Progs(fixture);
        output.WriteLine($"{fixture}: {progs.How}");

        // progs: clean
        foreach (var (label, code, text) in progs.Checks)
            if (code != 0) problems.Add($"btrfs check --readonly ({label}) exited {code}:\n{text}");

        // ours: no error, no warning
        var findings = new FindingBag();
        CheckReport report;
        using (var vol = DiffFixtures.Open(fixture, findings))
            report = Checker.Run(vol, findings);
        var bad = findings.Items.Where(f => f.Severity >= Severity.Warning).ToList();
        if (bad.Count > 0)
            problems.Add($"{bad.Count} error/warning findings ({string.Join(", ", bad.GroupBy(f => f.Code).Select(g => $"{g.Key} x{g.Count()}"))}):\n  " +
                         string.Join("\n  ", bad.DistinctBy(f => f.Code).Concat(bad).Distinct().Take(20)));

        // the same counts as progs' dump-tree
        var s = report.Stats;
        var actual = new Counts(s.TreeBlocks, s.MetadataExtentItems, s.DataExtentItems, s.InlineRefs, s.KeyedRefs,
            s.TreeBlockRefs, s.SharedBlockRefs, s.ExtentDataRefs, s.SharedDataRefs, s.ExtentOwnerRefs, s.BlockGroups);
        if (progs.Mode == ProgsMode.Unavailable)
        {
            Assert.True(problems.Count == 0, $"{fixture}:\n" + string.Join("\n", problems));
            return; // no oracle for the counts here
        }
        var expected = Expected(progs.Dumps[0].Blocks);
        if (expected != actual) problems.Add($"counts differ:\n  progs {expected}\n  ours  {actual}");
        Assert.True(problems.Count == 0, $"{fixture}:\n" + string.Join("\n", problems));

        // sanity of the oracle side, so the comparison above cannot pass on an empty parse
        Assert.True(expected.TreeBlocks > 5 && expected.MetadataExtentItems > 5 && expected.BlockGroups >= 2, expected.ToString());
        Assert.True(expected.TreeBlockRefs > 0, expected.ToString());
        if (fixture.StartsWith("mkfs:", StringComparison.Ordinal))
            Assert.True(expected.DataExtentItems > 0 && expected.ExtentDataRefs > 0, $"mkfs fixtures hold file data: {expected}");
    }

    /// <summary>
    /// Every tree block outside the log trees has exactly one metadata extent item on a clean filesystem, so the two
    /// progs-side counts agree; log tree blocks have none.
    /// </summary>
    [ProgsTheory]
    [MemberData(nameof(DiffFixtures.All), MemberType = typeof(DiffFixtures))]
    public void DumpTree_EveryNonLogBlockHasOneMetadataExtentItem(string fixture)
    {
        var progs = DiffFixtures.Progs(fixture);
        if (progs.Mode == ProgsMode.Unavailable) return;
        var blocks = progs.Dumps[0].Blocks;
        var nonLog = blocks.Where(b => !DiffFixtures.IsLogIdentity(DiffFixtures.TreeIdentity(b))).Select(b => b.Bytenr).ToHashSet();
        var extentBlocks = blocks.Where(b => b.TreeHeaderObjectId == ProgsKeyFormat.ExtentTree).DistinctBy(b => b.Bytenr).ToList();
        var metadataItems = extentBlocks.SelectMany(b => b.Items)
            .Where(i => i.Extent is { IsTreeBlock: true } && i.Key.Type is ProgsKeyFormat.ExtentItem or ProgsKeyFormat.MetadataItem)
            .Select(i => i.Key.ObjectId).ToList();
        Assert.Equal(metadataItems.Count, metadataItems.Distinct().Count());
        Assert.Equal(nonLog.Order(), metadataItems.Order());
    }

    /// <summary>Counts of one check, as a record so a mismatch prints every count side by side.</summary>
    public sealed record Counts(long TreeBlocks, long MetadataExtentItems, long DataExtentItems, long InlineRefs, long KeyedRefs,
        long TreeBlockRefs, long SharedBlockRefs, long ExtentDataRefs, long SharedDataRefs, long ExtentOwnerRefs, long BlockGroups);

    /// <summary>
    /// Counts from progs' dump-tree: tree blocks once per bytenr over every printed tree (the log trees included: the
    /// check walks them too, and <see cref="CheckStats.TreeBlocks"/> counts what the run looked at); extent items,
    /// inline and keyed back-refs from the extent tree; block groups from the extent tree and the block group tree.
    /// </summary>
    internal static Counts Expected(IReadOnlyList<ProgsBlock> blocks)
    {
        long treeBlocks = blocks.Select(b => b.Bytenr).Distinct().LongCount();
        long meta = 0, data = 0, inline = 0, keyed = 0, tbr = 0, sbr = 0, edr = 0, sdr = 0, owner = 0, bgs = 0;
        foreach (var b in blocks.DistinctBy(b => b.Bytenr))
        {
            bool extentTree = b.TreeHeaderObjectId == ProgsKeyFormat.ExtentTree;
            bool bgTree = b.TreeHeaderObjectId == ProgsKeyFormat.BlockGroupTree;
            if (!extentTree && !bgTree) continue;
            foreach (var i in b.Items)
            {
                switch (i.Key.Type)
                {
                    case ProgsKeyFormat.BlockGroupItem:
                        bgs++;
                        break;
                    case ProgsKeyFormat.ExtentItem or ProgsKeyFormat.MetadataItem when extentTree:
                        var e = i.Extent ?? throw new InvalidOperationException($"block {b.Bytenr} item {i.Slot}: extent item body not parsed");
                        if (e.IsTreeBlock) meta++; else data++;
                        foreach (var r in e.InlineRefs)
                        {
                            inline++;
                            Count(r.Type);
                        }
                        break;
                    case ProgsKeyFormat.TreeBlockRef or ProgsKeyFormat.SharedBlockRef or ProgsKeyFormat.ExtentDataRef or ProgsKeyFormat.SharedDataRef
                        when extentTree:
                        keyed++;
                        Count(i.Key.Type);
                        break;
                }
            }
        }
        return new Counts(treeBlocks, meta, data, inline, keyed, tbr, sbr, edr, sdr, owner, bgs);

        void Count(byte type)
        {
            switch (type)
            {
                case ProgsKeyFormat.TreeBlockRef: tbr++; break;
                case ProgsKeyFormat.SharedBlockRef: sbr++; break;
                case ProgsKeyFormat.ExtentDataRef: edr++; break;
                case ProgsKeyFormat.SharedDataRef: sdr++; break;
                case ProgsKeyFormat.ExtentOwnerRef: owner++; break;
                default: throw new InvalidOperationException($"unexpected back-ref type {type}");
            }
        }
    }
}
