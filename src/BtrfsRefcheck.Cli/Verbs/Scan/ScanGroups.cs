using BtrfsRefcheck.Volume;

namespace BtrfsRefcheck.Cli.Verbs.Scan;

/// <summary>One filesystem to check: its devices (a dump: the one file), or why it cannot be checked.</summary>
internal sealed record FsGroup(Guid? Fsid, IReadOnlyList<string> Devices, string? CannotCheck = null, bool IsDump = false)
{
    /// <summary>Seed devices found for this sprout when it was opened (added to <see cref="Devices"/> for the check).</summary>
    public IReadOnlyList<string> SeedDevices { get; init; } = [];
}

/// <summary>Devices into filesystems, by the fsid and devid of their superblocks. A seed's devices form a filesystem
/// of their own (a seed is mountable alone), and also join each sprout whose chunk tree lists them: that link needs the
/// sprout's DEV_ITEMs, so it is made when the sprout is opened (<see cref="SeedsOf"/>).</summary>
internal static class ScanGroups
{
    /// <summary>The filesystems among <paramref name="entries"/>, ordered by their first device path.
    /// <list type="bullet">
    /// <item>Devices with one fsid, each devid once: one filesystem.</item>
    /// <item>A devid met twice (copies of an image): copies of a single-device filesystem are each checked on their own;
    /// for a multi-device one the devices are split by superblock generation, and a set that still holds a devid twice
    /// cannot be checked (which copy belongs is not for the scan to guess).</item>
    /// <item>A device whose every superblock copy is bad, and every dump: a filesystem of its own.</item>
    /// </list></summary>
    public static List<FsGroup> Group(IEnumerable<ScanEntry> entries)
    {
        var groups = new List<FsGroup>();
        var list = entries.ToList();
        foreach (var byFsid in list.OfType<BtrfsDevice>().GroupBy(d => d.Fsid))
        {
            var devs = byFsid.ToList();
            if (UniqueDevIds(devs)) { groups.Add(Set(byFsid.Key, devs)); continue; }
            if (devs.All(d => d.NumDevices == 1))
            {
                groups.AddRange(devs.Select(d => Set(byFsid.Key, [d])));
                continue;
            }
            foreach (var byGen in devs.GroupBy(d => d.Generation))
            {
                var set = byGen.ToList();
                if (UniqueDevIds(set)) groups.Add(Set(byFsid.Key, set));
                else
                {
                    var twice = set.GroupBy(d => d.DevId).First(g => g.Count() > 1);
                    groups.Add(new FsGroup(byFsid.Key, set.Select(d => d.Path).ToList(),
                        CannotCheck: $"devid {twice.Key} of this filesystem (generation {byGen.Key}) was found twice ({string.Join(", ", twice.Select(d => d.Path))}): give the devices of one set to `check`"));
                }
            }
        }
        foreach (var d in list.OfType<DamagedDevice>()) groups.Add(new FsGroup(d.Fsid, [d.Path], CannotCheck: d.Reason));
        foreach (var d in list.OfType<DumpFile>()) groups.Add(new FsGroup(null, [d.Path], IsDump: true));
        return groups.OrderBy(g => g.Devices[0], StringComparer.Ordinal).ToList();
    }

    private static bool UniqueDevIds(List<BtrfsDevice> devs) => devs.Select(d => d.DevId).Distinct().Count() == devs.Count;

    private static FsGroup Set(Guid fsid, List<BtrfsDevice> devs) =>
        new(fsid, devs.OrderBy(d => d.DevId).ThenBy(d => d.Path, StringComparer.Ordinal).Select(d => d.Path).ToList());

    /// <summary>The seed devices among <paramref name="entries"/> that a sprout's chunk tree names but that were not given
    /// with it: matched by devid and device uuid (random, so a match is the device itself), each the first path found.</summary>
    public static List<string> SeedsOf(IEnumerable<DevItemInfo> missing, IEnumerable<ScanEntry> entries)
    {
        var seeds = entries.OfType<BtrfsDevice>().Where(d => d.Seeding).ToList();
        var found = new List<string>();
        foreach (var m in missing)
            if (seeds.FirstOrDefault(s => s.DevId == m.DevId && s.DevUuid == m.Uuid) is { } s && !found.Contains(s.Path))
                found.Add(s.Path);
        return found;
    }
}
