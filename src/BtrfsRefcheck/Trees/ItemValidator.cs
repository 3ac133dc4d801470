using System.Runtime.CompilerServices;
using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Trees.ItemValidation;
using BtrfsRefcheck.Volume;

namespace BtrfsRefcheck.Trees;

/// <summary>Per-item validation (the kernel's tree-checker check_leaf_item): one validator per item type,
/// dispatched from one switch on the key type. Runs on leaves that passed block validation, so every item header
/// and item data range is inside the block; the validators still check every size before they read a field and
/// never throw. Unlike the kernel, which rejects the leaf at the first problem, every item is checked and every
/// independent problem of an item is reported.</summary>
public static class ItemValidator
{
    public static void ValidateLeaf(in BlockContext ctx, TreeBlock block, BtrfsVolume volume, FindingBag findings)
    {
        var view = block.View;
        var super = volume.Super;
        var reporter = new ItemReporter(findings);
        int count = view.Count;
        int csumSize = Checksum.IsKnown(super.CsumTypeRaw) ? Checksum.Length(super.CsumType) : 0;
        // CHUNK_ITEMs of the chunk tree that the chunk map loader reported unusable are not reported again
        var unusableChunks = ctx.Tree.Id == ObjectIds.ChunkTree ? volume.UnusableChunkItems : null;
        // What every item of the leaf shares, built once; each slot sets its own slot, key and neighbours.
        var c = new ItemCheckContext(super.SectorSize, super.NodeSize, csumSize, super.Generation, super.IncompatFlags,
            ctx.Tree.Id, ctx.Tree.IsLog, view.Header.Owner, block.Logical, 0, default, SuperFlags: super.Flags,
            NrGlobalRoots: (super.IncompatFlags & Features.IncompatExtentTreeV2) != 0 ? super.NrGlobalRoots : 0);
        bool subvolume = !ctx.Tree.IsLog && IsSubvolumeTree(ctx.Tree.Id);
        BtrfsKey? prevKey = null, freeSpaceInfo = null;
        ReadOnlySpan<byte> prevData = default;
        for (int slot = 0; slot < count; slot++)
        {
            if (!view.TryGetItem(slot, out var key, out var data))
            {
                // The block validator rejects such leaves before this runs; stay safe if it ever does not.
                prevKey = null;
                prevData = default;
                continue;
            }
            c.Slot = slot;
            c.Key = key;
            c.PrevKey = prevKey;
            c.FreeSpaceInfo = freeSpaceInfo;
            c.ChunkDecodeReported = unusableChunks != null && key.ItemType == ItemType.ChunkItem && unusableChunks.Contains((block.Logical, slot));
            // subvolume trees first say which items they may hold (decided once per leaf, table look-up per item)
            if (!subvolume || SubvolumeItem(c, key, data.Length, reporter)) ValidateItemOfType(c, data, prevData, reporter);
            if (key.ItemType == ItemType.FreeSpaceInfo) freeSpaceInfo = key;
            prevKey = key;
            prevData = data;
        }
    }

    /// <summary>Validates one item. <paramref name="prevData"/> is the data of the item in slot - 1 of the same leaf
    /// (empty for slot 0); the overlap checks of file extents and csum items read it.</summary>
    public static void ValidateItem(in ItemCheckContext c, ReadOnlySpan<byte> data, ReadOnlySpan<byte> prevData, ItemReporter r)
    {
        if (!c.IsLog && IsSubvolumeTree(c.Tree) && !SubvolumeItem(c, c.Key, data.Length, r)) return;
        ValidateItemOfType(c, data, prevData, r);
    }

    /// <summary>In a subvolume tree: false (and 424 reported) for an item whose type belongs in no such tree; 425 for
    /// the old inode cache's inode. Kept out of the per-item dispatch: measured, the checks inside it cost 11% of a
    /// whole check's instructions; here they are one table look-up per item.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool SubvolumeItem(in ItemCheckContext c, BtrfsKey key, int size, ItemReporter r)
    {
        if (!SubvolumeTypes[key.Type] && key.ObjectId != ObjectIds.FreeSpace)
        {
            NotInSubvolume(c, size, r);
            return false;
        }
        if (key.ObjectId == ObjectIds.FreeIno && key.Type == (byte)ItemType.InodeItem) InodeCache(c, r);
        return true;
    }

    private static void ValidateItemOfType(in ItemCheckContext c, ReadOnlySpan<byte> data, ReadOnlySpan<byte> prevData, ItemReporter r)
    {
        switch (c.Key.ItemType)
        {
            case ItemType.InodeItem: InodeItemValidator.Validate(c, data, r); break;
            case ItemType.InodeRef: InodeRefValidator.Validate(c, data, r); break;
            case ItemType.InodeExtref: InodeExtrefValidator.Validate(c, data, r); break;
            case ItemType.DirItem or ItemType.DirIndex or ItemType.XattrItem: DirItemValidator.Validate(c, data, r); break;
            case ItemType.ExtentData: FileExtentValidator.Validate(c, data, prevData, r); break;
            case ItemType.ExtentCsum: CsumItemValidator.Validate(c, data, prevData, r); break;
            case ItemType.RootItem: RootItemValidator.Validate(c, data, r); break;
            case ItemType.RootRef or ItemType.RootBackref: RootRefValidator.Validate(c, data, r); break;
            case ItemType.ExtentItem or ItemType.MetadataItem: ExtentItemValidator.Validate(c, data, r); break;
            case ItemType.TreeBlockRef or ItemType.SharedBlockRef or ItemType.SharedDataRef or ItemType.ExtentDataRef:
                KeyedRefValidator.Validate(c, data, r); break;
            case ItemType.BlockGroupItem: BlockGroupItemValidator.Validate(c, data, r); break;
            case ItemType.FreeSpaceInfo or ItemType.FreeSpaceExtent or ItemType.FreeSpaceBitmap: FreeSpaceValidator.Validate(c, data, r); break;
            case ItemType.DevExtent: DevExtentValidator.Validate(c, data, r); break;
            case ItemType.DevItem: DevItemValidator.Validate(c, data, r); break;
            case ItemType.ChunkItem: ChunkItemValidator.Validate(c, data, r); break;
            case ItemType.RaidStripe: RaidStripeValidator.Validate(c, r); break;
            default:
                Unknown(c, data.Length, r);
                break;
        }
    }

    /// <summary>Shown raw by dump-tree; noted here. Type 0 under FREE_SPACE is the v1 free space cache header.
    /// (Out of line, so the dispatch above stays a bare switch.)</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Unknown(in ItemCheckContext c, int size, ItemReporter r)
    {
        if (!Enum.IsDefined(c.Key.ItemType) && !(c.Key.Type == 0 && c.Key.ObjectId == ObjectIds.FreeSpace))
            r.Add(c, FindingCode.ItemUnknownType, $"unknown item type {c.Key.Type} ({size} bytes); not checked",
                "a known item type", c.Key.Type.ToString(), Severity.Warning);
    }

    /// <summary>Subvolume-shaped trees: the fs tree, subvolumes and snapshots, the data reloc tree and relocation trees.</summary>
    private static bool IsSubvolumeTree(ulong tree) => ObjectIds.IsFsTree(tree) || tree == ObjectIds.TreeReloc;

    /// <summary>What btrfs check 6.19 accepts in a subvolume tree (check/main.c process_one_leaf): inodes, their names,
    /// file extents and xattrs, orphan items, anything under FREE_SPACE (the v1 cache of the old inode cache), and
    /// fs-verity's items (which 6.19 would call unknown; the kernel writes them for verity files).</summary>
    private static readonly bool[] SubvolumeTypes = MakeSubvolumeTypes();

    private static bool[] MakeSubvolumeTypes()
    {
        var t = new bool[256];
        foreach (var type in new[] { ItemType.InodeItem, ItemType.InodeRef, ItemType.InodeExtref, ItemType.DirItem, ItemType.DirIndex,
                     ItemType.XattrItem, ItemType.ExtentData, ItemType.OrphanItem, ItemType.VerityDescItem, ItemType.VerityMerkleItem })
            t[(byte)type] = true;
        return t;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void NotInSubvolume(in ItemCheckContext c, int size, ItemReporter r) =>
        r.Add(c, FindingCode.ItemNotInSubvolumeTree,
            $"{(Enum.IsDefined(c.Key.ItemType) ? ItemTypes.Name(c.Key.Type) : $"unknown item type {c.Key.Type}")} item ({size} bytes) in a subvolume tree, where no such key belongs (btrfs check: unknown key); not checked",
            "INODE_ITEM, INODE_REF, INODE_EXTREF, DIR_ITEM, DIR_INDEX, XATTR_ITEM, EXTENT_DATA, ORPHAN_ITEM, VERITY items", c.Key.Type.ToString());

    /// <summary>The free inode cache of the inode_cache mount option (removed in Linux 5.11): an inode FREE_INO whose
    /// file extents hold the cache. btrfs check 6.19 fails it ("deprecated free inode cache"); reported once per tree.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void InodeCache(in ItemCheckContext c, ItemReporter r) =>
        r.Add(c, FindingCode.DeprecatedInodeCache,
            $"{ObjectIds.TreeName(c.Tree)} holds the free inode cache of the inode_cache mount option (removed in Linux 5.11): inode FREE_INO and its file extents and data back-refs; harmless to current kernels, which ignore it, but btrfs check fails it as \"deprecated free inode cache\"; `btrfs rescue clear-ino-cache DEVICE` removes it",
            "no FREE_INO inode", "INODE_ITEM of FREE_INO");
}
