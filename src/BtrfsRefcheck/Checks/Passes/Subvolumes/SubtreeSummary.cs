using System.Collections.Concurrent;
using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Format.Items;
using BtrfsRefcheck.Trees;
using BtrfsRefcheck.Volume;

namespace BtrfsRefcheck.Checks;

/// <summary>What a subtree (a block and everything under it) says, independent of the tree it is reached from: the
/// inodes wholly inside it are checked and closed (their findings made once); the first and last inode, whose items
/// may continue outside, stay open (<see cref="Head"/>, <see cref="Tail"/>); names not yet matched are carried up as
/// <see cref="NameRec"/>s. <see cref="Broken"/>: an unreadable or invalid block lies inside, so nothing in the tree that
/// reaches it can be asserted missing.</summary>
internal sealed class SubtreeSummary
{
    public static readonly SubtreeSummary BrokenSummary = new() { Broken = true };
    public static readonly SubtreeSummary EmptySummary = new();

    public InodeAcc? Head;
    /// <summary>The last inode's accumulator, null when the range holds one inode (then it is <see cref="Head"/>).</summary>
    public InodeAcc? Tail;
    public List<NameRec> Recs = [];
    public bool Broken;
    /// <summary>Cached (shared by snapshots): never changed after it is made; a fold copies from it.</summary>
    public bool Frozen;

    public bool IsEmpty => !Broken && Head == null && Recs.Count == 0;
    public InodeAcc? Last => Tail ?? Head;
}

/// <summary>Makes and joins <see cref="SubtreeSummary"/>s over the subvolume trees: one per leaf from its items, one per
/// node by folding its children's in key order. A block reached from more than one parent (shared by snapshots) is
/// summarised once and cached by its address; its complete names are matched and dropped there
/// (<see cref="NameJoin.Reduce"/>), so a snapshot that shares it costs one look-up, not a walk.</summary>
internal sealed class SubtreeSummaries(BtrfsVolume volume, FindingBag findings, HashSet<ulong> broken, HashSet<ulong> shared, int degree)
{
    private readonly ConcurrentDictionary<ulong, Lazy<SubtreeSummary>> _cache = new();
    public long Leaves, Items, CacheHits;

    /// <summary>The summary of a whole tree: the root's children in parallel, each subtree depth-first.</summary>
    public SubtreeSummary OfTree(TreeRoot root, SubvolumeParams p)
    {
        if (shared.Contains(root.Bytenr)) return Cached(root.Bytenr, root.Level, p);
        var read = Read(root.Bytenr, root.Level, out var block);
        if (read == null) return SubtreeSummary.BrokenSummary;
        if (block!.View.IsLeaf) return OfLeaf(block, p);
        var view = block.View;
        int n = view.Count;
        var children = new (ulong Bytenr, int Level)[n];
        for (int i = 0; i < n; i++) children[i] = (view.KeyPtr(i).BlockPtr, root.Level - 1);
        var parts = new SubtreeSummary[n];
        if (degree > 1 && n > 1)
            Parallel.For(0, n, new ParallelOptions { MaxDegreeOfParallelism = degree }, i => parts[i] = Of(children[i].Bytenr, children[i].Level, p));
        else
            for (int i = 0; i < n; i++) parts[i] = Of(children[i].Bytenr, children[i].Level, p);
        return FoldAll(parts, p);
    }

    private SubtreeSummary Of(ulong bytenr, int level, SubvolumeParams p)
    {
        if (shared.Contains(bytenr)) return Cached(bytenr, level, p);
        return Build(bytenr, level, p);
    }

    private SubtreeSummary Cached(ulong bytenr, int level, SubvolumeParams p)
    {
        var lazy = _cache.GetOrAdd(bytenr, b => new Lazy<SubtreeSummary>(() =>
        {
            var s = Build(b, level, p);
            if (!s.Broken) NameJoin.Reduce(s.Recs);
            s.Frozen = true;
            return s;
        }, LazyThreadSafetyMode.ExecutionAndPublication));
        if (lazy.IsValueCreated) Interlocked.Increment(ref CacheHits);
        return lazy.Value;
    }

    private SubtreeSummary Build(ulong bytenr, int level, SubvolumeParams p)
    {
        if (Read(bytenr, level, out var block) == null) return SubtreeSummary.BrokenSummary;
        var view = block!.View;
        if (view.IsLeaf) return OfLeaf(block, p);
        int n = view.Count;
        var children = new ulong[n];
        for (int i = 0; i < n; i++) children[i] = view.KeyPtr(i).BlockPtr;
        // (the block buffer may be reused by the cache while the children are read: only addresses are kept)
        SubtreeSummary acc = SubtreeSummary.EmptySummary;
        for (int i = 0; i < n; i++)
        {
            acc = Fold(acc, Of(children[i], level - 1, p), p);
            if (acc.Broken) return acc;
        }
        return acc;
    }

    /// <summary>The block, when it is readable, valid (the scan did not find it broken) and at the level its parent says.</summary>
    private TreeBlockRead? Read(ulong bytenr, int level, out TreeBlock? block)
    {
        block = null;
        if (broken.Contains(bytenr)) return null;
        var read = volume.ReadTreeBlock(bytenr);
        if (read.Block is not { } b) return null;
        var view = b.View;
        if (view.Header.Level != level || view.Header.NrItems > (uint)(view.IsLeaf ? view.MaxLeafItems : view.MaxNodePtrs)) return null;
        block = b;
        return read;
    }

    private SubtreeSummary FoldAll(SubtreeSummary[] parts, SubvolumeParams p)
    {
        SubtreeSummary acc = SubtreeSummary.EmptySummary;
        foreach (var s in parts)
        {
            acc = Fold(acc, s, p);
            if (acc.Broken) return acc;
        }
        return acc;
    }

    /// <summary>Joins two adjacent key ranges (<paramref name="a"/> before <paramref name="b"/>). Reuses
    /// <paramref name="a"/> when it is not cached; never changes <paramref name="b"/> or a cached summary.</summary>
    private SubtreeSummary Fold(SubtreeSummary a, SubtreeSummary b, SubvolumeParams p)
    {
        if (a.Broken || b.Broken) return SubtreeSummary.BrokenSummary;
        if (b.IsEmpty) return a;
        var r = a.Frozen || ReferenceEquals(a, SubtreeSummary.EmptySummary)
            ? new SubtreeSummary { Head = Clone(a.Head), Tail = Clone(a.Tail), Recs = new List<NameRec>(a.Recs.Count + b.Recs.Count) { } }
            : a;
        if (!ReferenceEquals(r, a)) r.Recs.AddRange(a.Recs);
        r.Recs.AddRange(b.Recs);
        if (r.Head == null) { r.Head = Clone(b.Head); r.Tail = Clone(b.Tail); return r; }
        if (b.Head == null) return r;
        var last = r.Last!;
        var bLast = b.Tail;
        if (last.Ino == b.Head.Ino)
        {
            var merged = r.Tail == null ? r.Head : r.Tail;
            merged.Append(b.Head);
            if (bLast != null)
            {
                // the merged inode is now inside the range, unless it is also the range's head
                if (r.Tail != null) r.Recs.Add(r.Tail.Close(p, findings));
                r.Tail = Clone(bLast);
            }
        }
        else
        {
            if (r.Tail != null) r.Recs.Add(r.Tail.Close(p, findings));
            if (bLast != null)
            {
                r.Recs.Add(Clone(b.Head)!.Close(p, findings));
                r.Tail = Clone(bLast);
            }
            else r.Tail = Clone(b.Head);
        }
        return r;
    }

    private static InodeAcc? Clone(InodeAcc? a) => a == null ? null : a.Copy();

    /// <summary>A leaf's items, in key order (btrfs check's process_one_leaf).</summary>
    private SubtreeSummary OfLeaf(TreeBlock block, SubvolumeParams p)
    {
        Interlocked.Increment(ref Leaves);
        var view = block.View;
        ulong leaf = block.Logical;
        var s = new SubtreeSummary();
        InodeAcc? cur = null;
        int n = view.Count;
        Interlocked.Add(ref Items, n);
        for (int i = 0; i < n; i++)
        {
            if (!view.TryGetItem(i, out var key, out var data)) continue; // the block validator's
            ulong ino = key.ObjectId;
            if (ino == ObjectIds.Orphan && key.ItemType == ItemType.OrphanItem)
            {
                s.Recs.Add(new NameRec { Child = key.Offset, Kind = NameKind.Orphan, Leaf = leaf });
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
                    else s.Recs.Add(cur.Close(p, findings));
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
                        s.Recs.Add(NameOf(NameKind.Ref, ino, key.Offset, e.Index, 0, e.Name, leaf));
                    break;
                case ItemType.InodeExtref:
                    foreach (var e in new InodeExtref(data))
                        s.Recs.Add(NameOf(NameKind.Ref, ino, e.ParentObjectId, e.Index, 0, e.Name, leaf));
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

    private void DirEntries(InodeAcc cur, SubtreeSummary s, BtrfsKey key, ReadOnlySpan<byte> data, ulong leaf)
    {
        cur.HasDirEntries = true;
        bool index = key.ItemType == ItemType.DirIndex;
        int entries = 0;
        foreach (var e in new DirItem(data))
        {
            entries++;
            cur.DirNames += e.NameLength;
            if (!index && Trees.ItemValidation.DirItemValidator.NameHash(e.Name) != key.Offset) continue; // 412
            var loc = e.Location;
            NameKind kind;
            if (loc.ItemType == ItemType.InodeItem) kind = index ? NameKind.DirIndex : NameKind.DirItem;
            else if (loc.ItemType == ItemType.RootItem) kind = index ? NameKind.SubvolIndex : NameKind.SubvolItem;
            else continue; // 412
            s.Recs.Add(NameOf(kind, loc.ObjectId, key.ObjectId, index ? key.Offset : 0, e.Type, e.Name, leaf));
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
