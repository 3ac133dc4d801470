namespace BtrfsRefcheck.Format.Items;

/// <summary>View of an INODE_EXTREF item (extended inode refs, used when INODE_REF overflows): one or more
/// (parent_objectid u64, index u64, name_len u16, name) entries. The key offset is a hash of parent and name.</summary>
public readonly ref struct InodeExtref
{
    public const int EntryHeaderSize = NameAt; // 18
    internal const int ParentObjectIdAt = 0;
    internal const int IndexAt = ParentObjectIdAt + 8;
    internal const int NameLenAt = IndexAt + 8;
    internal const int NameAt = NameLenAt + 2;

    private readonly ReadOnlySpan<byte> _d;

    /// <summary>Any length is accepted here; the enumerator reports truncation.</summary>
    public InodeExtref(ReadOnlySpan<byte> d) => _d = d;

    public InodeExtrefEnumerator Entries => new(_d);
    public InodeExtrefEnumerator GetEnumerator() => new(_d);
}

/// <summary>One INODE_EXTREF entry; <see cref="Name"/> is capped to the bytes the item holds.</summary>
public readonly ref struct InodeExtrefEntry
{
    public ulong ParentObjectId { get; init; }
    public ulong Index { get; init; }
    public ushort NameLength { get; init; }
    public ReadOnlySpan<byte> Name { get; init; }
    public int ItemOffset { get; init; }
    public bool IsTruncated => Name.Length < NameLength;
}

/// <summary>Walks INODE_EXTREF entries; same truncation contract as <see cref="InodeRefEnumerator"/>.</summary>
public ref struct InodeExtrefEnumerator
{
    private readonly ReadOnlySpan<byte> _d;
    private int _pos;

    internal InodeExtrefEnumerator(ReadOnlySpan<byte> d) { _d = d; _pos = 0; Current = default; Error = null; ErrorOffset = 0; }

    public InodeExtrefEntry Current { get; private set; }
    public string? Error { get; private set; }
    public int ErrorOffset { get; private set; }
    public readonly InodeExtrefEnumerator GetEnumerator() => this;

    public bool MoveNext()
    {
        if (Error != null || _pos >= _d.Length) return false;
        int at = _pos;
        if (_d.Length - at < InodeExtref.EntryHeaderSize)
        {
            Fail($"inode extref header truncated: need {InodeExtref.EntryHeaderSize} bytes at offset {at}, item has {_d.Length}", at);
            return false;
        }
        ushort nameLen = Le.U16(_d, at + InodeExtref.NameLenAt);
        int nameAt = at + InodeExtref.NameAt;
        int avail = _d.Length - nameAt;
        Current = new InodeExtrefEntry
        {
            ParentObjectId = Le.U64(_d, at + InodeExtref.ParentObjectIdAt),
            Index = Le.U64(_d, at + InodeExtref.IndexAt),
            NameLength = nameLen,
            Name = _d.Slice(nameAt, Math.Min(nameLen, avail)),
            ItemOffset = at,
        };
        if (nameLen > avail)
        {
            Fail($"inode extref name truncated: name_len {nameLen} at offset {at}, only {avail} bytes left", at);
            _pos = _d.Length;
            return true;
        }
        _pos = nameAt + nameLen;
        return true;
    }

    private void Fail(string message, int at) { Error = message; ErrorOffset = at; }
}
