using System.Diagnostics;
using BtrfsRefcheck.Tests.Forge;
using BtrfsRefcheck.Tests.Oracle;
using Xunit.Abstractions;

namespace BtrfsRefcheck.Tests.Cli;

/// <summary>The README's install line, done as a user would in a scratch tool path: <c>dotnet pack</c> of
/// src/BtrfsRefcheck.Cli (its own artifacts directory, so the tree's bin/ and obj/ are left alone), <c>dotnet tool
/// install --tool-path TMP --add-source DIR btrfs-refcheck</c>, then the installed command's <c>--version</c>, a check
/// and a scan on fixtures. About a minute (the pack compiles the three projects again). Restore needs no network: the
/// test project's own build has already put every package the CLI uses in the NuGet cache, and the install reads only
/// the folder it is given (other sources are allowed to fail). The install uses a private NuGet package folder, so a
/// package of the same version installed before is never taken from the cache instead of the one just packed.</summary>
public class ToolPackageTests(ITestOutputHelper output)
{
    private const string Version = "0.0.0-tooltest";

    [Fact]
    [Trait("Category", "Slow")]
    public void Pack_InstallToAToolPath_Run()
    {
        string dir = Path.Combine(ForgeFixtures.TempDir, "tool-package");
        if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        string artifacts = Path.Combine(dir, "artifacts"), feed = Path.Combine(dir, "feed"), tools = Path.Combine(dir, "tools");
        string project = Path.Combine(KernelFixtures.RepoRoot, "src", "BtrfsRefcheck.Cli");

        var pack = Run("dotnet", ["pack", project, "-c", "Release", "--nologo", "--artifacts-path", artifacts, "-o", feed, $"-p:Version={Version}"]);
        Assert.True(pack.Code == 0, $"dotnet pack failed:\n{pack.Out}");
        Assert.True(File.Exists(Path.Combine(feed, $"btrfs-refcheck.{Version}.nupkg")), $"no package in {feed}: {string.Join(", ", Directory.GetFiles(feed))}");

        var install = Run("dotnet", ["tool", "install", "--tool-path", tools, "--add-source", feed, "--ignore-failed-sources", "--version", Version, "btrfs-refcheck"],
            ("NUGET_PACKAGES", Path.Combine(dir, "nuget-packages")));
        Assert.True(install.Code == 0, $"dotnet tool install failed:\n{install.Out}");

        string exe = Path.Combine(tools, "btrfs-refcheck");
        Assert.True(File.Exists(exe), $"the tool path has no btrfs-refcheck command: {string.Join(", ", Directory.GetFileSystemEntries(tools))}");
        var version = Run(exe, ["--version"]);
        Assert.Equal(0, version.Code);
        Assert.StartsWith("btrfs-refcheck 0.0.0", version.Out.Trim());

        var check = Run(exe, ["check", "-q", KernelFixtures.Expand("kernel-logtree")]);
        Assert.True(check.Code == 0, check.Out);
        Assert.Contains("verdict: clean", check.Out);

        var scan = Run(exe, ["scan", KernelFixtures.Expand("kernel-raid1-dev2"), KernelFixtures.Expand("kernel-raid1-dev1")]);
        Assert.True(scan.Code == 0, scan.Out);
        Assert.Contains("1 filesystem (1 clean", scan.Out);

        try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
    }

    private (int Code, string Out) Run(string file, string[] args, params (string Name, string Value)[] env)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        psi.Environment["DOTNET_NOLOGO"] = "1";
        psi.Environment["DOTNET_SKIP_FIRST_TIME_EXPERIENCE"] = "1";
        foreach (var (n, v) in env) psi.Environment[n] = v;
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        string stdout = p.StandardOutput.ReadToEnd();
        if (!p.WaitForExit(TimeSpan.FromMinutes(10)))
        {
            p.Kill(entireProcessTree: true);
            Assert.Fail($"{file} {string.Join(' ', args)}: still running after 10 minutes");
        }
        string all = stdout + stderr.Result;
        output.WriteLine($"$ {file} {string.Join(' ', args)}  (exit {p.ExitCode})\n{all}");
        return (p.ExitCode, all);
    }
}
