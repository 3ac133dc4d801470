using System.Text.RegularExpressions;
using BtrfsRefcheck.Diagnostics;

namespace BtrfsRefcheck.Cli.Rendering;

/// <summary>What each finding code means, from docs/findings.md's code table, which the CLI carries as an embedded
/// resource (BtrfsRefcheck.Cli.csproj): the one place codes are documented is also what the HTML report explains them
/// with. FindingCodeDocTests keeps that table and the enum in agreement.</summary>
internal static partial class FindingMeanings
{
    public sealed record Row(int Code, string Name, string Severity, string Producer, string Meaning);

    private static readonly Lazy<IReadOnlyDictionary<int, Row>> Table = new(Load);

    public static IReadOnlyDictionary<int, Row> All => Table.Value;

    /// <summary>The row of <paramref name="code"/>; null when the table has none (an older document).</summary>
    public static Row? Of(FindingCode code) => All.GetValueOrDefault((int)code);

    private static IReadOnlyDictionary<int, Row> Load()
    {
        using var s = typeof(FindingMeanings).Assembly.GetManifestResourceStream("findings.md");
        if (s == null) return new Dictionary<int, Row>();
        using var r = new StreamReader(s);
        return Parse(r.ReadToEnd());
    }

    /// <summary>Rows "| code | name | severity | producer | meaning |" whose name is a word (other tables of the
    /// document have prose there).</summary>
    internal static Dictionary<int, Row> Parse(string markdown)
    {
        var rows = new Dictionary<int, Row>();
        foreach (var line in markdown.Split('\n'))
        {
            if (RowPattern().Match(line.TrimEnd('\r')) is not { Success: true } m) continue;
            int code = int.Parse(m.Groups[1].Value);
            rows.TryAdd(code, new Row(code, m.Groups[2].Value, m.Groups[3].Value.Trim(), m.Groups[4].Value.Trim(), m.Groups[5].Value.Trim()));
        }
        return rows;
    }

    [GeneratedRegex(@"^\|\s*(\d+)\s*\|\s*(\w+)\s*\|([^|]*)\|([^|]*)\|(.*)\|\s*$")]
    private static partial Regex RowPattern();
}
