using System.Buffers.Binary;
using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Format.Items;
using BtrfsRefcheck.Volume;

namespace BtrfsRefcheck.Forge;

/// <summary>A writable copy of a fixture image and one method per defect. Each method locates its target with the
/// library (read-only <see cref="BtrfsVolume"/> plus a walk of every tree), changes exactly one thing at the
/// on-disk level, fixes up everything else (item offsets, block group used, superblock bytes_used, checksums of
/// every copy) so that only that defect remains, and returns what the checker must report.
/// Apply one defect per image.</summary>
public sealed class ForgedImage : IDisposable
{
    private const int RefsAt = 0;
    private const int GenerationAt = 8;
    private const int FlagsAt = 16;
    private const int TreeBlockRefSize = 1 + 8;
    private const int ExtentDataRefInlineSize = 1 + ExtentDataRefs.Size;
    private const int ExtentDataRefCountAt = 1 + 24; // within an inline EXTENT_DATA_REF
    /// <summary>Not an inline ref type the kernel knows (TREE_BLOCK_REF is 176, EXTENT_DATA_REF 178).</summary>
    public const byte UnknownRefType = 177;
    /// <summary>The root named by forged stale refs: the csum tree, which never references fs-tree blocks.</summary>
    public const ulong StaleRoot = ObjectIds.CsumTree;

    private readonly bool _delete;

    internal ForgedImage(IReadOnlyList<string> paths, bool deleteOnDispose)
    {
        Paths = paths;
        _delete = deleteOnDispose;
    }

    /// <summary>The (first) image file.</summary>
    public string Path => Paths[0];

    /// <summary>Every device image of the filesystem.</summary>
    public IReadOnlyList<string> Paths { get; }

    public void Dispose()
    {
        if (!_delete) return;
        foreach (var p in Paths)
            try { File.Delete(p); } catch (IOException) { }
    }

    // ------------------------------------------------------------------ 500-599: tree block back-refs

    /// <summary>500: a tree block's METADATA_ITEM (skinny) or EXTENT_ITEM + tree_block_info (non-skinny) lists its
    /// TREE_BLOCK_REF twice, refs 2 — what the delayed-ref merge regression wrote. The 9-byte copy of the ref is
    /// inserted right after the existing one. Refs 2 equals the sum of the refs found, so no 503.
    /// <paramref name="owner"/>: only a block owned by that tree (e.g. a read-only subvolume nothing writes to).</summary>
    public ForgedDefect DuplicateTreeBlockRef(ulong? owner = null) => Edit((ed, scan) =>
    {
        var e = PickTreeBlock(scan, x => SingleTreeBlockRef(x) && (owner == null || scan.Blocks[x.Bytenr].Owner == owner), growBy: TreeBlockRefSize);
        var r = e.InlineRefs[0];
        var (leaf, slot) = Locate(ed, e);
        leaf.InsertBytes(slot, r.ItemOffset + TreeBlockRefSize, TreeBlockRef(r.Root));
        SetRefs(leaf.Data(slot), 2);
        return new ForgedDefect(FindingCode.DuplicateTreeBlockRef, e.Bytenr,
            $"{Describe(e, scan)}: TREE_BLOCK_REF root={r.Root} listed twice, refs 1 -> 2");
    });

    /// <summary>500, the other form the regression left: the inline TREE_BLOCK_REF plus a keyed TREE_BLOCK_REF item
    /// (bytenr, TREE_BLOCK_REF, root) with empty data for the same root, inserted right after the extent item; refs
    /// 1 -> 2. Needs the key to land in the extent item's leaf (it sorts right after it) with 25 bytes free.</summary>
    public ForgedDefect DuplicateTreeBlockRefKeyed() => Edit((ed, scan) =>
    {
        foreach (var e in TreeBlockCandidates(scan).Where(SingleTreeBlockRef))
        {
            var r = e.InlineRefs[0];
            var key = new BtrfsKey(e.Bytenr, (byte)ItemType.TreeBlockRef, r.Root);
            if (scan.LeafFor(key)?.Bytenr != e.Leaf || LeafFree(scan, e.Leaf) < ItemHeader.Size) continue;
            var (leaf, slot) = Locate(ed, e);
            int at = leaf.InsertSorted(key, []);
            SetRefs(leaf.Data(slot), 2);
            return new ForgedDefect(FindingCode.DuplicateTreeBlockRef, e.Bytenr,
                $"{Describe(e, scan)}: keyed TREE_BLOCK_REF {key} added in slot {at} beside the inline one, refs 1 -> 2");
        }
        throw new ForgeNotApplicableException("no tree block extent item whose leaf has room for a keyed ref right after it");
    });

    /// <summary>501: a tree block whose only ref is TREE_BLOCK_REF of its tree gets a second TREE_BLOCK_REF naming the
    /// csum tree (root 7), inserted in the kernel's order (same type: roots descending, so 7 goes before 5); refs+1.</summary>
    public ForgedDefect StaleTreeBlockRef() => Edit((ed, scan) =>
    {
        var e = PickTreeBlock(scan, x => SingleTreeBlockRef(x) && x.InlineRefs[0].Root != StaleRoot, growBy: TreeBlockRefSize);
        var r = e.InlineRefs[0];
        var (leaf, slot) = Locate(ed, e);
        int at = StaleRoot > r.Root ? r.ItemOffset : r.ItemOffset + TreeBlockRefSize;
        leaf.InsertBytes(slot, at, TreeBlockRef(StaleRoot));
        SetRefs(leaf.Data(slot), e.Refs + 1);
        return new ForgedDefect(FindingCode.StaleTreeBlockRef, e.Bytenr,
            $"{Describe(e, scan)}: added TREE_BLOCK_REF root={StaleRoot} {(at == r.ItemOffset ? "before" : "after")} root={r.Root}, refs {e.Refs} -> {e.Refs + 1}");
    });

    /// <summary>502 and 501: the only TREE_BLOCK_REF's root is rewritten in place (5 -> 7). The ref the tree implies
    /// is missing (502) and the one recorded names a root that does not use the block (501): one changed field,
    /// two findings by nature, both at the block's bytenr. Refs stays 1 and matches.</summary>
    public ForgedDefect ReplaceTreeBlockRefRoot() => Edit((ed, scan) =>
    {
        var e = PickTreeBlock(scan, x => SingleTreeBlockRef(x) && x.InlineRefs[0].Root != StaleRoot);
        var r = e.InlineRefs[0];
        var (leaf, slot) = Locate(ed, e);
        BinaryPrimitives.WriteUInt64LittleEndian(leaf.Data(slot)[(r.ItemOffset + 1)..], StaleRoot);
        return new ForgedDefect(FindingCode.MissingTreeBlockRef, e.Bytenr,
            $"{Describe(e, scan)}: TREE_BLOCK_REF root={r.Root} rewritten as root={StaleRoot}")
        {
            // the owner (root 5) no longer has its TREE_BLOCK_REF, but its tree still holds the block, so btrfs check's
            // check_owner_ref passes and so does ours (no 308): the missing and the stale ref say it all
            AlsoExpected = [new ExpectedFinding(FindingCode.StaleTreeBlockRef, e.Bytenr)],
        };
    });

    /// <summary>502 alone: a tree block with two or more inline tree refs (a block shared with a snapshot, in
    /// kernel-made images) loses its last one, and refs drops by one so the sum still matches; only the ref the
    /// tree implies is missing. mkfs images have no such block (every block has one ref, and removing it would leave
    /// refs 0, itself malformed): use <see cref="ReplaceTreeBlockRefRoot"/> there (502 with 501).</summary>
    public ForgedDefect MissingTreeBlockRef() => Edit((ed, scan) =>
    {
        var e = TreeBlockCandidates(scan).FirstOrDefault(x =>
                    x.InlineRefs.Count >= 2 && x.InlineRefs.All(r => r.Type is ItemType.TreeBlockRef or ItemType.SharedBlockRef) && x.Refs == (ulong)x.InlineRefs.Count)
                ?? throw new ForgeNotApplicableException("no tree block has two inline tree refs (mkfs images never do; use a kernel-made image with snapshots, or replace-tree-block-ref-root)");
        var r = e.InlineRefs[^1];
        var (leaf, slot) = Locate(ed, e);
        leaf.RemoveBytes(slot, r.ItemOffset, TreeBlockRefSize);
        SetRefs(leaf.Data(slot), e.Refs - 1);
        string what = r.Type == ItemType.TreeBlockRef ? $"TREE_BLOCK_REF root={r.Root}" : $"SHARED_BLOCK_REF parent={r.Parent}";
        return new ForgedDefect(FindingCode.MissingTreeBlockRef, e.Bytenr, $"{Describe(e, scan)}: removed {what}, refs {e.Refs} -> {e.Refs - 1}");
    });

    /// <summary>503 on a tree block: its METADATA_ITEM (or EXTENT_ITEM) refs 1 -> 2 in place.</summary>
    public ForgedDefect MetadataRefsMismatch() => Edit((ed, scan) =>
    {
        var e = PickTreeBlock(scan, SingleTreeBlockRef);
        var (leaf, slot) = Locate(ed, e);
        SetRefs(leaf.Data(slot), 2);
        return new ForgedDefect(FindingCode.ExtentRefsMismatch, e.Bytenr, $"{Describe(e, scan)}: refs 1 -> 2");
    });

    /// <summary>503 on a data extent: a data EXTENT_ITEM with one EXTENT_DATA_REF of count 1 gets refs 1 -> 2 in place.</summary>
    public ForgedDefect DataRefsMismatch() => Edit((ed, scan) =>
    {
        var e = PickData(scan, SingleDataRef(scan));
        var (leaf, slot) = Locate(ed, e);
        SetRefs(leaf.Data(slot), 2);
        return new ForgedDefect(FindingCode.ExtentRefsMismatch, e.Bytenr, $"{Describe(e, scan)}: refs 1 -> 2");
    });

    /// <summary>504: a tree block's extent item is deleted from its leaf (never the leaf's first item, so the parent
    /// key stays right); its block group's used and the superblock's bytes_used drop by nodesize, so neither 702
    /// nor 703 fires. The back-ref the tree implies has nowhere to go, which the checker folds into 504.</summary>
    public ForgedDefect TreeBlockNoExtentItem() => Edit((ed, scan) =>
    {
        uint ns = ed.Volume.NodeSize;
        var e = PickTreeBlock(scan, x => SingleTreeBlockRef(x) && x.Slot > 0);
        var (leaf, slot) = Locate(ed, e);
        leaf.DeleteItem(slot);
        ed.AddBlockGroupUsed(scan.BlockGroupOf(e.Bytenr, ns), -ns);
        ed.AddSuperBytesUsed(-ns);
        return new ForgedDefect(FindingCode.TreeBlockNoExtentItem, e.Bytenr,
            $"{Describe(e, scan)}: extent item deleted; block group used and bytes_used -{ns}")
        {
            // the free-space tree still has the block allocated
            AlsoExpected = [new ExpectedFinding(FindingCode.FreeSpaceMismatch, scan.BlockGroupOf(e.Bytenr, ns).Start)],
        };
    });

    /// <summary>505 and 501: a METADATA_ITEM (non-skinny: EXTENT_ITEM + tree_block_info) for a free, nodesize-aligned
    /// address of a metadata block group, refs 1 with TREE_BLOCK_REF root 5, as a leaked block looks; block group
    /// used and bytes_used +nodesize. No tree points at it, so it is leaked (505) — and its one back-ref names a root
    /// that does not reference it, which the checker reports as stale (501) as well. Both at the new address.</summary>
    public ForgedDefect MetadataExtentLeaked() => Edit((ed, scan) =>
    {
        var vol = ed.Volume;
        uint ns = vol.NodeSize;
        bool skinny = vol.Super.IsSkinnyMetadata;
        var body = new byte[ExtentItem.FixedSize + (skinny ? 0 : ExtentItem.TreeBlockInfoSize) + TreeBlockRefSize];
        WriteExtentHeader(body, 1, vol.Super.Generation, ExtentFlags.TreeBlock);
        TreeBlockRef(ObjectIds.FsTree).CopyTo(body.AsSpan(body.Length - TreeBlockRefSize));
        var (bg, addr, leafBytenr) = FindFreeSlot(vol, scan, ns, ns, BlockGroupFlags.Metadata,
            a => skinny ? new BtrfsKey(a, (byte)ItemType.MetadataItem, 0) : new BtrfsKey(a, (byte)ItemType.ExtentItem, ns), body.Length);
        var key = skinny ? new BtrfsKey(addr, (byte)ItemType.MetadataItem, 0) : new BtrfsKey(addr, (byte)ItemType.ExtentItem, ns);
        ed.Leaf(leafBytenr).InsertSorted(key, body);
        ed.AddBlockGroupUsed(bg, ns);
        ed.AddSuperBytesUsed(ns);
        return new ForgedDefect(FindingCode.MetadataExtentLeaked, addr,
            $"inserted {key} (refs 1, TREE_BLOCK_REF root=FS_TREE) into extent leaf {leafBytenr}; block group {bg.Start} used and bytes_used +{ns}")
        {
            // the free-space tree still calls the address free
            AlsoExpected = [new ExpectedFinding(FindingCode.FreeSpaceMismatch, bg.Start)],
        };
    });

    /// <summary>506: the level the extent tree records differs from the block's. Skinny: the METADATA_ITEM key offset
    /// (the level) +1 — the key changes but stays between its neighbours (the next key has a larger objectid or a
    /// larger type), and the item is never its leaf's first (the parent key stays right). Non-skinny: the
    /// tree_block_info level byte +1 in place.</summary>
    public ForgedDefect MetadataLevelMismatch() => Edit((ed, scan) =>
    {
        var e = PickTreeBlock(scan, x => !x.IsMetadataItem || x.Slot > 0);
        var (leaf, slot) = Locate(ed, e);
        int level = scan.Blocks[e.Bytenr].Level;
        if (e.IsMetadataItem)
        {
            var key = e.Key with { Offset = (ulong)level + 1 };
            if (leaf.Key(slot - 1) >= key || (slot + 1 < leaf.NrItems && leaf.Key(slot + 1) <= key))
                throw new ForgeException($"{key} would break the key order of leaf {e.Leaf}");
            leaf.SetKey(slot, key);
        }
        else
        {
            leaf.Data(slot)[ExtentItem.FixedSize + BtrfsKey.Size] = (byte)(level + 1);
        }
        return new ForgedDefect(FindingCode.MetadataLevelMismatch, e.Bytenr,
            $"{Describe(e, scan)}: {(e.IsMetadataItem ? "key offset" : "tree_block_info level")} {level} -> {level + 1}");
    });

    /// <summary>507: two adjacent inline refs of the same type swapped (same type, same size). Needs an extent with two
    /// refs of one type: kernel-made images have them (blocks shared with a snapshot, reflinked data); mkfs images
    /// do not (throws <see cref="ForgeNotApplicableException"/>).</summary>
    public ForgedDefect InlineRefsOutOfOrder() => Edit((ed, scan) =>
    {
        foreach (var e in scan.Extents)
        {
            if (!e.RefsComplete || scan.KeyedRefTargets.Contains(e.Bytenr)) continue;
            for (int i = 1; i < e.InlineRefs.Count; i++)
            {
                var a = e.InlineRefs[i - 1];
                var b = e.InlineRefs[i];
                if (a.Type != b.Type || a.SortKey == b.SortKey) continue;
                var (leaf, slot) = Locate(ed, e);
                var d = leaf.Data(slot);
                int size = b.ItemOffset - a.ItemOffset;
                var first = d.Slice(a.ItemOffset, size).ToArray();
                d.Slice(b.ItemOffset, size).CopyTo(d.Slice(a.ItemOffset, size));
                first.CopyTo(d.Slice(b.ItemOffset, size));
                return new ForgedDefect(FindingCode.InlineRefsOutOfOrder, e.Bytenr,
                    $"{Describe(e, scan)}: inline {ItemTypes.Name((byte)a.Type)} refs at item offsets {a.ItemOffset} and {b.ItemOffset} swapped");
            }
        }
        throw new ForgeNotApplicableException("no extent item has two inline refs of the same type (mkfs images never do; use a kernel-made image such as kernel-snapshots)");
    });

    /// <summary>508 alone: an inline ref of unknown type 177 (9 bytes, the size of a TREE_BLOCK_REF) appended after a
    /// tree block's valid ref. Every valid ref is still counted, so refs and back-refs match; only the unknown type
    /// is reported.</summary>
    public ForgedDefect UnknownInlineRefType() => Edit((ed, scan) =>
    {
        var e = PickTreeBlock(scan, SingleTreeBlockRef, growBy: TreeBlockRefSize);
        var (leaf, slot) = Locate(ed, e);
        var r = TreeBlockRef(e.InlineRefs[0].Root);
        r[0] = UnknownRefType;
        leaf.InsertBytes(slot, e.Data.Length, r);
        return new ForgedDefect(FindingCode.UnknownInlineRefType, e.Bytenr,
            $"{Describe(e, scan)}: appended an inline ref of unknown type {UnknownRefType}");
    });

    /// <summary>508 with 502 and 503: the type byte of a tree block's only TREE_BLOCK_REF changed 176 -> 177 in place.
    /// The enumerator stops at the unknown type (508), so the ref behind it is never seen: the ref the tree implies
    /// is missing (502) and refs 1 differs from the 0 back-refs counted (503). All three at the block's bytenr.</summary>
    public ForgedDefect UnknownInlineRefTypeInPlace() => Edit((ed, scan) =>
    {
        var e = PickTreeBlock(scan, SingleTreeBlockRef);
        var (leaf, slot) = Locate(ed, e);
        leaf.Data(slot)[e.InlineRefs[0].ItemOffset] = UnknownRefType;
        return new ForgedDefect(FindingCode.UnknownInlineRefType, e.Bytenr,
            $"{Describe(e, scan)}: TREE_BLOCK_REF type byte {(byte)ItemType.TreeBlockRef} -> {UnknownRefType}")
        {
            AlsoExpected = [new ExpectedFinding(FindingCode.MissingTreeBlockRef, e.Bytenr), new ExpectedFinding(FindingCode.ExtentRefsMismatch, e.Bytenr)],
        };
    });

    // ------------------------------------------------------------------ 600-699: data back-refs

    /// <summary>600: a data extent used by exactly one file extent, with one inline EXTENT_DATA_REF of count 1: count
    /// 1 -> 2 and refs 1 -> 2, so the refs sum still matches and only the count is wrong.</summary>
    public ForgedDefect DataRefCountMismatch() => Edit((ed, scan) =>
    {
        var e = PickData(scan, SingleDataRef(scan));
        var (leaf, slot) = Locate(ed, e);
        var d = leaf.Data(slot);
        BinaryPrimitives.WriteUInt32LittleEndian(d[(e.InlineRefs[0].ItemOffset + ExtentDataRefCountAt)..], 2);
        SetRefs(d, 2);
        return new ForgedDefect(FindingCode.DataRefCountMismatch, e.Bytenr, $"{Describe(e, scan)}: EXTENT_DATA_REF count 1 -> 2, refs 1 -> 2");
    });

    /// <summary>603: a data EXTENT_ITEM (inline refs only, not its leaf's first item) deleted; block group used and
    /// bytes_used drop by its length. The file extents that use it remain.</summary>
    public ForgedDefect DataExtentNoExtentItem() => Edit((ed, scan) =>
    {
        var e = PickData(scan, x => SingleDataRef(scan)(x) && x.Slot > 0);
        var (leaf, slot) = Locate(ed, e);
        ulong len = e.Key.Offset;
        leaf.DeleteItem(slot);
        ed.AddBlockGroupUsed(scan.BlockGroupOf(e.Bytenr, len), -(long)len);
        ed.AddSuperBytesUsed(-(long)len);
        return new ForgedDefect(FindingCode.DataExtentNoExtentItem, e.Bytenr,
            $"{Describe(e, scan)}: extent item deleted; block group used and bytes_used -{len}")
        {
            // its checksums now lie in no extent, and the free-space tree still has it allocated
            AlsoExpected = [new ExpectedFinding(FindingCode.CsumWithoutDataExtent, e.Bytenr), new ExpectedFinding(FindingCode.FreeSpaceMismatch, scan.BlockGroupOf(e.Bytenr, len).Start)],
        };
    });

    /// <summary>604 and 602: a data EXTENT_ITEM of one sector at a free address of a data block group, refs 1 with an
    /// EXTENT_DATA_REF (root 5, inode 256, offset 0, count 1), as a leaked extent looks; block group used and
    /// bytes_used +sectorsize. No file extent uses it (604), and its back-ref is therefore stale (602).</summary>
    public ForgedDefect OrphanDataExtentItem() => Edit((ed, scan) =>
    {
        var vol = ed.Volume;
        uint ss = vol.SectorSize;
        var body = LeakedDataBody(vol);
        var (bg, addr, leafBytenr) = FindFreeSlot(vol, scan, ss, ss, BlockGroupFlags.Data, a => new BtrfsKey(a, (byte)ItemType.ExtentItem, ss), body.Length);
        var key = new BtrfsKey(addr, (byte)ItemType.ExtentItem, ss);
        ed.Leaf(leafBytenr).InsertSorted(key, body);
        ed.AddBlockGroupUsed(bg, ss);
        ed.AddSuperBytesUsed(ss);
        return new ForgedDefect(FindingCode.OrphanDataExtentItem, addr,
            $"inserted {key} (refs 1, EXTENT_DATA_REF root=FS_TREE inode 256 offset 0) into extent leaf {leafBytenr}; block group {bg.Start} used and bytes_used +{ss}")
        {
            // the free-space tree still calls the address free
            AlsoExpected = [new ExpectedFinding(FindingCode.FreeSpaceMismatch, bg.Start)],
        };
    });

    // ------------------------------------------------------------------ 700-799: layout and accounting

    /// <summary>700 with 604 and 602: a one-sector data EXTENT_ITEM inserted one sector into an existing data extent of
    /// at least three sectors (so it overlaps only that one), with the same leaked-extent body as
    /// <see cref="OrphanDataExtentItem"/>; block group used and bytes_used +sectorsize. A new extent item cannot be
    /// referenced without also changing a file extent (which would orphan the old extent), so it is also an orphan
    /// (604) whose back-ref is stale (602). All three at the inserted address.</summary>
    public ForgedDefect ExtentOverlap() => Edit((ed, scan) =>
    {
        var vol = ed.Volume;
        uint ss = vol.SectorSize;
        var body = LeakedDataBody(vol);
        foreach (var e in DataCandidates(scan))
        {
            if (e.Key.Offset < 3UL * ss) continue;
            var key = new BtrfsKey(e.Bytenr + ss, (byte)ItemType.ExtentItem, ss);
            var leafInfo = scan.LeafFor(key);
            if (leafInfo == null || leafInfo.FreeSpace < body.Length + ItemHeader.Size) continue;
            ed.Leaf(leafInfo.Bytenr).InsertSorted(key, body);
            var bg = scan.BlockGroupOf(e.Bytenr, e.Key.Offset);
            ed.AddBlockGroupUsed(bg, ss);
            ed.AddSuperBytesUsed(ss);
            return new ForgedDefect(FindingCode.ExtentOverlap, key.ObjectId,
                $"inserted {key} inside data extent [{e.Bytenr}, {e.Bytenr + e.Key.Offset}) into extent leaf {leafInfo.Bytenr}; block group used and bytes_used +{ss}")
            {
                AlsoExpected = [new ExpectedFinding(FindingCode.OrphanDataExtentItem, key.ObjectId)],
            };
        }
        throw new ForgeNotApplicableException("no data extent of three sectors or more in a leaf with room for one more item");
    });

    /// <summary>702: the used field of the first metadata block group +nodesize, and superblock bytes_used +nodesize so
    /// the superblock still equals the sum of the block groups (no 703).</summary>
    public ForgedDefect BlockGroupUsedMismatch() => Edit((ed, scan) =>
    {
        uint ns = ed.Volume.NodeSize;
        var bg = scan.BlockGroups.FirstOrDefault(g => (g.Flags & BlockGroupFlags.Metadata) != 0)
                 ?? throw new ForgeNotApplicableException("no metadata block group");
        ed.AddBlockGroupUsed(bg, ns);
        ed.AddSuperBytesUsed(ns);
        return new ForgedDefect(FindingCode.BlockGroupUsedMismatch, bg.Start,
            $"block group [{bg.Start}, {bg.End}) {bg.Flags.Describe()}: used {bg.Used} -> {bg.Used + ns}; bytes_used +{ns}");
    });

    /// <summary>703: superblock bytes_used +nodesize in every superblock copy (checksums recomputed). The finding's
    /// bytenr is the offset of the superblock copy in use (65536).</summary>
    public ForgedDefect SuperBytesUsedMismatch() => Edit((ed, scan) =>
    {
        uint ns = ed.Volume.NodeSize;
        ulong old = ed.Volume.Super.BytesUsed;
        ed.AddSuperBytesUsed(ns);
        return new ForgedDefect(FindingCode.SuperBytesUsedMismatch, (ulong)ed.Volume.ChosenCopy.Offset,
            $"superblock bytes_used {old} -> {old + ns} in every copy");
    });

    // ------------------------------------------------------------------ 300-399: checksums

    /// <summary>314: one byte of copy <paramref name="copy"/> of an fs-tree leaf flipped, checksum not fixed. The other
    /// copy is good, so the checker reports the bad copy (mirror <paramref name="copy"/>) and still checks the block.
    /// Needs metadata with two or more copies (DUP, RAID1).</summary>
    public ForgedDefect TreeBlockBadCopy(int copy = 0)
    {
        using var vol = OpenVolume();
        var scan = ImageScan.Run(vol);
        var leaf = FsTreeLeaves(scan).First();
        var chunk = vol.Chunks.Find(leaf.Bytenr)!;
        if (chunk.Copies < 2)
            throw new ForgeNotApplicableException($"block {leaf.Bytenr} has {chunk.Copies} copy ({chunk.Type.Describe()}): a bad copy needs DUP or RAID1 metadata");
        if ((uint)copy >= (uint)chunk.Copies) throw new ArgumentOutOfRangeException(nameof(copy), $"the chunk has {chunk.Copies} copies");
        int at = (int)vol.NodeSize - 1;
        CorruptBytes(vol, leaf.Bytenr, copy, at, 1, fixChecksum: false);
        return new ForgedDefect(FindingCode.TreeBlockBadCopy, leaf.Bytenr,
            $"fs tree leaf {leaf.Bytenr}: byte {at} of copy {copy} flipped, checksum not fixed") { Mirror = copy };
    }

    /// <summary>300: one byte flipped in every copy of an fs-tree leaf, checksum not fixed. The leaf cannot be read,
    /// so what it references cannot be checked: the checker says so for the leaf (900, a warning), and each data
    /// extent used only by its file extents looks unreferenced (604) with a stale back-ref (602), both warnings
    /// since the checker knows its view is incomplete. The leaf chosen is the one with the fewest such data extents
    /// (at least one when any leaf has one) whose extents are used from no other leaf, so the expected set is exact.</summary>
    public ForgedDefect TreeBlockChecksumMismatch()
    {
        using var vol = OpenVolume();
        var scan = ImageScan.Run(vol);
        var users = scan.FileExtents.GroupBy(f => f.DiskBytenr).ToDictionary(g => g.Key, g => g.Select(f => f.Leaf).Distinct().Count());
        var candidates = FsTreeLeaves(scan)
            .Select(b => (Leaf: b, Disks: scan.FileExtents.Where(f => f.Leaf == b.Bytenr).Select(f => f.DiskBytenr).Distinct().ToList()))
            .Where(c => c.Disks.All(d => users[d] == 1 && scan.ExtentAt(d) is { } x && x.InlineRefs.Count == 1 && x.InlineRefs[0].Type == ItemType.ExtentDataRef))
            .OrderBy(c => c.Disks.Count == 0 ? int.MaxValue : c.Disks.Count).ThenBy(c => c.Leaf.Bytenr)
            .ToList();
        if (candidates.Count == 0) throw new ForgeNotApplicableException("no fs tree leaf whose data extents are used from it alone");
        var (leaf, disks) = candidates[0];
        var chunk = vol.Chunks.Find(leaf.Bytenr)!;
        int at = (int)vol.NodeSize - 1;
        for (int c = 0; c < chunk.Copies; c++) CorruptBytes(vol, leaf.Bytenr, c, at, 1, fixChecksum: false);
        var also = new List<ExpectedFinding> { new(FindingCode.SubtreeNotChecked, leaf.Bytenr, Severity.Warning) };
        also.AddRange(disks.Order().Select(d => new ExpectedFinding(FindingCode.OrphanDataExtentItem, d, Severity.Warning)));
        return new ForgedDefect(FindingCode.TreeBlockChecksumMismatch, leaf.Bytenr,
            $"fs tree leaf {leaf.Bytenr}: byte {at} flipped in all {chunk.Copies} copies; its {disks.Count} data extent(s) cannot be checked")
        { AlsoExpected = also };
    }

    // ------------------------------------------------------------------ primitives

    /// <summary>Flips (xor 0xff) <paramref name="count"/> bytes at <paramref name="offset"/> of copy <paramref name="copy"/>
    /// of the range at <paramref name="logical"/>, in that copy only. With <paramref name="fixChecksum"/>, the tree block
    /// at <paramref name="logical"/> then gets a recomputed checksum in that copy (so it reads as valid but different).</summary>
    public void CorruptBytes(ulong logical, int copy, int offset, int count = 1, bool fixChecksum = false)
    {
        using var vol = OpenVolume();
        CorruptBytes(vol, logical, copy, offset, count, fixChecksum);
    }

    /// <summary>Applies <paramref name="patch"/> to the raw 4096 bytes of every superblock copy that exists, then
    /// recomputes each copy's checksum.</summary>
    public void PatchSuperblock(Action<Span<byte>> patch)
    {
        using var vol = OpenVolume();
        BlockEdits.WriteSuperblocks(vol, [patch]);
    }

    /// <summary>Sets the little-endian u64 at <paramref name="fieldOffset"/> (e.g. <see cref="Superblock.BytesUsedAt"/>)
    /// in every superblock copy.</summary>
    public void PatchSuperblockU64(int fieldOffset, ulong value) =>
        PatchSuperblock(s => BinaryPrimitives.WriteUInt64LittleEndian(s[fieldOffset..], value));

    private static void CorruptBytes(BtrfsVolume vol, ulong logical, int copy, int offset, int count, bool fixChecksum)
    {
        int size = fixChecksum ? (int)vol.NodeSize : offset + count;
        if (offset < 0 || count <= 0 || offset + count > size) throw new ArgumentOutOfRangeException(nameof(offset));
        var buf = new byte[size];
        BlockEdits.ReadCopy(vol, logical, copy, buf);
        for (int i = offset; i < offset + count; i++) buf[i] ^= 0xff;
        if (fixChecksum) Checksum.Compute(vol.CsumType, buf.AsSpan(Checksum.FieldSize), buf.AsSpan(0, Checksum.FieldSize));
        BlockEdits.WriteCopy(vol, logical, copy, buf);
    }

    // ------------------------------------------------------------------ selection helpers

    private BtrfsVolume OpenVolume() => BtrfsVolume.Open(Paths, null, new FindingBag());

    private ForgedDefect Edit(Func<BlockEdits, ImageScan, ForgedDefect> body)
    {
        using var vol = OpenVolume();
        var scan = ImageScan.Run(vol);
        var edits = new BlockEdits(vol);
        var defect = body(edits, scan);
        edits.Commit();
        return defect;
    }

    private static bool SingleTreeBlockRef(ScannedExtent e) =>
        e.Refs == 1 && e.InlineRefs.Count == 1 && e.InlineRefs[0].Type == ItemType.TreeBlockRef;

    private static Func<ScannedExtent, bool> SingleDataRef(ImageScan scan) => e =>
        e.Refs == 1 && e.InlineRefs.Count == 1 && e.InlineRefs[0].Type == ItemType.ExtentDataRef && e.InlineRefs[0].Count == 1
        && scan.FileExtents.Count(f => f.DiskBytenr == e.Bytenr) == 1;

    /// <summary>Tree block extent items the forge may edit: the walk reached the block, every inline ref decoded, no
    /// keyed refs. Leaves of the fs tree first (their only ref is TREE_BLOCK_REF root 5), then the rest, by bytenr.</summary>
    private static IEnumerable<ScannedExtent> TreeBlockCandidates(ImageScan scan) =>
        scan.Extents
            .Where(e => e.IsTreeBlock && e.RefsComplete && scan.Blocks.ContainsKey(e.Bytenr) && !scan.KeyedRefTargets.Contains(e.Bytenr))
            .OrderBy(e => scan.Blocks[e.Bytenr] is { Tree: ObjectIds.FsTree, Level: 0 } ? 0 : 1)
            .ThenBy(e => e.Bytenr);

    private static ScannedExtent PickTreeBlock(ImageScan scan, Func<ScannedExtent, bool> ok, int growBy = 0) =>
        TreeBlockCandidates(scan).FirstOrDefault(e => ok(e) && LeafFree(scan, e.Leaf) >= growBy)
        ?? throw new ForgeNotApplicableException($"no tree block extent item fits (needs {growBy} free bytes in its leaf)");

    private static IEnumerable<ScannedExtent> DataCandidates(ImageScan scan) =>
        scan.Extents.Where(e => e.IsData && !e.IsTreeBlock && e.RefsComplete && !scan.KeyedRefTargets.Contains(e.Bytenr));

    private static ScannedExtent PickData(ImageScan scan, Func<ScannedExtent, bool> ok) =>
        DataCandidates(scan).FirstOrDefault(ok) ?? throw new ForgeNotApplicableException("no data extent item fits");

    private static IEnumerable<ScannedBlock> FsTreeLeaves(ImageScan scan) =>
        scan.Blocks.Values.Where(b => b is { Tree: ObjectIds.FsTree, Level: 0, Owner: ObjectIds.FsTree }).OrderBy(b => b.Bytenr);

    private static int LeafFree(ImageScan scan, ulong leaf) => scan.ExtentLeaves.First(l => l.Bytenr == leaf).FreeSpace;

    /// <summary>The extent item's leaf (read into the edit session) and its current slot.</summary>
    private static (LeafEditor Leaf, int Slot) Locate(BlockEdits ed, ScannedExtent e)
    {
        var leaf = ed.Leaf(e.Leaf);
        int slot = leaf.Find(e.Key);
        if (slot < 0) throw new ForgeException($"{e.Key} not found in leaf {e.Leaf}");
        return (leaf, slot);
    }

    /// <summary>The first <paramref name="align"/>-aligned range of <paramref name="length"/> bytes in a block group of
    /// <paramref name="type"/> that no extent item covers and whose key lands (not first) in an extent leaf with room
    /// for an item of <paramref name="itemSize"/> bytes.</summary>
    private static (ScannedBlockGroup Bg, ulong Addr, ulong Leaf) FindFreeSlot(BtrfsVolume vol, ImageScan scan, ulong length, ulong align,
        BlockGroupFlags type, Func<ulong, BtrfsKey> keyOf, int itemSize)
    {
        var covered = scan.Extents.Select(e => (Start: e.Bytenr, End: e.Bytenr + e.Length(vol.NodeSize))).ToList();
        foreach (var bg in scan.BlockGroups.Where(g => (g.Flags & BlockGroupFlags.TypeMask) == type))
        {
            var inBg = covered.Where(c => c.End > bg.Start && c.Start < bg.End).OrderBy(c => c.Start).ToList();
            ulong a = bg.Start + (align - bg.Start % align) % align;
            int i = 0;
            while (a + length <= bg.End)
            {
                while (i < inBg.Count && inBg[i].End <= a) i++;
                if (i < inBg.Count && inBg[i].Start < a + length)
                {
                    a = inBg[i].End + (align - inBg[i].End % align) % align;
                    continue;
                }
                var key = keyOf(a);
                var leaf = scan.LeafFor(key);
                if (leaf != null && leaf.FreeSpace >= itemSize + ItemHeader.Size) return (bg, a, leaf.Bytenr);
                a += align;
            }
        }
        throw new ForgeNotApplicableException($"no free {length}-byte range in a {type} block group whose extent leaf has room for {itemSize + ItemHeader.Size} bytes");
    }

    private static string Describe(ScannedExtent e, ImageScan scan)
    {
        string what = scan.Blocks.TryGetValue(e.Bytenr, out var b)
            ? $"tree block {e.Bytenr} ({ObjectIds.TreeName(b.Tree)} level {b.Level})"
            : $"data extent {e.Bytenr}";
        return $"{what}, item {e.Key} in extent leaf {e.Leaf} slot {e.Slot}";
    }

    private static byte[] TreeBlockRef(ulong root)
    {
        var r = new byte[TreeBlockRefSize];
        r[0] = (byte)ItemType.TreeBlockRef;
        BinaryPrimitives.WriteUInt64LittleEndian(r.AsSpan(1), root);
        return r;
    }

    private static byte[] LeakedDataBody(BtrfsVolume vol)
    {
        var body = new byte[ExtentItem.FixedSize + ExtentDataRefInlineSize];
        WriteExtentHeader(body, 1, vol.Super.Generation, ExtentFlags.Data);
        var r = body.AsSpan(ExtentItem.FixedSize);
        r[0] = (byte)ItemType.ExtentDataRef;
        BinaryPrimitives.WriteUInt64LittleEndian(r[1..], ObjectIds.FsTree);
        BinaryPrimitives.WriteUInt64LittleEndian(r[9..], ObjectIds.FirstFree);
        BinaryPrimitives.WriteUInt64LittleEndian(r[17..], 0);
        BinaryPrimitives.WriteUInt32LittleEndian(r[ExtentDataRefCountAt..], 1);
        return body;
    }

    private static void WriteExtentHeader(Span<byte> d, ulong refs, ulong generation, ExtentFlags flags)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(d[RefsAt..], refs);
        BinaryPrimitives.WriteUInt64LittleEndian(d[GenerationAt..], generation);
        BinaryPrimitives.WriteUInt64LittleEndian(d[FlagsAt..], (ulong)flags);
    }

    private static void SetRefs(Span<byte> extentItem, ulong refs) => BinaryPrimitives.WriteUInt64LittleEndian(extentItem[RefsAt..], refs);
}
