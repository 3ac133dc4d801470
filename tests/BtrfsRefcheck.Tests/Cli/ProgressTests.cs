using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;
using BtrfsRefcheck.Checks;
using BtrfsRefcheck.Cli.Rendering;
using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Tests.Forge;
using BtrfsRefcheck.Volume;
using Xunit.Abstractions;

namespace BtrfsRefcheck.Tests.Cli;

/// <summary>An xunit fact skipped (saying why) when util-linux <c>script</c>, which gives a command a real
/// pseudo-terminal, is not installed.</summary>
public sealed class ScriptFactAttribute : FactAttribute
{
    public ScriptFactAttribute()
    {
        if (ProgressTests.Script == null) Skip = "util-linux 'script' is not installed: no pseudo-terminal to test the progress line in";
    }
}

/// <summary>The check's progress: the library's events (every pass counts its work up to its total), the CLI's line
/// (format, at most 10 draws a second, erased), and the real thing in a pseudo-terminal: the line appears on a
/// terminal, what stays on the screen is exactly the output without a terminal, and not a byte of it reaches a
/// redirected stderr, <c>--json</c> or <c>-q</c>.</summary>
public class ProgressTests(ITestOutputHelper output)
{
    private sealed class Recorder : ICheckObserver
    {
        public readonly ConcurrentQueue<(string Pass, long Done, long Total, string Unit)> Events = new();
        public void Progress(string pass, long done, long total, string unit) => Events.Enqueue((pass, done, total, unit));
    }

    [Fact]
    public void EveryPassCountsUpToItsTotal()
    {
        var rec = new Recorder();
        var findings = new FindingBag();
        using var vol = BtrfsVolume.Open(ForgeFixtures.Images("kernel-snapshots"), null, findings);
        var report = Checker.Run(vol, findings, rec, degreeOfParallelism: 2);
        var events = rec.Events.ToList();
        foreach (var e in events)
        {
            Assert.InRange(e.Done, 0, e.Total);
            Assert.Contains(e.Pass, Checker.PhaseNames);
        }
        var trees = events.Where(e => e.Pass == "trees").ToList();
        Assert.True(trees.Count >= 2, "the tree scan reports at least every level's end");
        Assert.All(trees, e => Assert.Equal("blocks", e.Unit));
        long blocks = report.Stats.TreeBlocks + report.Stats.UnreadableBlocks;
        Assert.Equal((blocks, blocks), (trees[^1].Done, trees[^1].Total)); // exact at the end
        // the estimate from the metadata block groups' used bytes is the real count on a healthy filesystem
        Assert.All(trees, e => Assert.Equal(blocks, e.Total));
        var extents = events.Where(e => e.Pass == "extent references").ToList();
        Assert.NotEmpty(extents);
        Assert.Equal(extents[^1].Total, extents[^1].Done);
        Assert.True(extents[^1].Total > 0);
        var dev = events.Where(e => e.Pass == "device accounting").ToList();
        Assert.NotEmpty(dev);
        Assert.Equal(dev[^1].Total, dev[^1].Done);
    }

    [Fact]
    public void LineFormat()
    {
        Assert.Equal("[2/4] trees: 300/1200 blocks (25%), 100/s, 0:09 left", ProgressLine.Format("[2/4] ", "trees", 300, 1200, "blocks", 3.0));
        Assert.Equal("[2/4] trees: 300 blocks, 100/s", ProgressLine.Format("[2/4] ", "trees", 300, 0, "blocks", 3.0));
        Assert.Equal("[3/4] extent references: 5/10 extent leaves (50%)", ProgressLine.Format("[3/4] ", "extent references", 5, 10, "extent leaves", 0));
        Assert.Equal("x: 1/100000 blocks (0%), 1/s, 27:46:39 left", ProgressLine.Format("", "x", 1, 100000, "blocks", 1.0));
    }

    [Fact]
    public void DrawsAtMostTenTimesASecondAndErasesWhatItDrew()
    {
        long now = 0;
        var w = new StringWriter();
        var line = new ProgressLine(w, TimeSpan.FromMilliseconds(100), 60, () => now);
        line.Clear();
        Assert.Equal("", w.ToString()); // nothing shown: nothing to erase
        line.PassStarted(1, 4);
        for (int i = 0; i <= 2000; i++) // 2 s of events, one a millisecond, from "workers"
        {
            now = i * Stopwatch.Frequency / 1000;
            line.Update("trees", i, 2000, "blocks");
        }
        string s = w.ToString();
        int draws = Regex.Matches(s, "\r\\[2/4\\] trees: ").Count;
        Assert.InRange(draws, 19, 21);
        Assert.Contains("\r[2/4] trees: 1000/2000 blocks (50%), 1000/s, 0:01 left\x1b[K", s);
        Assert.All(s.Split('\r', StringSplitOptions.RemoveEmptyEntries), l => Assert.True(l.Length <= 59 + 3, $"'{l}' is wider than the terminal"));
        line.Clear();
        Assert.EndsWith("\x1b[K\r\x1b[K", w.ToString());
        int len = w.ToString().Length;
        line.Clear();
        Assert.Equal(len, w.ToString().Length); // erased once
        // a smaller count after a larger one (workers out of order) never moves the line back
        line.PassStarted(2, 4);
        now += Stopwatch.Frequency;
        line.Update("trees", 1500, 2000, "blocks");
        now += Stopwatch.Frequency;
        line.Update("trees", 1400, 2000, "blocks");
        string last = w.ToString()[w.ToString().LastIndexOf('\r')..];
        Assert.Equal("\r[3/4] trees: 1500/2000 blocks (75%), 750/s, 0:01 left\x1b[K", last);
    }

    public static string? Script { get; } = new[] { "/usr/bin/script", "/bin/script" }.FirstOrDefault(File.Exists);

    private static string Cli => Path.Combine(AppContext.BaseDirectory, "btrfs-refcheck.dll");

    /// <summary>Runs the CLI in a pseudo-terminal (util-linux script) and returns the bytes the terminal received.</summary>
    private string InTerminal(string args, string? stderrTo = null)
    {
        string cmd = $"dotnet '{Cli}' {args}" + (stderrTo != null ? $" 2>'{stderrTo}'" : "");
        var psi = new ProcessStartInfo(Script!) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        foreach (var a in new[] { "-q", "-e", "-c", cmd, "/dev/null" }) psi.ArgumentList.Add(a);
        psi.Environment["TERM"] = "xterm";
        psi.Environment[ProgressLine.IntervalVariable] = "0"; // a small image: draw at every event
        using var p = Process.Start(psi)!;
        p.StandardInput.Close();
        var err = p.StandardError.ReadToEndAsync();
        string raw = p.StandardOutput.ReadToEnd();
        Assert.True(p.WaitForExit(TimeSpan.FromMinutes(2)), "script did not finish");
        output.WriteLine($"$ {cmd}: exit {p.ExitCode} {err.Result}");
        return raw;
    }

    /// <summary>What a terminal shows after <paramref name="raw"/>: carriage returns go back to column 0, ESC[K erases
    /// to the line's end, other escape sequences (keypad mode) change nothing visible; CRLF as LF.</summary>
    internal static string Screen(string raw)
    {
        raw = Regex.Replace(raw, "\x1b\\[\\?[0-9;]*[a-zA-Z]|\x1b[=>]", "");
        var screen = new StringBuilder();
        var row = new StringBuilder();
        int col = 0;
        for (int i = 0; i < raw.Length; i++)
        {
            char c = raw[i];
            if (c == '\r') col = 0;
            else if (c == '\n') { screen.Append(row).Append('\n'); row.Clear(); col = 0; }
            else if (c == '\x1b' && i + 2 < raw.Length && raw[i + 1] == '[' && raw[i + 2] == 'K') { row.Length = Math.Min(row.Length, col); i += 2; }
            else
            {
                if (col < row.Length) row[col] = c; else row.Append(c);
                col++;
            }
        }
        return screen.Append(row).ToString();
    }

    private static string Normalise(string s) => Regex.Replace(s, @"phase '([^']+)': \d+ ms", "phase '$1': <t> ms");

    [ScriptFact]
    public void ProgressLineInATerminal()
    {
        using var img = BtrfsRefcheck.Forge.Forge.CopyAll(ForgeFixtures.Images("kernel-snapshots"), ForgeFixtures.TempDir);
        output.WriteLine(BtrfsRefcheck.Forge.Defects.Get("block-group-used-mismatch").Apply(img).Description);
        string image = img.Paths[0];
        var (o, e) = (new StringWriter(), new StringWriter());
        Assert.Equal(1, BtrfsRefcheck.Cli.Program.Run(["check", image], o, e));
        string plain = o.ToString();

        // on a terminal: lines with the pass and counts, rewritten in place and erased
        string raw = InTerminal($"check '{image}'");
        Assert.Matches("\r\\[2/4\\] trees: \\d+/\\d+ blocks \\(\\d+%\\)", raw);
        Assert.Matches("\r\\[3/4\\] extent references: \\d+/\\d+ extent leaves", raw);
        Assert.Contains("\x1b[K", raw);
        // the screen at the end is exactly the output without a terminal
        Assert.Equal(Normalise(plain), Normalise(Screen(raw)));

        // stderr redirected (stdout still a terminal): not a byte of progress anywhere
        string errFile = Path.Combine(ForgeFixtures.TempDir, $"progress-{Guid.NewGuid():N}.err");
        try
        {
            string rawOut = InTerminal($"check '{image}'", stderrTo: errFile);
            Assert.Equal(0, new FileInfo(errFile).Length);
            Assert.DoesNotContain("\x1b[K", rawOut);
            Assert.DoesNotContain(" blocks (", rawOut);
            Assert.Equal(Normalise(plain), Normalise(Screen(rawOut)));
        }
        finally { File.Delete(errFile); }

        // --json and -q on a terminal: none either
        foreach (var flag in new[] { "--json", "-q" })
        {
            string r = InTerminal($"check {flag} '{image}'");
            Assert.DoesNotContain("\x1b[K", r);
            Assert.DoesNotContain(" blocks (", r);
            Assert.DoesNotContain("extent leaves", r);
        }
    }
}
