using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace BtrfsRefcheck.Volume;

/// <summary>What <c>statx(2)</c> says about a path: its type, its own device and inode, and for a device node the
/// device number it stands for.</summary>
public readonly record struct FileIdentity(FileKind Kind, uint DevMajor, uint DevMinor, ulong Inode, uint RdevMajor, uint RdevMinor)
{
    /// <summary>"major:minor" of the device a block device node stands for (its st_rdev), as sysfs writes it.</summary>
    public string Rdev => $"{RdevMajor}:{RdevMinor}";
}

public enum FileKind { Regular, BlockDevice, Directory, CharacterDevice, Fifo, Socket, Symlink, Other }

/// <summary>The few Linux system calls .NET does not expose: statx (file type before any open, so a FIFO is never
/// opened), open with O_DIRECT, fcntl. Everything here is read-only: no call takes O_WRONLY or O_RDWR.</summary>
internal static class LinuxNative
{
    private const int AtFdCwd = -100;
    private const uint StatxBasicStats = 0x7ff;
    private const int ENOENT = 2, EACCES = 13, ENOTDIR = 20, EINVAL = 22, ELOOP = 40, ENAMETOOLONG = 36;

    internal const int ORdOnly = 0, ONonBlock = 0x800, OCloexec = 0x80000;
    /// <summary>O_DIRECT differs by architecture (asm-generic 040000, arm/arm64 0200000).</summary>
    internal static int ODirect => RuntimeInformation.ProcessArchitecture is Architecture.Arm64 or Architecture.Arm ? 0x10000 : 0x4000;
    private const int FGetFl = 3, FSetFl = 4;

    [DllImport("libc", EntryPoint = "statx", SetLastError = true)]
    private static extern int statx(int dirfd, string path, int flags, uint mask, byte[] buf);

    [DllImport("libc", EntryPoint = "open", SetLastError = true)]
    private static extern int open(string path, int flags);

    [DllImport("libc", EntryPoint = "fcntl", SetLastError = true)]
    private static extern int fcntl(int fd, int cmd, int arg);

    /// <summary>statx of <paramref name="path"/> (symlinks followed). Null with an errno when it fails.</summary>
    public static FileIdentity? Stat(string path, out int errno) => Statx(AtFdCwd, path, 0, out errno);

    private static FileIdentity? Statx(int dirfd, string path, int flags, out int errno)
    {
        errno = 0;
        var buf = new byte[256];
        try
        {
            if (statx(dirfd, path, flags, StatxBasicStats, buf) != 0)
            {
                errno = Marshal.GetLastPInvokeError();
                return null;
            }
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            errno = -1; // no statx: the caller falls back to what .NET can tell
            return null;
        }
        ushort mode = BinaryPrimitives.ReadUInt16LittleEndian(buf.AsSpan(28));
        var kind = (mode & 0xF000) switch
        {
            0x8000 => FileKind.Regular,
            0x6000 => FileKind.BlockDevice,
            0x4000 => FileKind.Directory,
            0x2000 => FileKind.CharacterDevice,
            0x1000 => FileKind.Fifo,
            0xC000 => FileKind.Socket,
            0xA000 => FileKind.Symlink,
            _ => FileKind.Other,
        };
        uint U32(int at) => BinaryPrimitives.ReadUInt32LittleEndian(buf.AsSpan(at));
        return new FileIdentity(kind, U32(136), U32(140), BinaryPrimitives.ReadUInt64LittleEndian(buf.AsSpan(32)), U32(128), U32(132));
    }

    public static string Describe(int errno) => errno switch
    {
        ENOENT or ENOTDIR => "no such file or device",
        EACCES => "permission denied",
        ELOOP => "too many levels of symbolic links",
        ENAMETOOLONG => "file name too long",
        EINVAL => "invalid argument",
        _ => $"error {errno}",
    };

    public const int EinvalErrno = EINVAL;

    /// <summary>Opens read-only (O_RDONLY | O_CLOEXEC, plus O_DIRECT when asked). O_NONBLOCK is set for the open itself,
    /// so that a path swapped for a FIFO after the type check cannot block us, then cleared. The caller checks the
    /// handle's type again afterwards (<see cref="FdKind"/>).</summary>
    public static SafeFileHandle? OpenReadOnly(string path, bool direct, out int errno)
    {
        int flags = ORdOnly | OCloexec | ONonBlock | (direct ? ODirect : 0);
        int fd = open(path, flags);
        if (fd < 0)
        {
            errno = Marshal.GetLastPInvokeError();
            return null;
        }
        int fl = fcntl(fd, FGetFl, 0);
        if (fl >= 0) fcntl(fd, FSetFl, fl & ~ONonBlock);
        errno = 0;
        return new SafeFileHandle(fd, ownsHandle: true);
    }

    /// <summary>What an open descriptor refers to (statx with AT_EMPTY_PATH).</summary>
    public static FileIdentity? FdIdentity(SafeFileHandle h) => Statx((int)h.DangerousGetHandle(), "", AtEmptyPath, out _);

    private const int AtEmptyPath = 0x1000;
}
