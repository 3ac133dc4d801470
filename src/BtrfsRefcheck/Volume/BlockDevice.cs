using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace BtrfsRefcheck.Volume;

/// <summary>An image file or block device opened read-only. The descriptor is opened O_RDONLY: nothing in this
/// program can write through it. Only regular files and block devices are opened; the type is checked with statx
/// before the open (a FIFO would block an open for reading) and again on the open descriptor.
/// <para>With <c>direct</c> (a mounted filesystem, see <see cref="MountDetector"/>) the descriptor is opened
/// O_DIRECT and every read goes to the device in aligned pieces through an aligned buffer: a mounted btrfs writes
/// its tree blocks with bios that bypass the block device's page cache, so a buffered read can return a stale block.
/// Where the device or file refuses O_DIRECT, reads are buffered and <see cref="DirectIoRefused"/> says why.</para></summary>
public sealed class BlockDevice : IDisposable
{
    private readonly SafeFileHandle _handle;
    private readonly int _align;

    public string Path { get; }
    public long Length { get; }

    /// <summary>Type, device and inode of the path (null where statx is unavailable).</summary>
    public FileIdentity? Identity { get; }

    /// <summary>Reads bypass the page cache (O_DIRECT).</summary>
    public bool DirectIo { get; }

    /// <summary>Direct I/O was asked for but refused: why (reads are then buffered). Null otherwise.</summary>
    public string? DirectIoRefused { get; }

    private BlockDevice(string path, SafeFileHandle handle, long length, FileIdentity? identity, int align, string? refused)
    {
        Path = path;
        _handle = handle;
        Length = length;
        Identity = identity;
        _align = align;
        DirectIo = align > 0;
        DirectIoRefused = refused;
    }

    /// <summary>Opens <paramref name="path"/> read-only with buffered reads. Throws <see cref="VolumeException"/> with a one-line reason.</summary>
    public static BlockDevice Open(string path) => Open(path, direct: false);

    /// <summary>Opens <paramref name="path"/> read-only; with <paramref name="direct"/>, O_DIRECT (falling back to
    /// buffered reads where refused). Throws <see cref="VolumeException"/> with a one-line reason.</summary>
    public static BlockDevice Open(string path, bool direct)
    {
        var id = CheckType(path);
        SafeFileHandle? h = null;
        string? refused = null;
        int align = 0;
        if (direct)
        {
            h = LinuxNative.OpenReadOnly(path, direct: true, out int derr);
            if (h == null && derr != LinuxNative.EinvalErrno) throw OpenFailed(path, derr);
            if (h == null) refused = $"{path}: O_DIRECT refused (invalid argument); reading through the page cache";
            else
            {
                align = DirectAlignment(id);
                if (!ProbeDirect(h, align, out string? why))
                {
                    h.Dispose();
                    h = null;
                    align = 0;
                    refused = $"{path}: O_DIRECT reads fail ({why}); reading through the page cache";
                }
            }
        }
        if (h == null)
        {
            h = LinuxNative.OpenReadOnly(path, direct: false, out int err);
            if (h == null) throw OpenFailed(path, err);
        }
        try
        {
            if (LinuxNative.FdIdentity(h) is { } opened && opened.Kind is not (FileKind.Regular or FileKind.BlockDevice))
                throw new VolumeException($"{path}: {KindName(opened.Kind)}, not an image or block device");
            long length;
            try
            {
                length = RandomAccess.GetLength(h);
                if (length == 0) length = BlockDeviceSize(path, id) ?? 0;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException)
            {
                throw new VolumeException($"{path}: cannot determine size: {e.Message}");
            }
            return new BlockDevice(path, h, length, id, align, refused);
        }
        catch
        {
            h.Dispose();
            throw;
        }
    }

    /// <summary>What <paramref name="path"/> is (symbolic links followed), without opening it: null when it does not
    /// exist or cannot be examined (<paramref name="problem"/> says why), or where statx is unavailable (problem null).
    /// For callers that walk directories and must pass over FIFOs and character devices before any open.</summary>
    public static FileKind? KindOf(string path, out string? problem)
    {
        problem = null;
        var id = LinuxNative.Stat(path, out int errno);
        if (id != null) return id.Value.Kind;
        if (errno != -1) problem = OpenFailed(path, errno).Message;
        return null;
    }

    /// <summary>Refuses anything but a regular file or a block device, before any open.</summary>
    private static FileIdentity? CheckType(string path)
    {
        var id = LinuxNative.Stat(path, out int errno);
        if (id == null)
        {
            if (errno == -1) // no statx here: what .NET can tell
            {
                if (Directory.Exists(path)) throw new VolumeException($"{path}: is a directory, not an image or block device");
                return null;
            }
            throw OpenFailed(path, errno);
        }
        if (id.Value.Kind is FileKind.Regular or FileKind.BlockDevice) return id;
        throw new VolumeException($"{path}: {KindName(id.Value.Kind)}, not an image or block device");
    }

    private static string KindName(FileKind k) => k switch
    {
        FileKind.Directory => "is a directory",
        FileKind.Fifo => "is a FIFO (named pipe)",
        FileKind.Socket => "is a socket",
        FileKind.CharacterDevice => "is a character device",
        _ => "is neither a regular file nor a block device",
    };

    private static VolumeException OpenFailed(string path, int errno) => errno switch
    {
        2 or 20 => new VolumeException($"{path}: no such file or device"),
        13 or 1 => new VolumeException($"{path}: permission denied"),
        _ => new VolumeException($"{path}: cannot open: {LinuxNative.Describe(errno)}"),
    };

    /// <summary>Offsets, lengths and buffer addresses of O_DIRECT reads are multiples of this: the device's logical
    /// block size, at least 4096 (which also satisfies every filesystem holding an image file).</summary>
    private static int DirectAlignment(FileIdentity? id)
    {
        int lbs = 0;
        if (id is { Kind: FileKind.BlockDevice } d)
            try { lbs = int.Parse(File.ReadAllText($"/sys/dev/block/{d.Rdev}/queue/logical_block_size").Trim()); }
            catch (Exception e) when (e is IOException or FormatException or UnauthorizedAccessException) { }
        return Math.Max(4096, lbs > 0 && int.IsPow2(lbs) ? lbs : 4096);
    }

    private static bool ProbeDirect(SafeFileHandle h, int align, out string? why)
    {
        why = null;
        try
        {
            RandomAccess.Read(h, AlignedBuffer.Get(align, align), 0);
            return true;
        }
        catch (IOException e)
        {
            why = e.Message;
            return false;
        }
    }

    /// <summary>Size of a Linux block device from sysfs (stat reports 0 for block devices).</summary>
    private static long? BlockDeviceSize(string path, FileIdentity? id)
    {
        try
        {
            string sys;
            if (id is { Kind: FileKind.BlockDevice } d) sys = $"/sys/dev/block/{d.Rdev}/size";
            else
            {
                string real = new FileInfo(path).LinkTarget is { } t ? System.IO.Path.GetFullPath(t, System.IO.Path.GetDirectoryName(path)!) : path;
                sys = $"/sys/class/block/{System.IO.Path.GetFileName(real)}/size";
            }
            if (!File.Exists(sys)) return null;
            return long.Parse(File.ReadAllText(sys).Trim()) * 512;
        }
        catch (Exception e) when (e is IOException or FormatException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>Reads up to dest.Length bytes at <paramref name="offset"/>; returns the count read (short at the end of the device).</summary>
    public int Read(long offset, Span<byte> dest)
    {
        if (offset < 0 || offset >= Length) return 0;
        if (DirectIo) return ReadDirect(offset, dest);
        int total = 0;
        while (total < dest.Length)
        {
            int n = RandomAccess.Read(_handle, dest[total..], offset + total);
            if (n <= 0) break;
            total += n;
        }
        return total;
    }

    /// <summary>Largest single O_DIRECT read; longer requests are read piece by piece.</summary>
    private const int MaxDirectPiece = 1 << 20;

    /// <summary>O_DIRECT: each piece is widened to aligned boundaries, read into this thread's aligned buffer and the
    /// requested bytes copied out (one memcpy; the reads themselves dominate).</summary>
    private int ReadDirect(long offset, Span<byte> dest)
    {
        long mask = _align - 1;
        int total = 0;
        while (total < dest.Length)
        {
            long pos = offset + total;
            long start = pos & ~mask;
            int skip = (int)(pos - start);
            int need = Math.Min(dest.Length - total, MaxDirectPiece - skip);
            int span = (int)((skip + need + mask) & ~mask);
            var buf = AlignedBuffer.Get(span, _align);
            int n = 0;
            while (n < span)
            {
                int r = RandomAccess.Read(_handle, buf[n..], start + n);
                if (r <= 0) break;
                n += r;
                if ((r & mask) != 0) break; // end of file
            }
            int got = Math.Min(n - skip, need);
            if (got <= 0) break;
            buf.Slice(skip, got).CopyTo(dest[total..]);
            total += got;
            if (got < need) break;
        }
        return total;
    }

    /// <summary>Asks the kernel to start reading [offset, offset + length) into the page cache now (read-ahead for
    /// the next runs of a scan). A hint only: errors are ignored, and cached pages cost a lookup. Not done with
    /// direct I/O, which does not read from the page cache.</summary>
    public void WillNeed(long offset, long length)
    {
        if (DirectIo || !OperatingSystem.IsLinux() || offset < 0 || length <= 0 || offset >= Length) return;
        try { posix_fadvise((int)_handle.DangerousGetHandle(), offset, length, PosixFadvWillNeed); }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { }
    }

    private const int PosixFadvWillNeed = 3;

    [DllImport("libc", EntryPoint = "posix_fadvise")]
    private static extern int posix_fadvise(int fd, long offset, long len, int advice);

    public void Dispose() => _handle.Dispose();
}

/// <summary>One aligned read buffer per thread for O_DIRECT: a pinned array (never moved, freed by the GC like any
/// other) with the aligned part handed out as a span. No unsafe code.</summary>
internal static class AlignedBuffer
{
    [ThreadStatic] private static byte[]? t_array;
    [ThreadStatic] private static int t_offset, t_size, t_align;

    public static Span<byte> Get(int size, int align)
    {
        if (t_array == null || t_size < size || t_align != align)
        {
            int want = Math.Max(size, 64 << 10);
            t_array = GC.AllocateUninitializedArray<byte>(want + align, pinned: true);
            long addr = Marshal.UnsafeAddrOfPinnedArrayElement(t_array, 0).ToInt64();
            t_offset = (int)((align - (addr & (align - 1))) & (align - 1));
            t_size = want;
            t_align = align;
        }
        return t_array.AsSpan(t_offset, size);
    }
}
