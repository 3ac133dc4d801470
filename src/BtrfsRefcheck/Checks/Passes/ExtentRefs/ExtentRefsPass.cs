using BtrfsRefcheck.Diagnostics;
using static BtrfsRefcheck.Diagnostics.FindingCode;

namespace BtrfsRefcheck.Checks;

/// <summary>Pass "extent references": joins the back-refs the trees need (from the tree scan) with the extent tree,
/// streamed in key order, and the blocks and block groups on the way (<see cref="ExtentJoin"/>; the extent tree's
/// items are decoded by <see cref="ExtentTreeDecoder"/>).</summary>
public sealed class ExtentRefsPass : ICheckPass
{
    public string Name => "extent references";

    public IReadOnlyList<FindingCode> Codes { get; } =
    [
        DuplicateTreeBlockRef, StaleTreeBlockRef, MissingTreeBlockRef, ExtentRefsMismatch, TreeBlockNoExtentItem, MetadataExtentLeaked,
        MetadataLevelMismatch, InlineRefsOutOfOrder, UnknownInlineRefType, KeyedRefWithoutExtentItem, ExtentTypeMismatch,
        TreeBlockMultipleParents,
        DataRefCountMismatch, MissingDataRef, StaleDataRef, DataExtentNoExtentItem, OrphanDataExtentItem, DuplicateDataRef,
        DataExtentLengthMismatch, KeyedDataRefHashMismatch,
        ExtentOverlap, ExtentOutsideBlockGroup, BlockGroupUsedMismatch, SuperBytesUsedMismatch, BlockGroupNoChunk, MetadataCrossesStripe,
    ];

    /// <summary>Reads the blocks it checks again (the extent leaves, a block's first key): the reader's and validator's codes.</summary>
    public IReadOnlyList<FindingProducer> Uses { get; } = [FindingProducers.BlockReader, FindingProducers.TreeBlockValidator, FindingProducers.ItemValidator];
    public string Reads => "Scan (blocks, expected back-refs, block groups, extent leaves, hidden extent ranges, unreadable blocks, chunks), Roots";
    public string Adds => "Stats (extent items, back-refs)";

    public void Run(CheckContext ctx)
    {
        long consumed = new ExtentJoin(ctx).Run();
        // the largest records of the check (the expected back-refs) are gone: the caller may collect, so that the
        // passes after this one reuse their memory instead of adding to it
        ctx.Observer.Checkpoint(Name, "expected back-refs released", consumed);
    }
}
