using System.Text.RegularExpressions;
using BtrfsRefcheck.Checks;
using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Tests.Oracle;

namespace BtrfsRefcheck.Tests.Diagnostics;

/// <summary>Every pass reports only the codes it declares (its own and its components'). Called by the tests that run
/// the whole checker on forged and damaged images (ForgeTests, the Damage tests, ImageItems), so every code those
/// images raise is checked against the pass that raised it.</summary>
public static class PassCodes
{
    public static CheckReport AssertDeclared(CheckReport report)
    {
        foreach (var phase in report.Phases)
        {
            var pass = Checker.Passes.Single(p => p.Name == phase.Name);
            var may = Checker.MayReport(pass);
            var undeclared = phase.Emitted.Where(c => !may.Contains(c)).ToList();
            Assert.True(undeclared.Count == 0,
                $"pass '{pass.Name}' reported {string.Join(", ", undeclared.Select(c => $"{(int)c} {c}"))}, which it does not declare (Codes or Uses)");
        }
        return report;
    }
}

/// <summary>Each finding code has exactly one producer (a pass, or a named component of the volume or trees layer),
/// docs/findings.md names it in its producer column, and the sources make each code only in its producer's files:
/// one place per code (a walk or pass that needs another producer's finding calls that producer's function).</summary>
public class FindingProducerTests
{
    private static string SrcRoot => Path.Combine(KernelFixtures.RepoRoot, "src", "BtrfsRefcheck");

    /// <summary>Code → (producer's cell in docs/findings.md, its files relative to src/BtrfsRefcheck).</summary>
    private static Dictionary<FindingCode, (string Cell, string[] Files)> Owners()
    {
        var owners = new Dictionary<FindingCode, (string, string[])>();
        void Own(FindingCode c, string cell, string[] files)
        {
            Assert.False(owners.TryGetValue(c, out var other), $"{(int)c} {c} has two producers: {other.Item1} and {cell}");
            owners[c] = (cell, files);
        }
        foreach (var pass in Checker.Passes)
        {
            var folder = PassFolder(pass);
            foreach (var c in pass.Codes) Own(c, $"{pass.Name} (pass)", [folder]);
        }
        foreach (var p in FindingProducers.Components)
            foreach (var c in p.Codes) Own(c, $"{p.Name} ({p.Layer})", p.Files);
        return owners;
    }

    /// <summary>The folder (relative to src/BtrfsRefcheck, with a trailing slash) holding the pass's class.</summary>
    private static string PassFolder(ICheckPass pass)
    {
        var file = Directory.GetFiles(Path.Combine(SrcRoot, "Checks", "Passes"), "*.cs", SearchOption.AllDirectories)
            .Single(f => Regex.IsMatch(File.ReadAllText(f), $@"\bclass {pass.GetType().Name}\b"));
        return Path.GetRelativePath(SrcRoot, Path.GetDirectoryName(file)!).Replace('\\', '/') + "/";
    }

    [Fact]
    public void EveryCodeHasExactlyOneProducer()
    {
        var owners = Owners();
        foreach (var c in Enum.GetValues<FindingCode>())
            Assert.True(owners.ContainsKey(c), $"{(int)c} {c} has no producer: declare it in a pass's Codes or in FindingProducers");
    }

    [Fact]
    public void PassNamesAreUnique() =>
        Assert.Equal(Checker.Passes.Count, Checker.Passes.Select(p => p.Name).Distinct().Count());

    [Fact]
    public void FindingsDocNamesEachCodesProducer()
    {
        string doc = File.ReadAllText(Path.Combine(KernelFixtures.RepoRoot, "docs", "findings.md"));
        var owners = Owners();
        int rows = 0;
        foreach (Match m in Regex.Matches(doc, @"^\|\s*(\d+)\s*\|\s*(\w+)\s*\|[^|]*\|\s*([^|]*?)\s*\|", RegexOptions.Multiline))
        {
            var code = (FindingCode)int.Parse(m.Groups[1].Value);
            if (!owners.TryGetValue(code, out var owner)) continue; // FindingCodeDocTests says what is wrong
            Assert.True(owner.Cell == m.Groups[3].Value, $"docs/findings.md: {(int)code} {code}'s producer is '{owner.Cell}', the table says '{m.Groups[3].Value}'");
            rows++;
        }
        Assert.Equal(Enum.GetValues<FindingCode>().Length, rows);
    }

    [Fact]
    public void SourcesMakeEachCodeOnlyInItsProducersFiles()
    {
        var owners = Owners();
        var problems = new List<string>();
        foreach (var path in Directory.GetFiles(SrcRoot, "*.cs", SearchOption.AllDirectories))
        {
            var rel = Path.GetRelativePath(SrcRoot, path).Replace('\\', '/');
            if (rel.StartsWith("obj/") || rel.StartsWith("bin/") || rel.StartsWith("Diagnostics/")) continue;
            var text = File.ReadAllText(path);
            foreach (var name in Regex.Matches(text, @"\bFindingCode\.(\w+)").Select(m => m.Groups[1].Value).Distinct())
            {
                if (!Enum.TryParse<FindingCode>(name, out var code)) continue;
                if (owners[code].Files.Any(f => f.EndsWith('/') ? rel.StartsWith(f) : rel == f)) continue;
                problems.Add($"{rel} makes {(int)code} {code}, whose producer is {owners[code].Cell}");
            }
        }
        Assert.True(problems.Count == 0, string.Join("\n", problems));
    }
}
