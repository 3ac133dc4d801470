using System.Diagnostics;

namespace BtrfsRefcheck.Cli.Rendering;

/// <summary>The live progress line on a terminal's stderr: "[2/4] trees: 12345/40000 blocks (30%), 5432/s,
/// 0:06 left", rewritten in place (carriage return, erase to the end of the line) at most once per
/// <see cref="Interval"/>, and erased before anything else is printed and at the end, so what stays on the screen is
/// exactly what a pipe gets. Fed from the check's observer, possibly from several scan workers at once.</summary>
internal sealed class ProgressLine
{
    /// <summary>Tests set it to 0 so even a small image draws lines (the default is 100 ms: 10 per second).</summary>
    public const string IntervalVariable = "BTRFS_REFCHECK_PROGRESS_INTERVAL_MS";

    private const string EraseLine = "\r\x1b[K";
    private readonly TextWriter _err;
    private readonly int _width;
    private readonly Func<long> _now; // Stopwatch ticks
    private readonly long _intervalTicks;
    private readonly object _lock = new();
    private long _lastDraw = long.MinValue / 2;
    private string _prefix = "";
    private string? _pass;
    private long _passStart;
    private long _done;
    private bool _shown;
    private bool _broken;

    public TimeSpan Interval { get; }

    public ProgressLine(TextWriter err, TimeSpan interval, int width, Func<long>? now = null)
    {
        _err = err;
        Interval = interval;
        _intervalTicks = (long)(interval.TotalSeconds * Stopwatch.Frequency);
        _width = Math.Max(20, width);
        _now = now ?? Stopwatch.GetTimestamp;
    }

    /// <summary>A line on the process's stderr when it is a terminal (and not TERM=dumb); null otherwise.</summary>
    public static ProgressLine? ForStderr(TextWriter stderr)
    {
        if (!ReferenceEquals(stderr, Console.Error) || Console.IsErrorRedirected || Environment.GetEnvironmentVariable("TERM") == "dumb") return null;
        int width;
        try { width = Console.WindowWidth; } catch (Exception e) when (e is IOException or InvalidOperationException or PlatformNotSupportedException) { width = 80; }
        if (width <= 0) width = 80;
        var ms = int.TryParse(Environment.GetEnvironmentVariable(IntervalVariable), out int v) && v >= 0 ? v : 100;
        return new ProgressLine(stderr, TimeSpan.FromMilliseconds(ms), width);
    }

    /// <summary>A pass starts: erase the line; the next ones carry "[i/n] ".</summary>
    public void PassStarted(int index, int count)
    {
        lock (_lock)
        {
            EraseLocked();
            _prefix = $"[{index + 1}/{count}] ";
            _pass = null;
            _passStart = _now();
        }
    }

    /// <summary>Counts from the pass (any thread). Drawn when the interval has passed since the last line.</summary>
    public void Update(string pass, long done, long total, string unit)
    {
        long now = _now();
        if (now - Volatile.Read(ref _lastDraw) < _intervalTicks) return; // the common case: no lock
        lock (_lock)
        {
            if (_pass != pass)
            {
                if (_pass != null) _passStart = now; // another counter inside the same pass
                _pass = pass;
                _done = 0;
            }
            _done = Math.Max(_done, done); // workers report out of order
            if (now - _lastDraw < _intervalTicks) return;
            _lastDraw = now;
            var line = Format(_prefix, pass, _done, Math.Max(total, 0), unit, (double)(now - _passStart) / Stopwatch.Frequency);
            if (line.Length > _width - 1) line = line[..(_width - 1)]; // a wrapped line cannot be erased with \r
            _shown = Emit("\r" + line + "\x1b[K");
        }
    }

    /// <summary>Erases the line, if one is shown (before other output, and at the end).</summary>
    public void Clear()
    {
        lock (_lock) EraseLocked();
    }

    private void EraseLocked()
    {
        if (!_shown) return;
        Emit(EraseLine);
        _shown = false;
    }

    /// <summary>Writes to the terminal; a terminal that went away (closed, hung up) ends the line, never the check
    /// (the observer is called from scan workers, where an exception would abort the scan).</summary>
    private bool Emit(string s)
    {
        if (_broken) return false;
        try
        {
            _err.Write(s);
            _err.Flush();
            return true;
        }
        catch (IOException) { _broken = true; return false; }
    }

    /// <summary>"[2/4] trees: 12345/40000 blocks (30%), 5432/s, 0:06 left"; without a total, only the count and
    /// the rate; without time elapsed, no rate.</summary>
    internal static string Format(string prefix, string pass, long done, long total, string unit, double seconds)
    {
        var s = new System.Text.StringBuilder();
        s.Append(prefix).Append(pass).Append(": ");
        if (total > 0)
        {
            done = Math.Min(done, total);
            s.Append(done).Append('/').Append(total).Append(' ').Append(unit).Append($" ({100.0 * done / total:F0}%)");
        }
        else s.Append(done).Append(' ').Append(unit);
        if (seconds > 0 && done > 0)
        {
            double rate = done / seconds;
            s.Append($", {rate:F0}/s");
            if (total > 0) s.Append(", ").Append(Duration((total - done) / rate)).Append(" left");
        }
        return s.ToString();
    }

    private static string Duration(double seconds)
    {
        long t = (long)Math.Ceiling(Math.Min(seconds, 359999));
        return t >= 3600 ? $"{t / 3600}:{t / 60 % 60:D2}:{t % 60:D2}" : $"{t / 60}:{t % 60:D2}";
    }
}
