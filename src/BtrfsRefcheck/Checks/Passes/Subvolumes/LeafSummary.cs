using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Format.Items;
using BtrfsRefcheck.Trees;
using BtrfsRefcheck.Volume;

namespace BtrfsRefcheck.Checks;

/// <summary>What a leaf says, independent of the tree it is reached from: the inodes wholly inside it are checked and
/// closed (their findings made once); the first and last inode, whose items may continue in the leaves beside it, stay
/// open (<see cref="Head"/>, <see cref="Tail"/>); its names are <see cref="NameRec"/>s, added to the worker's list.</summary>
internal sealed class LeafSummary
{
    public InodeAcc? Head;
    /// <summary>The last inode's accumulator, null when the range holds one inode (then it is <see cref="Head"/>).</summary>
    public InodeAcc? Tail;
    /// <summary>Where the leaf's records go (the worker's list), each marked with the trees holding the leaf.</summary>
    public ChunkedList<NameRec> Out = null!;
    public ulong Mask;

    public void Add(NameRec r)
    {
        r.Mask = Mask;
        Out.Add(r);
    }
}

/// <summary>Summarises one leaf of a subvolume tree (btrfs check's process_one_leaf): a leaf's summary depends on its
/// items only, so a leaf shared by snapshots is summarised once, whichever trees reach it.</summary>
internal sealed class LeafSummarizer(FindingBag findings)
{
    /// <summary>A leaf's items, in key order (btrfs check's process_one_leaf).</summary>
    public LeafSummary OfLeaf(TreeBlock block, SubvolumeParams p, ulong mask, ChunkedList<NameRec> output)
    {
        var view = block.View;
        ulong leaf = block.Logical;
        var s = new LeafSummary { Out = output, Mask = mask };
        InodeAcc? cur = null;
        int n = view.Count;
        for (int i = 0; i < n; i++)
        {
            if (!view.TryGetItem(i, out var key, out var data)) continue; // the block validator's
            ulong ino = key.ObjectId;
            if (ino == ObjectIds.Orphan && key.ItemType == ItemType.OrphanItem)
            {
                s.Add(new NameRec { Child = key.Offset, Kind = NameKind.Orphan, Leaf = leaf });
                continue;
            }
            // inode numbers only: the free-space cache and the old inode cache (425) are not inodes
            if (ino < ObjectIds.FirstFree || ino > ObjectIds.LastFree) continue;
            if (!IsInodeItemType(key.ItemType)) continue; // 424 (unknown key type in a subvolume tree)
            if (cur == null || cur.Ino != ino)
            {
                if (cur != null)
                {
                    if (s.Head == null) s.Head = cur;
                    else s.Add(cur.Close(p, findings));
                }
                cur = new InodeAcc(ino) { FirstLeaf = leaf };
            }
            switch (key.ItemType)
            {
                case ItemType.InodeItem:
                    if (data.Length >= InodeItem.Size) cur.InodeItem(new InodeItem(data), leaf);
                    break;
                case ItemType.InodeRef:
                    foreach (var e in new InodeRef(data))
                        s.Add(NameOf(NameKind.Ref, ino, key.Offset, e.Index, 0, e.Name, leaf));
                    break;
                case ItemType.InodeExtref:
                    foreach (var e in new InodeExtref(data))
                        s.Add(NameOf(NameKind.Ref, ino, e.ParentObjectId, e.Index, 0, e.Name, leaf));
                    break;
                case ItemType.DirItem or ItemType.DirIndex:
                    DirEntries(cur, s, key, data, leaf);
                    break;
                case ItemType.ExtentData:
                    cur.FileExtent(key, data, leaf, p);
                    break;
            }
        }
        if (cur != null)
        {
            if (s.Head == null) s.Head = cur;
            else s.Tail = cur;
        }
        return s;
    }

    private void DirEntries(InodeAcc cur, LeafSummary s, BtrfsKey key, ReadOnlySpan<byte> data, ulong leaf)
    {
        cur.HasDirEntries = true;
        bool index = key.ItemType == ItemType.DirIndex;
        int entries = 0;
        foreach (var e in new DirItem(data))
        {
            entries++;
            cur.DirNames += e.NameLength;
            // a DIR_ITEM entry filed under another hash (412) cannot be found by its name: btrfs check leaves it out, and so
            // do we (the inode then lacks that DIR_ITEM)
            if (!index && Trees.ItemValidation.DirItemValidator.NameHash(e.Name) != key.Offset) continue;
            var loc = e.Location;
            NameKind kind;
            if (loc.ItemType == ItemType.InodeItem) kind = index ? NameKind.DirIndex : NameKind.DirItem;
            else if (loc.ItemType == ItemType.RootItem) kind = index ? NameKind.SubvolIndex : NameKind.SubvolItem;
            else continue; // 412
            s.Add(NameOf(kind, loc.ObjectId, key.ObjectId, index ? key.Offset : 0, e.Type, e.Name, leaf));
        }
        if (!index && entries > 1) DuplicateNamesInItem(key, data, leaf);
    }

    /// <summary>btrfs check's check_for_dupe_filenames: one DIR_ITEM (names colliding on the hash) holds the same name twice.</summary>
    private void DuplicateNamesInItem(BtrfsKey key, ReadOnlySpan<byte> data, ulong leaf)
    {
        var seen = new List<byte[]>();
        foreach (var e in new DirItem(data))
        {
            foreach (var other in seen)
                if (e.Name.SequenceEqual(other))
                {
                    findings.Add(new Finding(FindingCode.DuplicateName, Severity.Error,
                        $"directory {key.ObjectId}: DIR_ITEM {key.Offset} holds the name \"{Printable(e.Name)}\" twice",
                        Bytenr: leaf, Key: key, Expected: "each name once", Found: "twice"));
                    return;
                }
            seen.Add(e.Name.ToArray());
        }
    }

    internal static string Printable(ReadOnlySpan<byte> name)
    {
        var s = System.Text.Encoding.UTF8.GetString(name);
        return s.Any(char.IsControl) ? Convert.ToHexString(name) : s;
    }

    private static NameRec NameOf(NameKind kind, ulong child, ulong parent, ulong index, byte type, ReadOnlySpan<byte> name, ulong leaf) => new()
    {
        Kind = kind, Child = child, Parent = parent, Index = index, Type = type, Leaf = leaf,
        Crc = (uint)Trees.ItemValidation.DirItemValidator.NameHash(name), Hash2 = NameRec.SecondHash(name),
        NameLen = (byte)Math.Min(name.Length, 255),
    };

    private static bool IsInodeItemType(ItemType t) => t is ItemType.InodeItem or ItemType.InodeRef or ItemType.InodeExtref or ItemType.XattrItem
        or ItemType.DirItem or ItemType.DirIndex or ItemType.ExtentData or ItemType.VerityDescItem or ItemType.VerityMerkleItem;
}
