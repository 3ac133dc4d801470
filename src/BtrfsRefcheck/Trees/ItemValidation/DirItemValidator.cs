using System.Runtime.CompilerServices;
using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Format.Items;

namespace BtrfsRefcheck.Trees.ItemValidation;

/// <summary>DIR_ITEM, DIR_INDEX and XATTR_ITEM: the kernel's check_dir_item (location key via check_root_key /
/// check_inode_key, type, name and data lengths, boundaries, name hash), plus: empty names and more than one
/// entry in a DIR_INDEX (btrfs check). The entry transid is not checked: mkfs.btrfs --rootdir (btrfs-progs 6.2)
/// leaves it uninitialised, and the kernel never reads it.</summary>
internal static class DirItemValidator
{
    private const byte FtXattr = (byte)DirEntryType.Xattr;
    private const byte FtMax = 9;

    /// <summary>btrfs_name_hash: the key offset of DIR_ITEM and XATTR_ITEM, crc32c with seed (u32)~1, not inverted.</summary>
    public static ulong NameHash(ReadOnlySpan<byte> name) => RawCrc32C.Update(~1u, name);

    public static void Validate(in ItemCheckContext c, ReadOnlySpan<byte> data, ItemReporter r)
    {
        var key = c.Key;
        bool xattrKey = key.ItemType == ItemType.XattrItem;
        bool hashedKey = key.ItemType is ItemType.DirItem or ItemType.XattrItem;
        InodeKeys.PrevIno(c, r, Code);
        if (data.Length == 0)
        {
            Report(c, r, Problem.Empty, 0, data.Length);
            return;
        }
        uint maxXattr = c.MaxItemSize - (uint)DirItem.EntryHeaderSize; // BTRFS_MAX_XATTR_SIZE
        int pos = 0, entries = 0;
        while (pos < data.Length)
        {
            if (data.Length - pos < DirItem.EntryHeaderSize)
            {
                Report(c, r, Problem.HeaderCrossesEnd, pos, data.Length);
                return;
            }
            entries++;
            var h = data.Slice(pos, DirItem.EntryHeaderSize);
            var location = BtrfsKey.Read(h[DirItem.LocationAt..]);
            ushort dataLen = Le.U16(h, DirItem.DataLenAt);
            ushort nameLen = Le.U16(h, DirItem.NameLenAt);
            byte rawType = Le.U8(h, DirItem.TypeAt);
            byte type = (byte)(rawType & ~DirItem.EncryptedFlag);
            if (!LocationValid(c, location)) Location(c, r, location, pos);
            bool typeOk = true;
            if (type == 0 || type >= FtMax)
            {
                Report(c, r, Problem.InvalidType, pos, data.Length, rawType);
                typeOk = false;
            }
            else if (xattrKey && type != FtXattr)
                Report(c, r, Problem.NotXattrInXattrItem, pos, data.Length, rawType);
            else if (!xattrKey && type == FtXattr)
                Report(c, r, Problem.XattrOutsideXattrItem, pos, data.Length, rawType);

            if (nameLen == 0 || nameLen > InodeKeys.NameMax)
                Report(c, r, Problem.NameLength, pos, data.Length, rawType, nameLen, dataLen);
            if ((uint)nameLen + dataLen > maxXattr)
                Report(c, r, Problem.TooLarge, pos, data.Length, rawType, nameLen, dataLen);
            if (dataLen != 0 && typeOk && type != FtXattr)
                Report(c, r, Problem.DataOnNonXattr, pos, data.Length, rawType, nameLen, dataLen);

            long end = (long)pos + DirItem.EntryHeaderSize + nameLen + dataLen;
            if (end > data.Length)
            {
                Report(c, r, Problem.CrossesEnd, pos, data.Length, rawType, nameLen, dataLen);
                return;
            }
            if (hashedKey)
            {
                ulong hash = NameHash(data.Slice(pos + DirItem.EntryHeaderSize, nameLen));
                if (hash != key.Offset) Report(c, r, Problem.NameHash, pos, data.Length, hash: hash);
            }
            pos = (int)end;
        }
        if (key.ItemType == ItemType.DirIndex && entries > 1)
            Report(c, r, Problem.ManyEntries, pos, data.Length, entries: entries);
    }

    private const FindingCode Code = FindingCode.DirItemInvalid;

    private enum Problem { Empty, HeaderCrossesEnd, InvalidType, NotXattrInXattrItem, XattrOutsideXattrItem, NameLength, TooLarge, DataOnNonXattr, CrossesEnd, NameHash, ManyEntries }

    /// <summary>The messages, out of line: Validate runs for every directory entry and reports almost never.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Report(in ItemCheckContext c, ItemReporter r, Problem problem, int pos, int itemSize,
        byte rawType = 0, ushort nameLen = 0, ushort dataLen = 0, ulong hash = 0, int entries = 0)
    {
        switch (problem)
        {
            case Problem.Empty:
                r.Add(c, Code, "empty item", $">= {DirItem.EntryHeaderSize} bytes", "0");
                break;
            case Problem.HeaderCrossesEnd:
                r.Add(c, Code, $"dir item header at item offset {pos} crosses the item end {itemSize}",
                    $"{DirItem.EntryHeaderSize} bytes", $"{itemSize - pos} bytes");
                break;
            case Problem.InvalidType:
                r.Add(c, Code, $"{At(pos)} has invalid type {rawType}", $"1..{FtMax - 1} (FILE..XATTR)", rawType.ToString());
                break;
            case Problem.NotXattrInXattrItem:
                r.Add(c, Code, $"{At(pos)} of an XATTR_ITEM has type {DirItem.TypeName(rawType)}", "XATTR", DirItem.TypeName(rawType));
                break;
            case Problem.XattrOutsideXattrItem:
                r.Add(c, Code, $"{At(pos)} has type XATTR outside an XATTR_ITEM", "FILE..SYMLINK", "XATTR");
                break;
            case Problem.NameLength when nameLen == 0:
                r.Add(c, Code, $"{At(pos)} has an empty name", $"1..{InodeKeys.NameMax}", "0");
                break;
            case Problem.NameLength:
                r.Add(c, Code, $"{At(pos)} has name_len {nameLen}", $"<= {InodeKeys.NameMax}", nameLen.ToString());
                break;
            case Problem.TooLarge:
                uint maxXattr = c.MaxItemSize - (uint)DirItem.EntryHeaderSize;
                r.Add(c, Code, $"{At(pos)} has name_len {nameLen} + data_len {dataLen} beyond what a leaf holds",
                    $"<= {maxXattr}", (nameLen + dataLen).ToString());
                break;
            case Problem.DataOnNonXattr:
                r.Add(c, Code, $"{At(pos)} of type {DirItem.TypeName(rawType)} carries data_len {dataLen}", "0", dataLen.ToString());
                break;
            case Problem.CrossesEnd:
                long end = (long)pos + DirItem.EntryHeaderSize + nameLen + dataLen;
                r.Add(c, Code, $"{At(pos)} (name_len {nameLen}, data_len {dataLen}) crosses the item end {itemSize}",
                    $"end <= {itemSize}", $"end {end}");
                break;
            case Problem.NameHash:
                r.Add(c, Code, $"key offset is not the name hash of the {At(pos)}", $"0x{hash:x}", $"0x{c.Key.Offset:x}");
                break;
            case Problem.ManyEntries:
                r.Add(c, Code, $"DIR_INDEX holds {entries} entries", "1", entries.ToString());
                break;
        }
    }

    private static string At(int pos) => $"entry at item offset {pos}";

    /// <summary>True when <see cref="Location"/> has nothing to report.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool LocationValid(in ItemCheckContext c, BtrfsKey loc) => loc.ItemType switch
    {
        ItemType.RootItem => loc.ObjectId != 0 && ItemCheckContext.KernelIsFsTree(loc.ObjectId),
        ItemType.InodeItem or 0 => c.Key.ItemType == ItemType.XattrItem
            ? loc == BtrfsKey.Min
            : InodeKeys.ValidInodeNumber(loc.ObjectId) && loc.Offset == 0,
        _ => false,
    };

    /// <summary>check_dir_item's location key rules: a subvolume (ROOT_ITEM) must be an fs tree; an inode (INODE_ITEM,
    /// or type 0) must be a valid inode number with offset 0; an xattr's location is all zero.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Location(in ItemCheckContext c, ItemReporter r, BtrfsKey loc, int pos)
    {
        switch (loc.ItemType)
        {
            case ItemType.RootItem:
                if (loc.ObjectId == 0)
                    r.Add(c, Code, $"{At(pos)} points to root id 0", "a subvolume id", "0");
                else if (!ItemCheckContext.KernelIsFsTree(loc.ObjectId))
                    r.Add(c, Code, $"{At(pos)} points to tree {ObjectIds.TreeName(loc.ObjectId)}, which is not a subvolume",
                        "5 or [256, 2^48)", loc.ObjectId.ToString());
                break;
            case ItemType.InodeItem or 0:
                if (c.Key.ItemType == ItemType.XattrItem)
                {
                    if (loc != BtrfsKey.Min)
                        r.Add(c, Code, $"{At(pos)} of an XATTR_ITEM has location key {loc}", "(0 0 0)", loc.ToString());
                    break;
                }
                if (!InodeKeys.ValidInodeNumber(loc.ObjectId))
                    r.Add(c, Code, $"{At(pos)} has location objectid {loc.ObjectId}", InodeKeys.InodeNumberRange, loc.ObjectId.ToString());
                if (loc.Offset != 0)
                    r.Add(c, Code, $"{At(pos)} has location key offset {loc.Offset}", "0", loc.Offset.ToString());
                break;
            default:
                r.Add(c, Code, $"{At(pos)} has location key type {ItemTypes.Name(loc.Type)}", "ROOT_ITEM or INODE_ITEM", loc.Type.ToString());
                break;
        }
    }
}
