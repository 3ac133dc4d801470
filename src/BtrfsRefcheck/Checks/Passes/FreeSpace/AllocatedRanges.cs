using BtrfsRefcheck.Format;
using BtrfsRefcheck.Volume;

namespace BtrfsRefcheck.Checks;

/// <summary>The extent tree's allocations (EXTENT_ITEM: [objectid, + offset); METADATA_ITEM: [objectid, + nodesize)),
/// read forward once, in key order, from the extent leaves the scan recorded: only the current leaf is in memory. The
/// caller asks for ascending, disjoint ranges. With <c>extentItemsOnly</c>, EXTENT_ITEMs alone (btrfs check's
/// check_extent_exists: what a csum range must lie in).</summary>
internal sealed class AllocatedRanges(BtrfsVolume volume, (ulong FirstObjectId, ulong Bytenr)[] leaves, bool extentItemsOnly = false)
{
    private readonly byte[] _buffer = new byte[volume.NodeSize];
    private int _leaf = -1;
    private int _slot;
    private TreeBlock? _block;
    private (ulong Start, ulong End)? _pending;

    /// <summary>Appends to <paramref name="into"/> the allocations that overlap [start, end), clipped, sorted; the
    /// allocations before <paramref name="start"/> are passed over for good.</summary>
    public void In(ulong start, ulong end, List<(ulong Start, ulong End)> into)
    {
        while (true)
        {
            var next = _pending ?? Next();
            if (next is not { } r) return;
            if (r.Start >= end) { _pending = r; return; }
            _pending = null;
            if (r.End <= start) continue;
            into.Add((Math.Max(r.Start, start), Math.Min(r.End, end)));
            if (r.End > end) { _pending = (end, r.End); return; } // the rest may belong to the next block group
        }
    }

    private (ulong, ulong)? Next()
    {
        while (true)
        {
            if (_block == null || _slot >= _block.View.Count)
            {
                if (++_leaf >= leaves.Length) return null;
                ulong bytenr = leaves[_leaf].Bytenr;
                _block = volume.ReadInto(bytenr, _buffer);
                _slot = 0;
                if (_block == null || !_block.View.IsLeaf) { _block = null; continue; }
            }
            var view = _block.View;
            int i = _slot++;
            if (!view.TryItemKey(i, out var key)) continue;
            if (key.ItemType == ItemType.ExtentItem && key.Offset > 0 && key.ObjectId + key.Offset > key.ObjectId)
                return (key.ObjectId, key.ObjectId + key.Offset);
            if (key.ItemType == ItemType.MetadataItem && !extentItemsOnly)
                return (key.ObjectId, key.ObjectId + volume.NodeSize);
        }
    }
}
