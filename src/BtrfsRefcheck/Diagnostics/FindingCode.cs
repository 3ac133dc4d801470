namespace BtrfsRefcheck.Diagnostics;

/// <summary>Stable finding codes, grouped by area in blocks of 100. Never renumber, never reuse a number,
/// never combine as flags. Documented in docs/findings.md (a test keeps the two in step).</summary>
public enum FindingCode
{
    // 100-199: superblocks and devices
    SuperblockBadMagic = 100,
    SuperblockBadChecksum = 101,
    SuperblockBytenrMismatch = 102,
    SuperblockUnknownChecksumType = 103,
    SuperblockGenerationMismatch = 104,
    SuperblockFieldInvalid = 105,
    SuperblockCopyTruncated = 106,
    SuperblockCopyNeverWritten = 107,
    DeviceMissing = 110,
    DeviceDuplicate = 111,
    DeviceSizeMismatch = 112,
    MetadumpClusterInvalid = 130,
    MetadumpItemCorrupt = 131,
    TreeBlockNotInDump = 132,

    // 200-299: chunks and address mapping
    SysChunkArrayInvalid = 200,
    ChunkItemInvalid = 201,
    ChunkOverlap = 202,
    ChunkMismatchSysArray = 203,
    LogicalAddressUnmapped = 204,
    StripeBeyondDevice = 205,

    // 300-399: tree blocks
    TreeBlockChecksumMismatch = 300,
    TreeBlockBytenrMismatch = 301,
    TreeBlockFsidMismatch = 302,
    TreeBlockUnreadable = 303,
    TreeBlockLevelMismatch = 304,
    TreeBlockNrItemsInvalid = 305,
    TreeBlockKeyOrder = 306,
    TreeBlockItemOutOfBounds = 307,
    TreeBlockOwnerMismatch = 308,
    TreeBlockGenerationMismatch = 309,
    TreeBlockFirstKeyMismatch = 310,
    TreeBlockCycle = 311,
    TreeBlockGenerationTooNew = 312,
    TreeBlockChunkTreeUuidMismatch = 313,
    TreeBlockBadCopy = 314,

    // 400-499: items
    ItemUndecodable = 400,
    ItemUnknownType = 401,
    RootItemInvalid = 402,
    RootItemMissing = 403,
    InodeItemInvalid = 410,
    InodeRefInvalid = 411,
    DirItemInvalid = 412,
    FileExtentInvalid = 413,
    CsumItemInvalid = 414,
    BlockGroupItemInvalid = 415,
    DevItemInvalid = 416,
    DevExtentInvalid = 417,
    KeyedBackrefInvalid = 418,
    RootRefInvalid = 419,
    ItemGenerationTooNew = 420,
    FreeSpaceItemInvalid = 421,
    TreeBlockHeaderFlagsInvalid = 422,
    TreeBlockReferencedTwice = 423,
    ItemNotInSubvolumeTree = 424,
    DeprecatedInodeCache = 425,

    // 500-599: tree block back-references and metadata extent items
    DuplicateTreeBlockRef = 500,
    StaleTreeBlockRef = 501,
    MissingTreeBlockRef = 502,
    ExtentRefsMismatch = 503,
    TreeBlockNoExtentItem = 504,
    MetadataExtentLeaked = 505,
    MetadataLevelMismatch = 506,
    InlineRefsOutOfOrder = 507,
    UnknownInlineRefType = 508,
    ExtentItemMalformed = 509,
    KeyedRefWithoutExtentItem = 510,
    ExtentTypeMismatch = 511,
    TreeBlockMultipleParents = 512,

    // 600-699: data back-references and data extent items
    DataRefCountMismatch = 600,
    MissingDataRef = 601,
    StaleDataRef = 602,
    DataExtentNoExtentItem = 603,
    OrphanDataExtentItem = 604,
    DuplicateDataRef = 605,
    DataExtentLengthMismatch = 606,
    KeyedDataRefHashMismatch = 607,

    // 700-799: extent layout and space accounting
    ExtentOverlap = 700,
    ExtentOutsideBlockGroup = 701,
    BlockGroupUsedMismatch = 702,
    SuperBytesUsedMismatch = 703,
    BlockGroupNoChunk = 704,
    MetadataCrossesStripe = 710,
    DevExtentNoChunk = 711,
    ChunkStripeNoDevExtent = 712,
    DevExtentBeyondDevice = 713,
    DevExtentOverlap = 714,
    DevItemBytesUsedMismatch = 715,
    SuperNumDevicesMismatch = 716,
    ChunkBeyondDevice = 717,

    // 900-999: what could not be checked
    SubtreeNotChecked = 900,
    RootTreeFallback = 901,
    ChunkTreeFallback = 902,

    // 1000-1099: csum tree
    CsumItemsOverlap = 1000,
    CsumWithoutDataExtent = 1001,
    DataCsumMissing = 1002,
    UnexpectedDataCsum = 1003,
    LogCsumMissing = 1004,
    CsumChangeInProgress = 1005,

    // 1100-1199: free space (free-space tree, v1 space cache)
    FreeSpaceInfoMissing = 1100,
    FreeSpaceOutsideBlockGroup = 1101,
    FreeSpaceStaleMkfsEntries = 1102,
    FreeSpaceMismatch = 1103,
    FreeSpaceExtentCountMismatch = 1104,
    FreeSpaceWrongItemType = 1105,
    FreeSpaceExtentsUnmerged = 1106,
    FreeSpaceTreeNotValid = 1107,

    // 1200-1299: quota groups
    QgroupCountsMismatch = 1200,
    QgroupStatusNotCurrent = 1201,
    QgroupRelationUnpaired = 1202,
    QgroupRelationOrphan = 1203,

    // 1300-1399: data checksums (read and verified only when asked)
    DataChecksumMismatch = 1300,
    DataChecksumBadCopy = 1301,
    DataChecksumsNotVerified = 1302,
}
