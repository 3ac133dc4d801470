using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Volume;

namespace BtrfsRefcheck.Cli;

internal static class VolumeFactory
{
    /// <summary>Opens the volume; a mounted one (see <see cref="MountDetector"/>) is read with O_DIRECT so that no
    /// stale page-cache block is seen. <paramref name="acceptUnknownIncompat"/>: for showing the superblock only.</summary>
    public static BtrfsVolume Open(CommonOptions o, FindingBag findings, bool acceptUnknownIncompat = false)
    {
        var paths = Paths(o);
        bool mounted = MountDetector.Find(paths).Count > 0;
        return BtrfsVolume.Open(paths, Options(o, mounted, acceptUnknownIncompat), findings);
    }

    public static List<string> Paths(CommonOptions o)
    {
        var paths = o.Devices.ToList();
        if (paths.Count == 0) throw new UsageException("no device given");
        if (o.Super is { } s && (s < 0 || s > 2)) throw new UsageException($"--super {s}: copies are numbered 0 to 2");
        if (o.BackupRoot is { } b && (b < 0 || b > 3)) throw new UsageException($"--backup-root {b}: backup roots are numbered 0 to 3");
        return paths;
    }

    public static VolumeOptions Options(CommonOptions o, bool direct = false, bool acceptUnknownIncompat = false) =>
        new() { SuperMirror = o.Super, BackupRoot = o.BackupRoot, DirectIo = direct, AcceptUnknownIncompat = acceptUnknownIncompat, ZoneSize = o.ZoneSize };
}
