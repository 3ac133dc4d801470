using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;

namespace BtrfsRefcheck.Checks;

/// <summary>Joins a subvolume tree's <see cref="NameRec"/>s, grouped by inode: each name (directory, name) must have
/// exactly one INODE_REF/EXTREF entry, one DIR_ITEM and one DIR_INDEX that agree on index and type, the type must be
/// the inode's, and the inode's nlink must be the number of DIR_ITEMs naming it (btrfs check's add_inode_backref,
/// maybe_free_inode_rec, check_inode_recs and check_root_dir).</summary>
internal static class NameJoin
{
    /// <summary>Every finding about names and links, over the records of every checked tree at once (sorted here).
    /// <paramref name="trees"/>[i] is the tree of mask bit i. An inode's group is evaluated once per distinct subset of its
    /// records that some tree sees: trees that share every leaf holding the inode's items and names share the result, which
    /// is reported once, for the first of them. Records naming subvolumes go to <paramref name="subvolEntries"/> per tree.</summary>
    public static void Evaluate(List<(NameRec[] Array, int Count)> segments, IReadOnlyList<SubvolumeParams> trees, ulong liveTrees, FindingBag findings,
        List<(ulong Tree, NameRec Entry)> subvolEntries)
    {
        // One pass: subvolume entries out, deleted directories (their entries do not count), the inode numbers' spread.
        HashSet<ulong>? deadDirs = null;
        long count = 0;
        ulong maxChild = 0;
        foreach (var (arr, n) in segments)
            for (int i = 0; i < n; i++)
            {
                ref readonly var r = ref arr[i];
                if (r.Kind is NameKind.SubvolItem or NameKind.SubvolIndex)
                {
                    for (ulong m = r.Mask & liveTrees; m != 0; m &= m - 1) subvolEntries.Add((trees[System.Numerics.BitOperations.TrailingZeroCount(m)].Tree, r));
                    continue;
                }
                if ((r.Mask & liveTrees) == 0) continue;
                count++;
                if (r.Child > maxChild && r.Child <= ObjectIds.LastFree) maxChild = r.Child;
                if (r.Kind == NameKind.Inode && (r.Flags & NameRec.FlagHasItem) != 0 && r.Nlink == 0 && r.Type == 2) (deadDirs ??= []).Add(r.Child);
            }
        // The groups (by inode) are decided in ranges of inode numbers, each range sorted on its own: memory holds the
        // records once plus one range's copy, not twice the records.
        int parts = (int)Math.Clamp(count / 500_000 + 1, 1, 16);
        ulong step = maxChild / (ulong)parts + 1;
        ulong rootDirSeen = 0;
        var subset = new List<NameRec>();
        var sigs = new Dictionary<ulong, ulong>(); // subset signature -> trees
        for (int part = 0; part < parts; part++)
        {
            ulong lo = (ulong)part * step, hi = part == parts - 1 ? ulong.MaxValue : lo + step;
            int size = 0;
            foreach (var (arr, n) in segments)
                for (int i = 0; i < n; i++)
                    if (InPart(in arr[i], lo, hi, liveTrees)) size++;
            var recs = new NameRec[size];
            int w = 0;
            foreach (var (arr, n) in segments)
                for (int i = 0; i < n; i++)
                    if (InPart(in arr[i], lo, hi, liveTrees)) recs[w++] = arr[i];
            recs.AsSpan().Sort(new NameRec.Order());
            DecideAll(recs, trees, liveTrees, findings, deadDirs, ref rootDirSeen, subset, sigs);
        }
        for (ulong m = liveTrees & ~rootDirSeen; m != 0; m &= m - 1)
        {
            var p = trees[System.Numerics.BitOperations.TrailingZeroCount(m)];
            findings.Add(new Finding(FindingCode.RootDirInvalid, Severity.Error, $"{p.TreeName}: root directory inode {p.RootDirId} not found",
                Tree: p.Tree, Key: new BtrfsKey(p.RootDirId, (byte)ItemType.InodeItem, 0), Expected: "an INODE_ITEM", Found: "none"));
        }
    }

    private static bool InPart(in NameRec r, ulong lo, ulong hi, ulong liveTrees) =>
        r.Kind is not (NameKind.SubvolItem or NameKind.SubvolIndex) && (r.Mask & liveTrees) != 0 && r.Child >= lo && r.Child < hi;

    private static void DecideAll(NameRec[] recs, IReadOnlyList<SubvolumeParams> trees, ulong liveTrees, FindingBag findings, HashSet<ulong>? deadDirs,
        ref ulong rootDirSeen, List<NameRec> subset, Dictionary<ulong, ulong> sigs)
    {
        var span = recs.AsSpan();
        for (int i = 0; i < span.Length;)
        {
            int j = i + 1;
            while (j < span.Length && span[j].Child == span[i].Child) j++;
            var g = span[i..j];
            i = j;
            ulong union = 0;
            bool same = true;
            foreach (ref readonly var r in g) { union |= r.Mask; same &= r.Mask == g[0].Mask; }
            union &= liveTrees;
            if (same) { Decide(g, union, trees, findings, deadDirs, ref rootDirSeen); continue; }
            // trees seeing different subsets of the records: one evaluation per distinct subset
            sigs.Clear();
            for (ulong m = union; m != 0; m &= m - 1)
            {
                int t = System.Numerics.BitOperations.TrailingZeroCount(m);
                ulong sig = 14695981039346656037UL;
                for (int k = 0; k < g.Length; k++) sig = (sig ^ ((g[k].Mask >> t) & 1) ^ ((ulong)k << 1)) * 1099511628211UL;
                sigs[sig] = sigs.GetValueOrDefault(sig) | (1UL << t);
            }
            foreach (var treesOfSig in sigs.Values)
            {
                int t = System.Numerics.BitOperations.TrailingZeroCount(treesOfSig);
                subset.Clear();
                foreach (ref readonly var r in g) if (((r.Mask >> t) & 1) != 0) subset.Add(r);
                Decide(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(subset), treesOfSig, trees, findings, deadDirs, ref rootDirSeen);
            }
        }
    }

    /// <summary>One inode's records as the trees in <paramref name="treeMask"/> all see them.</summary>
    private static void Decide(ReadOnlySpan<NameRec> g, ulong treeMask, IReadOnlyList<SubvolumeParams> trees, FindingBag findings, HashSet<ulong>? deadDirs, ref ulong rootDirSeen)
    {
        if (treeMask == 0) return;
        var p = trees[System.Numerics.BitOperations.TrailingZeroCount(treeMask)];
        int others = System.Numerics.BitOperations.PopCount(treeMask) - 1;
        if (others > 0) p = p with { TreeName = $"{p.TreeName} (and {others} snapshot(s) sharing these items)" };
        ulong ino = g[0].Child;
        ulong rootDirTrees = 0;
        for (ulong m = treeMask; m != 0; m &= m - 1)
        {
            int t = System.Numerics.BitOperations.TrailingZeroCount(m);
            if (trees[t].RootDirId == ino) rootDirTrees |= 1UL << t;
        }
        rootDirSeen |= rootDirTrees;
        if (rootDirTrees != 0) RootDir(g, p, findings);
        else Group(g, p, findings, deadDirs);
    }

    private static void Group(ReadOnlySpan<NameRec> g, SubvolumeParams p, FindingBag findings, HashSet<ulong>? deadDirs)
    {
        ulong ino = g[0].Child;
        bool hasInode = g[0].Kind == NameKind.Inode;
        var inode = hasInode ? g[0] : default;
        bool hasItem = hasInode && (inode.Flags & NameRec.FlagHasItem) != 0;
        if (hasInode && (inode.Flags & NameRec.FlagPartial) != 0) return;
        string where = $"{p.TreeName} inode {ino}";
        var inodeKey = new BtrfsKey(ino, (byte)ItemType.InodeItem, 0);
        int dirItems = 0, names = 0;
        bool orphan = false;
        ulong firstNameLeaf = 0;
        for (int i = hasInode ? 1 : 0; i < g.Length;)
        {
            if (g[i].Kind == NameKind.Orphan) { orphan = true; i++; continue; }
            if (g[i].Kind == NameKind.Inode) { i++; continue; } // a second closure of one inode: keys out of order (306)
            int j = i + 1;
            while (j < g.Length && g[j].Kind is not (NameKind.Inode or NameKind.Orphan) && g[j].SameName(g[i])) j++;
            var name = g[i..j];
            i = j;
            int refs = 0, items = 0, indexes = 0;
            NameRec r = default, d = default, x = default;
            foreach (ref readonly var n in name)
            {
                if (n.Kind == NameKind.Ref) { if (refs++ == 0) r = n; }
                else if (n.Kind == NameKind.DirItem) { if (items++ == 0) d = n; }
                else if (n.Kind == NameKind.DirIndex) { if (indexes++ == 0) x = n; }
            }
            if (deadDirs != null && deadDirs.Contains(name[0].Parent)) { items = 0; indexes = 0; if (refs == 0) continue; }
            names++;
            dirItems += items;
            if (firstNameLeaf == 0) firstNameLeaf = name[0].Leaf;
            string nm = $"name {name[0].NameLen} bytes (hash {name[0].Crc:x8}) in directory {name[0].Parent}";
            if (refs > 0 && items == 0)
                findings.Add(new Finding(FindingCode.DirItemMissing, Severity.Error, $"{where}: its INODE_REF {nm}, index {r.Index}, has no DIR_ITEM",
                    Bytenr: r.Leaf, Tree: p.Tree, Key: new BtrfsKey(ino, (byte)ItemType.InodeRef, r.Parent), Expected: $"DIR_ITEM ({r.Parent} DIR_ITEM {r.Crc})", Found: "none"));
            if (refs > 0 && indexes == 0)
                findings.Add(new Finding(FindingCode.DirIndexMissing, Severity.Error, $"{where}: its INODE_REF {nm}, index {r.Index}, has no DIR_INDEX",
                    Bytenr: r.Leaf, Tree: p.Tree, Key: new BtrfsKey(ino, (byte)ItemType.InodeRef, r.Parent), Expected: $"DIR_INDEX ({r.Parent} DIR_INDEX {r.Index})", Found: "none"));
            if (refs == 0 && (items > 0 || indexes > 0))
            {
                var e = items > 0 ? d : x;
                findings.Add(new Finding(FindingCode.InodeRefMissing, Severity.Error,
                    $"{where}: the {(items > 0 ? "DIR_ITEM" : "DIR_INDEX")} {nm} names it, but the inode has no INODE_REF / INODE_EXTREF for that name",
                    Bytenr: e.Leaf, Tree: p.Tree, Key: items > 0 ? new BtrfsKey(e.Parent, (byte)ItemType.DirItem, e.Crc) : new BtrfsKey(e.Parent, (byte)ItemType.DirIndex, e.Index),
                    Expected: $"INODE_REF ({ino} INODE_REF {e.Parent})", Found: "none"));
            }
            if (refs > 1 || items > 1 || indexes > 1)
                findings.Add(new Finding(FindingCode.DuplicateName, Severity.Error,
                    $"{where}: {nm} is recorded {Math.Max(refs, Math.Max(items, indexes))} times (INODE_REF {refs}, DIR_ITEM {items}, DIR_INDEX {indexes})",
                    Bytenr: name[0].Leaf, Tree: p.Tree, Expected: "once each", Found: $"{refs}/{items}/{indexes}"));
            if (refs > 0 && indexes > 0 && r.Index != x.Index)
                findings.Add(new Finding(FindingCode.NameMismatch, Severity.Error, $"{where}: {nm}: INODE_REF index {r.Index}, DIR_INDEX {x.Index}",
                    Bytenr: x.Leaf, Tree: p.Tree, Key: new BtrfsKey(x.Parent, (byte)ItemType.DirIndex, x.Index), Expected: r.Index.ToString(), Found: x.Index.ToString()));
            if (items > 0 && indexes > 0 && d.Type != x.Type)
                findings.Add(new Finding(FindingCode.NameMismatch, Severity.Error, $"{where}: {nm}: DIR_ITEM type {d.Type}, DIR_INDEX type {x.Type}",
                    Bytenr: x.Leaf, Tree: p.Tree, Key: new BtrfsKey(x.Parent, (byte)ItemType.DirIndex, x.Index), Expected: d.Type.ToString(), Found: x.Type.ToString()));
            else if (hasItem && inode.Type != 0 && items + indexes > 0 && (items > 0 ? d : x) is var e && e.Type != inode.Type) // type 0: mode invalid (410)
                findings.Add(new Finding(FindingCode.NameMismatch, Severity.Error, $"{where}: {nm}: the entry's type is {e.Type}, the inode's mode says {inode.Type}",
                    Bytenr: e.Leaf, Tree: p.Tree, Expected: inode.Type.ToString(), Found: e.Type.ToString()));
        }
        if (!hasItem)
        {
            if (names > 0 || hasInode)
                findings.Add(new Finding(FindingCode.InodeItemMissing, Severity.Error,
                    $"{where}: {(names > 0 ? $"named {names} time(s)" : "has items")} but has no INODE_ITEM",
                    Bytenr: hasInode ? inode.Leaf : firstNameLeaf, Tree: p.Tree, Key: inodeKey, Expected: "an INODE_ITEM", Found: "none"));
            return;
        }
        if (inode.Type == 2 && dirItems > 1)
            findings.Add(new Finding(FindingCode.DirectoryHardLink, Severity.Error, $"{where}: a directory named by {dirItems} DIR_ITEMs (a hard link to a directory)",
                Bytenr: inode.Leaf, Tree: p.Tree, Key: inodeKey, Expected: "1", Found: dirItems.ToString()));
        else if (inode.Nlink != (uint)dirItems)
            findings.Add(new Finding(FindingCode.InodeLinkCountWrong, Severity.Error, $"{where}: nlink {inode.Nlink}, named by {dirItems} DIR_ITEM(s)",
                Bytenr: inode.Leaf, Tree: p.Tree, Key: inodeKey, Expected: dirItems.ToString(), Found: inode.Nlink.ToString()));
        if (inode.Nlink == 0 && !orphan)
            findings.Add(new Finding(FindingCode.OrphanItemMissing, Severity.Error, $"{where}: nlink 0 and no ORPHAN_ITEM (it is neither linked nor queued for deletion)",
                Bytenr: inode.Leaf, Tree: p.Tree, Key: inodeKey, Expected: $"ORPHAN_ITEM (ORPHAN ORPHAN_ITEM {ino})", Found: "none"));
    }

    /// <summary>btrfs check's check_root_dir: an INODE_ITEM with nlink 1, no DIR_ITEM naming it, and one INODE_REF "..",
    /// index 0, to itself.</summary>
    private static void RootDir(ReadOnlySpan<NameRec> g, SubvolumeParams p, FindingBag findings)
    {
        ulong ino = g[0].Child;
        var key = new BtrfsKey(ino, (byte)ItemType.InodeItem, 0);
        bool hasItem = g[0].Kind == NameKind.Inode && (g[0].Flags & NameRec.FlagHasItem) != 0;
        if (g[0].Kind == NameKind.Inode && (g[0].Flags & NameRec.FlagPartial) != 0) return;
        string? problem = null;
        int refs = 0, dirItems = 0, others = 0;
        bool dotdot = false;
        foreach (ref readonly var r in g)
        {
            if (r.Kind == NameKind.Ref) { refs++; dotdot |= r.Parent == ino && r.NameLen == 2 && r.Crc == DotDotCrc && r.Hash2 == DotDotHash2 && r.Index == 0; }
            else if (r.Kind == NameKind.DirItem) dirItems++;
            else if (r.Kind != NameKind.Inode && r.Kind != NameKind.Orphan) others++;
        }
        if (!hasItem) problem = "has no INODE_ITEM";
        else if (g[0].Nlink != 1) problem = $"has nlink {g[0].Nlink}";
        else if (dirItems != 0 || others != 0) problem = $"is named by {dirItems + others} dir entries";
        else if (refs != 1 || !dotdot) problem = refs == 0 ? "has no INODE_REF \"..\"" : "has an INODE_REF other than \"..\" index 0 to itself";
        if (problem == null) return;
        findings.Add(new Finding(FindingCode.RootDirInvalid, Severity.Error, $"{p.TreeName}: root directory inode {ino} {problem}",
            Bytenr: g[0].Leaf, Tree: p.Tree, Key: key, Expected: "an INODE_ITEM, nlink 1, only the INODE_REF \"..\"", Found: problem));
    }

    private static readonly uint DotDotCrc = (uint)Trees.ItemValidation.DirItemValidator.NameHash(".."u8);
    private static readonly uint DotDotHash2 = NameRec.SecondHash(".."u8);
}
