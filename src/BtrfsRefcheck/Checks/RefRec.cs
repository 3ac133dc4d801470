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
    public ulong RootOrParent; // root (TREE_BLOCK_REF, EXTENT_DATA_REF, EXTENT_OWNER_REF) or parent block (SHARED_*)
    public ulong ObjectId; // EXTENT_DATA_REF: inode
    public ulong Offset;   // EXTENT_DATA_REF: file offset minus extent offset
    public ulong Block;    // found: extent-tree leaf holding the item; expected: the referencing block (0: a root item)
    public uint Count;
    public uint SizeOrItemOffset; // expected data refs: disk_num_bytes (capped at 4 GiB; extents are at most 128 MiB); found inline refs: offset in the item
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
        c = x.RootOrParent.CompareTo(y.RootOrParent);
        if (c != 0) return c;
        c = x.ObjectId.CompareTo(y.ObjectId);
        return c != 0 ? c : x.Offset.CompareTo(y.Offset);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public readonly bool SameKey(in RefRec o) => Bytenr == o.Bytenr && Kind == o.Kind && RootOrParent == o.RootOrParent && ObjectId == o.ObjectId && Offset == o.Offset;

    public readonly int? SlotOrNull => Slot == NoSlot ? null : Slot;

    public readonly bool IsTreeRef => Kind is RefKind.TreeBlock or RefKind.SharedBlock;

    /// <summary>The tree a reference comes from, where the record says it (owner roots; shared refs name a parent).</summary>
    public readonly ulong? Tree => Kind is RefKind.TreeBlock or RefKind.ExtentData ? RootOrParent : null;

    public readonly string Describe() => Kind switch
    {
        RefKind.TreeBlock => $"TREE_BLOCK_REF root={ObjectIds.TreeName(RootOrParent)}",
        RefKind.SharedBlock => $"SHARED_BLOCK_REF parent={RootOrParent}",
        RefKind.ExtentData => $"EXTENT_DATA_REF root={ObjectIds.TreeName(RootOrParent)} objectid={ObjectId} offset={Offset}",
        RefKind.SharedData => $"SHARED_DATA_REF parent={RootOrParent}",
        _ => $"EXTENT_OWNER_REF root={ObjectIds.TreeName(RootOrParent)}",
    };

    /// <summary>Where an expected reference comes from, for messages.</summary>
    public readonly string Origin() => (Kind, Block) switch
    {
        (RefKind.TreeBlock, 0) => $"the root item of {ObjectIds.TreeName(RootOrParent)}",
        (RefKind.SharedBlock, 0) => "its relocation root item",
        (RefKind.TreeBlock, _) => $"{ObjectIds.TreeName(RootOrParent)} block {Block} slot {Slot}",
        (RefKind.SharedBlock, _) => $"FULL_BACKREF block {Block} slot {Slot}",
        (RefKind.ExtentData, _) => $"{ObjectIds.TreeName(RootOrParent)} leaf {Block} slot {Slot}",
        _ => $"FULL_BACKREF leaf {Block} slot {Slot}",
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

