using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Format.Items;

namespace BtrfsRefcheck.Trees.ItemValidation;

/// <summary>EXTENT_DATA: the kernel's check_extent_data_item (key alignment, missing inode, size, type,
/// compression, encryption, inline rules, field alignment, end overflow, overlap with the previous extent of the
/// same inode in the leaf), plus the generation and offset + num_bytes within ram_bytes.</summary>
internal static class FileExtentValidator
{
    private const int NrFileExtentTypes = 3; // inline, regular, prealloc
    private const int NrCompressTypes = 4;   // none, zlib, lzo, zstd

    public static void Validate(in ItemCheckContext c, ReadOnlySpan<byte> data, ReadOnlySpan<byte> prevData, ItemReporter r)
    {
        const FindingCode Code = FindingCode.FileExtentInvalid;
        var key = c.Key;
        r.Aligned(c, Code, "file offset (key offset)", key.Offset);
        InodeKeys.PrevIno(c, r, Code);
        if (data.Length < FileExtentItem.InlineHeaderSize)
        {
            r.Add(c, Code, $"invalid item size {data.Length}", $">= {FileExtentItem.InlineHeaderSize}", data.Length.ToString());
            return;
        }
        byte type = data[FileExtentItem.InlineHeaderSize - 1];
        byte compression = data[16], encryption = data[17];
        ulong generation = Le.U64(data, 0), ramBytes = Le.U64(data, 8);
        if (type >= NrFileExtentTypes)
        {
            r.Add(c, Code, $"invalid type {type}", $"0..{NrFileExtentTypes - 1} (inline, regular, prealloc)", type.ToString());
            return;
        }
        if (compression >= NrCompressTypes)
            r.Add(c, Code, $"invalid compression {compression}", $"0..{NrCompressTypes - 1} (none, zlib, lzo, zstd)", compression.ToString());
        if (encryption != 0)
            r.Add(c, Code, $"invalid encryption {encryption}", "0", encryption.ToString());
        r.Generation(c, "file extent generation", generation);

        if (type == (byte)FileExtentType.Inline)
        {
            if (key.Offset != 0)
                r.Add(c, Code, $"inline extent at file offset {key.Offset}", "0", key.Offset.ToString());
            // A compressed inline extent has no on-disk size to compare with.
            if (compression == 0 && (ulong)data.Length != FileExtentItem.InlineHeaderSize + ramBytes)
                r.Add(c, Code, $"uncompressed inline extent of {data.Length - FileExtentItem.InlineHeaderSize} bytes has ram_bytes {ramBytes}",
                    $"item size {FileExtentItem.InlineHeaderSize} + ram_bytes = {FileExtentItem.InlineHeaderSize + ramBytes}", data.Length.ToString());
            return;
        }

        if (data.Length != FileExtentItem.RegularSize)
        {
            // The reference pass already reports a short regular/prealloc extent outside log trees (ItemUndecodable).
            if (data.Length > FileExtentItem.RegularSize || c.IsLog)
                r.Add(c, Code, $"invalid item size {data.Length} for a {(FileExtentType)type} extent",
                    FileExtentItem.RegularSize.ToString(), data.Length.ToString());
            return;
        }
        var fe = new FileExtentItem(data);
        bool aligned = r.Aligned(c, Code, "ram_bytes", fe.RamBytes)
                     & r.Aligned(c, Code, "disk_bytenr", fe.DiskBytenr)
                     & r.Aligned(c, Code, "disk_num_bytes", fe.DiskNumBytes)
                     & r.Aligned(c, Code, "offset", fe.Offset)
                     & r.Aligned(c, Code, "num_bytes", fe.NumBytes);
        if (key.Offset + fe.NumBytes < key.Offset)
            r.Add(c, Code, $"extent end overflows: file offset {key.Offset} + num_bytes {fe.NumBytes}", "< 2^64", "overflow");

        if (aligned && fe.DiskBytenr != 0 && fe.Offset + fe.NumBytes is var used && (used < fe.Offset || used > fe.RamBytes))
        {
            // For an uncompressed extent the kernel does not rely on ram_bytes (and old kernels wrote wrong values),
            // so only a compressed extent, whose data cannot be decoded past ram_bytes, is an error.
            bool compressed = compression != 0;
            r.Add(c, Code, $"offset {fe.Offset} + num_bytes {fe.NumBytes} reaches past ram_bytes {fe.RamBytes} of the {(compressed ? "compressed " : "")}extent",
                $"<= {fe.RamBytes}", (fe.Offset + fe.NumBytes).ToString(), compressed ? Severity.Error : Severity.Warning);
        }

        if (c.PrevKey is { } prev && prev.ObjectId == key.ObjectId && prev.ItemType == ItemType.ExtentData &&
            PrevEnd(prev, prevData, c.SectorSize) is { } prevEnd && prevEnd > key.Offset)
            r.Add(c, Code, $"previous file extent {prev} ends at {prevEnd}, past the start of this one",
                $"previous end <= {key.Offset}", prevEnd.ToString());
    }

    /// <summary>file_extent_end: where the previous extent ends in the file (inline: ram_bytes rounded up to the sector).</summary>
    private static ulong? PrevEnd(BtrfsKey prev, ReadOnlySpan<byte> d, uint sectorSize)
    {
        if (d.Length < FileExtentItem.InlineHeaderSize) return null;
        if (d[FileExtentItem.InlineHeaderSize - 1] == (byte)FileExtentType.Inline)
        {
            ulong end = prev.Offset + Le.U64(d, 8);
            if (end < prev.Offset || sectorSize == 0) return null;
            ulong rounded = (end + sectorSize - 1) / sectorSize * sectorSize;
            return rounded < end ? null : rounded;
        }
        if (d.Length < FileExtentItem.RegularSize) return null;
        ulong e = prev.Offset + Le.U64(d, FileExtentItem.RegularSize - 8);
        return e < prev.Offset ? null : e;
    }
}
