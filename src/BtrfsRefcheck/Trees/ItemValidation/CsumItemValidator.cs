using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;

namespace BtrfsRefcheck.Trees.ItemValidation;

/// <summary>EXTENT_CSUM: the kernel's check_csum_item (objectid, key offset alignment, size a multiple of the
/// checksum size, no overlap with the previous csum item of the leaf).</summary>
internal static class CsumItemValidator
{
    public static void Validate(in ItemCheckContext c, ReadOnlySpan<byte> data, ReadOnlySpan<byte> prevData, ItemReporter r)
    {
        const FindingCode Code = FindingCode.CsumItemInvalid;
        var key = c.Key;
        // While btrfstune --csum runs, the new type's checksums sit under CSUM_CHANGE beside the old ones; their size
        // is the new type's (named by a TEMPORARY_ITEM of the root tree), so only their alignment is checked here.
        bool changing = key.ObjectId == ObjectIds.CsumChange && c.ChangingCsum;
        if (key.ObjectId != ObjectIds.ExtentCsum && !changing)
            r.Add(c, Code, $"invalid key objectid {key.ObjectId}", $"{ObjectIds.ExtentCsum} (EXTENT_CSUM)", key.ObjectId.ToString());
        r.Aligned(c, Code, "key offset (logical start)", key.Offset);
        if (c.CsumSize <= 0 || changing) return;
        if (data.Length % c.CsumSize != 0)
            r.Add(c, Code, $"item size {data.Length} is not a multiple of the checksum size {c.CsumSize}",
                $"multiple of {c.CsumSize}", data.Length.ToString());
        if (c.PrevKey is { } prev && prev.ItemType == ItemType.ExtentCsum && prev.ObjectId == key.ObjectId)
        {
            ulong prevEnd = prev.Offset + (ulong)(prevData.Length / c.CsumSize) * c.SectorSize;
            if (prevEnd >= prev.Offset && prevEnd > key.Offset)
                r.Add(c, Code, $"previous csum item {prev} covers up to {prevEnd}, past the start of this one",
                    $"previous end <= {key.Offset}", prevEnd.ToString());
        }
    }
}
