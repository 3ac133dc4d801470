using System.Globalization;
using System.Net;
using System.Text;
using BtrfsRefcheck.Checks;
using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;

namespace BtrfsRefcheck.Cli.Rendering;

/// <summary>What the page shows: the check's report and where it came from.</summary>
internal sealed record HtmlReportInput(IReadOnlyList<string> Devices, string Fsid, ulong Generation, CheckReport Report, string Verdict,
    IReadOnlyList<string>? Notes = null, LiveReport? Live = null);

/// <summary><c>check --report FILE.html</c>: one self-contained page (inline CSS and SVG, no script, no link to
/// anything outside it): the verdict, the summary, the findings grouped by code with their locations and what the code
/// means (docs/findings.md, <see cref="FindingMeanings"/>), and a map of the volume: every block group one cell of a
/// Hilbert curve in address order (<see cref="HilbertLayout"/>), coloured as btrfs-heatmap colours them (data white,
/// metadata blue, system red; brighter as they fill), the cells that hold findings outlined and linked to them. Every
/// text from the image (names in messages, keys, devices) is escaped.</summary>
internal sealed class HtmlReport : IDisposable
{
    private readonly string _path;
    private readonly FileStream _file;

    private HtmlReport(string path, FileStream file)
    {
        _path = path;
        _file = file;
    }

    /// <summary>Creates the file before the check runs, so a path that cannot be written fails at once; null without a path.</summary>
    public static HtmlReport? Open(string? path)
    {
        if (path == null) return null;
        try { return new HtmlReport(path, new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.Read)); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            throw new UsageException($"--report {path}: {e.Message}");
        }
    }

    public void Write(Volume.BtrfsVolume vol, CheckReport r, CheckOptions o, LiveReport? live = null)
    {
        var input = new HtmlReportInput(o.Devices.ToList(), vol.Super.Fsid.ToString(), vol.Super.Generation, r, Verbs.CheckText.Verdict(r, live), vol.Notes, live);
        try
        {
            using var w = new StreamWriter(_file, new UTF8Encoding(false), 1 << 16, leaveOpen: true);
            Render(w, input);
            _written = true;
        }
        catch (IOException e) { throw new UsageException($"--report {_path}: {e.Message}"); }
    }

    private bool _written;

    /// <summary>Closes the page; when the check never got to write it (the volume could not be read), removes the empty
    /// file rather than leave a blank page where CI looks for a report.</summary>
    public void Dispose()
    {
        _file.Dispose();
        if (!_written)
            try { File.Delete(_path); } catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }

    /// <summary>Codes whose bytenr is not a logical address (a superblock copy's offset), so never in a block group.</summary>
    internal static bool BytenrIsLogical(FindingCode c) =>
        (int)c >= 200 && c is not (FindingCode.SuperBytesUsedMismatch or FindingCode.SuperNumDevicesMismatch);

    /// <summary>The index of the block group holding the finding's address, or -1. <paramref name="groups"/> are sorted.</summary>
    internal static int GroupOf(Finding f, IReadOnlyList<BlockGroupSummary> groups)
    {
        if (f.Bytenr is not { } b || !BytenrIsLogical(f.Code)) return -1;
        int lo = 0, hi = groups.Count - 1, found = -1;
        while (lo <= hi) // the last group starting at or before b
        {
            int mid = (lo + hi) >>> 1;
            if (groups[mid].Start <= b) { found = mid; lo = mid + 1; } else hi = mid - 1;
        }
        return found >= 0 && groups[found].Contains(b) ? found : -1;
    }

    /// <summary>Text for HTML: the five special characters as entities, control characters (from damaged names) as
    /// visible \xNN, lone surrogates as U+FFFD.</summary>
    internal static string Esc(string? s)
    {
        if (string.IsNullOrEmpty(s)) return "";
        var b = new StringBuilder(s.Length + 16);
        for (int i = 0; i < s.Length; i++)
        {
            char c = s[i];
            switch (c)
            {
                case '<': b.Append("&lt;"); break;
                case '>': b.Append("&gt;"); break;
                case '&': b.Append("&amp;"); break;
                case '"': b.Append("&quot;"); break;
                case '\'': b.Append("&#39;"); break;
                case '\n' or '\t': b.Append(c); break;
                default:
                    if (char.IsControl(c)) b.Append($"\\x{(int)c:x2}");
                    else if (char.IsHighSurrogate(c) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1])) { b.Append(c).Append(s[i + 1]); i++; }
                    else if (char.IsSurrogate(c)) b.Append('\uFFFD');
                    else b.Append(c);
                    break;
            }
        }
        return b.ToString();
    }

    /// <summary>docs/findings.md's meaning text: escaped, `code` spans as &lt;code&gt;.</summary>
    internal static string MarkdownInline(string md)
    {
        var parts = Esc(md).Split('`');
        var b = new StringBuilder();
        for (int i = 0; i < parts.Length; i++)
        {
            if (i % 2 == 1 && i < parts.Length - 1) b.Append("<code>").Append(parts[i]).Append("</code>");
            else b.Append(i % 2 == 1 ? "`" + parts[i] : parts[i]);
        }
        return b.ToString().Replace("**", "");
    }

    private static string N(long v) => v.ToString("N0", CultureInfo.InvariantCulture);
    private static string N(ulong v) => v.ToString("N0", CultureInfo.InvariantCulture);

    private static string Bytes(ulong v)
    {
        string[] units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
        double d = v;
        int u = 0;
        while (d >= 1024 && u < units.Length - 1) { d /= 1024; u++; }
        return u == 0 ? $"{v} B" : d.ToString(d >= 100 ? "F0" : "F1", CultureInfo.InvariantCulture) + " " + units[u];
    }

    /// <summary>btrfs-heatmap's colours: data white, metadata blue, system red (mixed groups violet); the brightness
    /// grows with the fill (used / length) from a dim floor, so an empty group still shows.</summary>
    internal static string CellColour(BlockGroupSummary g)
    {
        (int R, int G, int B) basis = (g.Flags & BlockGroupFlags.TypeMask) switch
        {
            BlockGroupFlags.Data => (255, 255, 255),
            BlockGroupFlags.Metadata => (64, 112, 255),
            BlockGroupFlags.System => (255, 64, 64),
            BlockGroupFlags.Data | BlockGroupFlags.Metadata => (200, 120, 255),
            _ => (160, 160, 160),
        };
        if (g.Used is not { } used) return "#555";
        double fill = g.Length == 0 ? 0 : Math.Min(1.0, (double)used / g.Length);
        double k = 0.18 + 0.82 * fill;
        return $"rgb({(int)(basis.R * k)},{(int)(basis.G * k)},{(int)(basis.B * k)})";
    }

    private const string Css = """
        :root { color-scheme: light; }
        body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; margin: 0; color: #1d2125; background: #f6f7f9; }
        main { max-width: 1200px; margin: 0 auto; padding: 0 24px 48px; }
        header.verdict { padding: 20px 24px; color: #fff; }
        header.verdict.clean { background: #1f7a3a; }
        header.verdict.errors { background: #b3261e; }
        header.verdict h1 { margin: 0 0 6px; font-size: 26px; }
        header.verdict p { margin: 0; opacity: .92; font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 13px; }
        h2 { margin: 28px 0 10px; font-size: 20px; border-bottom: 1px solid #d0d4da; padding-bottom: 4px; }
        h3 { margin: 20px 0 6px; font-size: 16px; }
        table { border-collapse: collapse; background: #fff; }
        th, td { border: 1px solid #d8dce2; padding: 4px 8px; text-align: left; vertical-align: top; }
        th { background: #eef0f3; font-weight: 600; }
        td.n { text-align: right; font-variant-numeric: tabular-nums; }
        .mono, td.where, code { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12.5px; }
        code { background: #eef0f3; padding: 0 3px; border-radius: 3px; }
        .sev { display: inline-block; padding: 0 6px; border-radius: 3px; color: #fff; font-size: 12px; font-weight: 600; }
        .sev.error { background: #b3261e; } .sev.warning { background: #a15c00; } .sev.info { background: #3d5a80; }
        .meaning { margin: 4px 0 8px; color: #3b4148; max-width: 80em; }
        .mapbox { display: flex; gap: 24px; align-items: flex-start; flex-wrap: wrap; }
        svg.map { background: #000; border: 1px solid #000; }
        svg.map .hit { stroke: #ffd400; stroke-width: 2; }
        .legend span.sw { display: inline-block; width: 14px; height: 14px; vertical-align: -2px; margin-right: 6px; border: 1px solid #888; }
        .legend div { margin: 3px 0; }
        ul.codes { columns: 2; padding-left: 18px; }
        tr:target, section:target { outline: 3px solid #ffd400; }
        footer { margin-top: 32px; color: #6b7280; font-size: 12px; }
        """;

    internal static void Render(TextWriter w, HtmlReportInput p)
    {
        var r = p.Report;
        var groups = r.BlockGroups;
        var items = r.Findings.Items;
        var counts = r.Findings.Counts;
        // finding index -> block group; block group -> finding indexes
        var groupOf = new int[items.Count];
        var inGroup = new Dictionary<int, List<int>>();
        for (int i = 0; i < items.Count; i++)
        {
            groupOf[i] = GroupOf(items[i], groups);
            if (groupOf[i] >= 0)
            {
                if (!inGroup.TryGetValue(groupOf[i], out var l)) inGroup[groupOf[i]] = l = [];
                l.Add(i);
            }
        }

        w.WriteLine("<!DOCTYPE html>");
        w.WriteLine("<html lang=\"en\"><head><meta charset=\"utf-8\">");
        w.WriteLine("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
        w.WriteLine($"<title>btrfs-refcheck: {Esc(p.Verdict)}</title>");
        w.WriteLine($"<style>\n{Css}\n</style></head><body>");
        w.WriteLine($"<header class=\"verdict {(r.Clean ? "clean" : "errors")}\"><h1 id=\"verdict\">{Esc(p.Verdict)}</h1>");
        w.WriteLine($"<p>{Esc(string.Join(' ', p.Devices))} &middot; UUID {Esc(p.Fsid)} &middot; generation {p.Generation}</p></header>");
        w.WriteLine("<main>");
        if (p.Notes is { Count: > 0 } notes)
        {
            w.WriteLine("<ul class=\"notes\">");
            foreach (var n in notes) w.WriteLine($"<li>note: {Esc(n)}</li>");
            w.WriteLine("</ul>");
        }
        Summary(w, r, p.Live);
        Map(w, groups, items, inGroup);
        Findings(w, items, counts, groupOf, groups);
        FlaggedGroups(w, items, groups, inGroup);
        w.WriteLine($"<footer>btrfs-refcheck {Esc(typeof(HtmlReport).Assembly.GetName().Version?.ToString())}: read-only metadata and back-reference check. This page is self-contained: it loads nothing.</footer>");
        w.WriteLine("</main></body></html>");
    }

    private static void Summary(TextWriter w, CheckReport r, LiveReport? live)
    {
        var s = r.Stats;
        w.WriteLine("<section id=\"summary\"><h2>Summary</h2><table>");
        void Row(string name, string value) => w.WriteLine($"<tr><th>{Esc(name)}</th><td class=\"n\">{value}</td></tr>");
        Row("errors", N(r.Errors));
        Row("warnings", N(r.Warnings));
        Row("notes", N(r.Notes));
        Row("trees", N(s.Trees));
        Row("tree blocks (nodes, leaves)", $"{N(s.TreeBlocks)} ({N(s.Nodes)}, {N(s.Leaves)})");
        Row("items", N(s.Items));
        Row("unreadable blocks", N(s.UnreadableBlocks));
        Row("extent items (metadata, data)", $"{N(s.ExtentItems)} ({N(s.MetadataExtentItems)}, {N(s.DataExtentItems)})");
        Row("block groups", N(r.BlockGroups.Count));
        Row("back-refs inline, keyed", $"{N(s.InlineRefs)}, {N(s.KeyedRefs)}");
        Row("TREE_BLOCK_REF, SHARED_BLOCK_REF", $"{N(s.TreeBlockRefs)}, {N(s.SharedBlockRefs)}");
        Row("EXTENT_DATA_REF, SHARED_DATA_REF, EXTENT_OWNER_REF", $"{N(s.ExtentDataRefs)}, {N(s.SharedDataRefs)}, {N(s.ExtentOwnerRefs)}");
        Row("file extents referencing data", N(s.FileExtents));
        if (s.SubvolumeTreesFast + s.SubvolumeTreesJoined > 0)
            Row("subvolume trees: names verified by fingerprint, by the exact join", $"{N(s.SubvolumeTreesFast)}, {N(s.SubvolumeTreesJoined)}");
        foreach (var ph in r.Phases) Row($"phase '{ph.Name}'", $"{ph.Elapsed.TotalMilliseconds.ToString("F0", CultureInfo.InvariantCulture)} ms");
        if (live != null)
            Row("mounted: generations seen, re-verifications", $"{Esc(string.Join(", ", live.Generations))}; {live.Reverifications} (at most {live.MaxReverifications})");
        w.WriteLine("</table></section>");
    }

    private static void Map(TextWriter w, IReadOnlyList<BlockGroupSummary> groups, IReadOnlyList<Finding> items, Dictionary<int, List<int>> inGroup)
    {
        w.WriteLine("<section id=\"map\"><h2>Block groups</h2>");
        if (groups.Count == 0)
        {
            w.WriteLine("<p>No block group or chunk could be read.</p></section>");
            return;
        }
        int side = HilbertLayout.Side(groups.Count);
        int cell = Math.Clamp(640 / side, 6, 64);
        int size = side * cell;
        w.WriteLine($"<p>{N(groups.Count)} block groups in address order along a Hilbert curve (the lowest address at the bottom left), one cell each; brighter means fuller. Outlined cells hold findings: click one to see them.</p>");
        w.WriteLine("<div class=\"mapbox\">");
        w.WriteLine($"<svg class=\"map\" width=\"{size}\" height=\"{size}\" viewBox=\"0 0 {size} {size}\" role=\"img\" aria-label=\"block group map\">");
        int gap = cell >= 12 ? 2 : 1;
        for (int i = 0; i < groups.Count; i++)
        {
            var g = groups[i];
            var (x, y) = HilbertLayout.Cell(side, i);
            string fill = g.Used is { } u ? $"used {Bytes(u)} of {Bytes(g.Length)} ({100.0 * u / Math.Max(1, g.Length):F1}%)" : $"{Bytes(g.Length)}, no block group item";
            string title = $"{g.Flags.Describe()} [{g.Start}, {g.End}) {fill}";
            bool hit = inGroup.TryGetValue(i, out var fs);
            if (hit) title += $"; {fs!.Count} finding{(fs.Count == 1 ? "" : "s")}: {string.Join(", ", fs.Select(k => (int)items[k].Code).Distinct())}";
            string rect = $"<rect id=\"cell-{g.Start}\" class=\"cell{(hit ? " hit" : "")}\" x=\"{x * cell + gap / 2.0:0.#}\" y=\"{y * cell + gap / 2.0:0.#}\" width=\"{cell - gap}\" height=\"{cell - gap}\" fill=\"{CellColour(g)}\" data-start=\"{g.Start}\"><title>{Esc(title)}</title></rect>";
            w.WriteLine(hit ? $"<a href=\"#bg-{g.Start}\">{rect}</a>" : rect);
        }
        w.WriteLine("</svg>");
        w.WriteLine("<div class=\"legend\">");
        foreach (var (name, flags) in new[] { ("data", BlockGroupFlags.Data), ("metadata", BlockGroupFlags.Metadata), ("system", BlockGroupFlags.System), ("mixed data and metadata", BlockGroupFlags.Data | BlockGroupFlags.Metadata) })
        {
            string full = CellColour(new BlockGroupSummary(0, 1, flags, 1)), empty = CellColour(new BlockGroupSummary(0, 1, flags, 0));
            w.WriteLine($"<div><span class=\"sw\" style=\"background:{empty}\"></span><span class=\"sw\" style=\"background:{full}\"></span>{name} (empty, full)</div>");
        }
        w.WriteLine("<div><span class=\"sw\" style=\"background:#555\"></span>chunk without a block group item</div>");
        w.WriteLine("<div><span class=\"sw\" style=\"background:#000;border:2px solid #ffd400\"></span>holds findings</div>");
        w.WriteLine("</div></div></section>");
    }

    private static void Findings(TextWriter w, IReadOnlyList<Finding> items, IReadOnlyDictionary<FindingCode, long> counts, int[] groupOf, IReadOnlyList<BlockGroupSummary> groups)
    {
        w.WriteLine("<section id=\"findings\"><h2>Findings</h2>");
        if (counts.Count == 0)
        {
            w.WriteLine("<p>None.</p></section>");
            return;
        }
        var byCode = Enumerable.Range(0, items.Count).GroupBy(i => items[i].Code).OrderBy(g => (int)g.Key).ToList();
        w.WriteLine("<ul class=\"codes\">");
        foreach (var (code, n) in counts.OrderBy(kv => (int)kv.Key))
            w.WriteLine($"<li><a href=\"#code-{(int)code}\">{(int)code} {code}</a>: {N(n)}</li>");
        w.WriteLine("</ul>");
        foreach (var group in byCode)
        {
            var code = group.Key;
            long total = counts.GetValueOrDefault(code);
            var sev = items[group.First()].Severity;
            var row = FindingMeanings.Of(code);
            w.WriteLine($"<section class=\"code\" id=\"code-{(int)code}\"><h3><span class=\"sev {SevClass(sev)}\">{sev.ToString().ToUpperInvariant()}</span> {(int)code} {code}: {N(total)} finding{(total == 1 ? "" : "s")}</h3>");
            if (row != null) w.WriteLine($"<p class=\"meaning\">{MarkdownInline(row.Meaning)} <span class=\"mono\">(found by: {Esc(row.Producer)})</span></p>");
            w.WriteLine("<table><tr><th>#</th><th>where</th><th>what</th><th>have / expected</th><th>block group</th></tr>");
            foreach (int i in group)
            {
                var f = items[i];
                var where = new List<string>();
                if (f.Tree is { } t) where.Add($"root {ObjectIds.TreeName(t)}");
                if (f.Bytenr is { } b) where.Add($"block {b}");
                if (f.Slot is { } sl) where.Add($"slot {sl}");
                if (f.Key is { } k) where.Add($"key {k}");
                if (f.Device is { } d) where.Add($"device {d}");
                if (f.Mirror is { } m) where.Add($"copy {m}");
                string have = f.Expected != null || f.Found != null ? $"{Esc(f.Found ?? "?")} / {Esc(f.Expected ?? "?")}" : "";
                string bg = groupOf[i] >= 0 ? $"<a href=\"#cell-{groups[groupOf[i]].Start}\">{groups[groupOf[i]].Start}</a>" : "";
                w.WriteLine($"<tr id=\"f-{i}\" class=\"{SevClass(f.Severity)}\"><td class=\"n\">{i + 1}</td><td class=\"where\">{Esc(string.Join(" ", where))}</td><td>{Esc(f.Message)}</td><td class=\"mono\">{have}</td><td class=\"mono\">{bg}</td></tr>");
            }
            w.WriteLine("</table>");
            int shown = group.Count();
            if (total > shown) w.WriteLine($"<p>... and {N(total - shown)} more not stored.</p>");
            w.WriteLine("</section>");
        }
        w.WriteLine("</section>");
    }

    private static void FlaggedGroups(TextWriter w, IReadOnlyList<Finding> items, IReadOnlyList<BlockGroupSummary> groups, Dictionary<int, List<int>> inGroup)
    {
        if (inGroup.Count == 0) return;
        w.WriteLine("<section id=\"by-block-group\"><h2>Block groups with findings</h2>");
        foreach (var (gi, fs) in inGroup.OrderBy(kv => kv.Key))
        {
            var g = groups[gi];
            w.WriteLine($"<section id=\"bg-{g.Start}\"><h3><a href=\"#cell-{g.Start}\">{Esc(g.Flags.Describe())} [{g.Start}, {g.End})</a>: {fs.Count} finding{(fs.Count == 1 ? "" : "s")}</h3><ul>");
            foreach (int i in fs) w.WriteLine($"<li><a href=\"#f-{i}\">{(int)items[i].Code} {items[i].Code}</a> {Esc(items[i].Message)}</li>");
            w.WriteLine("</ul></section>");
        }
        w.WriteLine("</section>");
    }

    private static string SevClass(Severity s) => s switch { Severity.Error => "error", Severity.Warning => "warning", _ => "info" };
}
