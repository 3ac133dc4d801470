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

    /// <summary><c>btrfs inspect-internal dump-tree [extraArgs...] image</c>; returns stdout.</summary>
    public static string DumpTree(string image, params string[] extraArgs) =>
        Run("btrfs", ["inspect-internal", "dump-tree", .. extraArgs, image]);

    /// <summary><c>btrfs inspect-internal dump-super [extraArgs...] image</c>; returns stdout.</summary>
    public static string DumpSuper(string image, params string[] extraArgs) =>
        Run("btrfs", ["inspect-internal", "dump-super", .. extraArgs, image]);

    /// <summary><c>btrfs check --readonly image</c>; returns the raw result (exit code 0 = clean).</summary>
    public static (int ExitCode, string Stdout, string Stderr) CheckReadonly(string image) =>
        RunRaw("btrfs", "check", "--readonly", image);

    internal static string Describe(string exe, IEnumerable<string> args) =>
        exe + " " + string.Join(" ", args.Select(a => a.Contains(' ') ? "\"" + a + "\"" : a));
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

/// <summary>An xunit <see cref="FactAttribute"/> that is skipped when btrfs-progs is not installed.</summary>
public sealed class ProgsFactAttribute : FactAttribute
{
    /// <summary>Sets <see cref="FactAttribute.Skip"/> when <see cref="Progs.Available"/> is false.</summary>
    public ProgsFactAttribute()
    {
        if (!Progs.Available)
            Skip = "btrfs-progs (mkfs.btrfs, btrfs) not installed";
    }
}

/// <summary>An xunit <see cref="TheoryAttribute"/> that is skipped when btrfs-progs is not installed.</summary>
public sealed class ProgsTheoryAttribute : TheoryAttribute
{
    /// <summary>Sets <see cref="FactAttribute.Skip"/> when <see cref="Progs.Available"/> is false.</summary>
    public ProgsTheoryAttribute()
    {
        if (!Progs.Available)
            Skip = "btrfs-progs (mkfs.btrfs, btrfs) not installed";
    }
}
