using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Trees;
using static BtrfsRefcheck.Diagnostics.FindingCode;

namespace BtrfsRefcheck.Checks;

/// <summary>Pass "csum tree": btrfs check's [6/8] "checking csums" (without --check-data-csum) and the checksum parts of
/// its fs-root and log checks (<see cref="CsumTreeCheck"/>).</summary>
public sealed class CsumTreePass : ICheckPass
{
    public string Name => "csum tree";

    public IReadOnlyList<FindingCode> Codes { get; } =
        [CsumItemsOverlap, CsumWithoutDataExtent, DataCsumMissing, UnexpectedDataCsum, LogCsumMissing, CsumChangeInProgress];

    public IReadOnlyList<FindingProducer> Uses { get; } = [];
    public string Reads => "Roots, Scan (file extents' csum claims, extent leaves, hidden extent ranges, unreadable blocks)";
    public string Adds => "nothing";

    public void Run(CheckContext ctx)
    {
        var root = ctx.Roots.FirstOrDefault(r => r.Id == ObjectIds.CsumTree && r.Source == RootSource.RootItem);
        if (root != null) new CsumTreeCheck(ctx).Run(root); // no csum tree: 403, the roots pass
        long claims = ctx.Scan.CsumNeeds.Sum(s => (long)s.Count);
        ctx.Scan.CsumNeeds = []; // released: nothing after this pass reads them
        ctx.Observer.Checkpoint(Name, "csum claims released", claims);
    }
}
