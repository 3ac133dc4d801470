using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Format.Items;

namespace BtrfsRefcheck.Checks;

/// <summary>What one inode's own items (those keyed by its number) say, gathered in key order, possibly over several
/// leaves: btrfs check's inode_record less the names (those become <see cref="NameRec"/>s). Two partial accumulators of
/// the same inode from adjacent key ranges are joined with <see cref="Append"/>; once every item is in, <see cref="Close"/>
/// checks what depends on the inode alone.</summary>
internal sealed class InodeAcc(ulong ino)
{
    public ulong Ino = ino;
    public bool HasItem, DupItem, Partial;
    public uint Nlink, Mode;
    public ulong Size, Nbytes, Flags, ItemLeaf, FirstLeaf;
    /// <summary>Directories: the sum of the names' lengths in DIR_ITEM and DIR_INDEX entries; files: the bytes of file
    /// extents as btrfs check counts them (inline ram_bytes, num_bytes of regular and prealloc extents that are not holes).</summary>
    public ulong DirNames, ExtentBytes;
    public bool HasDirEntries, HasFileExtent;
    /// <summary>File extents: first key offset, end of the last (inline rounded up to a sector), first gap.</summary>
    public ulong ExtentStart = ulong.MaxValue, ExtentEnd, FirstGap = ulong.MaxValue;
    public ulong OverlapAt = ulong.MaxValue, OverlapLeaf;
    public int Compressed, Regular, Prealloc;
    public ulong CompressedLeaf, RegularLeaf;
    /// <summary>Extent problems that depend on nothing else (inline too large, bad ram_bytes / num_bytes, compressed prealloc).</summary>
    public string? BadExtent;
    public ulong BadExtentLeaf;
    public BtrfsKey BadExtentKey;
    /// <summary>The fast path's (<see cref="NameFingerprint"/>): the INODE_REF / INODE_EXTREF entries, the first in
    /// <see cref="Ref0"/>, all of them in <see cref="RefsMore"/> once there are two; <see cref="Odd"/>: an INODE_ITEM after
    /// other items of the inode.</summary>
    public int RefCount;
    public RefTuple Ref0;
    public List<RefTuple>? RefsMore;
    public bool Odd;

    public const uint SIfmt = 0xF000, SIfdir = 0x4000, SIfreg = 0x8000, SIflnk = 0xA000;

    public bool IsDir => (Mode & SIfmt) == SIfdir;
    public bool IsFileOrLink => (Mode & SIfmt) is SIfreg or SIflnk;

    /// <summary>The dir entry type (BTRFS_FT_*) an inode of this mode is named with; 0 when the mode is no valid type.</summary>
    public static byte TypeOfMode(uint mode) => (mode & SIfmt) switch
    {
        0x8000 => 1, 0x4000 => 2, 0x2000 => 3, 0x6000 => 4, 0x1000 => 5, 0xC000 => 6, 0xA000 => 7, _ => 0,
    };

    public void InodeItem(in InodeItem ii, ulong leaf)
    {
        if (HasItem) { DupItem = true; return; }
        HasItem = true;
        Nlink = ii.Nlink;
        Mode = ii.Mode;
        Size = ii.FileSize;
        Nbytes = ii.Nbytes;
        Flags = (ulong)ii.Flags;
        ItemLeaf = leaf;
    }

    /// <summary>One file extent item, in key order (btrfs check's process_file_extent, less the checksums).</summary>
    public void FileExtent(BtrfsKey key, ReadOnlySpan<byte> data, ulong leaf, SubvolumeParams p)
    {
        HasFileExtent = true;
        if (data.Length < FileExtentItem.InlineHeaderSize) return; // 413
        if (ExtentStart == ulong.MaxValue) { ExtentStart = key.Offset; ExtentEnd = key.Offset; }
        // Overlaps inside one leaf are the item validator's (413); across leaves they are ours (Append).
        if (ExtentEnd < key.Offset) FirstGap = Math.Min(FirstGap, ExtentEnd);
        var head = new FileExtentItem.Head(data);
        ulong mask = p.SectorSize - 1;
        ulong numBytes = 0;
        byte compression = head.Compression;
        if (head.Type == FileExtentType.Inline)
        {
            numBytes = head.RamBytes;
            ulong inlineLen = (ulong)(data.Length - FileExtentItem.InlineHeaderSize);
            if (numBytes == 0) Bad(key, leaf, "inline extent with ram_bytes 0");
            else if (compression != 0 ? inlineLen > p.MaxInline || numBytes > p.SectorSize : numBytes > p.MaxInline)
                Bad(key, leaf, $"inline extent too large: {inlineLen} bytes inline, ram_bytes {numBytes}, at most {p.MaxInline} inline" + (compression != 0 ? $" and {p.SectorSize} uncompressed" : ""));
            ExtentBytes += numBytes;
            numBytes = (numBytes + mask) & ~mask;
        }
        else if (head.Type is FileExtentType.Regular or FileExtentType.Prealloc && data.Length < FileExtentItem.RegularSize)
            Partial = true; // a short item (400, 413): what it holds is unknown, so is the inode's nbytes
        else if (head.Type is FileExtentType.Regular or FileExtentType.Prealloc)
        {
            var fe = new FileExtentItem(data);
            numBytes = fe.NumBytes;
            if (numBytes == 0) Bad(key, leaf, "num_bytes 0");
            if (head.Type == FileExtentType.Prealloc && (compression != 0 || fe.OtherEncoding != 0))
                Bad(key, leaf, "a prealloc extent is compressed or encoded");
            if (compression != 0 && Compressed++ == 0) CompressedLeaf = leaf;
            if (head.Type == FileExtentType.Regular && Regular++ == 0) RegularLeaf = leaf;
            if (head.Type == FileExtentType.Prealloc && Prealloc++ == 0 && RegularLeaf == 0) RegularLeaf = leaf;
            if (fe.DiskBytenr != 0) ExtentBytes += numBytes;
        }
        ExtentEnd = key.Offset + numBytes;
    }

    /// <summary>One INODE_REF / INODE_EXTREF entry (fast path).</summary>
    public void Ref(in RefTuple r)
    {
        if (RefCount++ == 0) { Ref0 = r; return; }
        (RefsMore ??= [Ref0]).Add(r);
    }

    /// <summary>This accumulator as a new one for inode <paramref name="ino"/> would be (every field; a test holds it to
    /// that): the summarizer reuses one for the inodes wholly inside a leaf, which it closes there.</summary>
    public void Reset(ulong ino)
    {
        Ino = ino;
        HasItem = DupItem = Partial = false;
        Nlink = Mode = 0;
        Size = Nbytes = Flags = ItemLeaf = FirstLeaf = 0;
        DirNames = ExtentBytes = 0;
        HasDirEntries = HasFileExtent = false;
        ExtentStart = ulong.MaxValue; ExtentEnd = 0; FirstGap = ulong.MaxValue;
        OverlapAt = ulong.MaxValue; OverlapLeaf = 0;
        Compressed = Regular = Prealloc = 0;
        CompressedLeaf = RegularLeaf = 0;
        BadExtent = null; BadExtentLeaf = 0; BadExtentKey = default;
        RefCount = 0; Ref0 = default; RefsMore = null; Odd = false;
    }

    public InodeAcc Copy()
    {
        var c = (InodeAcc)MemberwiseClone();
        if (RefsMore != null) c.RefsMore = [.. RefsMore];
        return c;
    }

    private void Bad(BtrfsKey key, ulong leaf, string what)
    {
        if (BadExtent != null) return;
        BadExtent = what;
        BadExtentLeaf = leaf;
        BadExtentKey = key;
    }

    /// <summary>Joins the accumulator of the same inode's next key range into this one.</summary>
    public void Append(InodeAcc b)
    {
        for (int i = 0; i < b.RefCount; i++) Ref(b.RefsMore != null ? b.RefsMore[i] : b.Ref0);
        Odd |= b.Odd;
        if (b.HasItem)
        {
            Odd = true; // the INODE_ITEM comes first of an inode's items
            if (HasItem) DupItem = true;
            else { HasItem = true; Nlink = b.Nlink; Mode = b.Mode; Size = b.Size; Nbytes = b.Nbytes; Flags = b.Flags; ItemLeaf = b.ItemLeaf; }
        }
        DupItem |= b.DupItem;
        Partial |= b.Partial;
        if (FirstLeaf == 0) FirstLeaf = b.FirstLeaf;
        DirNames += b.DirNames;
        ExtentBytes += b.ExtentBytes;
        HasDirEntries |= b.HasDirEntries;
        HasFileExtent |= b.HasFileExtent;
        if (b.ExtentStart != ulong.MaxValue)
        {
            if (ExtentStart == ulong.MaxValue) { ExtentStart = b.ExtentStart; ExtentEnd = b.ExtentStart; }
            if (ExtentEnd > b.ExtentStart) { if (OverlapAt == ulong.MaxValue) { OverlapAt = b.ExtentStart; OverlapLeaf = b.FirstLeaf; } }
            else if (ExtentEnd < b.ExtentStart) FirstGap = Math.Min(FirstGap, ExtentEnd);
            FirstGap = Math.Min(FirstGap, b.FirstGap);
            ExtentEnd = b.ExtentEnd;
        }
        if (b.OverlapAt != ulong.MaxValue && OverlapAt == ulong.MaxValue) { OverlapAt = b.OverlapAt; OverlapLeaf = b.OverlapLeaf; }
        if (b.Compressed > 0 && Compressed == 0) CompressedLeaf = b.CompressedLeaf;
        if ((b.Regular > 0 || b.Prealloc > 0) && Regular == 0 && Prealloc == 0) RegularLeaf = b.RegularLeaf;
        Compressed += b.Compressed;
        Regular += b.Regular;
        Prealloc += b.Prealloc;
        if (BadExtent == null && b.BadExtent != null) { BadExtent = b.BadExtent; BadExtentLeaf = b.BadExtentLeaf; BadExtentKey = b.BadExtentKey; }
    }

    /// <summary>Every item of the inode is in: checks what depends on it alone (btrfs check's maybe_free_inode_rec and
    /// process_inode_item, less what the item validator already reports: mode, flags, generation, directory nlink) and
    /// returns its <see cref="NameKind.Inode"/> record for the name join.</summary>
    public NameRec Close(SubvolumeParams p, FindingBag findings)
    {
        var rec = new NameRec
        {
            Child = Ino, Kind = NameKind.Inode, Nlink = Nlink, Type = HasItem ? TypeOfMode(Mode) : (byte)0,
            Leaf = HasItem ? ItemLeaf : FirstLeaf,
            Flags = (byte)((HasItem ? NameRec.FlagHasItem : 0) | (Partial ? NameRec.FlagPartial : 0)),
        };
        if (Partial || !HasItem) return rec; // a hidden neighbour may hold the rest; no item: the name join reports it
        ulong tree = p.Tree;
        string where() => $"{p.TreeName} inode {Ino}"; // (made only with a finding)
        var key = new BtrfsKey(Ino, (byte)ItemType.InodeItem, 0);
        if (DupItem)
            findings.Add(new Finding(FindingCode.DuplicateName, Severity.Error, $"{where()}: two INODE_ITEMs", Bytenr: ItemLeaf, Tree: tree, Key: key));
        if (IsDir)
        {
            // a deleted directory's entries are not counted; btrfs check's found_size also holds file extent bytes (one field)
            ulong names = (Nlink == 0 ? 0 : DirNames) + ExtentBytes;
            if (names != Size)
                findings.Add(new Finding(FindingCode.DirSizeWrong, Severity.Error,
                    $"{where()}: directory isize {Size}, its DIR_ITEM and DIR_INDEX names add up to {names} bytes",
                    Bytenr: ItemLeaf, Tree: tree, Key: key, Expected: names.ToString(), Found: Size.ToString()));
            if (HasFileExtent)
                findings.Add(new Finding(FindingCode.InodeContentMismatch, Severity.Error, $"{where()}: a directory with file extents",
                    Bytenr: ItemLeaf, Tree: tree, Key: key, Expected: "no EXTENT_DATA", Found: "EXTENT_DATA"));
        }
        else if (IsFileOrLink)
        {
            if (HasDirEntries)
                findings.Add(new Finding(FindingCode.InodeContentMismatch, Severity.Error, $"{where()}: a {(Mode & SIfmt) switch { SIflnk => "symlink", _ => "regular file" }} with dir entries",
                    Bytenr: ItemLeaf, Tree: tree, Key: key, Expected: "no DIR_ITEM / DIR_INDEX", Found: "dir entries"));
            if (Nlink > 0 && ExtentBytes != Nbytes)
                findings.Add(new Finding(FindingCode.InodeNbytesWrong, Severity.Error,
                    $"{where()}: nbytes {Nbytes}, its file extents hold {ExtentBytes} bytes",
                    Bytenr: ItemLeaf, Tree: tree, Key: key, Expected: ExtentBytes.ToString(), Found: Nbytes.ToString()));
            if (Nlink > 0 && !p.NoHoles && Size != 0)
            {
                bool any = ExtentStart != ulong.MaxValue;
                ulong end = any ? ExtentEnd : 0;
                string? hole = !any ? $"no file extent covers [0, {Size})"
                    : ExtentStart != 0 ? $"the first file extent starts at {ExtentStart}"
                    : FirstGap < Size ? $"a gap in the file extents at {FirstGap}"
                    : end < Size ? $"the file extents end at {end}" : null;
                if (hole != null)
                    findings.Add(new Finding(FindingCode.FileExtentHole, Severity.Error,
                        $"{where()}: {hole}, below isize {Size}, and the filesystem has no NO_HOLES",
                        Bytenr: ItemLeaf, Tree: tree, Key: key, Expected: $"file extents covering [0, {Size})", Found: hole));
            }
            if ((Mode & SIfmt) == SIflnk && (Flags & (ulong)(InodeFlags.Immutable | InodeFlags.Append)) != 0)
                findings.Add(new Finding(FindingCode.InodeContentMismatch, Severity.Error, $"{where()}: a symlink with the IMMUTABLE or APPEND flag",
                    Bytenr: ItemLeaf, Tree: tree, Key: key, Found: InodeItemFlags(Flags)));
            if ((Mode & SIfmt) == SIflnk && Regular + Prealloc > 0)
                findings.Add(new Finding(FindingCode.FileExtentWrongForInode, Severity.Error, $"{where()}: a symlink with a regular file extent (symlinks are inline)",
                    Bytenr: RegularLeaf, Tree: tree, Key: key, Expected: "inline", Found: "regular"));
            if (Compressed > 0 && (Flags & (ulong)InodeFlags.NoDataSum) != 0)
                findings.Add(new Finding(FindingCode.FileExtentWrongForInode, Severity.Error, $"{where()}: compressed file extents in a NODATASUM inode",
                    Bytenr: CompressedLeaf, Tree: tree, Key: key, Expected: "no compression with NODATASUM", Found: $"{Compressed} compressed extent(s)"));
        }
        // (an overlap across leaves, OverlapAt, is not reported yet: no fixture can be forged into one by editing items
        // in place; inside one leaf it is the item validator's 413)
        if (BadExtent != null)
            findings.Add(new Finding(FindingCode.FileExtentWrongForInode, Severity.Error, $"{where()}: file extent {BadExtentKey.Offset}: {BadExtent}",
                Bytenr: BadExtentLeaf, Tree: tree, Key: BadExtentKey));
        return rec;
    }

    private static string InodeItemFlags(ulong flags) => Format.Items.InodeItem.FlagNames(flags);
}

/// <summary>What the checks of one subvolume tree need to know.</summary>
internal sealed record SubvolumeParams(ulong Tree, string TreeName, ulong RootDirId, uint SectorSize, ulong MaxInline, bool NoHoles);
