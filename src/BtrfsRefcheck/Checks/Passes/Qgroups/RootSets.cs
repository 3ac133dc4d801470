namespace BtrfsRefcheck.Checks;

/// <summary>Sets of subvolume roots, interned: each distinct set is stored once and named by a small integer, so
/// every block and extent carries 4 bytes instead of a list, and a union of two sets is computed once and then looked
/// up. Snapshots make few distinct sets (a block is reached by a subvolume and some of its snapshots), so the table
/// stays small however many blocks there are. Set 0 is the empty set.</summary>
internal sealed class RootSets
{
    private readonly List<ulong[]> _sets = [[]];
    private readonly Dictionary<ulong[], int> _ids = new(new ContentComparer()) { [[]] = 0 };
    private readonly Dictionary<ulong, int> _unions = [];

    public int Count => _sets.Count;

    /// <summary>The roots of set <paramref name="id"/>, ascending.</summary>
    public ulong[] this[int id] => _sets[id];

    public int Singleton(ulong root) => Intern([root]);

    public int Union(int a, int b)
    {
        if (a == b || b == 0) return a;
        if (a == 0) return b;
        if (a > b) (a, b) = (b, a);
        ulong key = ((ulong)(uint)a << 32) | (uint)b;
        if (_unions.TryGetValue(key, out int u)) return u;
        u = Intern(Merge(_sets[a], _sets[b]));
        _unions[key] = u;
        return u;
    }

    private int Intern(ulong[] roots)
    {
        if (_ids.TryGetValue(roots, out int id)) return id;
        id = _sets.Count;
        _sets.Add(roots);
        _ids[roots] = id;
        return id;
    }

    private static ulong[] Merge(ulong[] x, ulong[] y)
    {
        var m = new List<ulong>(x.Length + y.Length);
        int i = 0, j = 0;
        while (i < x.Length || j < y.Length)
        {
            if (j == y.Length || (i < x.Length && x[i] < y[j])) m.Add(x[i++]);
            else if (i == x.Length || y[j] < x[i]) m.Add(y[j++]);
            else { m.Add(x[i++]); j++; }
        }
        return m.ToArray();
    }

    private sealed class ContentComparer : IEqualityComparer<ulong[]>
    {
        public bool Equals(ulong[]? x, ulong[]? y) => x.AsSpan().SequenceEqual(y);

        public int GetHashCode(ulong[] a)
        {
            var h = new HashCode();
            foreach (ulong v in a) h.Add(v);
            return h.ToHashCode();
        }
    }
}
