using BtrfsRefcheck.Format;

namespace BtrfsRefcheck.Volume;

/// <summary>One superblock copy as read from a device: mirror index 0 (64 KiB), 1 (64 MiB) or 2 (256 GiB).</summary>
public sealed record SuperblockCopy(BlockDevice Device, int Mirror, long Offset, Superblock? Superblock, string? Problem)
{
    public bool IsValid => Superblock != null && Problem == null;

    /// <summary>All 4096 bytes are zero: a copy that was never written (btrfs-image -r writes only the primary; a
    /// device grown since the last commit has no mirror there yet; zoned filesystems keep mirrors elsewhere).</summary>
    public bool NeverWritten { get; init; }

    /// <summary>Reads every mirror the device is large enough for.</summary>
    public static List<SuperblockCopy> ReadAll(BlockDevice dev)
    {
        var list = new List<SuperblockCopy>();
        for (int m = 0; m < Format.Superblock.MirrorOffsets.Length; m++)
        {
            long off = Format.Superblock.MirrorOffsets[m];
            if (off >= dev.Length) break; // a copy the device ends inside is read (and reported) as truncated
            list.Add(Read(dev, m));
        }
        return list;
    }

    public static SuperblockCopy Read(BlockDevice dev, int mirror)
    {
        long off = Format.Superblock.MirrorOffsets[mirror];
        var buf = new byte[Format.Superblock.Size];
        int n = dev.Read(off, buf);
        if (n < buf.Length) return new SuperblockCopy(dev, mirror, off, null, $"device too small for superblock copy {mirror} at {off}");
        if (!buf.AsSpan().ContainsAnyExcept((byte)0))
            return new SuperblockCopy(dev, mirror, off, new Superblock(buf), "never written (all zeros)") { NeverWritten = true };
        var sb = new Superblock(buf);
        string? problem = null;
        if (!sb.MagicMatches) problem = $"bad magic 0x{sb.Magic:x16}";
        else if (!Checksum.IsKnown(sb.CsumTypeRaw)) problem = $"unknown checksum type {sb.CsumTypeRaw}";
        else if (!sb.ChecksumValid) problem = $"checksum mismatch ({Checksum.Name(sb.CsumTypeRaw)})";
        else if (sb.Bytenr != (ulong)off) problem = $"bytenr {sb.Bytenr} does not match its location {off}";
        return new SuperblockCopy(dev, mirror, off, sb, problem);
    }
}
