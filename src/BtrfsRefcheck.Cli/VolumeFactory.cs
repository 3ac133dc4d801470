using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Volume;

namespace BtrfsRefcheck.Cli;

internal static class VolumeFactory
{
    public static BtrfsVolume Open(CommonOptions o, FindingBag findings, bool acceptUnknownIncompat = false)
    {
        var paths = o.Devices.ToList();
        if (paths.Count == 0) throw new UsageException("no device given");
        if (o.Super is { } s && (s < 0 || s > 2)) throw new UsageException($"--super {s}: copies are numbered 0 to 2");
        if (o.BackupRoot is { } b && (b < 0 || b > 3)) throw new UsageException($"--backup-root {b}: backup roots are numbered 0 to 3");
        try
        {
            return BtrfsVolume.Open(paths, new VolumeOptions { SuperMirror = o.Super, BackupRoot = o.BackupRoot, AcceptUnknownIncompat = acceptUnknownIncompat, ZoneSize = o.ZoneSize }, findings);
        }
        // The library says "backup root 2", "superblock copy 1"; the user typed a flag: name it.
        catch (VolumeException e) when (e.BackupRoot is { } n)
        {
            throw new VolumeException(e.Message.Replace($"backup root {n}:", $"--backup-root {n}:"));
        }
        catch (VolumeException e) when (e.SuperblockCopy is { } n)
        {
            throw new VolumeException(e.Message.Replace($"superblock copy {n}:", $"--super {n}:"));
        }
    }
}
