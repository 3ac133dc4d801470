namespace BtrfsRefcheck.Volume;

/// <summary>Zoned block devices (host-managed or host-aware): btrfs keeps its superblocks there in log zones, not at
/// the fixed offsets. Linux tells a device's zone model and size in sysfs.</summary>
public static class ZonedDevice
{
    /// <summary>BTRFS_SB_LOG_FIRST_OFFSET and BTRFS_SB_LOG_SECOND_OFFSET: the mirrors' log zones are the zones holding
    /// these addresses (the primary's is zone 0).</summary>
    public static readonly long[] LogOffsets = [0, 512L << 30, 4096L << 30];

    /// <summary>The zone size in bytes of a zoned block device (0 for anything else: image files, regular block
    /// devices, or when sysfs cannot tell). Looked up by device number, as BlockDevice does for size and alignment,
    /// so an image file that happens to share a device's name is never taken for it.</summary>
    public static long ZoneSizeOf(BlockDevice dev)
    {
        if (dev.Identity is not { Kind: FileKind.BlockDevice } id) return 0;
        string queue = $"/sys/dev/block/{id.Rdev}/queue";
        try
        {
            if (!File.Exists($"{queue}/zoned") || File.ReadAllText($"{queue}/zoned").Trim() == "none") return 0;
            long sectors = long.Parse(File.ReadAllText($"{queue}/chunk_sectors").Trim());
            return sectors > 0 ? sectors * 512 : 0;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or OverflowException)
        {
            return 0;
        }
    }

    /// <summary>The first zone of mirror <paramref name="mirror"/>'s pair of log zones (the kernel's sb_zone_number).</summary>
    public static long LogZone(int mirror, long zoneSize) => LogOffsets[mirror] / zoneSize;
}
