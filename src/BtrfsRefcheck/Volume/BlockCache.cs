namespace BtrfsRefcheck.Volume;

/// <summary>A small thread-safe LRU cache of read results, bounded by entry count.</summary>
internal sealed class BlockCache(int capacity)
{
    private readonly object _lock = new();
    private readonly Dictionary<ulong, LinkedListNode<TreeBlockRead>> _map = [];
    private readonly LinkedList<TreeBlockRead> _lru = new();

    public long Hits, Misses;

    public bool TryGet(ulong logical, out TreeBlockRead read)
    {
        lock (_lock)
        {
            if (_map.TryGetValue(logical, out var node))
            {
                _lru.Remove(node);
                _lru.AddFirst(node);
                read = node.Value;
                Hits++;
                return true;
            }
            Misses++;
            read = null!;
            return false;
        }
    }

    public void Add(TreeBlockRead read)
    {
        lock (_lock)
        {
            if (_map.ContainsKey(read.Logical)) return;
            var node = _lru.AddFirst(read);
            _map[read.Logical] = node;
            while (_map.Count > capacity)
            {
                var last = _lru.Last!;
                _lru.RemoveLast();
                _map.Remove(last.Value.Logical);
            }
        }
    }
}
