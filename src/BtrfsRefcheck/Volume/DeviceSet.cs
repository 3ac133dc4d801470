using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;

namespace BtrfsRefcheck.Volume;

/// <summary>The device set: the paths given, assembled by fsid and devid (a sprout's seed devices keep their own
/// fsid), then checked against the chunk tree's DEV_ITEMs.</summary>
internal static class DeviceSet
{
    /// <summary>Every path must belong to one filesystem, each devid once. A sprout's seed devices keep their own fsid
    /// (superblock flag SEEDING); the filesystem checked is the one that is not a seed (a seed given alone is checked as
    /// itself). Returns its fsid, the devices by devid, and the seeds.</summary>
    internal static (Guid Fsid, Dictionary<ulong, BlockDevice> ByDevId, List<(BlockDevice Dev, Superblock Super)> Seeds) Assemble(
        List<(BlockDevice Dev, SuperblockCopy Copy)> perDevice)
    {
        var main = perDevice.FirstOrDefault(p => (p.Copy.Superblock!.Flags & Superblock.FlagSeeding) == 0);
        if (main.Dev == null) main = perDevice[0];
        var fsid = main.Copy.Superblock!.Fsid;
        var byDevId = new Dictionary<ulong, BlockDevice>();
        var seeds = new List<(BlockDevice Dev, Superblock Super)>();
        foreach (var (dev, copy) in perDevice)
        {
            var sb = copy.Superblock!;
            if (sb.Fsid != fsid)
            {
                if ((sb.Flags & Superblock.FlagSeeding) == 0)
                    throw new VolumeException($"{dev.Path}: holds another filesystem (fsid {sb.Fsid}), not {fsid} of {main.Dev.Path}");
                seeds.Add((dev, sb));
            }
            ulong devid = sb.DevItem.DevId;
            if (byDevId.TryGetValue(devid, out var other))
                throw new VolumeException($"{dev.Path}: devid {devid} was already given as {other.Path}");
            byDevId[devid] = dev;
        }
        return (fsid, byDevId, seeds);
    }

    /// <summary>The devices the chunk tree lists against the devices given: missing, unknown, too small.</summary>
    internal static void CheckDevices(BtrfsVolume vol)
    {
        if (vol.Metadump != null) return; // the dump stands for every device; their sizes are not in it (NotCheckable)
        if (vol.DevItems.Count == 0)
        {
            // The chunk tree is unreadable (perhaps it lives on the missing device): name the missing devices from
            // the chunks we do know (the sys_chunk_array's at least) and from the superblock's device count.
            var known = new Dictionary<ulong, Guid>();
            foreach (var c in vol.Chunks.Chunks)
                foreach (var st in c.Stripes)
                    if (!vol.DevicesById.ContainsKey(st.DevId)) known.TryAdd(st.DevId, st.DevUuid);
            vol.MissingDevices = known.Select(k => new DevItemInfo(k.Key, k.Value, vol.Super.Fsid, 0, 0)).ToList();
            foreach (var (devid, uuid) in known)
                vol.Findings.Add(new Finding(FindingCode.DeviceMissing, Severity.Error,
                    $"device devid {devid} uuid {uuid} is missing (named by the chunk map; the chunk tree's device list could not be read)"));
            if ((ulong)vol.DevicesById.Count < vol.Super.NumDevices && known.Count < (int)vol.Super.NumDevices - vol.DevicesById.Count)
                vol.Findings.Add(new Finding(FindingCode.DeviceMissing, Severity.Error,
                    $"the superblock counts {vol.Super.NumDevices} devices but {vol.DevicesById.Count} were given; the chunk tree that would name the others is unreadable",
                    Expected: vol.Super.NumDevices.ToString(), Found: vol.DevicesById.Count.ToString()));
            return;
        }
        var missing = vol.DevItems.Where(d => !vol.DevicesById.ContainsKey(d.DevId)).ToList();
        vol.MissingDevices = missing;
        foreach (var d in missing)
        {
            bool needed = vol.Chunks.Chunks.Any(c => c.Stripes.Any(s => s.DevId == d.DevId));
            vol.Findings.Add(new Finding(FindingCode.DeviceMissing, needed ? Severity.Error : Severity.Warning,
                $"device devid {d.DevId} uuid {d.Uuid} is missing" + (needed ? "; reads fall back to other copies where the profile has them" : "")));
        }
        foreach (var (devid, dev) in vol.DevicesById)
        {
            var item = vol.DevItems.FirstOrDefault(d => d.DevId == devid);
            if (item == null)
                vol.Findings.Add(new Finding(FindingCode.DeviceDuplicate, Severity.Error,
                    $"{dev.Path} claims devid {devid}, which no DEV_ITEM of the chunk tree lists", Device: dev.Path));
            else if ((ulong)dev.Length < item.TotalBytes && !vol.IsRestoredMetadump)
                vol.Findings.Add(new Finding(FindingCode.DeviceSizeMismatch, Severity.Error,
                    $"device {dev.Path} (devid {devid}) is smaller than its DEV_ITEM says", Device: dev.Path,
                    Expected: $">= {item.TotalBytes}", Found: dev.Length.ToString()));
        }
    }

}
