using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Format.Items;

namespace BtrfsRefcheck.Trees.ItemValidation;

/// <summary>Free-space-tree items. FREE_SPACE_INFO: the kernel's check_free_space_info (key alignment, size, flags,
/// extent count). FREE_SPACE_EXTENT and FREE_SPACE_BITMAP: what free-space-tree.c relies on when it loads them
/// (sizes, alignment, inside the block group of the FREE_SPACE_INFO before them, no overlap with the previous one).
/// The block group is known when its FREE_SPACE_INFO is in the same leaf.</summary>
internal static class FreeSpaceValidator
{
    public static void Validate(in ItemCheckContext c, ReadOnlySpan<byte> data, ItemReporter r)
    {
        const FindingCode Code = FindingCode.FreeSpaceItemInvalid;
        var key = c.Key;
        r.Aligned(c, Code, "start (key objectid)", key.ObjectId);
        if (key.Offset == 0)
            r.Add(c, Code, "length (key offset) 0", $"a non-zero multiple of {c.SectorSize}", "0");
        else
            r.Aligned(c, Code, "length (key offset)", key.Offset);
        switch (key.ItemType)
        {
            case ItemType.FreeSpaceInfo:
                if (data.Length != FreeSpaceInfo.Size)
                {
                    r.Add(c, Code, $"invalid item size {data.Length}", FreeSpaceInfo.Size.ToString(), data.Length.ToString());
                    return;
                }
                var fsi = new FreeSpaceInfo(data);
                if ((fsi.Flags & ~FreeSpaceInfo.FlagUsingBitmaps) != 0)
                    r.Add(c, Code, $"unknown flags 0x{fsi.Flags & ~FreeSpaceInfo.FlagUsingBitmaps:x}", "USING_BITMAPS or none", $"0x{fsi.Flags:x}");
                ulong sectors = c.SectorSize == 0 ? 0 : key.Offset / c.SectorSize;
                if (fsi.ExtentCount > sectors)
                    r.Add(c, Code, $"extent_count {fsi.ExtentCount} exceeds the {sectors} sectors of the block group",
                        $"<= {sectors}", fsi.ExtentCount.ToString());
                return;
            case ItemType.FreeSpaceExtent:
                if (data.Length != FreeSpaceExtent.Size)
                    r.Add(c, Code, $"invalid item size {data.Length}", "0", data.Length.ToString());
                break;
            case ItemType.FreeSpaceBitmap:
                long expected = FreeSpaceBitmap.ExpectedSize(key.Offset, c.SectorSize);
                if (data.Length != expected)
                    r.Add(c, Code, $"bitmap of {data.Length} bytes for {key.Offset} bytes of space",
                        $"{expected} (one bit per sector)", data.Length.ToString());
                break;
        }

        ulong end = key.ObjectId + key.Offset;
        if (end < key.ObjectId)
        {
            r.Add(c, Code, $"range start {key.ObjectId} + length {key.Offset} overflows", "< 2^64", "overflow");
            return;
        }
        if (c.FreeSpaceInfo is { } bg && (key.ObjectId < bg.ObjectId || end > bg.ObjectId + bg.Offset))
            r.Add(c, Code, $"free range [{key.ObjectId}, {end}) lies outside its block group [{bg.ObjectId}, {bg.ObjectId + bg.Offset})",
                $"inside [{bg.ObjectId}, {bg.ObjectId + bg.Offset})", $"[{key.ObjectId}, {end})");
        if (c.PrevKey is { } prev && prev.ItemType is ItemType.FreeSpaceExtent or ItemType.FreeSpaceBitmap &&
            prev.ObjectId + prev.Offset > key.ObjectId && prev.ObjectId + prev.Offset >= prev.ObjectId)
            r.Add(c, Code, $"previous free range {prev} ends at {prev.ObjectId + prev.Offset}, past the start of this one",
                $"previous end <= {key.ObjectId}", (prev.ObjectId + prev.Offset).ToString());
    }
}
