using System.Runtime.CompilerServices;
using BtrfsRefcheck.Format;

namespace BtrfsRefcheck.Checks;

/// <summary>A growing list kept in fixed-size segments: no doubling copies, and the segments can be released one by
/// one while the list is copied into its final array.</summary>
internal sealed class ChunkedList<T>
{
    private const int SegmentSize = 1 << 14;
    public const int SegmentLength = SegmentSize;
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
