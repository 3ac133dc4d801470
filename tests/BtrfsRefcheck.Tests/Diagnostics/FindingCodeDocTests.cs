using System.Text.RegularExpressions;
using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Tests.Oracle;

namespace BtrfsRefcheck.Tests.Diagnostics;

/// <summary>docs/findings.md is the one place codes are documented: it and the enum must agree exactly.</summary>
public class FindingCodeDocTests
{
    private static Dictionary<int, string> DocRows()
    {
        string doc = File.ReadAllText(Path.Combine(KernelFixtures.RepoRoot, "docs", "findings.md"));
        var rows = new Dictionary<int, string>();
        foreach (Match m in Regex.Matches(doc, @"^\|\s*(\d+)\s*\|\s*(\w+)\s*\|", RegexOptions.Multiline))
        {
            int code = int.Parse(m.Groups[1].Value);
            Assert.False(rows.ContainsKey(code), $"docs/findings.md lists code {code} twice");
            rows[code] = m.Groups[2].Value;
        }
        return rows;
    }

    [Fact]
    public void EveryCodeIsDocumentedWithItsName()
    {
        var rows = DocRows();
        foreach (FindingCode c in Enum.GetValues<FindingCode>())
        {
            Assert.True(rows.TryGetValue((int)c, out var name), $"code {(int)c} {c} is not in docs/findings.md");
            Assert.Equal(c.ToString(), name);
        }
    }

    [Fact]
    public void DocumentListsNoUnknownCode()
    {
        var defined = Enum.GetValues<FindingCode>().Select(c => (int)c).ToHashSet();
        foreach (var (code, name) in DocRows())
            Assert.True(defined.Contains(code), $"docs/findings.md documents {code} {name}, which FindingCode does not define");
    }

    [Fact]
    public void CodesAreUniqueAndGroupedByArea()
    {
        var values = Enum.GetValues<FindingCode>().Select(c => (int)c).ToList();
        Assert.Equal(values.Count, values.Distinct().Count());
        Assert.All(values, v => Assert.InRange(v, 100, 999));
    }
}
