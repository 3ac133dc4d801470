using System.Net.Sockets;
using BtrfsRefcheck.Cli;
using BtrfsRefcheck.Volume;

namespace BtrfsRefcheck.Tests.Live;

/// <summary>Only regular files and block devices are opened. A FIFO, a socket or a character device is refused in
/// one line with exit 3, from its type (statx) before any open: opening a FIFO for reading would block until a
/// writer appears, which is how a FIFO used to hang the checker.</summary>
public class PathTypeTests
{
    private static (int Exit, string Stdout, string Stderr) RunBounded(params string[] args)
    {
        var (o, e) = (new StringWriter(), new StringWriter());
        var task = Task.Run(() => Program.Run(args, o, e));
        Assert.True(task.Wait(TimeSpan.FromSeconds(20)), $"'{string.Join(' ', args)}' hung");
        return (task.Result, o.ToString(), e.ToString());
    }

    private static void AssertRefused(string path, string what)
    {
        foreach (var verb in new[] { "check", "dump-super", "dump-tree" })
        {
            var (exit, stdout, stderr) = RunBounded(verb, path);
            Assert.Equal(ExitCodes.CannotCheck, exit);
            var line = Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
            Assert.Equal($"btrfs-refcheck: {path}: {what}, not an image or block device", line);
            Assert.Equal("", stdout);
        }
        Assert.Throws<VolumeException>(() => BlockDevice.Open(path, direct: true));
    }

    [Fact]
    public void Fifo_IsRefusedWithoutOpening()
    {
        var dir = Directory.CreateTempSubdirectory("btrfs-refcheck-fifo-");
        try
        {
            var fifo = Path.Combine(dir.FullName, "pipe");
            Oracle.Progs.Run("mkfifo", fifo);
            AssertRefused(fifo, "is a FIFO (named pipe)");
        }
        finally { dir.Delete(true); }
    }

    [Fact]
    public void Socket_IsRefused()
    {
        var dir = Directory.CreateTempSubdirectory("btrfs-refcheck-sock-");
        try
        {
            var path = Path.Combine(dir.FullName, "sock");
            using var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            s.Bind(new UnixDomainSocketEndPoint(path));
            AssertRefused(path, "is a socket");
        }
        finally { dir.Delete(true); }
    }

    [Fact]
    public void CharacterDevice_IsRefused() => AssertRefused("/dev/null", "is a character device");

    [Fact]
    public void SymlinkToFifo_IsRefusedByWhatItPointsTo()
    {
        var dir = Directory.CreateTempSubdirectory("btrfs-refcheck-fifo-");
        try
        {
            var fifo = Path.Combine(dir.FullName, "pipe");
            Oracle.Progs.Run("mkfifo", fifo);
            var link = Path.Combine(dir.FullName, "link.img");
            File.CreateSymbolicLink(link, fifo);
            AssertRefused(link, "is a FIFO (named pipe)");
        }
        finally { dir.Delete(true); }
    }

    [Fact]
    public void Directory_AndMissingPath_KeepTheirMessages()
    {
        var dir = Directory.CreateTempSubdirectory("btrfs-refcheck-dir-");
        try
        {
            var (exit, _, stderr) = RunBounded("check", dir.FullName);
            Assert.Equal(ExitCodes.CannotCheck, exit);
            Assert.Equal($"btrfs-refcheck: {dir.FullName}: is a directory, not an image or block device", stderr.Trim());
            var missing = Path.Combine(dir.FullName, "nope.img");
            (exit, _, stderr) = RunBounded("check", missing);
            Assert.Equal(ExitCodes.CannotCheck, exit);
            Assert.Equal($"btrfs-refcheck: {missing}: no such file or device", stderr.Trim());
        }
        finally { dir.Delete(true); }
    }
}
