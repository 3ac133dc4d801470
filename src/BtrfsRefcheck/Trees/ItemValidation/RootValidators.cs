using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Format.Items;

namespace BtrfsRefcheck.Trees.ItemValidation;

/// <summary>ROOT_ITEM: the kernel's check_root_item (with check_root_key): relocation tree keys, size, generations,
/// bytenr alignment, levels and flags; plus the generation, transid and flags of the embedded inode. A root tree
/// item shorter than the legacy 239 bytes is reported by root enumeration (<see cref="TreeRoots"/>), not here.</summary>
internal static class RootItemValidator
{
    private const ulong ValidFlags = RootItem.FlagSubvolReadOnly | RootItem.FlagSubvolDead;

    /// <summary>Root enumeration (<see cref="TreeRoots"/>) asks this of every ROOT_ITEM of the root tree and the log root
    /// tree before it walks the tree the item names: false, and 402 at the leaf, when the item is shorter than the
    /// legacy 239 bytes (its tree is then not walked). <see cref="Validate"/> leaves those two trees' short items to it.</summary>
    public static bool Walkable(FindingBag findings, TreeRoot rootTree, ulong leaf, int slot, BtrfsKey key, int size)
    {
        if (size >= RootItem.LegacySize) return true;
        findings.Add(new Finding(FindingCode.RootItemInvalid, Severity.Error,
            $"{rootTree.Name}: ROOT_ITEM of {size} bytes, need at least {RootItem.LegacySize}; tree {ObjectIds.TreeName(key.ObjectId)} not walked",
            Bytenr: leaf, Tree: rootTree.Id, Slot: slot, Key: key));
        return false;
    }

    public static void Validate(in ItemCheckContext c, ReadOnlySpan<byte> data, ItemReporter r)
    {
        const FindingCode Code = FindingCode.RootItemInvalid;
        var key = c.Key;
        // Kernels before 5.8 (data reloc tree still SHAREABLE) also gave the data reloc tree a relocation tree; an
        // interrupted balance of such a kernel leaves one behind, and btrfs check accepts it.
        if (key.ObjectId == ObjectIds.TreeReloc && !ItemCheckContext.KernelIsFsTree(key.Offset) && key.Offset != ObjectIds.DataRelocTree)
            r.Add(c, Code, $"relocation tree for {ObjectIds.TreeName(key.Offset)}, which is neither a subvolume tree nor the data reloc tree", "a subvolume id (or the data reloc tree) in the key offset", key.Offset.ToString());
        if (key.ObjectId == 0)
            r.Add(c, Code, "root id 0", "a tree id", "0");
        if (data.Length < RootItem.LegacySize)
        {
            // Root enumeration (TreeRoots) reports a short ROOT_ITEM of the root tree and the log root tree: its tree is not walked.
            if (c.Tree is not (ObjectIds.RootTree or ObjectIds.TreeLog))
                r.Add(c, Code, $"invalid item size {data.Length}", $"{RootItem.FullSize} or {RootItem.LegacySize} (legacy)", data.Length.ToString());
            return;
        }
        if (data.Length != RootItem.FullSize && data.Length != RootItem.LegacySize)
            r.Add(c, Code, $"invalid item size {data.Length}", $"{RootItem.FullSize} or {RootItem.LegacySize} (legacy)", data.Length.ToString());
        var ri = new RootItem(data);
        // Items from before generation_v2 have zeros from there on, which pass the generation checks.
        r.Generation(c, "root generation", ri.Generation);
        r.Generation(c, "root generation_v2", ri.GenerationV2);
        r.Generation(c, "root last_snapshot", ri.LastSnapshot);
        r.Aligned(c, Code, "root bytenr", ri.Bytenr);
        if (ri.Level >= Header.MaxLevel)
            r.Add(c, Code, $"invalid root level {ri.Level}", $"0..{Header.MaxLevel - 1}", ri.Level.ToString());
        if (ri.DropLevel >= Header.MaxLevel)
            r.Add(c, Code, $"invalid drop_level {ri.DropLevel}", $"0..{Header.MaxLevel - 1}", ri.DropLevel.ToString());
        if ((ri.Flags & ~ValidFlags) != 0)
            r.Add(c, Code, $"unknown root flags 0x{ri.Flags & ~ValidFlags:x} (flags 0x{ri.Flags:x})", $"no bits outside 0x{ValidFlags:x} (RDONLY, DEAD)", $"0x{ri.Flags:x}");

        // The embedded inode: its mode and sizes are not maintained for internal trees, but generations and flags are.
        var inode = new InodeItem(ri.Inode);
        r.Generation(c, "root inode generation", inode.Generation);
        r.Generation(c, "root inode transid", inode.Transid);
        ulong flags = (ulong)inode.Flags;
        // Older mkfs and kernels stored BTRFS_INODE_ROOT_ITEM_INIT (1 << 31) through a signed int, so the root inode's
        // flags read 0xffffffff80000000: a harmless artifact the kernel and btrfs check accept, not unknown flags.
        if (flags >> 31 == 0x1_FFFF_FFFFUL) flags &= 0xFFFF_FFFFUL;
        InodeItemValidator.Flags(c, r, flags, "root inode");
    }
}

/// <summary>ROOT_REF and ROOT_BACKREF: the kernel's check_root_ref (size, name length 1..255, size matching the name).</summary>
internal static class RootRefValidator
{
    public static void Validate(in ItemCheckContext c, ReadOnlySpan<byte> data, ItemReporter r)
    {
        const FindingCode Code = FindingCode.RootRefInvalid;
        if (data.Length < RootRef.HeaderSize)
        {
            r.Add(c, Code, $"invalid item size {data.Length}", $">= {RootRef.HeaderSize}", data.Length.ToString());
            return;
        }
        var rr = new RootRef(data);
        if (rr.NameLength == 0)
            r.Add(c, Code, "empty name", $"1..{InodeKeys.NameMax}", "0");
        else if (rr.NameLength > InodeKeys.NameMax)
            r.Add(c, Code, $"name_len {rr.NameLength}", $"<= {InodeKeys.NameMax}", rr.NameLength.ToString());
        if (rr.ExpectedSize != data.Length)
            r.Add(c, Code, $"item size {data.Length} does not match name_len {rr.NameLength}",
                $"{RootRef.HeaderSize} + {rr.NameLength} = {rr.ExpectedSize}", data.Length.ToString());
    }
}
