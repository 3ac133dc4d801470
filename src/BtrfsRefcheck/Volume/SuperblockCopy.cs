using BtrfsRefcheck.Format;

namespace BtrfsRefcheck.Volume;

/// <summary>One superblock copy as read from a device: mirror index 0 (64 KiB), 1 (64 MiB) or 2 (256 GiB).</summary>
public sealed record SuperblockCopy(BlockDevice Device, int Mirror, long Offset, Superblock? Superblock, string? Problem)
{
    public bool IsValid => Superblock != null && Problem == null;

    /// <summary>All 4096 bytes are zero: a copy that was never written (btrfs-image -r writes only the primary; a
    /// device grown since the last commit has no mirror there yet; zoned filesystems keep mirrors elsewhere).</summary>
    public bool NeverWritten { get; init; }

    /// <summary>Reads every mirror the device is large enough for. On a zoned device (<paramref name="zoneSize"/> not 0)
    /// each mirror is the newest valid entry of its pair of log zones, as the kernel reads it.</summary>
    public static List<SuperblockCopy> ReadAll(BlockDevice dev, long zoneSize = 0)
    {
        if (zoneSize > 0) return ReadLogZones(dev, zoneSize);
        var list = new List<SuperblockCopy>();
        for (int m = 0; m < Format.Superblock.MirrorOffsets.Length; m++)
        {
            long off = Format.Superblock.MirrorOffsets[m];
            if (off >= dev.Length) break; // a copy the device ends inside is read (and reported) as truncated
            list.Add(Read(dev, m));
        }
        return list;
    }

    public static SuperblockCopy Read(BlockDevice dev, int mirror) => Read(dev, mirror, Format.Superblock.MirrorOffsets[mirror]);

    /// <summary>Superblock log zones: the kernel appends each commit's superblock (4 KiB) to one zone of the pair, and
    /// switches to the other when it is full; a conventional zone holds one at its start. The copy in use is the valid
    /// entry with the highest generation in either zone. Its bytenr field still says the fixed mirror offset.</summary>
    private static List<SuperblockCopy> ReadLogZones(BlockDevice dev, long zoneSize)
    {
        var list = new List<SuperblockCopy>();
        int size = Format.Superblock.Size;
        for (int m = 0; m < ZonedDevice.LogOffsets.Length; m++)
        {
            long first = ZonedDevice.LogZone(m, zoneSize) * zoneSize;
            if (first + 2 * zoneSize > dev.Length) break; // the device has no such pair of zones
            SuperblockCopy? best = null;
            for (long zone = first; zone < first + 2 * zoneSize; zone += zoneSize)
            {
                for (long at = zone; at + size <= zone + zoneSize; at += size)
                {
                    var c = Read(dev, m, at);
                    if (c.Superblock is not { MagicMatches: true }) break; // the end of this zone's log
                    if (c.IsValid && (best is not { IsValid: true } || c.Superblock.Generation > best.Superblock!.Generation)) best = c;
                    else best ??= c;
                }
            }
            list.Add(best ?? Read(dev, m, first));
        }
        return list;
    }

    private static SuperblockCopy Read(BlockDevice dev, int mirror, long off)
    {
        var buf = new byte[Format.Superblock.Size];
        int n = dev.Read(off, buf);
        if (n < buf.Length) return new SuperblockCopy(dev, mirror, off, null, $"device too small for superblock copy {mirror} at {off}");
        return FromBytes(dev, mirror, off, buf);
    }

    /// <summary>Copy <paramref name="mirror"/> from its 4096 bytes <paramref name="buf"/>, found at <paramref name="off"/>
    /// of <paramref name="dev"/> (or, for a metadata dump, in the dump's item at 65536).</summary>
    internal static SuperblockCopy FromBytes(BlockDevice dev, int mirror, long off, byte[] buf)
    {
        long expectBytenr = Format.Superblock.MirrorOffsets[mirror];
        if (!buf.AsSpan().ContainsAnyExcept((byte)0))
            return new SuperblockCopy(dev, mirror, off, new Superblock(buf), "never written (all zeros)") { NeverWritten = true };
        var sb = new Superblock(buf);
        string? problem = null;
        if (!sb.MagicMatches) problem = $"bad magic 0x{sb.Magic:x16}";
        else if (!Checksum.IsKnown(sb.CsumTypeRaw)) problem = $"unknown checksum type {sb.CsumTypeRaw}";
        else if (!sb.ChecksumValid) problem = $"checksum mismatch ({Checksum.Name(sb.CsumTypeRaw)})";
        else if (sb.Bytenr != (ulong)expectBytenr) problem = expectBytenr == off
            ? $"bytenr {sb.Bytenr} does not match its location {off}"
            : $"bytenr {sb.Bytenr} is not copy {mirror}'s offset {expectBytenr} (log zone entry at {off})";
        return new SuperblockCopy(dev, mirror, off, sb, problem);
    }
}
