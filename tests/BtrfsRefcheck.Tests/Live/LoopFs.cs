using System.Diagnostics;

namespace BtrfsRefcheck.Tests.Live;

/// <summary>Why loop-mount tests cannot run here (null: they can): they need root, loop devices, btrfs in the
/// kernel and the tools.</summary>
internal static class LiveEnv
{
    public static string? SkipReason => skip.Value;

    private static readonly Lazy<string?> skip = new(() =>
    {
        if (!OperatingSystem.IsLinux()) return "not Linux";
        if (Environment.UserName != "root") return "not root (loop devices and mount need root)";
        if (!File.Exists("/dev/loop-control")) return "no loop devices (/dev/loop-control is missing)";
        try
        {
            if (!File.ReadAllLines("/proc/filesystems").Any(l => l.Trim().EndsWith("btrfs", StringComparison.Ordinal)))
                return "the kernel has no btrfs (not in /proc/filesystems)";
        }
        catch (IOException) { return "/proc/filesystems unreadable"; }
        foreach (var tool in new[] { "mkfs.btrfs", "btrfs", "losetup", "mount", "umount", "sync" })
            if (Oracle.Progs.Find(tool) == null) return $"{tool} not installed";
        return null;
    });
}

/// <summary>A fact that loop-mounts a btrfs: skipped, with the reason, where that is impossible.</summary>
public sealed class MountFactAttribute : FactAttribute
{
    public MountFactAttribute()
    {
        if (LiveEnv.SkipReason is { } why) Skip = "cannot loop-mount btrfs here: " + why;
    }
}

/// <summary>Tests that mount run one at a time (they share two cores and the loop devices with others).</summary>
[CollectionDefinition("loop mounts", DisableParallelization = true)]
public sealed class LoopMountCollection;

/// <summary>A fresh btrfs (mkfs.btrfs on a sparse file: its own random fsid, so it never clashes with another
/// mounted image) on a loop device of its own (<c>losetup -f --show</c>), mounted in a private directory. Dispose
/// stops the writer, unmounts, forgets and detaches only this loop device, and removes the files.</summary>
internal sealed class LoopFs : IDisposable
{
    public string Dir { get; }
    public string Image { get; set; }
    public string MountPoint { get; }
    public string? Loop { get; private set; }
    public bool Mounted { get; private set; }
    private Process? _writer;

    private LoopFs(string dir, string image)
    {
        Dir = dir;
        Image = image;
        MountPoint = Path.Combine(dir, "mnt");
        Directory.CreateDirectory(MountPoint);
    }

    /// <summary>Further devices of a multi-device filesystem (<see cref="CreateRaid1"/>): image and loop device.</summary>
    public List<(string Image, string Loop)> Extra { get; } = [];

    public static LoopFs Create(long size = 512L << 20)
    {
        var dir = Directory.CreateTempSubdirectory("btrfs-refcheck-live-").FullName;
        var image = Path.Combine(dir, "fs.img");
        using (var f = File.Create(image)) f.SetLength(size);
        var fs = new LoopFs(dir, image);
        try
        {
            Sh($"mkfs.btrfs -q -f '{image}'");
            fs.AttachAndMount();
            return fs;
        }
        catch
        {
            fs.Dispose();
            throw;
        }
    }

    /// <summary>Two devices, metadata and data RAID1, each on its own loop device; mounted by the first.</summary>
    public static LoopFs CreateRaid1(long size = 512L << 20)
    {
        var dir = Directory.CreateTempSubdirectory("btrfs-refcheck-live-").FullName;
        var image = Path.Combine(dir, "dev1.img");
        var image2 = Path.Combine(dir, "dev2.img");
        foreach (var p in new[] { image, image2 }) using (var f = File.Create(p)) f.SetLength(size);
        var fs = new LoopFs(dir, image);
        try
        {
            Sh($"mkfs.btrfs -q -f -m raid1 -d raid1 '{image}' '{image2}'");
            var loop2 = Sh($"losetup -f --show '{image2}'").Trim();
            fs.Extra.Add((image2, loop2));
            ShRaw($"btrfs device scan '{loop2}'");
            fs.AttachAndMount();
            return fs;
        }
        catch
        {
            fs.Dispose();
            throw;
        }
    }

    public void AttachAndMount()
    {
        Loop = Sh($"losetup -f --show '{Image}'").Trim();
        Sh($"mount -t btrfs '{Loop}' '{MountPoint}'");
        Mounted = true;
    }

    public void UnmountAndDetach()
    {
        StopWriter();
        if (Mounted)
        {
            ShRaw($"sync -f '{MountPoint}'");
            for (int i = 0; i < 10 && ShRaw($"umount '{MountPoint}'").Code != 0; i++) Thread.Sleep(300);
            if (ShRaw($"mountpoint -q '{MountPoint}'").Code == 0) ShRaw($"umount -l '{MountPoint}'");
            Mounted = false;
        }
        if (Loop != null)
        {
            ShRaw($"btrfs device scan --forget '{Loop}'");
            ShRaw($"losetup -d '{Loop}'");
            Loop = null;
        }
        foreach (var (_, loop) in Extra)
        {
            ShRaw($"btrfs device scan --forget '{loop}'");
            ShRaw($"losetup -d '{loop}'");
        }
        Extra.Clear();
    }

    /// <summary>Runs <paramref name="script"/> in bash in the background (argument $1: the mount point).</summary>
    public void StartWriter(string script)
    {
        var psi = new ProcessStartInfo("bash") { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add(script);
        psi.ArgumentList.Add("writer");
        psi.ArgumentList.Add(MountPoint);
        _writer = Process.Start(psi)!;
        _writer.OutputDataReceived += (_, _) => { };
        _writer.ErrorDataReceived += (_, _) => { };
        _writer.BeginOutputReadLine();
        _writer.BeginErrorReadLine();
    }

    public bool WriterRunning => _writer is { HasExited: false };

    public void StopWriter()
    {
        if (_writer == null) return;
        try { if (!_writer.HasExited) _writer.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
        _writer.WaitForExit(10_000);
        _writer.Dispose();
        _writer = null;
    }

    public void Dispose()
    {
        try { UnmountAndDetach(); }
        finally
        {
            if (!Mounted)
                try { Directory.Delete(Dir, recursive: true); } catch (IOException) { }
        }
    }

    public static string Sh(string command)
    {
        var (code, stdout, stderr) = ShRaw(command);
        if (code != 0) throw new InvalidOperationException($"'{command}' exited {code}: {stderr.Trim()}");
        return stdout;
    }

    public static (int Code, string Stdout, string Stderr) ShRaw(string command) =>
        Oracle.Progs.RunRaw("bash", TimeSpan.FromSeconds(120), "-c", command);
}
