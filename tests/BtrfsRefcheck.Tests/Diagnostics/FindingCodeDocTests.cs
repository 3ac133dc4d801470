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

    /// <summary>"Grouped by area in blocks of 100": FindingCode.cs opens each area with a comment
    /// <c>// N00-N99: area</c>. Every code, whatever its number, must be declared under the comment of the block that
    /// holds its number (so a code added at the end of the file, or under the wrong area, fails), the blocks must be
    /// whole hundreds declared once each, and codes ascend in the source as in docs/findings.md.</summary>
    [Fact]
    public void CodesAreUniqueAndGroupedByArea()
    {
        var values = Enum.GetValues<FindingCode>().Select(c => (int)c).ToList();
        Assert.Equal(values.Count, values.Distinct().Count());

        string src = File.ReadAllText(Path.Combine(KernelFixtures.RepoRoot, "src", "BtrfsRefcheck", "Diagnostics", "FindingCode.cs"));
        (int Lo, int Hi, string Area)? block = null;
        var blocks = new List<(int Lo, int Hi, string Area)>();
        var declared = new List<(string Name, int Value)>();
        foreach (var line in src.Split('\n'))
        {
            if (Regex.Match(line, @"^\s*//\s*(\d+)-(\d+):\s*(.+?)\s*$") is { Success: true } h)
            {
                block = (int.Parse(h.Groups[1].Value), int.Parse(h.Groups[2].Value), h.Groups[3].Value);
                Assert.True(block.Value.Lo % 100 == 0 && block.Value.Hi == block.Value.Lo + 99, $"area '{line.Trim()}' is not a block of 100");
                Assert.DoesNotContain(blocks, b => b.Lo == block.Value.Lo);
                blocks.Add(block.Value);
            }
            else if (Regex.Match(line, @"^\s*(\w+)\s*=\s*(\d+)\s*,?\s*$") is { Success: true } m)
            {
                string name = m.Groups[1].Value;
                int value = int.Parse(m.Groups[2].Value);
                Assert.True(block != null, $"{value} {name} is declared before any area comment");
                Assert.True(value >= block.Value.Lo && value <= block.Value.Hi,
                    $"{value} {name} is declared under area {block.Value.Lo}-{block.Value.Hi} ({block.Value.Area})");
                declared.Add((name, value));
            }
        }
        // Every enum member was seen by the parse above (none escaped it, whatever its number), in ascending order.
        Assert.Equal(Enum.GetValues<FindingCode>().Select(c => (c.ToString(), (int)c)).OrderBy(c => c.Item2),
                     declared.Select(d => (d.Name, d.Value)));
        Assert.Equal(declared.Select(d => d.Value).Order(), declared.Select(d => d.Value));
        Assert.All(values, v => Assert.InRange(v, 100, 9999));

        // The document lists the codes in the same ascending order.
        string doc = File.ReadAllText(Path.Combine(KernelFixtures.RepoRoot, "docs", "findings.md"));
        var docOrder = Regex.Matches(doc, @"^\|\s*(\d+)\s*\|\s*\w+\s*\|", RegexOptions.Multiline).Select(m => int.Parse(m.Groups[1].Value)).ToList();
        Assert.Equal(docOrder.Order(), docOrder);
    }
}
