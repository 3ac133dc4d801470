using BtrfsRefcheck.Diagnostics;
using static BtrfsRefcheck.Diagnostics.FindingCode;

namespace BtrfsRefcheck.Checks;

/// <summary>Pass "data checksums": only when asked (<see cref="CheckContext.VerifyDataChecksums"/>), every data sector
/// the csum tree covers is read, every copy, and verified (<see cref="DataChecksumVerifier"/>); otherwise it does
/// nothing, as btrfs check's "checking csums (without verifying data)".</summary>
public sealed class DataChecksumsPass : ICheckPass
{
    public string Name => "data checksums";
    public IReadOnlyList<FindingCode> Codes { get; } = [DataChecksumMismatch, DataChecksumBadCopy, DataChecksumsNotVerified];
    public IReadOnlyList<FindingProducer> Uses { get; } = [];
    public string Reads => "Roots (csum, extent, subvolume and root trees), the volume's chunks and devices; only with VerifyDataChecksums";
    public string Adds => "Stats (data bytes verified, bad sectors)";

    public bool RunsOn(PassSelection asked) => asked.VerifyDataChecksums;

    public void Run(CheckContext ctx)
    {
        if (!ctx.VerifyDataChecksums) return;
        var verifier = new DataChecksumVerifier(ctx);
        verifier.Run();
        ctx.Stats.DataBytesVerified = verifier.BytesVerified;
        ctx.Stats.DataSectorsBad = verifier.SectorsBad;
    }
}
