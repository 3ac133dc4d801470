using System.Buffers.Binary;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Volume;

namespace BtrfsRefcheck.Cli.Verbs.Scan;

/// <summary>One path the scan found, and what it is.</summary>
internal abstract record ScanEntry(string Path);

/// <summary>Not a filesystem this scan checks (not btrfs, compressed, too small, ...): listed with the reason, not an error.</summary>
internal sealed record SkippedPath(string Path, string Reason) : ScanEntry(Path);

/// <summary>A device with a valid superblock: its identity from the copy <c>check</c> would use (the valid copy with the
/// highest generation).</summary>
internal sealed record BtrfsDevice(string Path, Guid Fsid, ulong DevId, Guid DevUuid, ulong Generation, ulong NumDevices, bool Seeding)
    : ScanEntry(Path);

/// <summary>btrfs magic, but no superblock copy is usable: a filesystem that cannot be checked (exit 3).</summary>
internal sealed record DamagedDevice(string Path, Guid? Fsid, string Reason) : ScanEntry(Path);

/// <summary>A btrfs-image dump that this build reads: a filesystem of its own (a dump holds every device of its set).</summary>
internal sealed record DumpFile(string Path) : ScanEntry(Path);

/// <summary>The scan's inventory: the paths given, directories searched recursively, each regular file or block device
/// classified by its first bytes and its superblock copies. Nothing is decompressed or written.</summary>
internal static class ScanInventory
{
    /// <summary>btrfs-image's cluster header magic (image/metadump.h HEADER_MAGIC), a little-endian u64 at offset 0.</summary>
    public const ulong MetadumpMagic = 0xbd5c25e27295668b;


    /// <summary>Every entry under <paramref name="roots"/>, in path order. A path given that does not exist throws
    /// <see cref="VolumeException"/> (one line, exit 3), before anything is read. The same file or device reached by two
    /// paths (a symbolic link, a directory given twice, /dev/block/7:0 for /dev/loop0) is listed once, by its first path.</summary>
    public static List<ScanEntry> Find(IReadOnlyList<string> roots)
    {
        foreach (var r in roots)
            if (!Exists(r, out string? why)) throw new VolumeException(why ?? $"{r}: no such file or directory");
        var entries = new List<ScanEntry>();
        var seen = new Dictionary<(FileKind, uint, uint, ulong), int>();
        foreach (var r in roots) Visit(r, explicitlyNamed: true, entries, seen);
        return entries;
    }

    private static bool Exists(string path, out string? why)
    {
        var kind = BlockDevice.KindOf(path, out why);
        return kind != null || (why == null && (File.Exists(path) || Directory.Exists(path)));
    }

    private static void Visit(string path, bool explicitlyNamed, List<ScanEntry> entries, Dictionary<(FileKind, uint, uint, ulong), int> seen)
    {
        var kind = BlockDevice.KindOf(path, out string? problem) ?? (Directory.Exists(path) ? FileKind.Directory : File.Exists(path) ? FileKind.Regular : (FileKind?)null);
        switch (kind)
        {
            case null:
                entries.Add(new SkippedPath(path, problem is { } p ? Reason(path, p) : "cannot be examined"));
                return;
            case FileKind.Directory:
                if (!explicitlyNamed && new DirectoryInfo(path).LinkTarget != null)
                {
                    entries.Add(new SkippedPath(path, "symbolic link to a directory: not followed"));
                    return;
                }
                string[] children;
                try
                {
                    children = Directory.GetFileSystemEntries(path);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    entries.Add(new SkippedPath(path, $"directory cannot be read: {e.Message}"));
                    return;
                }
                Array.Sort(children, StringComparer.Ordinal);
                foreach (var c in children) Visit(c, explicitlyNamed: false, entries, seen);
                return;
            case FileKind.Regular or FileKind.BlockDevice:
                var (entry, key) = Classify(path);
                if (key is not { } k || seen.TryAdd(k, entries.Count)) entries.Add(entry);
                else if (IsLink(entries[seen[k]].Path) && !IsLink(path)) entries[seen[k]] = entry; // the file's own name over a link to it
                return;
            default:
                // Under a directory, character devices, FIFOs and sockets are passed over (/dev has hundreds); named
                // on the command line, they are listed.
                if (explicitlyNamed) entries.Add(new SkippedPath(path, "neither an image file nor a block device"));
                return;
        }
    }

    private static bool IsLink(string path) => new FileInfo(path).LinkTarget != null;

    /// <summary>What a regular file or block device holds, and its identity (a block device by the device it stands
    /// for, since two nodes can name one; a file by its inode), null where unknown.</summary>
    internal static (ScanEntry Entry, (FileKind, uint, uint, ulong)? Key) Classify(string path)
    {
        BlockDevice dev;
        try
        {
            dev = BlockDevice.Open(path);
        }
        catch (VolumeException e)
        {
            return (new SkippedPath(path, Reason(path, e.Message)), null);
        }
        using (dev)
        {
            var key = dev.Identity is not { } id ? ((FileKind, uint, uint, ulong)?)null
                : id.Kind == FileKind.BlockDevice ? (id.Kind, id.RdevMajor, id.RdevMinor, 0UL) : (id.Kind, id.DevMajor, id.DevMinor, id.Inode);
            return (Holds(dev, path), key);
        }
    }

    /// <summary>Dump, compressed, btrfs (usable or not) or something else, by its first bytes and superblock copies.</summary>
    private static ScanEntry Holds(BlockDevice dev, string path)
    {
        if (dev.Length == 0) return new SkippedPath(path, "empty");
        Span<byte> head = stackalloc byte[8];
        int n = dev.Read(0, head);
        if (n == head.Length)
        {
            if (BinaryPrimitives.ReadUInt64LittleEndian(head) == MetadumpMagic)
                return new DumpFile(path); // checked in place, as a filesystem of its own (BtrfsVolume.Open reads dumps)
            if (Compressed(head) is { } format)
                return new SkippedPath(path, $"{format}-compressed: decompress it to check it (images are read in place, never decompressed)");
        }
        if (dev.Length < Superblock.MirrorOffsets[0] + Superblock.Size)
            return new SkippedPath(path, $"not btrfs: too small ({dev.Length} bytes; the superblock is at 65536)");
        List<SuperblockCopy> copies;
        try
        {
            copies = SuperblockCopy.ReadAll(dev, ZonedDevice.ZoneSizeOf(dev));
        }
        catch (IOException e)
        {
            return new SkippedPath(path, $"read error: {e.Message}");
        }
        var pick = copies.Where(c => c.IsValid).OrderByDescending(c => c.Superblock!.Generation).ThenBy(c => c.Mirror).FirstOrDefault();
        if (pick != null)
        {
            var sb = pick.Superblock!;
            return new BtrfsDevice(path, sb.Fsid, sb.DevItem.DevId, sb.DevItem.Uuid, sb.Generation, sb.NumDevices,
                (sb.Flags & Superblock.FlagSeeding) != 0);
        }
        var magic = copies.FirstOrDefault(c => c.Superblock is { MagicMatches: true });
        if (magic == null) return new SkippedPath(path, "not btrfs (no btrfs magic in any superblock copy)");
        return new DamagedDevice(path, magic.Superblock!.Fsid,
            $"no valid superblock: {string.Join("; ", copies.Select(c => $"copy {c.Mirror}: {c.Problem}"))}");
    }

    /// <summary>The compressed formats an image is commonly kept in, by their magic.</summary>
    private static string? Compressed(ReadOnlySpan<byte> head) =>
        head[0] == 0x1f && head[1] == 0x8b ? "gzip"
        : head[..6].SequenceEqual((ReadOnlySpan<byte>)[0xfd, (byte)'7', (byte)'z', (byte)'X', (byte)'Z', 0]) ? "xz"
        : head[..4].SequenceEqual((ReadOnlySpan<byte>)[0x28, 0xb5, 0x2f, 0xfd]) ? "zstd"
        : head[0] == (byte)'B' && head[1] == (byte)'Z' && head[2] == (byte)'h' ? "bzip2"
        : null;

    /// <summary>"PATH: why" from the volume layer, without the path (the line names it).</summary>
    private static string Reason(string path, string message) =>
        message.StartsWith(path + ": ", StringComparison.Ordinal) ? message[(path.Length + 2)..] : message;
}
