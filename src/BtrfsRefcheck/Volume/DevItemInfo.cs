namespace BtrfsRefcheck.Volume;

/// <summary>A device listed by a DEV_ITEM in the chunk tree.</summary>
public sealed record DevItemInfo(ulong DevId, Guid Uuid, Guid Fsid, ulong TotalBytes, ulong BytesUsed);
