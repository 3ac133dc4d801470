namespace BtrfsRefcheck.Format;

/// <summary>Key types (the middle byte of a key). Numbers are the on-disk values.</summary>
public enum ItemType : byte
{
    InodeItem = 1,
    InodeRef = 12,
    InodeExtref = 13,
    XattrItem = 24,
    VerityDescItem = 36,
    VerityMerkleItem = 37,
    OrphanItem = 48,
    DirLogItem = 60,
    DirLogIndex = 72,
    DirItem = 84,
    DirIndex = 96,
    ExtentData = 108,
    ExtentCsum = 128,
    RootItem = 132,
    RootBackref = 144,
    RootRef = 156,
    ExtentItem = 168,
    MetadataItem = 169,
    ExtentOwnerRef = 172,
    TreeBlockRef = 176,
    ExtentDataRef = 178,
    ExtentRefV0 = 180,
    SharedBlockRef = 182,
    SharedDataRef = 184,
    BlockGroupItem = 192,
    FreeSpaceInfo = 198,
    FreeSpaceExtent = 199,
    FreeSpaceBitmap = 200,
    DevExtent = 204,
    DevItem = 216,
    ChunkItem = 228,
    RaidStripe = 230,
    QgroupStatus = 240,
    QgroupInfo = 242,
    QgroupLimit = 244,
    QgroupRelation = 246,
    TemporaryItem = 248,
    PersistentItem = 249,
    DevReplace = 250,
    UuidKeySubvol = 251,
    UuidKeyReceivedSubvol = 252,
    StringItem = 253,
}

public static class ItemTypes
{
    /// <summary>The name btrfs-progs prints for a key type (<c>UNKNOWN.N</c> for types it does not know).</summary>
    public static string Name(byte type) => (ItemType)type switch
    {
        ItemType.InodeItem => "INODE_ITEM",
        ItemType.InodeRef => "INODE_REF",
        ItemType.InodeExtref => "INODE_EXTREF",
        ItemType.XattrItem => "XATTR_ITEM",
        ItemType.VerityDescItem => "VERITY_DESC_ITEM",
        ItemType.VerityMerkleItem => "VERITY_MERKLE_ITEM",
        ItemType.OrphanItem => "ORPHAN_ITEM",
        ItemType.DirLogItem => "DIR_LOG_ITEM",
        ItemType.DirLogIndex => "DIR_LOG_INDEX",
        ItemType.DirItem => "DIR_ITEM",
        ItemType.DirIndex => "DIR_INDEX",
        ItemType.ExtentData => "EXTENT_DATA",
        ItemType.ExtentCsum => "EXTENT_CSUM",
        ItemType.RootItem => "ROOT_ITEM",
        ItemType.RootBackref => "ROOT_BACKREF",
        ItemType.RootRef => "ROOT_REF",
        ItemType.ExtentItem => "EXTENT_ITEM",
        ItemType.MetadataItem => "METADATA_ITEM",
        ItemType.ExtentOwnerRef => "EXTENT_OWNER_REF",
        ItemType.TreeBlockRef => "TREE_BLOCK_REF",
        ItemType.ExtentDataRef => "EXTENT_DATA_REF",
        ItemType.ExtentRefV0 => "EXTENT_REF_V0",
        ItemType.SharedBlockRef => "SHARED_BLOCK_REF",
        ItemType.SharedDataRef => "SHARED_DATA_REF",
        ItemType.BlockGroupItem => "BLOCK_GROUP_ITEM",
        ItemType.FreeSpaceInfo => "FREE_SPACE_INFO",
        ItemType.FreeSpaceExtent => "FREE_SPACE_EXTENT",
        ItemType.FreeSpaceBitmap => "FREE_SPACE_BITMAP",
        ItemType.DevExtent => "DEV_EXTENT",
        ItemType.DevItem => "DEV_ITEM",
        ItemType.ChunkItem => "CHUNK_ITEM",
        ItemType.RaidStripe => "RAID_STRIPE",
        ItemType.QgroupStatus => "QGROUP_STATUS",
        ItemType.QgroupInfo => "QGROUP_INFO",
        ItemType.QgroupLimit => "QGROUP_LIMIT",
        ItemType.QgroupRelation => "QGROUP_RELATION",
        ItemType.TemporaryItem => "TEMPORARY_ITEM",
        ItemType.PersistentItem => "PERSISTENT_ITEM",
        ItemType.DevReplace => "DEV_REPLACE",
        ItemType.UuidKeySubvol => "UUID_KEY_SUBVOL",
        ItemType.UuidKeyReceivedSubvol => "UUID_KEY_RECEIVED_SUBVOL",
        ItemType.StringItem => "STRING_ITEM",
        _ => $"UNKNOWN.{type}",
    };

    public static bool TryParse(string name, out byte type)
    {
        for (int t = 0; t < 256; t++)
            if (Name((byte)t) == name) { type = (byte)t; return true; }
        type = 0;
        return false;
    }
}
