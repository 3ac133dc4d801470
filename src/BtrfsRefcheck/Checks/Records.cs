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

    public static int CompareKey(RefRec x, RefRec y) => CompareKey(in x, in y);

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

/// <summary>Key order of back-refs as a struct comparer, so sorts and heaps inline it instead of calling a delegate.</summary>
internal readonly struct RefKeyOrder : IComparer<RefRec>
{
    public int Compare(RefRec x, RefRec y) => RefRec.CompareKey(in x, in y);
}

/// <summary>The same for the k-way merge's heap (PriorityQueue takes a class comparer).</summary>
internal sealed class RefKeyOrderComparer : IComparer<RefRec>
{
    public static readonly RefKeyOrderComparer Instance = new();
    public int Compare(RefRec x, RefRec y) => RefRec.CompareKey(in x, in y);
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
internal sealed class SortedRefStream
{
    private readonly (RefRec[] Array, int End)[] _segs;
    private readonly int[] _pos;
    private readonly PriorityQueue<int, RefRec> _heap;
    private bool _hasCurrent;
    private RefRec _current;
    private readonly List<RefRec> _group = [];

    public Action<RefRec, List<RefRec>>? OnDuplicateTreeRef { get; init; }


    /// <summary>Sorts every segment in key order, in parallel.</summary>
    public static void SortSegments(List<(RefRec[] Array, int Count)> segments, int? degreeOfParallelism = null) =>
        Parallel.For(0, segments.Count, new ParallelOptions { MaxDegreeOfParallelism = degreeOfParallelism ?? Environment.ProcessorCount },
            i => segments[i].Array.AsSpan(0, segments[i].Count).Sort(new RefKeyOrder()));

    /// <summary>Streams the refs with addresses in [lo, hi) from segments already sorted by <see cref="SortSegments"/>.</summary>
    public SortedRefStream(List<(RefRec[] Array, int Count)> sortedSegments, ulong lo = 0, ulong hi = ulong.MaxValue)
    {
        _segs = new (RefRec[], int)[sortedSegments.Count];
        _pos = new int[sortedSegments.Count];
        _heap = new PriorityQueue<int, RefRec>(sortedSegments.Count, RefKeyOrderComparer.Instance);
        for (int i = 0; i < sortedSegments.Count; i++)
        {
            var (arr, count) = sortedSegments[i];
            int start = LowerBound(arr, count, lo);
            int end = hi == ulong.MaxValue ? count : LowerBound(arr, count, hi);
            _segs[i] = (arr, end);
            _pos[i] = start;
            if (start < end) _heap.Enqueue(i, arr[start]);
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

    /// <summary>Address of the next aggregated ref, or ulong.MaxValue at the end.</summary>
    public ulong PeekBytenr
    {
        get
        {
            Start();
            return _hasCurrent ? _current.Bytenr : ulong.MaxValue;
        }
    }

    /// <summary>Moves every aggregated ref for <paramref name="bytenr"/> (which must be the next one) into <paramref name="into"/>.</summary>
    public void TakeGroup(ulong bytenr, List<RefRec> into)
    {
        Start();
        while (_hasCurrent && _current.Bytenr == bytenr)
        {
            into.Add(_current);
            Advance();
        }
    }

    private bool Pop(out RefRec r)
    {
        if (!_heap.TryDequeue(out int seg, out r)) return false;
        int p = ++_pos[seg];
        if (p < _segs[seg].End) _heap.Enqueue(seg, _segs[seg].Array[p]);
        return true;
    }

    private void Advance()
    {
        if (!Pop(out var agg)) { _hasCurrent = false; return; }
        _group.Clear();
        _group.Add(agg);
        ulong count = agg.Count;
        while (_heap.TryPeek(out _, out var next) && next.SameKey(agg))
        {
            Pop(out next);
            _group.Add(next);
            count += next.Count;
            if (next.Aux != agg.Aux) agg.Aux = 0; // file extents disagreeing on disk_num_bytes match no extent
        }
        agg.Count = (uint)Math.Min(count, uint.MaxValue);
        if (_group.Count > 1)
        {
            // Equal keys arrive in heap order, which depends on how the parallel scan split the work: put them in
            // referencing-block order so the aggregate's origin and the messages are the same on every run.
            _group.Sort(static (x, y) => x.Where != y.Where ? x.Where.CompareTo(y.Where) : x.Slot.CompareTo(y.Slot));
            agg.Where = _group[0].Where;
            agg.Slot = _group[0].Slot;
        }
        if (_group.Count > 1 && agg.IsTreeRef) OnDuplicateTreeRef?.Invoke(agg, _group);
        _current = agg;
        _hasCurrent = true;
    }
}
