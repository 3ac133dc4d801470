using BtrfsRefcheck.Diagnostics;

namespace BtrfsRefcheck.Forge;

/// <summary>A finding a forged image must produce: code, bytenr (as the checker reports it) and severity.</summary>
public sealed record ExpectedFinding(FindingCode Code, ulong Bytenr, Severity Severity = Severity.Error)
{
    public override string ToString() => $"{(int)Code} {Code} @{Bytenr}{(Severity == Severity.Error ? "" : $" ({Severity})")}";
}

/// <summary>What one defect method changed, and exactly what the checker must report for it: <see cref="Expected"/>
/// at <see cref="Bytenr"/>, plus <see cref="AlsoExpected"/> when the defect inherently implies more (each such
/// method documents why). Nothing else of severity Warning or Error may be reported.</summary>
public sealed record ForgedDefect(FindingCode Expected, ulong Bytenr, string Description)
{
    public IReadOnlyList<ExpectedFinding> AlsoExpected { get; init; } = [];

    /// <summary>The copy that was damaged, for single-copy corruption.</summary>
    public int? Mirror { get; init; }

    /// <summary>The primary finding followed by <see cref="AlsoExpected"/>.</summary>
    public IReadOnlyList<ExpectedFinding> AllExpected => [new ExpectedFinding(Expected, Bytenr), .. AlsoExpected];

    public override string ToString() => $"{Description} => {string.Join(", ", AllExpected)}";
}

/// <summary>Makes private, writable, sparse copies of fixture images for <see cref="ForgedImage"/>'s defect methods.</summary>
public static class Forge
{
    private static int s_counter;

    /// <summary>Copies <paramref name="fixtureImage"/> to a temporary file that <see cref="ForgedImage.Dispose"/> deletes.</summary>
    /// <param name="directory">Where the copy goes (default: the system temp directory).</param>
    public static ForgedImage Copy(string fixtureImage, string? directory = null) => CopyAll([fixtureImage], directory);

    /// <summary>Copies every device of a multi-device fixture (e.g. a RAID1 pair) to temporary files, in the given order.</summary>
    /// <param name="directory">Where the copies go (default: the system temp directory).</param>
    public static ForgedImage CopyAll(IReadOnlyList<string> fixtureImages, string? directory = null)
    {
        if (fixtureImages.Count == 0) throw new ArgumentException("no image given", nameof(fixtureImages));
        directory ??= Path.GetTempPath();
        int n = Interlocked.Increment(ref s_counter);
        var paths = new List<string>();
        try
        {
            foreach (var src in fixtureImages)
            {
                var dest = Path.Combine(directory, $"btrfs-forge-{Environment.ProcessId}-{n}-{Path.GetFileName(src)}");
                SparseCopy.Copy(src, dest);
                paths.Add(dest);
            }
        }
        catch
        {
            foreach (var p in paths) File.Delete(p);
            throw;
        }
        return new ForgedImage(paths, deleteOnDispose: true);
    }

    /// <summary>Copies <paramref name="source"/> to <paramref name="dest"/> (sparse) and keeps it: for the command line.</summary>
    public static ForgedImage CopyTo(string source, string dest)
    {
        SparseCopy.Copy(source, dest);
        return new ForgedImage([dest], deleteOnDispose: false);
    }

}

/// <summary>Copies files sparsely: 64 KiB chunks that are all zero are seeked over, not written.</summary>
public static class SparseCopy
{
    private const int ChunkSize = 64 * 1024;

    public static void Copy(string source, string dest)
    {
        if (Path.GetFullPath(source) == Path.GetFullPath(dest)) throw new ArgumentException("source and destination are the same file");
        var tmp = dest + ".partial";
        var buf = new byte[ChunkSize];
        using (var src = new FileStream(source, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1 << 20))
        using (var dst = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
        {
            long length = 0;
            int n;
            while ((n = src.ReadAtLeast(buf, buf.Length, throwOnEndOfStream: false)) > 0)
            {
                if (buf.AsSpan(0, n).IndexOfAnyExcept((byte)0) < 0) dst.Seek(n, SeekOrigin.Current);
                else dst.Write(buf, 0, n);
                length += n;
            }
            dst.SetLength(length);
        }
        File.Move(tmp, dest, overwrite: true);
    }
}
