namespace BtrfsRefcheck.Volume;

public sealed class VolumeOptions
{
    /// <summary>Use this superblock copy (0 = 64 KiB, 1 = 64 MiB, 2 = 256 GiB) instead of the newest valid one.</summary>
    public int? SuperMirror { get; init; }

    /// <summary>Use backup root N (0-3) of the superblock for the root tree (and its chunk root when readable).</summary>
    public int? BackupRoot { get; init; }

    /// <summary>How many tree blocks the read cache keeps. Walks read each block once; the cache only spares
    /// re-reads of the upper levels (root tree, chunk tree, the extent tree's nodes).</summary>
    public int CacheBlocks { get; init; } = 256;

    /// <summary>Open a filesystem whose superblock sets incompat feature bits this program does not know (the
    /// kernel refuses to mount those). Only for showing the superblock: trees may not be readable as we read them.</summary>
    public bool AcceptUnknownIncompat { get; init; }

    /// <summary>Read every device as a zoned device with zones of this many bytes: superblocks from the log zones. For
    /// an image file copied from a zoned device (the copy loses the zone information). Null: zoned block devices are
    /// recognised through sysfs, everything else is read at the fixed offsets.</summary>
    public long? ZoneSize { get; init; }

    /// <summary>Read every device with O_DIRECT (for a mounted filesystem, whose writes bypass the block device's page
    /// cache; see <see cref="MountDetector"/>). Off by default: an unmounted volume is read through the page cache.</summary>
    public bool DirectIo { get; init; }
}

