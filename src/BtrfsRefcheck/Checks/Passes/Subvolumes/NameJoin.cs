using System.Runtime.InteropServices;
using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;

namespace BtrfsRefcheck.Checks;

/// <summary>Joins a subvolume tree's <see cref="NameRec"/>s, grouped by inode: each name (directory, name) must have
/// exactly one INODE_REF/EXTREF entry, one DIR_ITEM and one DIR_INDEX that agree on index and type, the type must be
/// the inode's, and the inode's nlink must be the number of DIR_ITEMs naming it (btrfs check's add_inode_backref,
/// maybe_free_inode_rec, check_inode_recs and check_root_dir).</summary>
internal static class NameJoin
{
    /// <summary>Drops the groups that are complete and consistent (used for a subtree shared by snapshots: what is
    /// decided inside it is decided for every tree that reaches it). What is left is carried up.</summary>
    public static void Reduce(List<NameRec> recs)
    {
        if (recs.Count == 0) return;
        var span = CollectionsMarshal.AsSpan(recs);
        span.Sort(NameRec.Compare);
        int w = 0;
        for (int i = 0; i < span.Length;)
        {
            int j = i + 1;
            while (j < span.Length && span[j].Child == span[i].Child) j++;
            if (!Complete(span[i..j]))
                for (int k = i; k < j; k++) span[w++] = span[k];
            i = j;
        }
        recs.RemoveRange(w, recs.Count - w);
    }

    /// <summary>One inode's group is settled: its item, nlink names each with ref, DIR_ITEM and DIR_INDEX agreeing.</summary>
    private static bool Complete(ReadOnlySpan<NameRec> g)
    {
        if (g.Length < 4 || g[0].Kind != NameKind.Inode || (g[0].Flags & NameRec.FlagHasItem) == 0 || (g[0].Flags & NameRec.FlagPartial) != 0) return false;
        if (g[1].Kind == NameKind.Inode || (g.Length - 1) % 3 != 0 || (uint)((g.Length - 1) / 3) != g[0].Nlink) return false;
        byte type = g[0].Type;
        for (int i = 1; i < g.Length; i += 3)
        {
            ref readonly var r = ref g[i];
            ref readonly var d = ref g[i + 1];
            ref readonly var x = ref g[i + 2];
            if (r.Kind != NameKind.Ref || d.Kind != NameKind.DirItem || x.Kind != NameKind.DirIndex) return false;
            if (!r.SameName(d) || !r.SameName(x) || r.Index != x.Index || d.Type != type || x.Type != type) return false;
            if (r.Child == r.Parent) return false; // the root directory's ".." (checked at the root)
        }
        return true;
    }

    /// <summary>The whole tree's records: every finding about names and links. Records of subvolume entries are moved
    /// to <paramref name="subvolEntries"/> for the root-reference check.</summary>
    public static void Evaluate(List<NameRec> recs, SubvolumeParams p, FindingBag findings, List<NameRec> subvolEntries)
    {
        var span = CollectionsMarshal.AsSpan(recs);
        // Subvolume entries live in another namespace (root ids): out first.
        int w = 0;
        for (int i = 0; i < span.Length; i++)
        {
            if (span[i].Kind is NameKind.SubvolItem or NameKind.SubvolIndex) subvolEntries.Add(span[i]);
            else span[w++] = span[i];
        }
        span = span[..w];
        span.Sort(NameRec.Compare);
        // Entries of a deleted directory (nlink 0) do not count (btrfs check's process_dir_item).
        HashSet<ulong>? deadDirs = null;
        foreach (ref readonly var r in span)
            if (r.Kind == NameKind.Inode && (r.Flags & NameRec.FlagHasItem) != 0 && r.Nlink == 0 && r.Type == 2) (deadDirs ??= []).Add(r.Child);
        bool rootDirSeen = false;
        for (int i = 0; i < span.Length;)
        {
            int j = i + 1;
            while (j < span.Length && span[j].Child == span[i].Child) j++;
            if (span[i].Child == p.RootDirId) { rootDirSeen = true; RootDir(span[i..j], p, findings); }
            else Group(span[i..j], p, findings, deadDirs);
            i = j;
        }
        if (!rootDirSeen)
            findings.Add(new Finding(FindingCode.RootDirInvalid, Severity.Error, $"{p.TreeName}: root directory inode {p.RootDirId} not found",
                Tree: p.Tree, Key: new BtrfsKey(p.RootDirId, (byte)ItemType.InodeItem, 0), Expected: "an INODE_ITEM", Found: "none"));
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
