namespace BtrfsRefcheck.Format;

/// <summary>Well-known objectids (tree ids and special objects).</summary>
public static class ObjectIds
{
    public const ulong DevStats = 0;
    public const ulong RootTree = 1;
    public const ulong ExtentTree = 2;
    public const ulong ChunkTree = 3;
    public const ulong DevTree = 4;
    public const ulong FsTree = 5;
    public const ulong RootTreeDir = 6;
    public const ulong CsumTree = 7;
    public const ulong QuotaTree = 8;
    public const ulong UuidTree = 9;
    public const ulong FreeSpaceTree = 10;
    public const ulong BlockGroupTree = 11;
    public const ulong RaidStripeTree = 12;
    public const ulong Balance = unchecked((ulong)-4L);
    public const ulong Orphan = unchecked((ulong)-5L);
    public const ulong TreeLog = unchecked((ulong)-6L);
    public const ulong TreeLogFixup = unchecked((ulong)-7L);
    public const ulong TreeReloc = unchecked((ulong)-8L);
    public const ulong DataRelocTree = unchecked((ulong)-9L);
    public const ulong ExtentCsum = unchecked((ulong)-10L);
    public const ulong FreeSpace = unchecked((ulong)-11L);
    public const ulong FreeIno = unchecked((ulong)-12L);
    /// <summary>BTRFS_CSUM_CHANGE_OBJECTID: data checksums of the new type while btrfstune --csum runs (csum tree), and
    /// the TEMPORARY_ITEM naming that type (root tree).</summary>
    public const ulong CsumChange = unchecked((ulong)-13L);
    public const ulong Multiple = unchecked((ulong)-255L);
    public const ulong FirstFree = 256;
    public const ulong LastFree = unchecked((ulong)-256L);
    public const ulong FirstChunkTree = 256;
    public const ulong DevItems = 1;

    /// <summary>True for subvolume-like trees: the fs tree, subvolumes/snapshots and the data reloc tree.</summary>
    public static bool IsFsTree(ulong id) => id == FsTree || (id >= FirstFree && id <= LastFree) || id == DataRelocTree;

    /// <summary>Name of a tree id as btrfs-progs prints it, or the number.</summary>
    public static string TreeName(ulong id) => id switch
    {
        RootTree => "ROOT_TREE",
        ExtentTree => "EXTENT_TREE",
        ChunkTree => "CHUNK_TREE",
        DevTree => "DEV_TREE",
        FsTree => "FS_TREE",
        RootTreeDir => "ROOT_TREE_DIR",
        CsumTree => "CSUM_TREE",
        QuotaTree => "QUOTA_TREE",
        UuidTree => "UUID_TREE",
        FreeSpaceTree => "FREE_SPACE_TREE",
        BlockGroupTree => "BLOCK_GROUP_TREE",
        RaidStripeTree => "RAID_STRIPE_TREE",
        TreeLog => "TREE_LOG",
        TreeLogFixup => "TREE_LOG_FIXUP",
        TreeReloc => "TREE_RELOC",
        DataRelocTree => "DATA_RELOC_TREE",
        _ => id.ToString(),
    };

    /// <summary>Parses a tree given by number or name (case-insensitive; "fs", "extent", "log" accepted).</summary>
    public static bool TryParseTree(string s, out ulong id)
    {
        if (ulong.TryParse(s, out id)) return true;
        if (long.TryParse(s, out long neg)) { id = unchecked((ulong)neg); return true; }
        string n = s.Trim().ToUpperInvariant().Replace('-', '_');
        if (!n.EndsWith("_TREE") && n is not ("TREE_LOG" or "TREE_RELOC" or "TREE_LOG_FIXUP")) n += "_TREE";
        if (n == "LOG_TREE") n = "TREE_LOG";
        if (n == "RELOC_TREE") n = "TREE_RELOC";
        if (n == "ROOT_TREE_TREE") n = "ROOT_TREE";
        foreach (ulong c in new[] { RootTree, ExtentTree, ChunkTree, DevTree, FsTree, CsumTree, QuotaTree, UuidTree,
                     FreeSpaceTree, BlockGroupTree, RaidStripeTree, TreeLog, TreeReloc, DataRelocTree })
            if (TreeName(c) == n) { id = c; return true; }
        if (n == "FS_TREE" || n == "DEFAULT_TREE") { id = FsTree; return true; }
        id = 0;
        return false;
    }

    /// <summary>Objectid as btrfs-progs' print_objectid shows it in a key of the given type.</summary>
    public static string Name(ulong objectid, byte type)
    {
        switch ((ItemType)type)
        {
            case ItemType.DevExtent: return objectid.ToString();
            case ItemType.QgroupRelation: return $"{objectid >> 48}/{objectid & ((1UL << 48) - 1)}";
            case ItemType.UuidKeySubvol or ItemType.UuidKeyReceivedSubvol: return $"0x{objectid:x16}";
        }
        return objectid switch
        {
            RootTree when type == (byte)ItemType.DevItem => "DEV_ITEMS",
            DevStats when type == (byte)ItemType.PersistentItem => "DEV_STATS",
            TreeLogFixup => "LOG_FIXUP",
            FirstChunkTree when type == (byte)ItemType.ChunkItem => "FIRST_CHUNK_TREE",
            Balance => "BALANCE",
            Orphan => "ORPHAN",
            ExtentCsum => "EXTENT_CSUM",
            FreeSpace => "FREE_SPACE",
            FreeIno => "FREE_INO",
            CsumChange => "CSUM_CHANGE",
            Multiple => "MULTIPLE",
            ulong.MaxValue => "-1",
            _ => TreeName(objectid),
        };
    }

    /// <summary>Key offset as btrfs-progs prints it.</summary>
    public static string OffsetName(byte type, ulong offset) => (ItemType)type switch
    {
        ItemType.QgroupRelation or ItemType.QgroupInfo or ItemType.QgroupLimit => $"{offset >> 48}/{offset & ((1UL << 48) - 1)}",
        ItemType.UuidKeySubvol or ItemType.UuidKeyReceivedSubvol => $"0x{offset:x16}",
        _ when offset == ulong.MaxValue => "-1",
        _ => offset.ToString(),
    };
}
