namespace BtrfsRefcheck.Volume;

/// <summary>A path given to the checker that belongs to a mounted btrfs: <see cref="Device"/> is the mounted block
/// device (the path itself, or the loop device an image file backs: then <see cref="ViaLoop"/>), mounted at
/// <see cref="MountPoints"/> (every mount of that filesystem, subvolume mounts included).</summary>
public sealed record MountedPath(string Path, string Device, string Rdev, IReadOnlyList<string> MountPoints, bool ViaLoop);

/// <summary>Finds which of the given paths belong to a mounted btrfs. Everything is matched by device number
/// (st_rdev, "major:minor"), never by path string: a mounted btrfs lists its devices in
/// <c>/sys/fs/btrfs/FSID/devices/*/dev</c> (the directory exists only while mounted); <c>/proc/self/mountinfo</c>
/// names the mount points (its major:minor column is btrfs' anonymous device, so the mount source is stat'ed
/// instead). An image file counts as mounted when a loop device whose <c>loop/backing_file</c> is the same file
/// (same st_dev and inode) is one of those devices. Reads /proc and /sys only; takes well under a millisecond.</summary>
public static class MountDetector
{
    public static IReadOnlyList<MountedPath> Find(IReadOnlyList<string> paths, string proc = "/proc", string sys = "/sys")
    {
        var mountedRdevs = MountedBtrfsDevices(sys);          // rdev -> fsid directory
        var mountPoints = BtrfsMountPoints(proc);             // rdev of the mount source -> mount points
        if (mountedRdevs.Count == 0 && mountPoints.Count == 0) return [];
        // every mount point of a filesystem, whichever of its devices the mount names
        IReadOnlyList<string> PointsOf(string rdev)
        {
            var group = mountedRdevs.TryGetValue(rdev, out var fsid)
                ? mountedRdevs.Where(kv => kv.Value == fsid).Select(kv => kv.Key).ToHashSet()
                : [rdev];
            return mountPoints.Where(kv => group.Contains(kv.Key)).SelectMany(kv => kv.Value).Distinct().Order(StringComparer.Ordinal).ToList();
        }
        bool Mounted(string rdev) => mountedRdevs.ContainsKey(rdev) || mountPoints.ContainsKey(rdev);

        var result = new List<MountedPath>();
        List<(string Name, string Rdev, FileIdentity Backing)>? loops = null;
        foreach (var path in paths)
        {
            if (LinuxNative.Stat(path, out _) is not { } id) continue; // opening reports it
            if (id.Kind == FileKind.BlockDevice)
            {
                if (Mounted(id.Rdev)) result.Add(new MountedPath(path, DeviceName(sys, id.Rdev) ?? path, id.Rdev, PointsOf(id.Rdev), false));
            }
            else if (id.Kind == FileKind.Regular)
            {
                loops ??= LoopBackings(sys);
                foreach (var (name, rdev, backing) in loops)
                    if (backing.DevMajor == id.DevMajor && backing.DevMinor == id.DevMinor && backing.Inode == id.Inode && Mounted(rdev))
                    {
                        result.Add(new MountedPath(path, "/dev/" + name, rdev, PointsOf(rdev), true));
                        break;
                    }
            }
        }
        return result;
    }

    /// <summary>rdev ("7:0") -> fsid, for every device of every mounted btrfs.</summary>
    private static Dictionary<string, string> MountedBtrfsDevices(string sys)
    {
        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        try
        {
            var root = Path.Combine(sys, "fs/btrfs");
            if (!Directory.Exists(root)) return map;
            foreach (var fsDir in Directory.EnumerateDirectories(root))
            {
                var devs = Path.Combine(fsDir, "devices");
                if (!Directory.Exists(devs)) continue;
                foreach (var dev in Directory.EnumerateFileSystemEntries(devs))
                    if (ReadTrimmed(Path.Combine(dev, "dev")) is { } rdev) map[rdev] = Path.GetFileName(fsDir);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        return map;
    }

    /// <summary>rdev of each btrfs mount's source -> its mount points, from mountinfo.</summary>
    private static Dictionary<string, List<string>> BtrfsMountPoints(string proc)
    {
        var map = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        string[] lines;
        try { lines = File.ReadAllLines(Path.Combine(proc, "self/mountinfo")); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return map; }
        foreach (var line in lines)
        {
            int sep = line.IndexOf(" - ", StringComparison.Ordinal);
            if (sep < 0) continue;
            var left = line[..sep].Split(' ');
            var right = line[(sep + 3)..].Split(' ');
            if (left.Length < 5 || right.Length < 2 || right[0] != "btrfs") continue;
            if (LinuxNative.Stat(Unescape(right[1]), out _) is not { Kind: FileKind.BlockDevice } src) continue;
            if (!map.TryGetValue(src.Rdev, out var list)) map[src.Rdev] = list = [];
            list.Add(Unescape(left[4]));
        }
        return map;
    }

    /// <summary>Every attached loop device: name, rdev, and the identity of its backing file.</summary>
    private static List<(string, string, FileIdentity)> LoopBackings(string sys)
    {
        var list = new List<(string, string, FileIdentity)>();
        try
        {
            var block = Path.Combine(sys, "block");
            if (!Directory.Exists(block)) return list;
            foreach (var dir in Directory.EnumerateFileSystemEntries(block, "loop*"))
            {
                var backing = ReadTrimmed(Path.Combine(dir, "loop/backing_file"));
                var rdev = ReadTrimmed(Path.Combine(dir, "dev"));
                if (backing == null || rdev == null) continue;
                if (LinuxNative.Stat(backing, out _) is { } id) list.Add((Path.GetFileName(dir), rdev, id));
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        return list;
    }

    private static string? DeviceName(string sys, string rdev)
    {
        try
        {
            var target = new DirectoryInfo(Path.Combine(sys, "dev/block", rdev)).ResolveLinkTarget(true);
            return target == null ? null : "/dev/" + target.Name;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
    }

    private static string? ReadTrimmed(string file)
    {
        try { return File.Exists(file) ? File.ReadAllText(file).Trim() : null; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
    }

    /// <summary>mountinfo escapes space, tab, newline and backslash as \ooo.</summary>
    internal static string Unescape(string s)
    {
        if (!s.Contains('\\')) return s;
        var sb = new System.Text.StringBuilder(s.Length);
        for (int i = 0; i < s.Length; i++)
        {
            if (s[i] == '\\' && IsOctal(s, i + 1))
            {
                sb.Append((char)Convert.ToInt32(s.Substring(i + 1, 3), 8));
                i += 3;
            }
            else sb.Append(s[i]);
        }
        return sb.ToString();
    }

    private static bool IsOctal(string s, int at) =>
        at + 3 <= s.Length && s[at] is >= '0' and <= '7' && s[at + 1] is >= '0' and <= '7' && s[at + 2] is >= '0' and <= '7';
}
