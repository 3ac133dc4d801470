using System.Runtime.CompilerServices;
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

    private const FindingCode Code = FindingCode.FileExtentInvalid;

    public static void Validate(in ItemCheckContext c, ReadOnlySpan<byte> data, ReadOnlySpan<byte> prevData, ItemReporter r)
    {
        var key = c.Key;
        r.Aligned(c, Code, "file offset (key offset)", key.Offset);
        InodeKeys.PrevIno(c, r, Code);
        if (data.Length < FileExtentItem.InlineHeaderSize)
        {
            Report(c, r, Problem.ItemSize, data.Length);
            return;
        }
        var head = new FileExtentItem.Head(data);
        byte type = head.TypeByte;
        byte compression = head.Compression, encryption = head.Encryption;
        ulong generation = head.Generation, ramBytes = head.RamBytes;
        // Outside log trees a file extent is a data reference, which the tree scan records from the fixed 53 bytes.
        if (data.Length < FileExtentItem.RegularSize && type != (byte)FileExtentType.Inline && !c.IsLog) NoDataReference(c, r, type, data.Length);
        if (type >= NrFileExtentTypes)
        {
            Report(c, r, Problem.Type, data.Length, type);
            return;
        }
        if (compression >= NrCompressTypes) Report(c, r, Problem.Compression, data.Length, compression);
        if (encryption != 0) Report(c, r, Problem.Encryption, data.Length, encryption);
        r.Generation(c, "file extent generation", generation);

        if (type == (byte)FileExtentType.Inline)
        {
            if (key.Offset != 0) Report(c, r, Problem.InlineOffset, data.Length);
            // A compressed inline extent has no on-disk size to compare with.
            if (compression == 0 && (ulong)data.Length != FileExtentItem.InlineHeaderSize + ramBytes)
                Report(c, r, Problem.InlineRamBytes, data.Length, a: ramBytes);
            return;
        }

        if (data.Length != FileExtentItem.RegularSize)
        {
            // (shorter, outside log trees: ItemUndecodable above)
            if (data.Length > FileExtentItem.RegularSize || c.IsLog) Report(c, r, Problem.RegularSize, data.Length, type);
            return;
        }
        var fe = new FileExtentItem(data);
        ulong offset = fe.Offset, numBytes = fe.NumBytes, ram = fe.RamBytes;
        bool aligned = r.Aligned(c, Code, "ram_bytes", ram)
                     & r.Aligned(c, Code, "disk_bytenr", fe.DiskBytenr)
                     & r.Aligned(c, Code, "disk_num_bytes", fe.DiskNumBytes)
                     & r.Aligned(c, Code, "offset", offset)
                     & r.Aligned(c, Code, "num_bytes", numBytes);
        if (key.Offset + numBytes < key.Offset) Report(c, r, Problem.EndOverflow, data.Length, a: numBytes);

        if (aligned && fe.DiskBytenr != 0 && offset + numBytes is var used && (used < offset || used > ram))
            Report(c, r, Problem.PastRamBytes, data.Length, compression, offset, numBytes, ram);

        if (c.PrevKey is { } prev && prev.ObjectId == key.ObjectId && prev.ItemType == ItemType.ExtentData &&
            PrevEnd(prev, prevData, c.SectorSize) is { } prevEnd && prevEnd > key.Offset)
            Report(c, r, Problem.Overlap, data.Length, a: prevEnd);
    }

    /// <summary>A regular or prealloc extent (or one of an unknown type) too short for its disk reference: the tree
    /// scan cannot record it (ItemUndecodable).</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void NoDataReference(in ItemCheckContext c, ItemReporter r, byte type, int size) =>
        r.AddWhole(c, FindingCode.ItemUndecodable,
            $"{ObjectIds.TreeName(c.Tree)}: file extent item of {size} bytes, a {(FileExtentType)type} extent needs {FileExtentItem.RegularSize}; its data reference is not checked",
            c.Tree);

    private enum Problem { ItemSize, Type, Compression, Encryption, InlineOffset, InlineRamBytes, RegularSize, EndOverflow, PastRamBytes, Overlap }

    /// <summary>The messages, out of line: Validate runs for every file extent and reports almost never.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Report(in ItemCheckContext c, ItemReporter r, Problem problem, int itemSize, byte value = 0,
        ulong a = 0, ulong b = 0, ulong d = 0)
    {
        var key = c.Key;
        switch (problem)
        {
            case Problem.ItemSize:
                r.Add(c, Code, $"invalid item size {itemSize}", $">= {FileExtentItem.InlineHeaderSize}", itemSize.ToString());
                break;
            case Problem.Type:
                r.Add(c, Code, $"invalid type {value}", $"0..{NrFileExtentTypes - 1} (inline, regular, prealloc)", value.ToString());
                break;
            case Problem.Compression:
                r.Add(c, Code, $"invalid compression {value}", $"0..{NrCompressTypes - 1} (none, zlib, lzo, zstd)", value.ToString());
                break;
            case Problem.Encryption:
                r.Add(c, Code, $"invalid encryption {value}", "0", value.ToString());
                break;
            case Problem.InlineOffset:
                r.Add(c, Code, $"inline extent at file offset {key.Offset}", "0", key.Offset.ToString());
                break;
            case Problem.InlineRamBytes:
                r.Add(c, Code, $"uncompressed inline extent of {itemSize - FileExtentItem.InlineHeaderSize} bytes has ram_bytes {a}",
                    $"item size {FileExtentItem.InlineHeaderSize} + ram_bytes = {FileExtentItem.InlineHeaderSize + a}", itemSize.ToString());
                break;
            case Problem.RegularSize:
                r.Add(c, Code, $"invalid item size {itemSize} for a {(FileExtentType)value} extent",
                    FileExtentItem.RegularSize.ToString(), itemSize.ToString());
                break;
            case Problem.EndOverflow:
                r.Add(c, Code, $"extent end overflows: file offset {key.Offset} + num_bytes {a}", "< 2^64", "overflow");
                break;
            case Problem.PastRamBytes:
                // For an uncompressed extent the kernel does not rely on ram_bytes (and old kernels wrote wrong values),
                // so only a compressed extent, whose data cannot be decoded past ram_bytes, is an error.
                bool compressed = value != 0;
                r.Add(c, Code, $"offset {a} + num_bytes {b} reaches past ram_bytes {d} of the {(compressed ? "compressed " : "")}extent",
                    $"<= {d}", (a + b).ToString(), compressed ? Severity.Error : Severity.Warning);
                break;
            case Problem.Overlap:
                r.Add(c, Code, $"previous file extent {c.PrevKey.GetValueOrDefault()} ends at {a}, past the start of this one",
                    $"previous end <= {key.Offset}", a.ToString());
                break;
        }
    }

    /// <summary>file_extent_end: where the previous extent ends in the file (inline: ram_bytes rounded up to the sector).</summary>
    private static ulong? PrevEnd(BtrfsKey prev, ReadOnlySpan<byte> d, uint sectorSize)
    {
        if (d.Length < FileExtentItem.InlineHeaderSize) return null;
        var head = new FileExtentItem.Head(d);
        if (head.Type == FileExtentType.Inline)
        {
            ulong end = prev.Offset + head.RamBytes;
            if (end < prev.Offset || sectorSize == 0) return null;
            ulong rounded = (end + sectorSize - 1) / sectorSize * sectorSize;
            return rounded < end ? null : rounded;
        }
        if (d.Length < FileExtentItem.RegularSize) return null;
        ulong e = prev.Offset + new FileExtentItem(d).NumBytes;
        return e < prev.Offset ? null : e;
    }
}
