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
        OursCleanAndCountsMatch(fixture, progs, problems, []);
    }

    /// <summary>
    /// The errors btrfs-progs v6.19's <c>check --readonly</c> reports on fixtures it does not find clean, exactly (one line
    /// each). All are stale free-space-tree keys: mkfs 6.2 makes temporary chunks at 1 MiB (system, 4 MiB), 5 MiB
    /// (metadata, 8 MiB) and, with more than one device, 13 MiB (data, 8 MiB), removes them once the real chunks exist, and
    /// leaves their FREE_SPACE_INFO/EXTENT keys in the free space tree; v6.19 (not v6.2, not the kernel) calls a free
    /// space key without a block group an error. Stale free-space keys from mkfs 6.2, decided by issue 14 of the project:
    /// not a defect of the fixtures; our checker reports each as the warning 1102 (asserted against these lines). Single-profile and mixed images made by mkfs
    /// 6.2 do not have them. Every other fixture, mkfs 6.19's included, must be clean for v6.19.
    /// </summary>
    internal static readonly IReadOnlyDictionary<string, string[]> Progs619Errors = new Dictionary<string, string[]>(StringComparer.Ordinal)
    {
        ["mkfs:crc32c"] = [StaleKey1M, StaleKey5M],
        ["mkfs:xxhash"] = [StaleKey1M, StaleKey5M],
        ["mkfs:sha256"] = [StaleKey1M, StaleKey5M],
        ["mkfs:blake2"] = [StaleKey1M, StaleKey5M],
        ["mkfs:node4k"] = [StaleKey1M, StaleKey5M],
        ["mkfs:node64k"] = [StaleKey1M, StaleKey5M],
        ["mkfs:noskinny"] = [StaleKey1M, StaleKey5M],
        ["mkfs:mixed"] = [],
        ["mkfs:msingle"] = [],
        ["mkfs:mdup"] = [StaleKey1M, StaleKey5M],
        ["kernel:kernel-logtree"] = [StaleKey1M, StaleKey5M],
        ["kernel:kernel-snapshots"] = [StaleKey1M, StaleKey5M],
        ["kernel:kernel-raid0"] = [StaleKey1M, StaleKey5M, StaleKey13M],
        ["kernel:kernel-raid1"] = [StaleKey1M, StaleKey5M, StaleKey13M],
        ["kernel:kernel-raid10"] = [StaleKey1M, StaleKey5M, StaleKey13M],
        ["kernel:kernel-raid1c3"] = [StaleKey1M, StaleKey5M, StaleKey13M],
        ["kernel:kernel-raid5"] = [StaleKey1M, StaleKey5M, StaleKey13M],
        ["kernel:kernel-raid6"] = [StaleKey1M, StaleKey5M, StaleKey13M],
    };

    /// <summary>The logical start in a "Space key logical N length L has no corresponding block group" line.</summary>
    internal static ulong? StaleKeyLogical(string line) =>
        System.Text.RegularExpressions.Regex.Match(line, @"^Space key logical (\d+) length \d+ has no corresponding block group$") is { Success: true } m
            ? ulong.Parse(m.Groups[1].Value) : null;

    private const string StaleKey1M = "Space key logical 1048576 length 4194304 has no corresponding block group";
    private const string StaleKey5M = "Space key logical 5242880 length 8388608 has no corresponding block group";
    private const string StaleKey13M = "Space key logical 13631488 length 8388608 has no corresponding block group";

    /// <summary>
    /// Our checker's findings on valid images made by mkfs 6.19, each a checker rule that is wrong for them: fixture →
    /// the finding codes it reports (exactly). TODO issue 10: checker rule — the checker's owner fixes the rule, then
    /// the entry goes.
    /// </summary>
    internal static readonly IReadOnlyDictionary<string, FindingCode[]> OurKnownFindings619 = new Dictionary<string, FindingCode[]>(StringComparer.Ordinal)
    {
    };

    /// <summary>
    /// btrfs-progs v6.19's <c>check --readonly</c> on every fixture: exactly the errors recorded in
    /// <see cref="Progs619Errors"/> (an unrecorded fixture may only show the stale free-space keys of mkfs 6.2), exit
    /// code 0 exactly when there are none; ours clean; and every count of ours equal to v6.19's dump-tree.
    /// </summary>
    [Progs619Theory]
    [MemberData(nameof(DiffFixtures.All619), MemberType = typeof(DiffFixtures))]
    public void Progs619VerdictAsRecorded_OursCleanAndCountsMatchDumpTree(string fixture)
    {
        var problems = new List<string>();
        var progs = DiffFixtures.Progs(fixture, Progs.V619);
        output.WriteLine($"{fixture}: {progs.How}");
        bool recorded = Progs619Errors.TryGetValue(fixture, out var expected);
        foreach (var (label, code, text) in progs.Checks)
        {
            var errors = CheckErrorLines(text);
            output.WriteLine($"v6.19 check ({label}) exit {code}: {(errors.Count == 0 ? "no error" : string.Join(" | ", errors))}");
            if (recorded)
            {
                if (!errors.Order(StringComparer.Ordinal).SequenceEqual(expected!.Order(StringComparer.Ordinal)))
                    problems.Add($"btrfs check 6.19 ({label}) reported [{string.Join(" | ", errors)}], recorded [{string.Join(" | ", expected!)}]:\n{text}");
            }
            else
            {
                var other = errors.Where(e => e is not (StaleKey1M or StaleKey5M or StaleKey13M)).ToList();
                if (other.Count > 0)
                    problems.Add($"btrfs check 6.19 ({label}) on an unrecorded fixture reported [{string.Join(" | ", other)}] (record it in Progs619Errors):\n{text}");
            }
            if ((code == 0) != (errors.Count == 0))
                problems.Add($"btrfs check 6.19 ({label}) exited {code} with {errors.Count} error line(s):\n{text}");
        }
        var known = OurKnownFindings619.GetValueOrDefault(fixture, []);
        OursCleanAndCountsMatch(fixture, progs, problems, known);
    }

    /// <summary>The error lines of a <c>btrfs check</c> output: everything but its progress, banner and summary lines (and
    /// the "device N is missing" warning of a degraded read).</summary>
    internal static List<string> CheckErrorLines(string output) =>
        output.Split('\n').Select(l => l.TrimEnd()).Where(l => l.Length > 0 && !CheckNoise.IsMatch(l)).ToList();

    private static readonly System.Text.RegularExpressions.Regex CheckNoise = new(
        @"^(\[\d/\d\] |Opening filesystem to check|Checking filesystem on |UUID: |found \d+ bytes used, |total (csum|tree|fs tree|extent tree) bytes: " +
        @"|btree space waste bytes: |file data blocks allocated: | referenced \d+$|warning, device \d+ is missing$" +
        // v6.19 scans every block device for the set's other members; on a shared machine another process's loop device
        // may be half attached or detaching then: that is about the other device, not this filesystem
        @"|ERROR: cannot scan /dev/loop\d+: )",
        System.Text.RegularExpressions.RegexOptions.CultureInvariant);

    [Fact]
    public void CheckErrorLines_KeepsErrorsOnly()
    {
        const string text = "Opening filesystem to check...\nChecking filesystem on a.img\nUUID: 4392fef0-20b3-4c02-a7cc-2da4c4873834\n" +
                            "[1/8] checking log skipped (none written)\n[4/8] checking free space tree\n" + StaleKey1M + "\n" +
                            "found 147456 bytes used, error(s) found\ntotal csum bytes: 0\ntotal tree bytes: 147456\n" +
                            "btree space waste bytes: 140595\nfile data blocks allocated: 0\n referenced 0\nwarning, device 2 is missing\n" +
                            "ERROR: cannot scan /dev/loop4: Input/output error\nERROR: errors found in fs roots\n";
        Assert.Equal([StaleKey1M, "ERROR: errors found in fs roots"], CheckErrorLines(text));
    }

    private void OursCleanAndCountsMatch(string fixture, ProgsResults progs, List<string> problems, FindingCode[] knownFindings)
    {
        // ours: no error, no warning (but the known findings of a checker rule still to fix, exactly those codes)
        var findings = new FindingBag();
        CheckReport report;
        using (var vol = DiffFixtures.Open(fixture, findings))
            report = Checker.Run(vol, findings);
        var bad = findings.Items.Where(f => f.Severity >= Severity.Warning).ToList();
        // mkfs 6.2's stale free-space entries: exactly the keys btrfs check 6.19 names, each our warning 1102 (issue 14)
        var staleWanted = Progs619Errors.GetValueOrDefault(fixture, []).Select(StaleKeyLogical).OfType<ulong>().Order().ToList();
        var staleOurs = bad.Where(f => f.Code == FindingCode.FreeSpaceStaleMkfsEntries && f.Severity == Severity.Warning).Select(f => f.Bytenr ?? 0).Order().ToList();
        if (!staleOurs.SequenceEqual(staleWanted))
            problems.Add($"stale mkfs 6.2 free-space keys: ours (1102) at [{string.Join(", ", staleOurs)}], btrfs check 6.19's at [{string.Join(", ", staleWanted)}]");
        bad = bad.Where(f => f.IsProblem()).ToList();
        foreach (var f in bad.DistinctBy(f => f.Code).Take(20))
            output.WriteLine($"our finding: {f}");
        if (knownFindings.Length > 0)
        {
            var codes = bad.Select(f => f.Code).Distinct().Order().ToList();
            if (!codes.SequenceEqual(knownFindings.Order()))
                problems.Add($"our findings' codes [{string.Join(", ", codes)}], known (OurKnownFindings619) [{string.Join(", ", knownFindings)}]");
            bad = [];
        }
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
