using BtrfsRefcheck.Format;

namespace BtrfsRefcheck.Diagnostics;

public enum Severity
{
    /// <summary>Worth knowing; not a defect (e.g. a stale superblock mirror that is merely older).</summary>
    Info = 0,
    /// <summary>Suspicious but not inconsistent, or a defect the kernel tolerates.</summary>
    Warning = 1,
    /// <summary>Metadata is inconsistent.</summary>
    Error = 2,
}

/// <summary>A problem found in the image. Findings are data, never exceptions: every layer records them and
/// keeps going. <see cref="Code"/> is stable (see docs/findings.md); the message says where, what, and
/// have-versus-expected.</summary>
public sealed record Finding(
    FindingCode Code,
    Severity Severity,
    string Message,
    ulong? Bytenr = null,
    ulong? Tree = null,
    int? Slot = null,
    BtrfsKey? Key = null,
    string? Expected = null,
    string? Found = null,
    string? Device = null,
    int? Mirror = null)
{
    public override string ToString()
    {
        var where = new List<string>();
        if (Tree is { } t) where.Add($"root={ObjectIds.TreeName(t)}");
        if (Bytenr is { } b) where.Add($"block={b}");
        if (Slot is { } s) where.Add($"slot={s}");
        if (Key is { } k) where.Add($"key={k}");
        if (Device is { } d) where.Add($"device={d}");
        if (Mirror is { } m) where.Add($"copy={m}");
        string loc = where.Count > 0 ? string.Join(' ', where) + ": " : "";
        string have = Expected != null || Found != null ? $" (have {Found ?? "?"}, expected {Expected ?? "?"})" : "";
        return $"[{(int)Code} {Code}] {loc}{Message}{have}";
    }
}

/// <summary>Collects findings. Thread-safe; bounded so a badly damaged image cannot exhaust memory
/// (further findings of a code past the cap are counted, not stored). Every count (per code, per code and severity,
/// per severity) includes the findings past the cap.</summary>
public sealed class FindingBag
{
    public const int MaxStoredPerCode = 10_000;
    private readonly object _lock = new();
    private readonly List<Finding> _items = [];
    private readonly Dictionary<FindingCode, long> _counts = [];
    private readonly Dictionary<(FindingCode Code, Severity Severity), long> _bySeverity = [];
    private readonly long[] _severityTotals = new long[Enum.GetValues<Severity>().Length];

    public void Add(Finding f)
    {
        lock (_lock)
        {
            _counts.TryGetValue(f.Code, out long n);
            _counts[f.Code] = n + 1;
            _bySeverity[(f.Code, f.Severity)] = _bySeverity.GetValueOrDefault((f.Code, f.Severity)) + 1;
            _severityTotals[(int)f.Severity]++;
            if (n < MaxStoredPerCode) _items.Add(f);
        }
    }

    /// <summary>The stored findings in a stable order (code, bytenr, tree, slot, message), whatever order the
    /// parallel passes found them in.</summary>
    public IReadOnlyList<Finding> Items
    {
        get
        {
            Finding[] copy;
            lock (_lock) copy = _items.ToArray();
            Array.Sort(copy, Compare);
            return copy;
        }
    }

    private static int Compare(Finding a, Finding b)
    {
        int c = a.Code.CompareTo(b.Code);
        if (c == 0) c = Nullable.Compare(a.Bytenr, b.Bytenr);
        if (c == 0) c = Nullable.Compare(a.Tree, b.Tree);
        if (c == 0) c = Nullable.Compare(a.Slot, b.Slot);
        if (c == 0) c = string.CompareOrdinal(a.Message, b.Message);
        return c;
    }

    /// <summary>Total per code, including findings past the storage cap.</summary>
    public IReadOnlyDictionary<FindingCode, long> Counts { get { lock (_lock) return new Dictionary<FindingCode, long>(_counts); } }

    /// <summary>Total per code and severity, including findings past the storage cap (a code can be reported at more
    /// than one severity).</summary>
    public IReadOnlyDictionary<(FindingCode Code, Severity Severity), long> CountsBySeverity
    {
        get { lock (_lock) return new Dictionary<(FindingCode, Severity), long>(_bySeverity); }
    }

    /// <summary>How many findings of severity <paramref name="atLeast"/> or above were added, stored or not.</summary>
    public long Count(Severity atLeast)
    {
        lock (_lock)
        {
            long n = 0;
            for (int s = (int)atLeast; s < _severityTotals.Length; s++) n += _severityTotals[s];
            return n;
        }
    }

    public void AddRange(IEnumerable<Finding> findings) { foreach (var f in findings) Add(f); }
    public bool Any(FindingCode code) { lock (_lock) return _counts.ContainsKey(code); }
}
