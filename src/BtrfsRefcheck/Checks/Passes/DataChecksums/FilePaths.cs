using System.Text;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Format.Items;
using BtrfsRefcheck.Trees;

namespace BtrfsRefcheck.Checks;

/// <summary>The files that use a data address, for a bad sector's message only (rare: a few look-ups each): the data
/// extent holding the address (extent tree), its data back-refs (root and inode; a shared ref's leaf read for the
/// file extents that point there), and each inode's path up its inode refs to the subvolume's root directory, the
/// subvolume's own path up its ROOT_BACKREFs. Paths are from the top-level subvolume.</summary>
internal sealed class FilePaths(CheckContext ctx)
{
    private const int MaxPaths = 8;
    private readonly Dictionary<ulong, ulong> _rootBlocks = ctx.Roots
        .Where(r => r.Source == RootSource.RootItem).GroupBy(r => r.Id).ToDictionary(g => g.Key, g => g.First().Bytenr);

    public List<string> Of(ulong logical)
    {
        var paths = new List<string>();
        try
        {
            if (!_rootBlocks.TryGetValue(ObjectIds.ExtentTree, out ulong extentRoot)) return paths;
            if (TreeLookup.LastAtOrBefore(ctx.Volume, extentRoot, new BtrfsKey(logical, (byte)ItemType.ExtentItem, ulong.MaxValue),
                    k => k.ItemType == ItemType.ExtentItem) is not { } ext
                || ext.Key.ItemType != ItemType.ExtentItem || logical >= ext.Key.ObjectId + ext.Key.Offset || ext.Data.Length < ExtentItem.FixedSize)
                return paths;
            ulong bytenr = ext.Key.ObjectId;
            var owners = new List<(ulong Root, ulong Inode)>();
            var parents = new List<ulong>();
            var item = new ExtentItem(ext.Data, ItemType.ExtentItem);
            foreach (ref readonly var r in item.InlineRefs)
            {
                if (r.Type == ItemType.ExtentDataRef) owners.Add((r.Root, r.ObjectId));
                else if (r.Type == ItemType.SharedDataRef) parents.Add(r.Parent);
            }
            foreach (var (key, data) in TreeLookup.From(ctx.Volume, extentRoot, new BtrfsKey(bytenr, (byte)ItemType.ExtentDataRef, 0), k => k.ObjectId == bytenr))
            {
                if (key.ItemType == ItemType.ExtentDataRef && data.Length >= ExtentDataRef.Size) owners.Add((Le.U64(data, 0), Le.U64(data, 8)));
                else if (key.ItemType == ItemType.SharedDataRef) parents.Add(key.Offset);
            }
            foreach (ulong parent in parents) owners.AddRange(InodesInLeaf(parent, bytenr));
            foreach (var (root, inode) in owners.Distinct())
            {
                if (paths.Count >= MaxPaths) { paths.Add("..."); break; }
                paths.Add(SubvolumePath(root) + InodePath(root, inode));
            }
        }
        catch (BtrfsFormatException) { }
        return paths;
    }

    private IEnumerable<(ulong Root, ulong Inode)> InodesInLeaf(ulong leaf, ulong bytenr)
    {
        if (ctx.Volume.ReadTreeBlock(leaf).Block is not { } block || !block.View.IsLeaf) yield break;
        ulong owner = block.View.Header.Owner;
        for (int i = 0; i < block.View.Count; i++)
            if (block.View.TryGetItem(i, out var key, out var data) && key.ItemType == ItemType.ExtentData
                && data.Length >= FileExtentItem.RegularSize && new FileExtentItem(data).DiskBytenr == bytenr)
                yield return (owner, key.ObjectId);
    }

    /// <summary>"/a/b" of an inode inside its subvolume, up its first INODE_REF (or INODE_EXTREF).</summary>
    private string InodePath(ulong root, ulong inode)
    {
        if (!_rootBlocks.TryGetValue(root, out ulong rootBlock)) return $"/<inode {inode}>";
        var parts = new List<string>();
        for (int depth = 0; inode != ObjectIds.FirstFree && depth < 256; depth++)
        {
            ulong at = inode;
            var refs = TreeLookup.From(ctx.Volume, rootBlock, new BtrfsKey(at, (byte)ItemType.InodeRef, 0),
                k => k.ObjectId == at && k.Type <= (byte)ItemType.InodeExtref, max: 1);
            if (refs.Count == 0) { parts.Add($"<inode {inode}>"); break; }
            var (key, data) = refs[0];
            if (key.ItemType == ItemType.InodeRef)
            {
                var e = new InodeRef(data).Entries;
                if (!e.MoveNext()) { parts.Add($"<inode {inode}>"); break; }
                parts.Add(Encoding.UTF8.GetString(e.Current.Name));
                inode = key.Offset;
            }
            else
            {
                var e = new InodeExtref(data).Entries;
                if (!e.MoveNext()) { parts.Add($"<inode {inode}>"); break; }
                parts.Add(Encoding.UTF8.GetString(e.Current.Name));
                inode = e.Current.ParentObjectId;
            }
        }
        parts.Reverse();
        return "/" + string.Join('/', parts);
    }

    /// <summary>The subvolume's path from the top level ("" for the top level itself), up its ROOT_BACKREFs.</summary>
    private string SubvolumePath(ulong root, int depth = 0)
    {
        if (root == ObjectIds.FsTree) return "";
        if (depth > 64) return $"<subvolume {root}>";
        if (!_rootBlocks.TryGetValue(ObjectIds.RootTree, out ulong rootTree)) rootTree = ctx.Volume.RootTree.Bytenr;
        var refs = TreeLookup.From(ctx.Volume, rootTree, new BtrfsKey(root, (byte)ItemType.RootBackref, 0),
            k => k.ObjectId == root && k.ItemType == ItemType.RootBackref, max: 1);
        if (refs.Count == 0 || refs[0].Data.Length < RootRef.HeaderSize) return $"<subvolume {root}>";
        var (key, data) = refs[0];
        var rr = new RootRef(data);
        string name = Encoding.UTF8.GetString(rr.Name);
        string dir = rr.DirId == ObjectIds.FirstFree ? "" : InodePath(key.Offset, rr.DirId);
        return SubvolumePath(key.Offset, depth + 1) + dir + "/" + name;
    }
}
