using BtrfsRefcheck.Format;
using BtrfsRefcheck.Format.Items;

namespace BtrfsRefcheck.Checks;

/// <summary>One file extent's claim on the csum tree, as btrfs check's process_file_extent sees it: the disk range
/// whose checksums it counts (compressed: the whole extent; else [disk_bytenr + offset, + num_bytes)), the extent it
/// lies in, and what its inode says. 32 bytes; one per REG or PREALLOC file extent with a disk extent.</summary>
internal struct DataCsumNeed
{
    public ulong Start;
    public ulong DiskBytenr;
    public ulong Leaf;
    public uint Length;
    public ushort Slot;
    public byte Flags;

    public const byte Prealloc = 1, Compressed = 2, NoDataSum = 4, InodeUnknown = 8;
    public readonly ulong End => Start + Length;
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

    private ulong _leaf;
    private ulong _ino;
    private bool _inodeKnown, _noDataSum;

    /// <summary>A new leaf of a subvolume tree: no inode is known yet.</summary>
    public void Leaf(ulong leaf)
    {
        _leaf = leaf;
        _inodeKnown = false;
    }

    public void Inode(BtrfsKey key, ReadOnlySpan<byte> data)
    {
        if (data.Length < InodeItem.Size) { _inodeKnown = false; return; }
        _ino = key.ObjectId;
        _inodeKnown = true;
        _noDataSum = (new InodeItem(data).Flags & InodeFlags.NoDataSum) != 0;
        if (_noDataSum) NoDataSumInodes.Add(key.ObjectId);
    }

    /// <summary>The workers' claims in one array; a claim whose inode was not in its leaf takes the inode's flag by
    /// number: datasum unless some tree has a NODATASUM inode of that number (then it stays unknown).</summary>
    public static DataCsumNeed[] Merge(List<DataCsumRecorder> workers)
    {
        var noSum = new HashSet<ulong>();
        foreach (var w in workers) noSum.UnionWith(w.NoDataSumInodes);
        var bases = new List<long>(workers.Count);
        long total = 0;
        foreach (var w in workers) { bases.Add(total); total += w.Needs.Count; }
        var all = ChunkedList<DataCsumNeed>.Concat(workers.Select(w => w.Needs));
        for (int k = 0; k < workers.Count; k++)
            foreach (var (index, ino) in workers[k].Unresolved)
                if (!noSum.Contains(ino)) all[bases[k] + index].Flags &= unchecked((byte)~DataCsumNeed.InodeUnknown);
        return all;
    }

    public void FileExtent(int slot, BtrfsKey key, FileExtentItem fe)
    {
        if (fe.DiskBytenr == 0 || fe.Type is not (FileExtentType.Regular or FileExtentType.Prealloc)) return;
        bool compressed = fe.Compression != 0;
        ulong start = compressed ? fe.DiskBytenr : fe.DiskBytenr + fe.Offset;
        ulong length = compressed ? fe.DiskNumBytes : fe.NumBytes;
        if (length == 0 || length > uint.MaxValue || start + length < start) return; // the item validator's (413)
        byte flags = (byte)((fe.Type == FileExtentType.Prealloc ? DataCsumNeed.Prealloc : 0) | (compressed ? DataCsumNeed.Compressed : 0));
        bool known = _inodeKnown && _ino == key.ObjectId;
        if (known && _noDataSum) flags |= DataCsumNeed.NoDataSum;
        if (!known)
        {
            flags |= DataCsumNeed.InodeUnknown;
            Unresolved.Add(((int)Needs.Count, key.ObjectId));
        }
        Needs.Add(new DataCsumNeed { Start = start, DiskBytenr = fe.DiskBytenr, Leaf = _leaf, Length = (uint)length, Slot = (ushort)Math.Min(slot, ushort.MaxValue), Flags = flags });
    }
}
