using Microsoft.Win32.SafeHandles;

namespace BtrfsRefcheck.Volume;

/// <summary>An image file or block device opened read-only. The handle is opened with
/// <see cref="FileAccess.Read"/> only: nothing in this program can write through it.</summary>
public sealed class BlockDevice : IDisposable
{
    private readonly SafeFileHandle _handle;

    public string Path { get; }
    public long Length { get; }

    private BlockDevice(string path, SafeFileHandle handle, long length)
    {
        Path = path;
        _handle = handle;
        Length = length;
    }

    /// <summary>Opens <paramref name="path"/> read-only. Throws <see cref="VolumeException"/> with a one-line reason.</summary>
    public static BlockDevice Open(string path)
    {
        if (Directory.Exists(path)) throw new VolumeException($"{path}: is a directory, not an image or block device");
        SafeFileHandle h;
        try
        {
            h = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        }
        catch (FileNotFoundException) { throw new VolumeException($"{path}: no such file or device"); }
        catch (DirectoryNotFoundException) { throw new VolumeException($"{path}: no such file or device"); }
        catch (UnauthorizedAccessException) { throw new VolumeException($"{path}: permission denied"); }
        catch (IOException e) { throw new VolumeException($"{path}: cannot open: {e.Message}"); }
        long length;
        try
        {
            length = RandomAccess.GetLength(h);
            if (length == 0) length = BlockDeviceSize(path) ?? 0;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException)
        {
            h.Dispose();
            throw new VolumeException($"{path}: cannot determine size: {e.Message}");
        }
        return new BlockDevice(path, h, length);
    }

    /// <summary>Size of a Linux block device from sysfs (stat reports 0 for block devices).</summary>
    private static long? BlockDeviceSize(string path)
    {
        try
        {
            string real = new FileInfo(path).LinkTarget is { } t ? System.IO.Path.GetFullPath(t, System.IO.Path.GetDirectoryName(path)!) : path;
            string name = System.IO.Path.GetFileName(real);
            string sys = $"/sys/class/block/{name}/size";
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
        int total = 0;
        while (total < dest.Length)
        {
            int n = RandomAccess.Read(_handle, dest[total..], offset + total);
            if (n <= 0) break;
            total += n;
        }
        return total;
    }

    /// <summary>Asks the kernel to start reading [offset, offset + length) into the page cache now (read-ahead for
    /// the next runs of a scan). A hint only: errors are ignored, and cached pages cost a lookup.</summary>
    public void WillNeed(long offset, long length)
    {
        if (!OperatingSystem.IsLinux() || offset < 0 || length <= 0 || offset >= Length) return;
        try { posix_fadvise((int)_handle.DangerousGetHandle(), offset, length, PosixFadvWillNeed); }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { }
    }

    private const int PosixFadvWillNeed = 3;

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "posix_fadvise")]
    private static extern int posix_fadvise(int fd, long offset, long len, int advice);

    public void Dispose() => _handle.Dispose();
}
