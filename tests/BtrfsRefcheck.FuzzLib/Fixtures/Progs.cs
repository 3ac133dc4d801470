using System.Diagnostics;
using System.Text;

namespace BtrfsRefcheck.Tests.Oracle;

/// <summary>
/// Runs the installed btrfs-progs binaries (<c>mkfs.btrfs</c>, <c>btrfs</c>) and other helper tools
/// for oracle tests. Output is captured with asynchronous readers so large outputs (dump-tree can be
/// many MB) cannot dead-lock on a full pipe.
/// </summary>
public static class Progs
{
    /// <summary>Default time limit for one child process.</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(120);

    private static readonly string[] ExtraDirs =
        ["/usr/bin", "/usr/sbin", "/sbin", "/bin", "/usr/local/bin", "/usr/local/sbin"];

    private static readonly Lazy<bool> available = new(
        () => Find("mkfs.btrfs") is not null && Find("btrfs") is not null);

    /// <summary>True when both <c>mkfs.btrfs</c> and <c>btrfs</c> can be found (PATH or the usual sbin/bin dirs).</summary>
    public static bool Available => available.Value;

    /// <summary>Full path of <c>mkfs.btrfs</c>; throws if it is not installed.</summary>
    public static string MkfsPath => Find("mkfs.btrfs") ?? throw new FileNotFoundException("mkfs.btrfs not found");

    /// <summary>Full path of <c>btrfs</c>; throws if it is not installed.</summary>
    public static string BtrfsPath => Find("btrfs") ?? throw new FileNotFoundException("btrfs not found");

    /// <summary>
    /// Finds an executable by name on PATH and in /usr/bin, /usr/sbin, /sbin (and a few more).
    /// A name containing '/' is returned as-is when the file exists. Returns null when not found.
    /// </summary>
    public static string? Find(string exe)
    {
        if (exe.Contains('/'))
            return File.Exists(exe) ? exe : null;
        var dirs = (Environment.GetEnvironmentVariable("PATH") ?? "")
            .Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Concat(ExtraDirs);
        foreach (var dir in dirs)
        {
            var candidate = Path.Combine(dir, exe);
            if (File.Exists(candidate))
                return candidate;
        }
        return null;
    }

    /// <summary>
    /// Runs <paramref name="exe"/> with <paramref name="args"/> (default timeout) and returns stdout.
    /// Throws <see cref="ProgsException"/> (carrying stderr) when the exit code is non-zero.
    /// </summary>
    public static string Run(string exe, params string[] args)
    {
        var (code, stdout, stderr) = RunRaw(exe, DefaultTimeout, args);
        if (code != 0)
            throw new ProgsException(exe, args, code, stdout, stderr);
        return stdout;
    }

    /// <summary>Runs a process (default timeout) and returns exit code, stdout and stderr; never throws on the exit code.</summary>
    public static (int ExitCode, string Stdout, string Stderr) RunRaw(string exe, params string[] args) =>
        RunRaw(exe, DefaultTimeout, args);

    /// <summary>
    /// Runs a process with a time limit and returns exit code, stdout and stderr; never throws on the
    /// exit code. Throws <see cref="TimeoutException"/> (after killing the process tree) on timeout and
    /// <see cref="FileNotFoundException"/> when the executable cannot be found.
    /// The child gets <c>LC_ALL=C</c> and <c>TZ=UTC</c> so its output is locale/time-zone independent.
    /// </summary>
    public static (int ExitCode, string Stdout, string Stderr) RunRaw(string exe, TimeSpan timeout, params string[] args)
    {
        var path = Find(exe) ?? throw new FileNotFoundException($"executable '{exe}' not found", exe);
        var psi = new ProcessStartInfo(path)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };
        foreach (var a in args)
            psi.ArgumentList.Add(a);
        psi.Environment["LC_ALL"] = "C";
        psi.Environment["TZ"] = "UTC";

        using var process = new Process { StartInfo = psi };
        process.Start();
        process.StandardInput.Close();
        var stdoutTask = process.StandardOutput.ReadToEndAsync();
        var stderrTask = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(timeout))
        {
            try { process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            process.WaitForExit();
            throw new TimeoutException($"'{Describe(exe, args)}' did not finish within {timeout.TotalSeconds:0} s");
        }
        process.WaitForExit(); // flushes the async readers
        return (process.ExitCode, stdoutTask.GetAwaiter().GetResult(), stderrTask.GetAwaiter().GetResult());
    }

    /// <summary><c>btrfs inspect-internal dump-tree [extraArgs...] image</c> (the v6.2 oracle); returns stdout.</summary>
    public static string DumpTree(string image, params string[] extraArgs) => V62.DumpTree(image, extraArgs);

    /// <summary><c>btrfs inspect-internal dump-super [extraArgs...] image</c> (the v6.2 oracle); returns stdout.</summary>
    public static string DumpSuper(string image, params string[] extraArgs) => V62.DumpSuper(image, extraArgs);

    /// <summary><c>btrfs check --readonly image</c> (the v6.2 oracle); returns the raw result (exit code 0 = clean).</summary>
    public static (int ExitCode, string Stdout, string Stderr) CheckReadonly(string image) => V62.CheckReadonly(image);

    /// <summary>The first oracle: the system's btrfs-progs (Debian's v6.2), found on PATH and in the sbin/bin dirs.</summary>
    public static ProgsOracle V62 { get; } = new("6.2", null, null);

    /// <summary>
    /// The second oracle: btrfs-progs v6.19 (experimental build) from the folder in <c>BTRFS_PROGS_619_BIN</c> (set by
    /// scripts/test.sh and .ci/run after <c>../shared/btrfs-progs/build.sh</c>), else from build.sh's cache folder
    /// (<c>${BTRFS_PROGS_CACHE:-/var/cache/btrfs-progs-6.19}/bin</c>). <c>BTRFS_PROGS_619_MISSING=REASON</c> (set by
    /// the scripts when the build failed) makes it unavailable with that reason. Unavailable: its tests skip.
    /// </summary>
    public static ProgsOracle V619 => v619.Value;

    private static readonly Lazy<ProgsOracle> v619 = new(() => Locate619(
        Environment.GetEnvironmentVariable("BTRFS_PROGS_619_MISSING"),
        Environment.GetEnvironmentVariable("BTRFS_PROGS_619_BIN"),
        Environment.GetEnvironmentVariable("BTRFS_PROGS_CACHE")));

    /// <summary>Both oracles, oldest first.</summary>
    public static IReadOnlyList<ProgsOracle> Versions => [V62, V619];

    /// <summary>The oracle called <paramref name="name"/> ("6.2" or "6.19").</summary>
    public static ProgsOracle Version(string name) =>
        Versions.FirstOrDefault(o => o.Name == name) ?? throw new ArgumentException($"unknown btrfs-progs oracle '{name}'", nameof(name));

    /// <summary>The v6.19 oracle as the environment variables given describe it (see <see cref="V619"/>).</summary>
    internal static ProgsOracle Locate619(string? missingReason, string? binDir, string? buildCache)
    {
        const string name = "6.19";
        if (missingReason is { Length: > 0 } reason)
            return new(name, null, $"btrfs-progs 6.19 unavailable: {reason}");
        var fromEnv = binDir;
        var cache = buildCache is { Length: > 0 } c ? c : "/var/cache/btrfs-progs-6.19";
        var dir = fromEnv is { Length: > 0 } ? fromEnv : Path.Combine(cache, "bin");
        var source = fromEnv is { Length: > 0 } ? $"BTRFS_PROGS_619_BIN={fromEnv}" : $"build.sh's cache folder {dir}";
        string Missing(string why) =>
            $"btrfs-progs 6.19 not found ({source}: {why}); build it with ../shared/btrfs-progs/build.sh and set BTRFS_PROGS_619_BIN " +
            "to the folder it prints (scripts/test.sh does both when ../shared/btrfs-progs/build.sh exists)";
        foreach (var exe in new[] { "btrfs", "mkfs.btrfs" })
            if (!File.Exists(Path.Combine(dir, exe)))
                return new(name, null, Missing($"no {exe} there"));
        try
        {
            var (code, stdout, stderr) = RunRaw(Path.Combine(dir, "btrfs"), TimeSpan.FromSeconds(20), "--version");
            var version = (stdout + stderr).Trim();
            if (code != 0 || !version.Contains("v6.19", StringComparison.Ordinal))
                return new(name, null, Missing($"'btrfs --version' says '{version}' (exit {code})"));
        }
        catch (Exception e) when (e is TimeoutException or System.ComponentModel.Win32Exception or IOException)
        {
            return new(name, null, Missing(e.Message));
        }
        return new(name, dir, null);
    }

    internal static string Describe(string exe, IEnumerable<string> args) =>
        exe + " " + string.Join(" ", args.Select(a => a.Contains(' ') ? "\"" + a + "\"" : a));
}

/// <summary>
/// One btrfs-progs version used as an oracle: where its binaries are (null: the system's, found by <see cref="Progs.Find"/>)
/// and the tools the tests run. <see cref="WhyMissing"/> is null when it is available.
/// </summary>
public sealed class ProgsOracle(string name, string? binDir, string? whyMissing)
{
    /// <summary>"6.2" or "6.19".</summary>
    public string Name { get; } = name;

    /// <summary>Folder of its binaries; null for the system's.</summary>
    public string? BinDir { get; } = binDir;

    /// <summary>Why this version cannot be used here (a skip reason), or null.</summary>
    public string? WhyMissing => whyMissing ?? (BinDir == null && !Progs.Available ? "btrfs-progs (mkfs.btrfs, btrfs) not installed" : null);

    /// <summary>True when its binaries can be run.</summary>
    public bool Available => WhyMissing == null;

    /// <summary>The path (or, for the system's, the name) of one of its binaries.</summary>
    public string Exe(string tool) => BinDir == null ? tool : Path.Combine(BinDir, tool);

    /// <summary>Runs one of its binaries; throws <see cref="ProgsException"/> on a non-zero exit code.</summary>
    public string Run(string tool, params string[] args) => Progs.Run(Exe(tool), args);

    /// <summary>Runs one of its binaries; never throws on the exit code.</summary>
    public (int ExitCode, string Stdout, string Stderr) RunRaw(string tool, params string[] args) => Progs.RunRaw(Exe(tool), args);

    /// <summary><c>btrfs inspect-internal dump-tree [extraArgs...] image</c>; returns stdout.</summary>
    public string DumpTree(string image, params string[] extraArgs) => Run("btrfs", ["inspect-internal", "dump-tree", .. extraArgs, image]);

    /// <summary><c>btrfs inspect-internal dump-super [extraArgs...] image</c>; returns stdout.</summary>
    public string DumpSuper(string image, params string[] extraArgs) => Run("btrfs", ["inspect-internal", "dump-super", .. extraArgs, image]);

    /// <summary><c>btrfs check --readonly image</c>; returns the raw result (exit code 0 = clean).</summary>
    public (int ExitCode, string Stdout, string Stderr) CheckReadonly(string image) => RunRaw("btrfs", "check", "--readonly", image);

    /// <inheritdoc/>
    public override string ToString() => "btrfs-progs " + Name;
}

/// <summary>A child process exited with a non-zero code.</summary>
public sealed class ProgsException(string exe, IReadOnlyList<string> args, int exitCode, string stdout, string stderr)
    : Exception($"'{Progs.Describe(exe, args)}' exited with code {exitCode}: {stderr.Trim()}")
{
    /// <summary>The process exit code.</summary>
    public int ExitCode { get; } = exitCode;

    /// <summary>Captured standard output.</summary>
    public string Stdout { get; } = stdout;

    /// <summary>Captured standard error.</summary>
    public string Stderr { get; } = stderr;
}
