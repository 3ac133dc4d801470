using static BtrfsRefcheck.Diagnostics.FindingCode;

namespace BtrfsRefcheck.Diagnostics;

/// <summary>A named component that produces findings outside the check's passes: a piece of the volume layer that
/// runs while the volume is opened, or a validator or walk the passes run. <see cref="Files"/> (relative to
/// src/BtrfsRefcheck) are where its findings are made; <see cref="Codes"/> the codes it owns.</summary>
public sealed record FindingProducer(string Name, string Layer, string[] Files, FindingCode[] Codes);

/// <summary>Every producer that is not a pass (the passes declare their own codes: <c>Checks.Checker.Passes</c>).
/// docs/findings.md names each code's producer; FindingProducerTests keeps the table, these lists and the sources that
/// make findings in agreement: every code has exactly one owner.</summary>
public static class FindingProducers
{
    public static readonly FindingProducer SuperblockSelection = new("superblock selection", "Volume", ["Volume/SuperblockSelection.cs", "Volume/SuperblockRules.cs"],
        [SuperblockBadMagic, SuperblockBadChecksum, SuperblockBytenrMismatch, SuperblockUnknownChecksumType, SuperblockGenerationMismatch,
         SuperblockFieldInvalid, SuperblockCopyTruncated, SuperblockCopyNeverWritten]);

    public static readonly FindingProducer DeviceSet = new("device set", "Volume", ["Volume/DeviceSet.cs"],
        [DeviceMissing, DeviceDuplicate, DeviceSizeMismatch]);

    public static readonly FindingProducer ChunkMapLoading = new("chunk map loading", "Volume", ["Volume/ChunkMapLoader.cs", "Volume/ChunkRules.cs"],
        [SysChunkArrayInvalid, ChunkItemInvalid, ChunkOverlap, ChunkMismatchSysArray]);

    public static readonly FindingProducer RootSelection = new("root selection", "Volume", ["Volume/RootSelection.cs"],
        [RootTreeFallback, ChunkTreeFallback]);

    public static readonly FindingProducer BlockReader = new("tree-block reader", "Volume", ["Volume/TreeBlockReader.cs", "Trees/BlockSteps.cs"],
        [TreeBlockChecksumMismatch, TreeBlockBytenrMismatch, TreeBlockFsidMismatch, TreeBlockUnreadable, TreeBlockBadCopy,
         LogicalAddressUnmapped, StripeBeyondDevice, SubtreeNotChecked]);

    public static readonly FindingProducer TreeWalk = new("tree walk", "Trees", ["Trees/TreeWalker.cs", "Trees/ParallelScanner.cs", "Trees/BlockSteps.cs"],
        [TreeBlockCycle, TreeBlockReferencedTwice]);

    public static readonly FindingProducer TreeBlockValidator = new("tree-block validator", "Trees", ["Trees/TreeBlockValidator.cs"],
        [TreeBlockLevelMismatch, TreeBlockNrItemsInvalid, TreeBlockKeyOrder, TreeBlockItemOutOfBounds, TreeBlockOwnerMismatch,
         TreeBlockGenerationMismatch, TreeBlockFirstKeyMismatch, TreeBlockGenerationTooNew, TreeBlockChunkTreeUuidMismatch,
         TreeBlockHeaderFlagsInvalid]);

    public static readonly FindingProducer ItemValidator = new("item validator", "Trees", ["Trees/ItemValidator.cs", "Trees/ItemValidation/"],
        [ItemUndecodable, ItemUnknownType, RootItemInvalid, InodeItemInvalid, InodeRefInvalid, DirItemInvalid, FileExtentInvalid, CsumItemInvalid,
         BlockGroupItemInvalid, DevItemInvalid, DevExtentInvalid, KeyedBackrefInvalid, RootRefInvalid, ItemGenerationTooNew,
         FreeSpaceItemInvalid, ItemNotInSubvolumeTree, DeprecatedInodeCache, ExtentItemMalformed]);

    /// <summary>The components, in the order the check meets them.</summary>
    public static readonly IReadOnlyList<FindingProducer> Components =
        [SuperblockSelection, DeviceSet, ChunkMapLoading, RootSelection, BlockReader, TreeWalk, TreeBlockValidator, ItemValidator];
}
