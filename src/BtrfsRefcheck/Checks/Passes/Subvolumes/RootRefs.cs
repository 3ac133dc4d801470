using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Format.Items;
using BtrfsRefcheck.Trees;
using BtrfsRefcheck.Volume;

namespace BtrfsRefcheck.Checks;

/// <summary>What the root tree says about subvolumes: each ROOT_ITEM's refs and root dir, the ROOT_REF / ROOT_BACKREF
/// pairs, and the ORPHAN_ITEMs of deleted subvolumes.</summary>
internal sealed class RootTreeFacts
{
    public readonly Dictionary<ulong, (uint Refs, ulong RootDirId, ulong Leaf)> RootItems = [];
    /// <summary>(child, parent, dir, index, name) from ROOT_REF (Forward) and ROOT_BACKREF.</summary>
    public readonly List<(ulong Child, ulong Parent, ulong Dir, ulong Index, uint Crc, uint Hash2, byte NameLen, bool Forward, ulong Leaf)> Refs = [];
    public readonly HashSet<ulong> Orphans = [];
    public bool Complete = true;

    public static RootTreeFacts Read(BtrfsVolume volume, TreeRoot rootTree)
    {
        var facts = new RootTreeFacts();
        new TreeWalker(volume, new FindingBag()).Walk(rootTree, new Collector(facts), new WalkOptions { Validate = false });
        return facts;
    }

    private sealed class Collector(RootTreeFacts f) : ITreeVisitor
    {
        public void OnUnreadable(in BlockContext ctx, TreeBlockRead read) => f.Complete = false;

        public bool OnBlock(in BlockContext ctx, TreeBlock block, bool valid)
        {
            if (!valid) { f.Complete = false; return false; }
            var view = block.View;
            if (!view.IsLeaf) return true;
            for (int i = 0; i < view.Count; i++)
            {
                if (!view.TryGetItem(i, out var key, out var data)) continue;
                switch (key.ItemType)
                {
                    case ItemType.RootItem when data.Length >= RootItem.LegacySize && key.ObjectId != ObjectIds.TreeReloc:
                        var ri = new RootItem(data);
                        f.RootItems[key.ObjectId] = (ri.Refs, ri.RootDirId, block.Logical);
                        break;
                    case ItemType.RootRef or ItemType.RootBackref when data.Length >= RootRef.HeaderSize:
                        var rr = new RootRef(data);
                        bool forward = key.ItemType == ItemType.RootRef;
                        var name = rr.Name;
                        f.Refs.Add((forward ? key.Offset : key.ObjectId, forward ? key.ObjectId : key.Offset, rr.DirId, rr.Sequence,
                            (uint)Trees.ItemValidation.DirItemValidator.NameHash(name), NameRec.SecondHash(name), (byte)Math.Min(name.Length, 255), forward, block.Logical));
                        break;
                    case ItemType.OrphanItem when key.ObjectId == ObjectIds.Orphan:
                        f.Orphans.Add(key.Offset);
                        break;
                }
            }
            return true;
        }
    }
}

/// <summary>btrfs check's check_root_refs: every subvolume's ROOT_REF in its parent, ROOT_BACKREF and the parent's
/// DIR_ITEM and DIR_INDEX agree (same directory, index and name); the number of such references reachable from the fs
/// tree is the ROOT_ITEM's refs; a subvolume no one references (refs 0) has an ORPHAN_ITEM in the root tree (the
/// cleaner drops it).</summary>
internal static class RootRefCheck
{
    private sealed class Backref
    {
        public ulong Parent, Dir, Index, Leaf;
        public uint Crc, Hash2;
        public byte NameLen;
        public bool DirItem, DirIndex, Forward, Back, IndexMismatch, Dup, Reachable;
    }

    private sealed class Rec
    {
        public readonly List<Backref> Backrefs = [];
        public int FoundRef;
    }

    /// <param name="entries">Each checked subvolume tree's dir entries that name a subvolume, with the tree they are in
    /// (in <see cref="NameRec.Nlink"/>'s place: see the caller).</param>
    public static void Run(RootTreeFacts facts, List<(ulong Tree, NameRec Entry)> entries, FindingBag findings, ulong rootTreeBytenr)
    {
        var recs = new SortedDictionary<ulong, Rec>();
        Rec Get(ulong id) => recs.TryGetValue(id, out var r) ? r : recs[id] = new Rec();
        Backref Find(Rec rec, ulong parent, ulong dir, uint crc, uint hash2, byte len, ulong leaf)
        {
            foreach (var b in rec.Backrefs)
                if (b.Parent == parent && b.Dir == dir && b.Crc == crc && b.Hash2 == hash2 && b.NameLen == len) return b;
            var n = new Backref { Parent = parent, Dir = dir, Crc = crc, Hash2 = hash2, NameLen = len, Leaf = leaf };
            rec.Backrefs.Add(n);
            return n;
        }
        var hasForward = facts.Refs.Where(r => r.Forward).Select(r => (r.Parent, r.Child)).ToHashSet();
        var backParents = facts.Refs.Where(r => !r.Forward).ToLookup(r => r.Child, r => r.Parent);
        foreach (var (tree, e) in entries)
        {
            // btrfs check's is_child_root: an entry counts when the tree holds the subvolume's ROOT_REF, or when the
            // subvolume has no parent at all; a snapshot's copy of its source's entry names a subvolume of another parent.
            if (!hasForward.Contains((tree, e.Child)) && backParents[e.Child].Any() && !backParents[e.Child].Contains(tree)) continue;
            var rec = Get(e.Child);
            var b = Find(rec, tree, e.Parent, e.Crc, e.Hash2, e.NameLen, e.Leaf);
            if (e.Kind == NameKind.SubvolItem)
            {
                if (b.Forward && !b.DirItem) rec.FoundRef++;
                b.DirItem = true;
            }
            else
            {
                if ((b.DirIndex || b.Forward || b.Back) && b.Index != e.Index) b.IndexMismatch = true;
                b.Index = e.Index;
                b.DirIndex = true;
            }
            if (b.Forward && b.DirItem) b.Reachable = true;
        }
        foreach (var r in facts.Refs)
        {
            var rec = Get(r.Child);
            var b = Find(rec, r.Parent, r.Dir, r.Crc, r.Hash2, r.NameLen, r.Leaf);
            if ((b.DirIndex || b.Forward || b.Back) && b.Index != r.Index) b.IndexMismatch = true;
            else b.Index = r.Index;
            if (r.Forward)
            {
                if (b.Forward) b.Dup = true;
                else if (b.DirItem) rec.FoundRef++;
                b.Forward = true;
            }
            else
            {
                if (b.Back) b.Dup = true;
                b.Back = true;
            }
            b.Leaf = r.Leaf;
            if (b.Forward && b.DirItem) b.Reachable = true;
        }
        Get(ObjectIds.FsTree).FoundRef = 1;
        // references from subvolumes that are themselves unreachable do not count (btrfs check: "fixme: circular")
        for (bool again = true; again;)
        {
            again = false;
            foreach (var rec in recs.Values)
            {
                if (rec.FoundRef == 0) continue;
                foreach (var b in rec.Backrefs)
                {
                    if (!b.Reachable || Get(b.Parent).FoundRef > 0) continue;
                    b.Reachable = false;
                    if (--rec.FoundRef == 0) again = true;
                }
            }
        }
        foreach (var (id, rec) in recs)
        {
            bool hasItem = facts.RootItems.TryGetValue(id, out var item);
            if (id >= ObjectIds.FirstFree && id <= ObjectIds.LastFree)
            {
                uint expected = hasItem ? item.Refs : 0;
                if (rec.FoundRef != expected)
                {
                    findings.Add(new Finding(FindingCode.SubvolumeRefMismatch, Severity.Error,
                        $"subvolume {id}: ROOT_ITEM refs {expected}, {rec.FoundRef} reference(s) found (ROOT_REF with its DIR_ITEM, reachable from the fs tree)",
                        Bytenr: hasItem ? item.Leaf : rootTreeBytenr, Tree: ObjectIds.RootTree, Key: new BtrfsKey(id, (byte)ItemType.RootItem, 0),
                        Expected: expected.ToString(), Found: rec.FoundRef.ToString()));
                    continue;
                }
                if (expected == 0 && hasItem && !facts.Orphans.Contains(id))
                {
                    findings.Add(new Finding(FindingCode.SubvolumeOrphanMissing, Severity.Error,
                        $"subvolume {id}: no reference (ROOT_ITEM refs 0) and no ORPHAN_ITEM in the root tree to have it dropped",
                        Bytenr: item.Leaf, Tree: ObjectIds.RootTree, Key: new BtrfsKey(id, (byte)ItemType.RootItem, 0),
                        Expected: $"ORPHAN_ITEM (ORPHAN ORPHAN_ITEM {id})", Found: "none"));
                    continue;
                }
            }
            bool reported = false;
            if (rec.FoundRef > 0 && !hasItem)
            {
                findings.Add(new Finding(FindingCode.SubvolumeRefMismatch, Severity.Error, $"subvolume {id} is referenced but has no ROOT_ITEM",
                    Bytenr: rec.Backrefs.FirstOrDefault()?.Leaf ?? rootTreeBytenr, Tree: ObjectIds.RootTree, Key: new BtrfsKey(id, (byte)ItemType.RootItem, 0),
                    Expected: "a ROOT_ITEM", Found: "none"));
                reported = true;
            }
            foreach (var b in rec.Backrefs)
            {
                if (!b.Reachable || reported) continue;
                var missing = new List<string>();
                if (!b.DirItem) missing.Add("DIR_ITEM");
                if (!b.DirIndex) missing.Add("DIR_INDEX");
                if (!b.Back) missing.Add("ROOT_BACKREF");
                if (!b.Forward) missing.Add("ROOT_REF");
                string problem = missing.Count > 0 ? "no " + string.Join(", no ", missing) : b.IndexMismatch ? "index mismatch" : b.Dup ? "a duplicate ROOT_REF or ROOT_BACKREF" : "";
                if (problem.Length == 0) continue;
                findings.Add(new Finding(FindingCode.SubvolumeRefMismatch, Severity.Error,
                    $"subvolume {id}: its reference from subvolume {b.Parent} directory {b.Dir} index {b.Index}: {problem}",
                    Bytenr: b.Leaf, Tree: ObjectIds.RootTree, Key: new BtrfsKey(b.Parent, (byte)ItemType.RootRef, id),
                    Expected: "ROOT_REF, ROOT_BACKREF, DIR_ITEM and DIR_INDEX agreeing", Found: problem));
            }
        }
    }
}
