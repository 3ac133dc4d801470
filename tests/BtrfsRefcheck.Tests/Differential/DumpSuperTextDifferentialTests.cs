using System.Text.RegularExpressions;
using BtrfsRefcheck.Cli;
using BtrfsRefcheck.Tests.Oracle;

namespace BtrfsRefcheck.Tests.Differential;

/// <summary>
/// Our <c>dump-super</c> verb's text against <c>btrfs inspect-internal dump-super -f</c>'s, field by field for every
/// top-level field progs prints (copies 0 and 1 of every device of every fixture): the same names (progs' <c>(deprecated)</c>
/// suffix aside) and the same values, flag names included. Where v6.2 and v6.19 print a field differently ours follows
/// v6.19, and each difference from the other version is listed in <see cref="KnownDifferences"/> with the reason.
/// </summary>
public class DumpSuperTextDifferentialTests
{
    private static readonly Regex FieldLine = new(@"^(?<name>[a-z_.]+) {2,}(?<value>.*)$", RegexOptions.CultureInvariant);

    /// <summary>(oracle, field) → (progs' value, ours) for a field where ours follows the other version, with the reason.</summary>
    private static readonly Dictionary<(string Oracle, string Field), Func<string, string, string?>> KnownDifferences = new()
    {
        // v6.2 prints the fsid when METADATA_UUID is off; v6.19 and ours print the field as stored: zeros then
        [("6.2", "metadata_uuid")] = (progs, ours) => ours == "00000000-0000-0000-0000-000000000000" ? null : "only the zero uuid may differ",
        // v6.19 names checksum type 3 "blake2b"; ours keeps v6.2's "blake2", the name Checksum.Name gives everywhere
        // (check reports, JSON), which is outside the dump verbs
        [("6.19", "csum_type")] = (progs, ours) => progs == "3 (blake2b)" && ours == "3 (blake2)" ? null : "only blake2b/blake2 may differ",
    };

    public static IEnumerable<object[]> Rows62 => DumpSuperDifferentialTests.FixturesAndCopies;

    public static IEnumerable<object[]> Rows619 => DumpSuperDifferentialTests.FixturesAndCopies619;

    [ProgsTheory]
    [MemberData(nameof(Rows62))]
    public void EveryFieldLineMatches62(string fixture, int copy) => FieldLinesMatch(fixture, copy, Progs.V62);

    [Progs619Theory]
    [MemberData(nameof(Rows619))]
    public void EveryFieldLineMatches619(string fixture, int copy) => FieldLinesMatch(fixture, copy, Progs.V619);

    private static void FieldLinesMatch(string fixture, int copy, ProgsOracle oracle)
    {
        if (DumpSuperDifferentialTests.IsAbsentCopy(fixture, copy)) return; // DumpSuperDifferentialTests checks both refuse it
        var diffs = new List<string>();
        int compared = 0;
        foreach (var image in DiffFixtures.Images(fixture))
        {
            var ps = DumpSuperParser.Parse(copy == 0
                ? OracleCache.DumpSuperText(oracle, image, "-f")
                : OracleCache.DumpSuperText(oracle, image, "-f", "-s", copy.ToString()));
            var ours = OurFields(image, copy);
            var prefix = $"{Path.GetFileName(image)} copy {copy}: ";
            foreach (var (printed, value) in ps.Fields)
            {
                if (ps.Fields.ContainsKey(printed + " (deprecated)")) continue; // the parser stores both spellings
                var name = printed.Replace(" (deprecated)", "");
                if (!ours.TryGetValue(name, out var mine)) { diffs.Add($"{prefix}{printed}: {oracle} prints '{value}', we print no such field"); continue; }
                var expected = ps.FlagNames.TryGetValue(printed, out var names) && names.Count > 0
                    ? $"{value} ( {string.Join(" | ", names)} )" : value;
                compared++;
                if (expected == mine) continue;
                if (KnownDifferences.TryGetValue((oracle.Name, name), out var allowed) && allowed(expected, mine) == null) continue;
                diffs.Add($"{prefix}{name}: {oracle} '{expected}', ours '{mine}'");
            }
        }
        Assert.True(diffs.Count == 0, DiffFixtures.Report($"{fixture} copy {copy}: our dump-super vs {oracle} dump-super -f", diffs));
        Assert.True(compared >= 40, $"only {compared} fields compared");
    }

    /// <summary>The planted value must be reported, and the known differences must not hide another value.</summary>
    [ProgsFact]
    public void KnownDifferences_AreNarrow()
    {
        Assert.NotNull(KnownDifferences[("6.2", "metadata_uuid")]("a", "b"));
        Assert.Null(KnownDifferences[("6.2", "metadata_uuid")]("a", "00000000-0000-0000-0000-000000000000"));
        Assert.NotNull(KnownDifferences[("6.19", "csum_type")]("0 (crc32c)", "0 (crc32)"));
        var ours = OurFields(DiffFixtures.Images("mkfs:crc32c")[0], 0);
        Assert.Equal("0x1 ( WRITTEN )", ours["flags"]);
        Assert.Equal("_BHRfS_M [match]", ours["magic"]);
    }

    /// <summary>Our <c>dump-super --super N IMAGE</c> (in-process): the top-level "name  value" lines.</summary>
    private static Dictionary<string, string> OurFields(string image, int copy)
    {
        var stdout = new StringWriter { NewLine = "\n" };
        var stderr = new StringWriter();
        int exit = Program.Run(["dump-super", "--super", copy.ToString(), image], stdout, stderr);
        Assert.True(exit is 0 or 1, $"dump-super exited {exit}: {stderr}"); // 1: the other devices of a set are missing
        var fields = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var line in stdout.ToString().Split('\n'))
        {
            if (line.StartsWith("sys_chunk_array", StringComparison.Ordinal)) break;
            var m = FieldLine.Match(line);
            if (m.Success) fields.TryAdd(m.Groups["name"].Value, m.Groups["value"].Value.TrimEnd());
        }
        return fields;
    }
}
