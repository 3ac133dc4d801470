using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;

namespace BtrfsRefcheck.Checks;

/// <summary>The accounting btrfs check verifies between the chunk tree, the dev tree and the devices: every chunk
/// stripe has its DEV_EXTENT and the reverse, dev extents do not overlap and lie inside their device, DEV_ITEM
/// bytes_used is the sum of its dev extents, and the superblock's num_devices counts the DEV_ITEMs.</summary>
internal sealed class DeviceAccounting(CheckContext ctx)
{
    private FindingBag Findings => ctx.Findings;

    public void Run()
    {
        var vol = ctx.Volume;
        // The walked chunk tree is the generation being checked (a backup root's when one is used).
        var scan = ctx.Scan;
        var chunks = scan.Chunks;
        var devItems = scan.DevItems;
        var extents = scan.DevExtents;
        // The dev tree's absence of an extent means something only when the dev tree was read in full.
        bool devTreeComplete = ctx.Roots.Any(r => r.Id == ObjectIds.DevTree && r.Source == Trees.RootSource.RootItem)
                               && !scan.Unreadable.Any(u => u.Tree == ObjectIds.DevTree);
        var progress = new ProgressCounter(ctx.Observer, "device accounting", "items", extents.Length + chunks.Chunks.Count + devItems.Count, every: 1024);
        Array.Sort(extents, (a, b) => a.DevId != b.DevId ? a.DevId.CompareTo(b.DevId) : a.Physical.CompareTo(b.Physical));
        var byStripe = new HashSet<(ulong DevId, ulong Physical)>();
        foreach (var e in extents) byStripe.Add((e.DevId, e.Physical));

        // DEV_EXTENT -> chunk
        foreach (var e in extents)
        {
            progress.Add();
            var key = new BtrfsKey(e.DevId, (byte)ItemType.DevExtent, e.Physical);
            var chunk = chunks.Find(e.ChunkOffset);
            bool matches = chunk != null && chunk.Logical == e.ChunkOffset &&
                           chunk.Stripes.Any(s => s.DevId == e.DevId && s.Offset == e.Physical) && chunk.StripeSize == e.Length;
            if (!matches)
                Findings.Add(new Finding(FindingCode.DevExtentNoChunk, Severity.Error,
                    chunk == null || chunk.Logical != e.ChunkOffset
                        ? $"dev extent devid {e.DevId} [{e.Physical}, {e.End}) names chunk {e.ChunkOffset}, which does not exist"
                        : $"dev extent devid {e.DevId} [{e.Physical}, {e.End}) does not match any stripe of chunk {e.ChunkOffset}",
                    Bytenr: e.ChunkOffset, Tree: ObjectIds.DevTree, Slot: e.Slot, Key: key,
                    Expected: chunk == null ? "an existing chunk" : $"a stripe at devid/physical with stripe size {chunk.StripeSize}",
                    Found: $"devid {e.DevId} physical {e.Physical} length {e.Length}"));
        }

        // chunk stripe -> DEV_EXTENT, and stripe inside the device image
        foreach (var c in chunks.Chunks)
        {
            progress.Add();
            foreach (var s in c.Stripes)
            {
                if (devTreeComplete && !byStripe.Contains((s.DevId, s.Offset)))
                    Findings.Add(new Finding(FindingCode.ChunkStripeNoDevExtent, Severity.Error,
                        $"chunk [{c.Logical}, {c.End}) {c.Type.Describe()}: stripe on devid {s.DevId} at {s.Offset} has no DEV_EXTENT",
                        Bytenr: c.Logical, Tree: ObjectIds.ChunkTree, Expected: "a dev extent", Found: "none"));
                // a restored metadump holds metadata only: its file may end before the data chunks' stripes
                if (vol.DeviceById(s.DevId) is { } dev && s.Offset + c.StripeSize > (ulong)dev.Length && !vol.IsRestoredMetadump)
                    Findings.Add(new Finding(FindingCode.ChunkBeyondDevice, Severity.Error,
                        $"chunk [{c.Logical}, {c.End}): stripe on devid {s.DevId} at [{s.Offset}, {s.Offset + c.StripeSize}) lies past the end of {dev.Path} (truncated image?)",
                        Bytenr: c.Logical, Tree: ObjectIds.ChunkTree, Device: dev.Path,
                        Expected: $"<= {dev.Length}", Found: (s.Offset + c.StripeSize).ToString()));
            }
        }

        // per device: overlap, bounds, bytes_used
        foreach (var item in devItems)
        {
            progress.Add();
            ulong sum = 0;
            DevExtentRec? prev = null;
            foreach (var e in extents.Where(x => x.DevId == item.DevId))
            {
                var key = new BtrfsKey(e.DevId, (byte)ItemType.DevExtent, e.Physical);
                sum += e.Length;
                if (prev is { } p && e.Physical < p.End)
                    Findings.Add(new Finding(FindingCode.DevExtentOverlap, Severity.Error,
                        $"dev extent devid {e.DevId} [{e.Physical}, {e.End}) overlaps [{p.Physical}, {p.End})",
                        Bytenr: e.ChunkOffset, Tree: ObjectIds.DevTree, Slot: e.Slot, Key: key, Expected: $">= {p.End}", Found: e.Physical.ToString()));
                if (e.End > item.TotalBytes)
                    Findings.Add(new Finding(FindingCode.DevExtentBeyondDevice, Severity.Error,
                        $"dev extent devid {e.DevId} [{e.Physical}, {e.End}) ends past the device's total_bytes",
                        Bytenr: e.ChunkOffset, Tree: ObjectIds.DevTree, Slot: e.Slot, Key: key, Expected: $"<= {item.TotalBytes}", Found: e.End.ToString()));
                prev = e;
            }
            if (devTreeComplete && sum != item.BytesUsed)
                Findings.Add(new Finding(FindingCode.DevItemBytesUsedMismatch, Severity.Error,
                    $"DEV_ITEM devid {item.DevId}: bytes_used differs from the sum of its dev extents",
                    Tree: ObjectIds.ChunkTree, Key: new BtrfsKey(ObjectIds.DevItems, (byte)ItemType.DevItem, item.DevId),
                    Expected: sum.ToString(), Found: item.BytesUsed.ToString()));
        }
        if (devItems.Count > 0 && (ulong)devItems.Count != vol.Super.NumDevices)
            Findings.Add(new Finding(FindingCode.SuperNumDevicesMismatch, Severity.Error,
                "superblock num_devices differs from the number of DEV_ITEMs in the chunk tree",
                Bytenr: (ulong)vol.ChosenCopy.Offset, Expected: devItems.Count.ToString(), Found: vol.Super.NumDevices.ToString()));
        progress.Finish();
    }
}
