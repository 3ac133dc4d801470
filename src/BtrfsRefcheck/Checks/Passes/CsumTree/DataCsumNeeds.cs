using BtrfsRefcheck.Format;
using BtrfsRefcheck.Format.Items;

namespace BtrfsRefcheck.Checks;

/// <summary>One file extent's claim on the csum tree, as btrfs check's process_file_extent sees it: the disk range
/// whose checksums it counts (compressed: the whole extent; else [disk_bytenr + offset, + num_bytes)), where its disk
/// extent starts, and what its inode says. 16 bytes, one per REG or PREALLOC file extent with a disk extent. lengths
/// and offsets in 4 KiB units (every sector size is a multiple; an unaligned one is the item validator's, 413).</summary>
internal struct DataCsumNeed
{
    public ulong Start;
    private uint _units;       // low 28 bits: length in 4 KiB units; high 4 bits: flags
    private uint _offsetUnits; // Start - disk_bytenr in 4 KiB units

    public const byte Prealloc = 1, Compressed = 2, NoDataSum = 4, InodeUnknown = 8;
    public const int Unit = 4096;
    public const ulong MaxUnits = (1u << 28) - 1;

    public DataCsumNeed(ulong start, ulong diskBytenr, ulong length, byte flags)
    {
        Start = start;
        _units = (uint)(length / Unit) | ((uint)flags << 28);
        _offsetUnits = (uint)((start - diskBytenr) / Unit);
    }

    public readonly ulong Length => (ulong)(_units & (uint)MaxUnits) * Unit;
    public readonly ulong End => Start + Length;
    public readonly ulong DiskBytenr => Start - (ulong)_offsetUnits * Unit;
    public byte Flags
    {
        readonly get => (byte)(_units >> 28);
        set => _units = (_units & (uint)MaxUnits) | ((uint)value << 28);
    }
}

/// <summary>What the tree scan records for the csum tree pass, one per worker: the claims of the file extents of
/// subvolume trees (not the data reloc tree, whose copies of prealloc extents may lack checksums: btrfs check skips
/// it too), each with its inode's NODATASUM flag when that inode's INODE_ITEM is earlier in the same leaf (the usual
/// case); the others are resolved after the scan by inode number (<see cref="NoDataSumInodes"/>: every inode number
/// that has NODATASUM in some tree, usually few).</summary>
internal sealed class DataCsumRecorder
{
    public readonly ChunkedList<DataCsumNeed> Needs = new();
    public readonly List<(int Index, ulong Ino)> Unresolved = []; // Needs index (within this worker) and inode
    public readonly HashSet<ulong> NoDataSumInodes = [];

    private ulong _ino;
    private bool _inodeKnown, _noDataSum;

    /// <summary>A new leaf of a subvolume tree: no inode is known yet.</summary>
    public void Leaf() => _inodeKnown = false;

    public void Inode(BtrfsKey key, ReadOnlySpan<byte> data)
    {
        if (data.Length < InodeItem.Size) { _inodeKnown = false; return; }
        _ino = key.ObjectId;
        _inodeKnown = true;
        _noDataSum = (new InodeItem(data).Flags & InodeFlags.NoDataSum) != 0;
        if (_noDataSum) NoDataSumInodes.Add(key.ObjectId);
    }

    /// <summary>The workers' claims, kept in their segments (no copy); a claim whose inode was not in its leaf takes the
    /// inode's flag by number: datasum unless some tree has a NODATASUM inode of that number (then it stays unknown).</summary>
    public static List<(DataCsumNeed[] Array, int Count)> Merge(List<DataCsumRecorder> workers)
    {
        var noSum = new HashSet<ulong>();
        foreach (var w in workers) noSum.UnionWith(w.NoDataSumInodes);
        var all = new List<(DataCsumNeed[] Array, int Count)>();
        foreach (var w in workers)
        {
            var segments = w.Needs.TakeSegments();
            foreach (var (index, ino) in w.Unresolved)
                if (!noSum.Contains(ino))
                    segments[index / ChunkedList<DataCsumNeed>.SegmentLength].Array[index % ChunkedList<DataCsumNeed>.SegmentLength].Flags &= unchecked((byte)~DataCsumNeed.InodeUnknown);
            all.AddRange(segments);
        }
        return all;
    }

    public void FileExtent(BtrfsKey key, FileExtentItem fe)
    {
        if (fe.DiskBytenr == 0 || fe.Type is not (FileExtentType.Regular or FileExtentType.Prealloc)) return;
        bool compressed = fe.Compression != 0;
        ulong start = compressed ? fe.DiskBytenr : fe.DiskBytenr + fe.Offset;
        ulong length = compressed ? fe.DiskNumBytes : fe.NumBytes;
        if (length == 0 || length / DataCsumNeed.Unit > DataCsumNeed.MaxUnits || start + length < start) return; // the item validator's (413)
        if ((start | length | fe.DiskBytenr) % DataCsumNeed.Unit != 0) return; // 413
        byte flags = (byte)((fe.Type == FileExtentType.Prealloc ? DataCsumNeed.Prealloc : 0) | (compressed ? DataCsumNeed.Compressed : 0));
        bool known = _inodeKnown && _ino == key.ObjectId;
        if (known && _noDataSum) flags |= DataCsumNeed.NoDataSum;
        if (!known)
        {
            flags |= DataCsumNeed.InodeUnknown;
            Unresolved.Add(((int)Needs.Count, key.ObjectId));
        }
        Needs.Add(new DataCsumNeed(start, fe.DiskBytenr, length, flags));
    }
}
