using System.Runtime.CompilerServices;
using BtrfsRefcheck.Format;

namespace BtrfsRefcheck.Checks;

/// <summary>The expected back-refs in key order, aggregated, without ever holding them in one array: each segment
/// is sorted on its own (in parallel), then a k-way merge hands them out in order. Equal keys are merged and their
/// counts summed; <see cref="OnDuplicateTreeRef"/> hears of a tree back-ref claimed by more than one reference.</summary>
/// <remarks>The merge is a loser tree over segment indices: a record leaves it after one comparison per level, with the
/// segment that lost the match there last time. Each node keeps its loser's head address, so that most comparisons are
/// of two ulongs; equal addresses compare the heads' full keys, in place.</remarks>
internal sealed class SortedRefStream
{
    private readonly RefRec[][] _arrays;
    private readonly int[] _pos;
    private readonly int[] _end;
    private readonly int[] _loser;      // [1..k-1]: the segment that lost the match at each inner node
    private readonly ulong[] _loserKey; // its head's address (ulong.MaxValue when exhausted, or as a real address)
    private int _winner;                // the segment whose head comes first
    private ulong _winnerKey;
    private readonly int _k;
    // the next aggregated ref: the record at _curPos of segment _curSeg as it is, or _merged when equal keys were merged
    private bool _hasCurrent;
    private ulong _curBytenr;
    private int _curSeg, _curPos;
    private bool _curMerged;
    private RefRec _merged;
    private readonly List<RefRec> _group = [];

    public Action<RefRec, List<RefRec>>? OnDuplicateTreeRef { get; init; }


    /// <summary>Sorts every segment in key order, in parallel.</summary>
    public static void SortSegments(List<(RefRec[] Array, int Count)> segments, int? degreeOfParallelism = null) =>
        Parallel.For(0, segments.Count, new ParallelOptions { MaxDegreeOfParallelism = degreeOfParallelism ?? Environment.ProcessorCount },
            i => RefSort.Sort(segments[i].Array.AsSpan(0, segments[i].Count)));

    /// <summary>Streams the refs with addresses in [lo, hi) from segments already sorted by <see cref="SortSegments"/>.</summary>
    public SortedRefStream(List<(RefRec[] Array, int Count)> sortedSegments, ulong lo = 0, ulong hi = ulong.MaxValue)
    {
        _k = sortedSegments.Count;
        _arrays = new RefRec[_k][];
        _pos = new int[_k];
        _end = new int[_k];
        _loser = new int[_k];
        _loserKey = new ulong[_k];
        var head = new ulong[_k];
        for (int i = 0; i < _k; i++)
        {
            var (arr, count) = sortedSegments[i];
            _arrays[i] = arr;
            _pos[i] = LowerBound(arr, count, lo);
            _end[i] = hi == ulong.MaxValue ? count : LowerBound(arr, count, hi);
            head[i] = HeadKey(i);
        }
        if (_k > 0)
        {
            // leaves k..2k-1 stand for the segments; every inner node keeps its match's loser, the winner moves up
            var winner = new int[2 * _k];
            for (int i = 0; i < _k; i++) winner[_k + i] = i;
            for (int n = _k - 1; n >= 1; n--)
            {
                int l = winner[2 * n], r = winner[2 * n + 1];
                bool rFirst = head[r] != head[l] ? head[r] < head[l] : TieBefore(r, l);
                winner[n] = rFirst ? r : l;
                _loser[n] = rFirst ? l : r;
                _loserKey[n] = head[_loser[n]];
            }
            _winner = winner[1];
            _winnerKey = head[_winner];
        }
        // The first group is merged on first use (Start), not here: OnDuplicateTreeRef is set by the object
        // initializer, which runs after this constructor, and must hear of the first group's duplicates too.
    }

    private bool _started;

    private void Start()
    {
        if (_started) return;
        _started = true;
        Advance();
    }

    private static int LowerBound(RefRec[] a, int count, ulong bytenr)
    {
        int lo = 0, hi = count;
        while (lo < hi) { int m = (lo + hi) >>> 1; if (a[m].Bytenr < bytenr) lo = m + 1; else hi = m; }
        return lo;
    }

    private bool Exhausted(int s) => _pos[s] >= _end[s];

    private ulong HeadKey(int s) => _pos[s] < _end[s] ? _arrays[s][_pos[s]].Bytenr : ulong.MaxValue;

    /// <summary>For two segments whose heads have the same address: true when <paramref name="a"/>'s head comes first,
    /// by the rest of the key, exhausted segments last, ties by segment index.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private bool TieBefore(int a, int b)
    {
        bool ea = Exhausted(a), eb = Exhausted(b);
        if (ea | eb) return ea == eb ? a < b : eb;
        int c = RefRec.CompareKey(in _arrays[a][_pos[a]], in _arrays[b][_pos[b]]);
        return c != 0 ? c < 0 : a < b;
    }

    /// <summary>Drops the winning segment's head and replays its matches up to the root.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void Next()
    {
        int w = _winner;
        _pos[w]++;
        ulong wk = HeadKey(w);
        for (int n = (w + _k) >> 1; n >= 1; n >>= 1)
        {
            ulong lk = _loserKey[n];
            if (lk < wk || (lk == wk && TieBefore(_loser[n], w)))
            {
                int l = _loser[n];
                _loser[n] = w;
                _loserKey[n] = wk;
                w = l;
                wk = lk;
            }
        }
        _winner = w;
        _winnerKey = wk;
    }

    /// <summary>Address of the next aggregated ref, or ulong.MaxValue at the end.</summary>
    public ulong PeekBytenr
    {
        get
        {
            Start();
            return _hasCurrent ? _curBytenr : ulong.MaxValue;
        }
    }

    /// <summary>Moves every aggregated ref for <paramref name="bytenr"/> (which must be the next one) into <paramref name="into"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void TakeGroup(ulong bytenr, List<RefRec> into)
    {
        Start();
        while (_hasCurrent && _curBytenr == bytenr)
        {
            // copied straight from its segment (see ListSlots.Append)
            ListSlots.Append(into) = _curMerged ? _merged : _arrays[_curSeg][_curPos];
            Advance();
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void Advance()
    {
        if (_k == 0 || Exhausted(_winner)) { _hasCurrent = false; return; }
        _hasCurrent = true;
        _curMerged = false;
        _curSeg = _winner;
        _curPos = _pos[_winner];
        ref readonly var first = ref _arrays[_curSeg][_curPos];
        _curBytenr = first.Bytenr;
        Next();
        if (_winnerKey != first.Bytenr || Exhausted(_winner) || !_arrays[_winner][_pos[_winner]].SameKey(in first)) return;

        _group.Clear();
        _group.Add(first);
        var agg = first;
        ulong count = agg.Count;
        while (_winnerKey == agg.Bytenr && !Exhausted(_winner))
        {
            ref readonly var next = ref _arrays[_winner][_pos[_winner]];
            if (!next.SameKey(in agg)) break;
            _group.Add(next);
            count += next.Count;
            if (next.SizeOrItemOffset != agg.SizeOrItemOffset) agg.SizeOrItemOffset = 0; // file extents disagreeing on disk_num_bytes match no extent
            Next();
        }
        agg.Count = (uint)Math.Min(count, uint.MaxValue);
        // Equal keys arrive in merge order, which depends on how the parallel scan split the work: put them in
        // referencing-block order so the aggregate's origin and the messages are the same on every run.
        _group.Sort(static (x, y) => x.Block != y.Block ? x.Block.CompareTo(y.Block) : x.Slot.CompareTo(y.Slot));
        agg.Block = _group[0].Block;
        agg.Slot = _group[0].Slot;
        _merged = agg;
        _curMerged = true;
        if (agg.IsTreeRef) OnDuplicateTreeRef?.Invoke(agg, _group);
    }
}
