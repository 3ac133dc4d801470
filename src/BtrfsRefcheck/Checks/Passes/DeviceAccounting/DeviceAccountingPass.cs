using BtrfsRefcheck.Diagnostics;
using static BtrfsRefcheck.Diagnostics.FindingCode;

namespace BtrfsRefcheck.Checks;

/// <summary>Pass "device accounting": chunks against dev extents against devices (<see cref="DeviceAccounting"/>).</summary>
public sealed class DeviceAccountingPass : ICheckPass
{
    public string Name => "device accounting";

    public IReadOnlyList<FindingCode> Codes { get; } =
        [DevExtentNoChunk, ChunkStripeNoDevExtent, DevExtentBeyondDevice, DevExtentOverlap, DevItemBytesUsedMismatch, SuperNumDevicesMismatch, ChunkBeyondDevice];

    public IReadOnlyList<FindingProducer> Uses { get; } = [];
    public string Reads => "Scan (chunks, devices, dev extents, unreadable blocks), Roots, the volume's devices";
    public string Adds => "nothing";

    public void Run(CheckContext ctx) => new DeviceAccounting(ctx).Run();
}
