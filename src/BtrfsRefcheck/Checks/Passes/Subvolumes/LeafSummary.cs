using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Format.Items;
using BtrfsRefcheck.Trees;
using BtrfsRefcheck.Volume;

namespace BtrfsRefcheck.Checks;

/// <summary>What a leaf says, independent of the tree it is reached from: the inodes wholly inside it are checked and
/// closed (their findings made once); the first and last inode, whose items may continue in the leaves beside it, stay
/// open (<see cref="Head"/>, <see cref="Tail"/>). Its names are either <see cref="NameRec"/>s, added to the worker's list
/// (the exact join), or, on the fast path, the leaf's share of its trees' name fingerprints (<see cref="NameFingerprint"/>)
/// with the few facts the fingerprints do not cover.</summary>
internal sealed class LeafSummary
{
    public InodeAcc? Head;
    /// <summary>The last inode's accumulator, null when the range holds one inode (then it is <see cref="Head"/>).</summary>
    public InodeAcc? Tail;
    /// <summary>Where the leaf's records go (the worker's list), each marked with the trees holding the leaf.</summary>
    public ChunkedList<NameRec> Out = null!;
    public ulong Mask;

    // fast path
    /// <summary>The fingerprint sums of the leaf's DIR_ITEM / DIR_INDEX entries and its inner inodes' refs.</summary>
    public ulong SumItem, SumIndex;
    /// <summary>Why the trees holding this leaf need the exact join (null: none seen).</summary>
    public string? Why;
    public bool DeadDir, RootDirOk;
    /// <summary>The leaf's first inode was closed in it (it starts with its INODE_ITEM); <see cref="Head"/> is then the
    /// last one, if still open.</summary>
    public bool HeadClosed;
    /// <summary>The first and last inode number of the leaf's inode items (0: none), for the key order across leaves.</summary>
    public ulong FirstIno, LastIno;
    /// <summary>ORPHAN_ITEMs; inner inodes with nlink 0; dir entries naming subvolumes (few).</summary>
    public List<ulong>? Orphans, Unlinked;
    public List<NameRec>? SubvolEntries;

    public void Add(NameRec r)
    {
        r.Mask = Mask;
        Out.Add(r);
    }

    /// <summary>An inner inode closed on the fast path.</summary>
    public void Take(in NameFingerprint.Verdict v, ulong ino)
    {
        SumItem += v.Item;
        SumIndex += v.Index;
        Why ??= v.Why;
        DeadDir |= v.DeadDir;
        RootDirOk |= v.RootDirOk;
        if (v.Unlinked) (Unlinked ??= []).Add(ino);
    }
}

/// <summary>Summarises one leaf of a subvolume tree (btrfs check's process_one_leaf): a leaf's summary depends on its
/// items only, so a leaf shared by snapshots is summarised once, whichever trees reach it. <paramref name="fastRootDirId"/>:
/// null for the exact join's records, else the fast path, for trees whose root directory is that inode.</summary>
internal sealed class LeafSummarizer(FindingBag findings, ulong? fastRootDirId = null)
{
    private readonly bool _fast = fastRootDirId.HasValue;
    private readonly ulong _rootDir = fastRootDirId ?? 0;

    /// <summary>A leaf's items, in key order (btrfs check's process_one_leaf).</summary>
    public LeafSummary OfLeaf(TreeBlock block, SubvolumeParams p, ulong mask, ChunkedList<NameRec>? output)
    {
        var view = block.View;
        ulong leaf = block.Logical;
        var s = new LeafSummary { Out = output!, Mask = mask };
        InodeAcc? cur = null;
        bool headDone = false; // the first inode is closed or open (Head)
        bool firstIsItem = false; // the leaf's first inode item is an INODE_ITEM
        int n = view.Count;
        for (int i = 0; i < n; i++)
        {
            if (!view.TryGetItem(i, out var key, out var data)) continue; // the block validator's
            ulong ino = key.ObjectId;
            if (ino == ObjectIds.Orphan && key.ItemType == ItemType.OrphanItem)
            {
                if (_fast) (s.Orphans ??= []).Add(key.Offset);
                else s.Add(new NameRec { Child = key.Offset, Kind = NameKind.Orphan, Leaf = leaf });
                continue;
            }
            // inode numbers only: the free-space cache and the old inode cache (425) are not inodes
            if (ino < ObjectIds.FirstFree || ino > ObjectIds.LastFree) continue;
            if (!IsInodeItemType(key.ItemType)) continue; // 424 (unknown key type in a subvolume tree)
            if (cur == null || cur.Ino != ino)
            {
                InodeAcc? spare = null;
                if (cur != null)
                {
                    if (ino < cur.Ino) s.Why ??= "keys out of order";
                    bool first = !headDone;
                    headDone = true;
                    // the fast path closes the first inode here too when the leaf starts with its INODE_ITEM: no leaf
                    // before can hold its items (step 3 checks that the trees' leaves say so)
                    if (first && !(_fast && cur.HasItem && cur.ItemLeaf == leaf && firstIsItem)) s.Head = cur;
                    else
                    {
                        if (first) s.HeadClosed = true;
                        if (_fast) { cur.Close(p, findings); s.Take(NameFingerprint.Close(cur, _rootDir), cur.Ino); }
                        else s.Add(cur.Close(p, findings));
                        spare = cur; // closed inside the leaf: nothing keeps it
                    }
                }
                if (spare != null) spare.Reset(ino);
                else spare = new InodeAcc(ino);
                cur = spare;
                cur.FirstLeaf = leaf;
                if (s.FirstIno == 0) { s.FirstIno = ino; firstIsItem = key.ItemType == ItemType.InodeItem; }
                s.LastIno = ino;
            }
            switch (key.ItemType)
            {
                case ItemType.InodeItem:
                    if (data.Length >= InodeItem.Size) cur.InodeItem(new InodeItem(data), leaf);
                    break;
                case ItemType.InodeRef:
                    foreach (var e in new InodeRef(data))
                        if (_fast) cur.Ref(RefOf(key.Offset, e.Index, e.Name));
                        else s.Add(NameOf(NameKind.Ref, ino, key.Offset, e.Index, 0, e.Name, leaf));
                    break;
                case ItemType.InodeExtref:
                    foreach (var e in new InodeExtref(data))
                        if (_fast) cur.Ref(RefOf(e.ParentObjectId, e.Index, e.Name));
                        else s.Add(NameOf(NameKind.Ref, ino, e.ParentObjectId, e.Index, 0, e.Name, leaf));
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
            if (!_fast) s.Add(NameOf(kind, loc.ObjectId, key.ObjectId, index ? key.Offset : 0, e.Type, e.Name, leaf));
            else if (kind is NameKind.SubvolItem or NameKind.SubvolIndex)
            {
                var r = NameOf(kind, loc.ObjectId, key.ObjectId, index ? key.Offset : 0, e.Type, e.Name, leaf);
                r.Mask = s.Mask;
                (s.SubvolEntries ??= []).Add(r);
            }
            else
            {
                uint crc = index ? (uint)Trees.ItemValidation.DirItemValidator.NameHash(e.Name) : (uint)key.Offset; // (checked above)
                uint h2 = NameRec.SecondHash(e.Name);
                byte len = (byte)Math.Min(e.Name.Length, 255);
                if (index) s.SumIndex -= NameFingerprint.Index(key.ObjectId, loc.ObjectId, crc, h2, len, e.Type, key.Offset);
                else s.SumItem -= NameFingerprint.Item(key.ObjectId, loc.ObjectId, crc, h2, len, e.Type);
            }
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

    private static RefTuple RefOf(ulong parent, ulong index, ReadOnlySpan<byte> name) => new()
    {
        Parent = parent, Index = index, Crc = (uint)Trees.ItemValidation.DirItemValidator.NameHash(name), Hash2 = NameRec.SecondHash(name),
        NameLen = (byte)Math.Min(name.Length, 255),
    };

    private static NameRec NameOf(NameKind kind, ulong child, ulong parent, ulong index, byte type, ReadOnlySpan<byte> name, ulong leaf) => new()
    {
        Kind = kind, Child = child, Parent = parent, Index = index, Type = type, Leaf = leaf,
        Crc = (uint)Trees.ItemValidation.DirItemValidator.NameHash(name), Hash2 = NameRec.SecondHash(name),
        NameLen = (byte)Math.Min(name.Length, 255),
    };

    private static bool IsInodeItemType(ItemType t) => t is ItemType.InodeItem or ItemType.InodeRef or ItemType.InodeExtref or ItemType.XattrItem
        or ItemType.DirItem or ItemType.DirIndex or ItemType.ExtentData or ItemType.VerityDescItem or ItemType.VerityMerkleItem;
}
