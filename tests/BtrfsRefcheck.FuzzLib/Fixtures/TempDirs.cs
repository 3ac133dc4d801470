using System.Diagnostics;
using System.Globalization;

namespace BtrfsRefcheck.Tests.Oracle;

/// <summary>
/// Per-process temporary directories (<c>TMP/PREFIX-PID</c>) that are deleted at process exit (best effort) and,
/// because the test host may be killed before its exit handlers finish, also swept on the next run: directories
/// with the same prefix whose process no longer exists are removed when a new one is created.
/// </summary>
public static class TempDirs
{
    /// <summary>Creates (fresh) <c>TMP/PREFIX-PID</c>, removes stale siblings of dead processes, registers exit cleanup.</summary>
    public static string CreateForProcess(string prefix)
    {
        var tmp = Path.GetTempPath();
        SweepStale(tmp, prefix);
        var dir = Path.Combine(tmp, prefix + "-" + Environment.ProcessId.ToString(CultureInfo.InvariantCulture));
        TryDelete(dir); // leftovers of a recycled pid
        Directory.CreateDirectory(dir);
        AppDomain.CurrentDomain.ProcessExit += (_, _) => TryDelete(dir);
        return dir;
    }

    private static void SweepStale(string tmp, string prefix)
    {
        IEnumerable<string> candidates;
        try { candidates = Directory.EnumerateDirectories(tmp, prefix + "-*").ToList(); }
        catch (IOException) { return; }
        catch (UnauthorizedAccessException) { return; }
        foreach (var d in candidates)
        {
            var suffix = Path.GetFileName(d)[(prefix.Length + 1)..];
            if (!int.TryParse(suffix, NumberStyles.None, CultureInfo.InvariantCulture, out var pid) || pid == Environment.ProcessId)
                continue;
            if (!IsAlive(pid))
                TryDelete(d);
        }
    }

    private static bool IsAlive(int pid)
    {
        try
        {
            using var p = Process.GetProcessById(pid);
            return !p.HasExited;
        }
        catch (ArgumentException) { return false; }
        catch (InvalidOperationException) { return false; }
    }

    private static void TryDelete(string dir)
    {
        try
        {
            if (!Directory.Exists(dir))
                return;
            // big image files first, so an interrupted cleanup leaves as little as possible behind
            foreach (var f in Directory.EnumerateFiles(dir, "*.img*", SearchOption.AllDirectories))
                File.Delete(f);
            Directory.Delete(dir, recursive: true);
        }
        catch (Exception) { /* best effort */ }
    }
}
