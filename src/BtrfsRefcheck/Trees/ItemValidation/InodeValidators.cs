using System.Runtime.CompilerServices;
using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Format.Items;

namespace BtrfsRefcheck.Trees.ItemValidation;

/// <summary>Rules shared by the items of an inode (the kernel's check_prev_ino and check_inode_key).</summary>
internal static class InodeKeys
{
    public const int NameMax = 255; // BTRFS_NAME_LEN and XATTR_NAME_MAX

    /// <summary>check_prev_ino: in a subvolume tree, an inode's refs, dir entries, xattrs and file extents follow
    /// its INODE_ITEM, so the previous key in the leaf has the same objectid. A mismatch means the INODE_ITEM is
    /// missing. Log trees (owner TREE_LOG) do not follow this and are skipped, as are slot 0 and other trees.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool PrevIno(in ItemCheckContext c, ItemReporter r, FindingCode code)
    {
        if (c.PrevKey is not { } prev || c.Slot == 0 || prev.ObjectId == c.Key.ObjectId || !ItemCheckContext.KernelIsFsTree(c.Owner)) return true;
        PrevInoMissing(c, r, code, prev);
        return false;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void PrevInoMissing(in ItemCheckContext c, ItemReporter r, FindingCode code, BtrfsKey prev) =>
        r.Add(c, code, $"previous key {prev} belongs to another inode: the INODE_ITEM of inode {c.Key.ObjectId} is missing before it",
            $"previous objectid {c.Key.ObjectId}", prev.ObjectId.ToString());

    /// <summary>An inode number an INODE_ITEM or a dir entry may name: the root tree dir (6), the free ino cache, or [256, -256].</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool ValidInodeNumber(ulong ino) =>
        ino == ObjectIds.RootTreeDir || ino == ObjectIds.FreeIno || (ino >= ObjectIds.FirstFree && ino <= ObjectIds.LastFree);

    public const string InodeNumberRange = "6, [256, 18446744073709551360] or 18446744073709551604 (FREE_INO)";
}

/// <summary>INODE_ITEM: the kernel's check_inode_item (with check_inode_key).</summary>
internal static class InodeItemValidator
{
    private const uint SIfmt = 0xF000; // S_IFMT 0170000
    private const uint ValidModeMask = SIfmt | 0xE00 | 0x1FF; // S_IFMT | S_ISUID | S_ISGID | S_ISVTX | 0777
    private const uint SIfdir = 0x4000, SIfblk = 0x6000, SIflnk = 0xA000, SIfsock = 0xC000;

    /// <summary>BTRFS_INODE_FLAG_MASK: the incompat half (low 32 bits) of inode flags the kernel knows.</summary>
    public const ulong KnownFlags = (ulong)(InodeFlags.NoDataSum | InodeFlags.NoDataCow | InodeFlags.ReadOnly | InodeFlags.NoCompress |
        InodeFlags.Prealloc | InodeFlags.Sync | InodeFlags.Immutable | InodeFlags.Append | InodeFlags.NoDump | InodeFlags.NoAtime |
        InodeFlags.DirSync | InodeFlags.Compress | InodeFlags.RootItemInit);

    /// <summary>BTRFS_INODE_RO_FLAG_MASK: the read-only-compat half (high 32 bits); only VERITY exists.</summary>
    public const ulong KnownRoFlags = 1UL << 32;

    public static void Validate(in ItemCheckContext c, ReadOnlySpan<byte> data, ItemReporter r)
    {
        var key = c.Key;
        if (!InodeKeys.ValidInodeNumber(key.ObjectId) || key.Offset != 0) BadKey(c, r);
        if (data.Length != InodeItem.Size)
        {
            BadSize(c, r, data.Length);
            return;
        }
        var ii = new InodeItem(data);
        r.Generation(c, "inode generation", ii.Generation);
        r.Generation(c, "inode transid", ii.Transid);

        uint mode = ii.Mode;
        uint type = mode & SIfmt;
        if ((mode & ~ValidModeMask) != 0 || (!uint.IsPow2(type) && type is not (SIflnk or SIfblk or SIfsock)) || (type == SIfdir && ii.Nlink > 1))
            BadMode(c, r, mode, ii.Nlink);
        Flags(c, r, (ulong)ii.Flags, "inode");
    }

    // The messages, out of line: Validate runs for every inode and reports almost never.

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void BadKey(in ItemCheckContext c, ItemReporter r)
    {
        var key = c.Key;
        if (!InodeKeys.ValidInodeNumber(key.ObjectId))
            r.Add(c, FindingCode.InodeItemInvalid, $"invalid key objectid {key.ObjectId}", InodeKeys.InodeNumberRange, key.ObjectId.ToString());
        if (key.Offset != 0)
            r.Add(c, FindingCode.InodeItemInvalid, $"invalid key offset {key.Offset}", "0", key.Offset.ToString());
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void BadSize(in ItemCheckContext c, ItemReporter r, int size) =>
        r.Add(c, FindingCode.InodeItemInvalid, $"invalid item size {size}", InodeItem.Size.ToString(), size.ToString());

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void BadMode(in ItemCheckContext c, ItemReporter r, uint mode, uint nlink)
    {
        if ((mode & ~ValidModeMask) != 0)
            r.Add(c, FindingCode.InodeItemInvalid, $"unknown mode bits 0x{mode & ~ValidModeMask:x} in mode 0{Convert.ToString(mode, 8)}",
                $"no bits outside 0{Convert.ToString(ValidModeMask, 8)}", $"0{Convert.ToString(mode, 8)}");
        uint type = mode & SIfmt;
        if (!uint.IsPow2(type) && type is not (SIflnk or SIfblk or SIfsock))
            r.Add(c, FindingCode.InodeItemInvalid, $"invalid file type 0{Convert.ToString(type, 8)} in mode 0{Convert.ToString(mode, 8)}",
                "one of S_IFIFO, S_IFCHR, S_IFDIR, S_IFBLK, S_IFREG, S_IFLNK, S_IFSOCK", $"0{Convert.ToString(type, 8)}");
        if (type == SIfdir && nlink > 1)
            r.Add(c, FindingCode.InodeItemInvalid, $"directory with nlink {nlink}", "<= 1 for a directory", nlink.ToString());
    }

    /// <summary>Inode flags: unknown incompat bits are errors; unknown ro-compat bits only stop a writable mount, so they are warnings.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Flags(in ItemCheckContext c, ItemReporter r, ulong flags, string what)
    {
        if ((flags & ~(KnownFlags | KnownRoFlags)) != 0) UnknownFlags(c, r, flags, what);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void UnknownFlags(in ItemCheckContext c, ItemReporter r, ulong flags, string what)
    {
        ulong low = flags & 0xFFFF_FFFFUL, high = flags & 0xFFFF_FFFF_0000_0000UL;
        if ((low & ~KnownFlags) != 0)
            r.Add(c, FindingCode.InodeItemInvalid, $"unknown incompat {what} flags 0x{low & ~KnownFlags:x} (flags 0x{flags:x})",
                $"no bits outside 0x{KnownFlags:x}", $"0x{flags:x}");
        if ((high & ~KnownRoFlags) != 0)
            r.Add(c, FindingCode.InodeItemInvalid, $"unknown ro-compat {what} flags 0x{high & ~KnownRoFlags:x} (flags 0x{flags:x}); the kernel refuses them on a writable mount only",
                $"no bits outside 0x{KnownFlags | KnownRoFlags:x}", $"0x{flags:x}", Severity.Warning);
    }
}

/// <summary>INODE_REF: the kernel's check_inode_ref, plus name lengths (0 and over 255 are impossible names).</summary>
internal static class InodeRefValidator
{
    public static void Validate(in ItemCheckContext c, ReadOnlySpan<byte> data, ItemReporter r)
    {
        InodeKeys.PrevIno(c, r, FindingCode.InodeRefInvalid);
        // name_len cannot be 0, so an item of exactly one entry header is invalid too.
        if (data.Length <= InodeRef.EntryHeaderSize)
        {
            Report(c, r, Problem.ItemSize, 0, data.Length, 0);
            return;
        }
        int pos = 0;
        while (pos < data.Length)
        {
            if (data.Length - pos < InodeRef.EntryHeaderSize)
            {
                Report(c, r, Problem.HeaderCrossesEnd, pos, data.Length, 0);
                return;
            }
            ushort nameLen = Le.U16(data, pos + InodeRef.NameLenAt);
            if (pos + InodeRef.EntryHeaderSize + nameLen > data.Length)
            {
                Report(c, r, Problem.NameCrossesEnd, pos, data.Length, nameLen);
                return;
            }
            NameLength(c, r, FindingCode.InodeRefInvalid, "inode ref", pos, nameLen);
            pos += InodeRef.EntryHeaderSize + nameLen;
        }
    }

    private enum Problem { ItemSize, HeaderCrossesEnd, NameCrossesEnd }

    /// <summary>The messages, out of line: Validate runs for every inode ref and reports almost never.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Report(in ItemCheckContext c, ItemReporter r, Problem problem, int pos, int itemSize, ushort nameLen)
    {
        switch (problem)
        {
            case Problem.ItemSize:
                r.Add(c, FindingCode.InodeRefInvalid, $"invalid item size {itemSize}",
                    $"more than {InodeRef.EntryHeaderSize}", itemSize.ToString());
                break;
            case Problem.HeaderCrossesEnd:
                r.Add(c, FindingCode.InodeRefInvalid, $"inode ref entry header at item offset {pos} crosses the item end {itemSize}",
                    $"{InodeRef.EntryHeaderSize} bytes", $"{itemSize - pos} bytes");
                break;
            case Problem.NameCrossesEnd:
                r.Add(c, FindingCode.InodeRefInvalid, $"inode ref name at item offset {pos} (name_len {nameLen}) crosses the item end {itemSize}",
                    $"<= {itemSize - pos - InodeRef.EntryHeaderSize}", nameLen.ToString());
                break;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void NameLength(in ItemCheckContext c, ItemReporter r, FindingCode code, string what, int pos, int nameLen)
    {
        if (nameLen == 0 || nameLen > InodeKeys.NameMax) BadNameLength(c, r, code, what, pos, nameLen);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void BadNameLength(in ItemCheckContext c, ItemReporter r, FindingCode code, string what, int pos, int nameLen)
    {
        if (nameLen == 0)
            r.Add(c, code, $"{what} at item offset {pos} has an empty name", "1..255", "0");
        else
            r.Add(c, code, $"{what} at item offset {pos} has name_len {nameLen}", $"<= {InodeKeys.NameMax}", nameLen.ToString());
    }
}

/// <summary>INODE_EXTREF: the kernel's check_inode_extref, plus name lengths and the key offset, which is
/// btrfs_extref_hash(parent, name) = crc32c(seed (u32)parent_objectid, name) for every entry of the item.</summary>
internal static class InodeExtrefValidator
{
    public static ulong Hash(ulong parent, ReadOnlySpan<byte> name) => RawCrc32C.Update(unchecked((uint)parent), name);

    public static void Validate(in ItemCheckContext c, ReadOnlySpan<byte> data, ItemReporter r)
    {
        InodeKeys.PrevIno(c, r, FindingCode.InodeRefInvalid);
        if (data.Length == 0)
        {
            r.Add(c, FindingCode.InodeRefInvalid, "empty item", $"more than {InodeExtref.EntryHeaderSize} bytes", "0");
            return;
        }
        int pos = 0;
        while (pos < data.Length)
        {
            if (data.Length - pos < InodeExtref.EntryHeaderSize)
            {
                r.Add(c, FindingCode.InodeRefInvalid, $"inode extref entry header at item offset {pos} crosses the item end {data.Length}",
                    $"{InodeExtref.EntryHeaderSize} bytes", $"{data.Length - pos} bytes");
                return;
            }
            ulong parent = Le.U64(data, pos + InodeExtref.ParentObjectIdAt);
            ushort nameLen = Le.U16(data, pos + InodeExtref.NameLenAt);
            if (pos + InodeExtref.EntryHeaderSize + nameLen > data.Length)
            {
                r.Add(c, FindingCode.InodeRefInvalid, $"inode extref name at item offset {pos} (name_len {nameLen}) crosses the item end {data.Length}",
                    $"<= {data.Length - pos - InodeExtref.EntryHeaderSize}", nameLen.ToString());
                return;
            }
            InodeRefValidator.NameLength(c, r, FindingCode.InodeRefInvalid, "inode extref", pos, nameLen);
            ulong hash = Hash(parent, data.Slice(pos + InodeExtref.EntryHeaderSize, nameLen));
            if (hash != c.Key.Offset && !c.NamesSanitized)
                r.Add(c, FindingCode.InodeRefInvalid, $"key offset is not the hash of parent {parent} and the name of the entry at item offset {pos}",
                    $"0x{hash:x}", $"0x{c.Key.Offset:x}");
            pos += InodeExtref.EntryHeaderSize + nameLen;
        }
    }
}
