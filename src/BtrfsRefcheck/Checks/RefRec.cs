using System.Runtime.CompilerServices;
using BtrfsRefcheck.Format;

namespace BtrfsRefcheck.Checks;

/// <summary>Back-ref kinds, numbered as their key types.</summary>
public enum RefKind : byte
{
    Owner = (byte)ItemType.ExtentOwnerRef,
    TreeBlock = (byte)ItemType.TreeBlockRef,
    ExtentData = (byte)ItemType.ExtentDataRef,
    SharedBlock = (byte)ItemType.SharedBlockRef,
    SharedData = (byte)ItemType.SharedDataRef,
}

/// <summary>One back-reference, found in the extent tree or expected from the trees. Compact (56 bytes): a struct
/// kept in flat arrays, sorted and merged; no per-reference objects.</summary>
internal struct RefRec
{
    public ulong Bytenr;   // extent start
    public ulong A;        // root (TREE_BLOCK_REF, EXTENT_DATA_REF, EXTENT_OWNER_REF) or parent block (SHARED_*)
    public ulong ObjectId; // EXTENT_DATA_REF: inode
    public ulong Offset;   // EXTENT_DATA_REF: file offset minus extent offset
    public ulong Where;    // found: extent-tree leaf holding the item; expected: the referencing block (0: a root item)
    public uint Count;
    public uint Aux;       // expected data refs: disk_num_bytes (capped at 4 GiB; extents are at most 128 MiB); found inline refs: offset in the item
    public ushort Slot;    // slot of the item (found) or of the pointer / file extent (expected); NoSlot for root items
    public RefKind Kind;
    public bool Inline;    // found: inline in the extent item rather than a keyed item

    public const ushort NoSlot = ushort.MaxValue;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int CompareKey(in RefRec x, in RefRec y)
    {
        int c = x.Bytenr.CompareTo(y.Bytenr);
        if (c != 0) return c;
        c = ((byte)x.Kind).CompareTo((byte)y.Kind);
        if (c != 0) return c;
        c = x.A.CompareTo(y.A);
        if (c != 0) return c;
        c = x.ObjectId.CompareTo(y.ObjectId);
        return c != 0 ? c : x.Offset.CompareTo(y.Offset);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public readonly bool SameKey(in RefRec o) => Bytenr == o.Bytenr && Kind == o.Kind && A == o.A && ObjectId == o.ObjectId && Offset == o.Offset;

    public readonly int? SlotOrNull => Slot == NoSlot ? null : Slot;

    public readonly bool IsTreeRef => Kind is RefKind.TreeBlock or RefKind.SharedBlock;

    /// <summary>The tree a reference comes from, where the record says it (owner roots; shared refs name a parent).</summary>
    public readonly ulong? Tree => Kind is RefKind.TreeBlock or RefKind.ExtentData ? A : null;

    public readonly string Describe() => Kind switch
    {
        RefKind.TreeBlock => $"TREE_BLOCK_REF root={ObjectIds.TreeName(A)}",
        RefKind.SharedBlock => $"SHARED_BLOCK_REF parent={A}",
        RefKind.ExtentData => $"EXTENT_DATA_REF root={ObjectIds.TreeName(A)} objectid={ObjectId} offset={Offset}",
        RefKind.SharedData => $"SHARED_DATA_REF parent={A}",
        _ => $"EXTENT_OWNER_REF root={ObjectIds.TreeName(A)}",
    };

    /// <summary>Where an expected reference comes from, for messages.</summary>
    public readonly string Origin() => (Kind, Where) switch
    {
        (RefKind.TreeBlock, 0) => $"the root item of {ObjectIds.TreeName(A)}",
        (RefKind.SharedBlock, 0) => "its relocation root item",
        (RefKind.TreeBlock, _) => $"{ObjectIds.TreeName(A)} block {Where} slot {Slot}",
        (RefKind.SharedBlock, _) => $"FULL_BACKREF block {Where} slot {Slot}",
        (RefKind.ExtentData, _) => $"{ObjectIds.TreeName(A)} leaf {Where} slot {Slot}",
        _ => $"FULL_BACKREF leaf {Where} slot {Slot}",
    };
}

/// <summary>Key order of back-refs as a struct comparer, for the rare sorts <see cref="RefSort"/> leaves to the runtime.</summary>
internal readonly struct RefKeyOrder : IComparer<RefRec>
{
    public int Compare(RefRec x, RefRec y) => RefRec.CompareKey(in x, in y);
}

/// <summary>Sorts back-refs in key order without what makes a general sort of them slow (a comparer called through a
/// delegate or an interface, 56-byte records copied at every comparison and swap): the addresses, with each record's
/// index packed below them, are radix-sorted as plain ulongs; the records are then moved once, in place, to their
/// sorted positions, and only runs of equal addresses (the file extents of one data extent, a block's parents) are
/// ordered by the rest of the key.</summary>
internal static class RefSort
{
    private const int SmallRun = 16;
    private const int MaxDigitBits = 11;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Sort(Span<RefRec> refs)
    {
        int n = refs.Length;
        if (n <= SmallRun)
        {
            InsertionSort(refs);
            return;
        }
        ulong min = ulong.MaxValue, max = 0;
        foreach (ref readonly var r in refs)
        {
            if (r.Bytenr < min) min = r.Bytenr;
            if (r.Bytenr > max) max = r.Bytenr;
        }
        ulong spread = 0;
        foreach (ref readonly var r in refs) spread |= r.Bytenr - min;
        if (spread != 0) // else all at one address: only the rest of the key orders them
        {
            int shift = System.Numerics.BitOperations.TrailingZeroCount(spread); // addresses are block- or sector-aligned
            int keyBits = 64 - System.Numerics.BitOperations.LeadingZeroCount((max - min) >> shift);
            int idxBits = 32 - System.Numerics.BitOperations.LeadingZeroCount((uint)(n - 1));
            int[] idx = System.Buffers.ArrayPool<int>.Shared.Rent(n);
            ulong[] keys = System.Buffers.ArrayPool<ulong>.Shared.Rent(n);
            var ix = idx.AsSpan(0, n);
            var k = keys.AsSpan(0, n);
            if (keyBits + idxBits <= 64)
            {
                // One ulong per record: the address's significant bits above the record's index.
                ulong[] tmp = System.Buffers.ArrayPool<ulong>.Shared.Rent(n);
                for (int i = 0; i < n; i++) k[i] = (((refs[i].Bytenr - min) >> shift) << idxBits) | (uint)i;
                var sorted = RadixSort(k, tmp.AsSpan(0, n), idxBits, idxBits + keyBits);
                ulong mask = (1UL << idxBits) - 1;
                for (int i = 0; i < n; i++) ix[i] = (int)(sorted[i] & mask);
                System.Buffers.ArrayPool<ulong>.Shared.Return(tmp);
            }
            else
            {
                // Addresses too far apart to share a ulong with the index (a corrupt pointer): sort the index along.
                for (int i = 0; i < n; i++) { k[i] = refs[i].Bytenr; ix[i] = i; }
                k.Sort(ix);
            }
            Permute(refs, ix);
            System.Buffers.ArrayPool<ulong>.Shared.Return(keys);
            System.Buffers.ArrayPool<int>.Shared.Return(idx);
        }
        for (int i = 0; i < n;)
        {
            int j = i + 1;
            ulong b = refs[i].Bytenr;
            while (j < n && refs[j].Bytenr == b) j++;
            if (j - i > 1) SortRun(refs[i..j]);
            i = j;
        }
    }

    /// <summary>Stable LSD radix sort of <paramref name="a"/> by bits [lo, hi), using <paramref name="tmp"/> (as long);
    /// returns whichever of the two holds the result.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static Span<ulong> RadixSort(Span<ulong> a, Span<ulong> tmp, int lo, int hi)
    {
        int passes = (hi - lo + MaxDigitBits - 1) / MaxDigitBits;
        int digitBits = (hi - lo + passes - 1) / passes;
        int buckets = 1 << digitBits;
        Span<int> count = stackalloc int[1 << MaxDigitBits];
        count = count[..buckets];
        ulong mask = (ulong)buckets - 1;
        for (int shift = lo; shift < hi; shift += digitBits)
        {
            count.Clear();
            foreach (ulong v in a) count[(int)((v >> shift) & mask)]++;
            if (count[(int)((a[0] >> shift) & mask)] == a.Length) continue; // one digit value: nothing moves
            int sum = 0;
            for (int d = 0; d < buckets; d++)
            {
                int c = count[d];
                count[d] = sum;
                sum += c;
            }
            foreach (ulong v in a) tmp[count[(int)((v >> shift) & mask)]++] = v;
            var t = a;
            a = tmp;
            tmp = t;
        }
        return a;
    }

    /// <summary>Moves <c>refs[from[i]]</c> to <c>refs[i]</c> for every i, following the permutation's cycles; consumes
    /// <paramref name="from"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Permute(Span<RefRec> refs, Span<int> from)
    {
        for (int i = 0; i < from.Length; i++)
        {
            if (from[i] == i || from[i] < 0) continue;
            var first = refs[i];
            int at = i;
            while (true)
            {
                int src = from[at];
                from[at] = -1;
                if (src == i)
                {
                    refs[at] = first;
                    break;
                }
                refs[at] = refs[src];
                at = src;
            }
        }
    }

    private static void SortRun(Span<RefRec> run)
    {
        if (run.Length <= SmallRun) InsertionSort(run);
        else run.Sort(new RefKeyOrder());
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void InsertionSort(Span<RefRec> s)
    {
        for (int i = 1; i < s.Length; i++)
        {
            if (RefRec.CompareKey(in s[i - 1], in s[i]) <= 0) continue;
            var t = s[i];
            int j = i - 1;
            do
            {
                s[j + 1] = s[j];
                j--;
            } while (j >= 0 && RefRec.CompareKey(in s[j], in t) > 0);
            s[j + 1] = t;
        }
    }
}

/// <summary>A growing list kept in fixed-size segments: no doubling copies, and the segments can be released one by
/// one while the list is copied into its final array.</summary>
internal sealed class ChunkedList<T>
{
    private const int SegmentSize = 1 << 14;
    private readonly List<T[]> _segments = [];
    private int _last = SegmentSize;

    public long Count { get; private set; }

    public void Add(in T item)
    {
        if (_last == SegmentSize)
        {
            _segments.Add(new T[SegmentSize]);
            _last = 0;
        }
        _segments[^1][_last++] = item;
        Count++;
    }

    /// <summary>Copies everything to <paramref name="dest"/> at <paramref name="at"/> and empties the list.</summary>
    public void MoveTo(T[] dest, long at)
    {
        for (int i = 0; i < _segments.Count; i++)
        {
            int n = i == _segments.Count - 1 ? _last : SegmentSize;
            Array.Copy(_segments[i], 0, dest, at, n);
            at += n;
            _segments[i] = null!;
        }
        _segments.Clear();
        _last = SegmentSize;
        Count = 0;
    }

    /// <summary>The filled segments, each with its element count; the list gives them up (it is empty afterwards).</summary>
    public List<(T[] Array, int Count)> TakeSegments()
    {
        var result = new List<(T[], int)>(_segments.Count);
        for (int i = 0; i < _segments.Count; i++)
            result.Add((_segments[i], i == _segments.Count - 1 ? _last : SegmentSize));
        _segments.Clear();
        _last = SegmentSize;
        Count = 0;
        return result;
    }

    public static T[] Concat(IEnumerable<ChunkedList<T>> lists, int extra = 0)
    {
        var all = lists.ToList();
        var arr = new T[all.Sum(l => l.Count) + extra];
        long at = 0;
        foreach (var l in all)
        {
            long n = l.Count;
            l.MoveTo(arr, at);
            at += n;
        }
        return arr;
    }
}

/// <summary>Appending a struct to a list in place.</summary>
internal static class ListSlots
{
    /// <summary>Appends an element and returns it by reference, to be filled in place: a struct built aside field by
    /// field and then copied in whole stalls on store forwarding. The runtime does not clear the new element of a
    /// struct without references: the caller writes every field (or the whole struct).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ref T Append<T>(List<T> list)
    {
        int n = list.Count;
        System.Runtime.InteropServices.CollectionsMarshal.SetCount(list, n + 1);
        return ref System.Runtime.InteropServices.CollectionsMarshal.AsSpan(list)[n];
    }
}

/// <summary>An EXTENT_ITEM or METADATA_ITEM.</summary>
internal struct ExtentRec
{
    public ulong Bytenr;
    public ulong Length;
    public ulong Refs;
    public ulong Flags;
    public ulong ItemBlock;
    public int ItemSlot;
    public byte Level;          // tree blocks: level from the key or tree_block_info; 0xff: not a tree block
    public bool IsMetadataItem;

    public readonly bool IsTreeBlock => (Flags & (ulong)Format.Items.ExtentFlags.TreeBlock) != 0;
    public readonly bool IsData => (Flags & (ulong)Format.Items.ExtentFlags.Data) != 0;
    public readonly bool FullBackref => (Flags & (ulong)Format.Items.ExtentFlags.FullBackref) != 0;
    public readonly ulong End => Bytenr + Length;
    public readonly BtrfsKey Key => new(Bytenr, IsMetadataItem ? (byte)ItemType.MetadataItem : (byte)ItemType.ExtentItem, IsMetadataItem ? Level : Length);
}

/// <summary>A tree block the walk visited.</summary>
internal struct BlockRec
{
    public ulong Bytenr;
    public ulong Owner;
    public ulong Tree;
    public byte Level;
    public byte BackrefRev;
}

internal struct BlockGroupRec
{
    public ulong Start;
    public ulong Length;
    public ulong Used;
    public ulong Flags;
    public ulong ItemBlock;
    public int Slot;
    public ulong Sum; // filled by the accounting pass
    public readonly ulong End => Start + Length;
}

/// <summary>A DEV_EXTENT: [Physical, Physical + Length) on device DevId belongs to the chunk at ChunkOffset.</summary>
internal struct DevExtentRec
{
    public ulong DevId;
    public ulong Physical;
    public ulong Length;
    public ulong ChunkOffset;
    public ulong ItemBlock;
    public int Slot;
    public readonly ulong End => Physical + Length;
}

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
            if (next.Aux != agg.Aux) agg.Aux = 0; // file extents disagreeing on disk_num_bytes match no extent
            Next();
        }
        agg.Count = (uint)Math.Min(count, uint.MaxValue);
        // Equal keys arrive in merge order, which depends on how the parallel scan split the work: put them in
        // referencing-block order so the aggregate's origin and the messages are the same on every run.
        _group.Sort(static (x, y) => x.Where != y.Where ? x.Where.CompareTo(y.Where) : x.Slot.CompareTo(y.Slot));
        agg.Where = _group[0].Where;
        agg.Slot = _group[0].Slot;
        _merged = agg;
        _curMerged = true;
        if (agg.IsTreeRef) OnDuplicateTreeRef?.Invoke(agg, _group);
    }
}
