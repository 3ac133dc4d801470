namespace BtrfsRefcheck.Format.Items;

/// <summary>btrfs_dir_item.type (BTRFS_FT_*); bit 0x80 marks an encrypted entry.</summary>
public enum DirEntryType : byte
{
    Unknown = 0,
    RegFile = 1,
    Dir = 2,
    ChrDev = 3,
    BlkDev = 4,
    Fifo = 5,
    Sock = 6,
    Symlink = 7,
    Xattr = 8,
}

/// <summary>View of a DIR_ITEM, DIR_INDEX or XATTR_ITEM: one or more entries of (location key 17, transid u64,
/// data_len u16, name_len u16, type u8, name, data). DIR_ITEMs hold several entries when names collide on the
/// hash in the key offset; XATTR_ITEMs carry the attribute value as data.</summary>
public readonly ref struct DirItem
{
    public const int EntryHeaderSize = NameAt; // 30
    public const int LocationAt = 0;
    public const int TransidAt = LocationAt + BtrfsKey.Size;
    public const int DataLenAt = TransidAt + 8;
    public const int NameLenAt = DataLenAt + 2;
    public const int TypeAt = NameLenAt + 2;
    public const int NameAt = TypeAt + 1;

    public const byte EncryptedFlag = 0x80;

    private readonly ReadOnlySpan<byte> _d;

    /// <summary>Any length is accepted here; the enumerator reports truncation.</summary>
    public DirItem(ReadOnlySpan<byte> d) => _d = d;

    public DirItemEnumerator Entries => new(_d);
    public DirItemEnumerator GetEnumerator() => new(_d);

    /// <summary>The name btrfs-progs prints for a dir entry type: FILE, DIR, ... or DIR_ITEM.N; "|ENCRYPTED" when bit 0x80 is set.</summary>
    public static string TypeName(byte type)
    {
        string name = (DirEntryType)(type & ~EncryptedFlag) switch
        {
            DirEntryType.RegFile => "FILE",
            DirEntryType.Dir => "DIR",
            DirEntryType.ChrDev => "CHRDEV",
            DirEntryType.BlkDev => "BLKDEV",
            DirEntryType.Fifo => "FIFO",
            DirEntryType.Sock => "SOCK",
            DirEntryType.Symlink => "SYMLINK",
            DirEntryType.Xattr => "XATTR",
            _ => $"DIR_ITEM.{type & ~EncryptedFlag}",
        };
        return (type & EncryptedFlag) != 0 ? name + "|ENCRYPTED" : name;
    }
}

/// <summary>One dir entry. <see cref="Name"/> and <see cref="Data"/> are capped to the bytes the item holds.</summary>
public readonly ref struct DirEntry
{
    public BtrfsKey Location { get; init; }
    public ulong Transid { get; init; }
    public ushort DataLength { get; init; }
    public ushort NameLength { get; init; }
    public byte Type { get; init; }
    public ReadOnlySpan<byte> Name { get; init; }
    public ReadOnlySpan<byte> Data { get; init; }
    public int ItemOffset { get; init; }
    public bool IsTruncated => Name.Length < NameLength || Data.Length < DataLength;
}

/// <summary>Walks dir entries. A truncated entry (name or data running past the item) is returned once, capped;
/// then enumeration stops with <see cref="Error"/> set. A header that does not fit stops at once. Never throws.</summary>
public ref struct DirItemEnumerator
{
    private readonly ReadOnlySpan<byte> _d;
    private int _pos;

    internal DirItemEnumerator(ReadOnlySpan<byte> d) { _d = d; _pos = 0; Current = default; Error = null; ErrorOffset = 0; }

    public DirEntry Current { get; private set; }
    public string? Error { get; private set; }
    public int ErrorOffset { get; private set; }
    public readonly DirItemEnumerator GetEnumerator() => this;

    public bool MoveNext()
    {
        if (Error != null || _pos >= _d.Length) return false;
        int at = _pos;
        if (_d.Length - at < DirItem.EntryHeaderSize)
        {
            Fail($"dir item header truncated: need {DirItem.EntryHeaderSize} bytes at offset {at}, item has {_d.Length}", at);
            return false;
        }
        var h = _d[at..];
        ushort dataLen = Le.U16(h, DirItem.DataLenAt);
        ushort nameLen = Le.U16(h, DirItem.NameLenAt);
        int nameAt = at + DirItem.NameAt;
        int nameHave = Math.Min(nameLen, _d.Length - nameAt);
        int dataAt = nameAt + nameHave;
        int dataHave = Math.Min(dataLen, _d.Length - dataAt);
        Current = new DirEntry
        {
            Location = BtrfsKey.Read(h[DirItem.LocationAt..]),
            Transid = Le.U64(h, DirItem.TransidAt),
            DataLength = dataLen,
            NameLength = nameLen,
            Type = h[DirItem.TypeAt],
            Name = _d.Slice(nameAt, nameHave),
            Data = _d.Slice(dataAt, dataHave),
            ItemOffset = at,
        };
        long end = (long)nameAt + nameLen + dataLen;
        if (end > _d.Length)
        {
            Fail($"dir item entry truncated: name_len {nameLen} data_len {dataLen} at offset {at} need {end - at} bytes, only {_d.Length - at} left", at);
            _pos = _d.Length;
            return true;
        }
        _pos = (int)end;
        return true;
    }

    private void Fail(string message, int at) { Error = message; ErrorOffset = at; }
}
