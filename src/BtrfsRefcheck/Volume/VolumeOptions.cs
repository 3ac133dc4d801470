namespace BtrfsRefcheck.Volume;

public sealed class VolumeOptions
{
    /// <summary>Use this superblock copy (0 = 64 KiB, 1 = 64 MiB, 2 = 256 GiB) instead of the newest valid one.</summary>
    public int? SuperMirror { get; init; }

    /// <summary>How many tree blocks the read cache keeps.</summary>
    public int CacheBlocks { get; init; } = 8192;
}

/// <summary>A device listed by a DEV_ITEM in the chunk tree.</summary>
public sealed record DevItemInfo(ulong DevId, Guid Uuid, Guid Fsid, ulong TotalBytes, ulong BytesUsed);
