using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Format.Items;
using BtrfsRefcheck.Trees;
using BtrfsRefcheck.Volume;

namespace BtrfsRefcheck.Forge;

/// <summary>A tree block the walk reached.</summary>
public sealed record ScannedBlock(ulong Bytenr, int Level, ulong Owner, ulong Tree, ulong? Parent, int ParentSlot);

/// <summary>An EXTENT_ITEM or METADATA_ITEM: where it is and its decoded inline refs (item offsets included).</summary>
public sealed record ScannedExtent(BtrfsKey Key, ulong Leaf, int Slot, byte[] Data, IReadOnlyList<InlineRef> InlineRefs, bool RefsComplete)
{
    public ulong Bytenr => Key.ObjectId;
    public bool IsMetadataItem => Key.ItemType == ItemType.MetadataItem;
    public ExtentItem Item => new(Data, Key.ItemType);
    public ulong Refs => Item.Refs;
    public bool IsTreeBlock => Item.IsTreeBlock;
    public bool IsData => Item.IsData;
    public ulong Length(uint nodeSize) => IsMetadataItem ? nodeSize : Key.Offset;
    public int InlineRefsStart => Item.InlineRefsStart;
}

/// <summary>An extent tree leaf: its key range and free space.</summary>
public sealed record ScannedLeaf(ulong Bytenr, BtrfsKey FirstKey, BtrfsKey LastKey, int NrItems, int FreeSpace);

public sealed record ScannedBlockGroup(ulong Start, ulong Length, ulong Used, BlockGroupFlags Flags, ulong Tree, ulong Leaf, int Slot)
{
    public ulong End => Start + Length;
}

/// <summary>A file extent item pointing at a data extent.</summary>
public sealed record ScannedFileExtent(ulong Leaf, int Slot, ulong Inode, ulong DiskBytenr, ulong DiskNumBytes);

/// <summary>One read-only pass over every tree of an image with the library's walker: what the forge needs to pick
/// the item to change and the leaf that holds it.</summary>
public sealed class ImageScan : ITreeVisitor
{
    private readonly Dictionary<ulong, ScannedBlock> _blocks = [];
    private readonly List<ScannedExtent> _extents = [];
    private readonly List<ScannedLeaf> _extentLeaves = [];
    private readonly List<ScannedBlockGroup> _blockGroups = [];
    private readonly List<ScannedFileExtent> _fileExtents = [];
    private readonly HashSet<ulong> _keyedRefTargets = [];

    public IReadOnlyDictionary<ulong, ScannedBlock> Blocks => _blocks;

    /// <summary>Extent items sorted by key.</summary>
    public IReadOnlyList<ScannedExtent> Extents => _extents;

    /// <summary>Extent tree leaves sorted by first key.</summary>
    public IReadOnlyList<ScannedLeaf> ExtentLeaves => _extentLeaves;

    public IReadOnlyList<ScannedBlockGroup> BlockGroups => _blockGroups;
    public IReadOnlyList<ScannedFileExtent> FileExtents => _fileExtents;

    /// <summary>Extents that have keyed back-ref items (the forge avoids them: its edits touch inline refs only).</summary>
    public IReadOnlySet<ulong> KeyedRefTargets => _keyedRefTargets;

    public static ImageScan Run(BtrfsVolume vol)
    {
        var scan = new ImageScan();
        var scratch = new FindingBag();
        var visited = new HashSet<ulong>();
        var walker = new TreeWalker(vol, scratch);
        foreach (var root in TreeRoots.Enumerate(vol, scratch))
        {
            if (root.IsLog) continue;
            walker.Walk(root, scan, new WalkOptions { Visited = visited });
        }
        scan._extents.Sort((a, b) => a.Key.CompareTo(b.Key));
        scan._extentLeaves.Sort((a, b) => a.FirstKey.CompareTo(b.FirstKey));
        scan._blockGroups.Sort((a, b) => a.Start.CompareTo(b.Start));
        return scan;
    }

    public bool OnBlock(in BlockContext ctx, TreeBlock block, bool valid)
    {
        var view = block.View;
        _blocks[block.Logical] = new ScannedBlock(block.Logical, view.Header.Level, view.Header.Owner, ctx.Tree.Id, ctx.ParentBytenr, ctx.ParentSlot);
        if (!valid || !view.IsLeaf) return valid;
        ulong tree = ctx.Tree.Id;
        int n = view.Count;
        if (tree == ObjectIds.ExtentTree && n > 0)
        {
            int free = (n == 0 ? view.Length - Header.Size : (int)view.ItemHeader(n - 1).DataOffset) - n * ItemHeader.Size;
            _extentLeaves.Add(new ScannedLeaf(block.Logical, view.ItemKey(0), view.ItemKey(n - 1), n, free));
        }
        for (int i = 0; i < n; i++)
        {
            var key = view.ItemKey(i);
            var data = view.ItemData(i);
            switch (key.ItemType)
            {
                case ItemType.ExtentItem or ItemType.MetadataItem when tree == ObjectIds.ExtentTree && data.Length >= ExtentItem.FixedSize:
                {
                    var ei = new ExtentItem(data, key.ItemType);
                    var refs = new List<InlineRef>();
                    var e = ei.InlineRefs;
                    while (e.MoveNext()) refs.Add(e.Current);
                    _extents.Add(new ScannedExtent(key, block.Logical, i, data.ToArray(), refs, e.Error == null));
                    break;
                }
                case ItemType.TreeBlockRef or ItemType.SharedBlockRef or ItemType.ExtentDataRef or ItemType.SharedDataRef when tree == ObjectIds.ExtentTree:
                    _keyedRefTargets.Add(key.ObjectId);
                    break;
                case ItemType.BlockGroupItem when tree is ObjectIds.ExtentTree or ObjectIds.BlockGroupTree && data.Length >= BlockGroupItem.Size:
                {
                    var bg = new BlockGroupItem(data);
                    _blockGroups.Add(new ScannedBlockGroup(key.ObjectId, key.Offset, bg.Used, bg.Flags, tree, block.Logical, i));
                    break;
                }
                case ItemType.ExtentData when data.Length >= FileExtentItem.RegularSize:
                {
                    var fe = new FileExtentItem(data);
                    if (fe.Type != FileExtentType.Inline && fe.DiskBytenr != 0)
                        _fileExtents.Add(new ScannedFileExtent(block.Logical, i, key.ObjectId, fe.DiskBytenr, fe.DiskNumBytes));
                    break;
                }
            }
        }
        return true;
    }

    /// <summary>The extent item of <paramref name="bytenr"/>, if any.</summary>
    public ScannedExtent? ExtentAt(ulong bytenr)
    {
        int lo = 0, hi = _extents.Count - 1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >>> 1;
            ulong b = _extents[mid].Bytenr;
            if (b == bytenr) return _extents[mid];
            if (b < bytenr) lo = mid + 1; else hi = mid - 1;
        }
        return null;
    }

    /// <summary>The extent tree leaf a new item with <paramref name="key"/> belongs in (the last leaf whose first key is not greater).</summary>
    public ScannedLeaf? LeafFor(BtrfsKey key)
    {
        ScannedLeaf? best = null;
        foreach (var l in _extentLeaves)
            if (l.FirstKey <= key) best = l; else break;
        return best;
    }

    /// <summary>The block group holding [<paramref name="start"/>, +<paramref name="length"/>).</summary>
    public ScannedBlockGroup BlockGroupOf(ulong start, ulong length) =>
        _blockGroups.FirstOrDefault(g => g.Start <= start && start + length <= g.End)
        ?? throw new ForgeException($"no block group holds [{start}, {start + length})");
}
