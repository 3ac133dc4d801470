using System.Diagnostics;
using System.Text.Json;
using System.Text.RegularExpressions;
using BtrfsRefcheck.Tests.Forge;
using Xunit.Abstractions;

namespace BtrfsRefcheck.Tests.Cli;

/// <summary>An xunit fact skipped (saying why) when no headless Chromium is installed: Debian's <c>chromium</c>
/// package, which .ci/run installs; CHROMIUM_BIN names another binary.</summary>
public sealed class ChromiumFactAttribute : FactAttribute
{
    public ChromiumFactAttribute()
    {
        if (ChromiumReportTests.Chromium == null)
            Skip = "chromium is not installed (apt-get install chromium; .ci/run installs it): the HTML report is not rendered";
    }
}

/// <summary>The HTML report as a browser shows it: headless Chromium, offline, renders the page of a damaged image to a
/// screenshot that is not blank (many colours, the verdict's red banner, the black block group map) and to a DOM that
/// holds the verdict and one cell per block group.</summary>
public class ChromiumReportTests(ITestOutputHelper output)
{
    public static string? Chromium { get; } = Find();

    private static string? Find()
    {
        if (Environment.GetEnvironmentVariable("CHROMIUM_BIN") is { Length: > 0 } bin) return File.Exists(bin) ? bin : null;
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
            foreach (var name in new[] { "chromium", "chromium-browser" })
                if (File.Exists(Path.Combine(dir, name))) return Path.Combine(dir, name);
        return null;
    }

    /// <summary>Runs Chromium headless with everything that would reach the network off; returns its stdout.</summary>
    private string RunChromium(string dir, params string[] args)
    {
        string profile = Directory.CreateTempSubdirectory("btrfs-refcheck-chromium-").FullName;
        try
        {
            var psi = new ProcessStartInfo(Chromium!) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = dir };
            foreach (var a in new[] { "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                         "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", $"--user-data-dir={profile}" })
                psi.ArgumentList.Add(a);
            foreach (var a in args) psi.ArgumentList.Add(a);
            using var p = Process.Start(psi)!;
            var stderr = p.StandardError.ReadToEndAsync();
            var stdout = p.StandardOutput.ReadToEndAsync();
            if (!p.WaitForExit(TimeSpan.FromMinutes(2)))
            {
                p.Kill(entireProcessTree: true);
                Assert.Fail("chromium did not finish within 2 minutes");
            }
            output.WriteLine($"chromium {string.Join(' ', args)}: exit {p.ExitCode}; stderr {stderr.Result.Length} chars");
            Assert.Equal(0, p.ExitCode);
            return stdout.Result;
        }
        finally { Directory.Delete(profile, recursive: true); }
    }

    [ChromiumFact]
    public void DamagedImageReportRendersInChromium()
    {
        string dir = Directory.CreateTempSubdirectory("btrfs-refcheck-report-").FullName;
        try
        {
            string html = Path.Combine(dir, "report.html");
            var (_, json) = HtmlReportTests.DamagedReport(output, html);
            using var doc = JsonDocument.Parse(json);
            var summary = doc.RootElement.GetProperty("summary");
            string verdict = $"verdict: ERRORS FOUND ({summary.GetProperty("errors").GetInt64()})";
            string url = new Uri(html).AbsoluteUri; // file:///...

            // the DOM Chromium built: the verdict, every block group's cell
            string dom = RunChromium(dir, "--dump-dom", url);
            Assert.Contains(verdict, dom);
            Assert.Equal(summary.GetProperty("block_groups").GetInt64(), Regex.Matches(dom, "<rect id=\"cell-\\d+\"").Count);

            // the screenshot is not blank: many colours, the red verdict banner, the black map behind the cells
            string png = Path.Combine(dir, "report.png");
            RunChromium(dir, $"--screenshot={png}", "--window-size=1280,2000", url);
            var px = PngPixels.Read(File.ReadAllBytes(png));
            Assert.Equal((1280, 2000), (px.Width, px.Height));
            var colours = new HashSet<(byte, byte, byte)>();
            long white = 0, banner = 0, black = 0;
            for (int y = 0; y < px.Height; y++)
                for (int x = 0; x < px.Width; x++)
                {
                    var c = px[x, y];
                    colours.Add(c);
                    if (c is (255, 255, 255) or (246, 247, 249)) white++; // the page's background
                    if (c == (0xb3, 0x26, 0x1e)) banner++;
                    if (c == (0, 0, 0)) black++;
                }
            long total = (long)px.Width * px.Height;
            output.WriteLine($"screenshot: {colours.Count} colours, {100.0 * white / total:F1}% background, banner {banner} px, black {black} px");
            Assert.True(colours.Count >= 50, $"only {colours.Count} distinct colours: a blank page?");
            Assert.True(white < total * 0.95, "the screenshot is almost all background");
            Assert.True(banner > 1280 * 50, $"the red verdict banner is missing ({banner} px)");
            Assert.True(black > 100 * 100, $"the block group map is missing ({black} black px)");
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}
