namespace BtrfsRefcheck.Tests.Oracle;

/// <summary>Writes image files sparsely: all-zero chunks are skipped (seeked over) instead of written.</summary>
public static class SparseFile
{
    /// <summary>Chunk size used for zero detection.</summary>
    public const int ChunkSize = 64 * 1024;

    /// <summary>
    /// Copies <paramref name="source"/> (read to its end) into a new file <paramref name="destPath"/>, skipping
    /// 64 KiB chunks that are entirely zero, then sets the final length. Returns the number of bytes copied
    /// (the file length). The destination is written to a temporary name and renamed into place.
    /// </summary>
    public static long CopyFrom(Stream source, string destPath)
    {
        var tmp = destPath + ".partial-" + Guid.NewGuid().ToString("N");
        var buffer = new byte[ChunkSize];
        long length = 0;
        try
        {
            using (var dest = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
            {
                while (true)
                {
                    int n = ReadFully(source, buffer);
                    if (n == 0)
                        break;
                    if (buffer.AsSpan(0, n).IndexOfAnyExcept((byte)0) < 0)
                        dest.Seek(n, SeekOrigin.Current);
                    else
                        dest.Write(buffer, 0, n);
                    length += n;
                    if (n < buffer.Length)
                        break;
                }
                dest.SetLength(length);
            }
            File.Move(tmp, destPath, overwrite: true);
            return length;
        }
        catch
        {
            try { File.Delete(tmp); } catch (IOException) { }
            throw;
        }
    }

    /// <summary>Sparse copy of an existing file (e.g. a fixture image that a test wants to modify).</summary>
    public static long Copy(string sourcePath, string destPath)
    {
        using var src = new FileStream(sourcePath, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
        return CopyFrom(src, destPath);
    }

    /// <summary>Reads until the buffer is full or the stream ends; returns the number of bytes read.</summary>
    private static int ReadFully(Stream s, byte[] buffer)
    {
        int total = 0;
        while (total < buffer.Length)
        {
            int n = s.Read(buffer, total, buffer.Length - total);
            if (n == 0)
                break;
            total += n;
        }
        return total;
    }
}
