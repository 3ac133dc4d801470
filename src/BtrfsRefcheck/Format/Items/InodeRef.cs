namespace BtrfsRefcheck.Format.Items;

/// <summary>View of an INODE_REF item: one or more (index u64, name_len u16, name) entries, one per hard link
/// from the parent directory in the key offset.</summary>
public readonly ref struct InodeRef
{
    public const int EntryHeaderSize = NameAt; // 10
    internal const int IndexAt = 0;
    internal const int NameLenAt = IndexAt + 8;
    internal const int NameAt = NameLenAt + 2;

    private readonly ReadOnlySpan<byte> _d;

    /// <summary>Any length is accepted here; the enumerator reports truncation.</summary>
    public InodeRef(ReadOnlySpan<byte> d) => _d = d;

    public InodeRefEnumerator Entries => new(_d);
    public InodeRefEnumerator GetEnumerator() => new(_d);
}

/// <summary>One INODE_REF entry. <see cref="Name"/> is capped to the bytes the item holds; when it is shorter
/// than <see cref="NameLength"/>, <see cref="IsTruncated"/> is set.</summary>
public readonly ref struct InodeRefEntry
{
    public ulong Index { get; init; }
    public ushort NameLength { get; init; }
    public ReadOnlySpan<byte> Name { get; init; }
    public int ItemOffset { get; init; }
    public bool IsTruncated => Name.Length < NameLength;
}

/// <summary>Walks INODE_REF entries. A truncated name is still returned once (capped, with
/// <see cref="InodeRefEntry.IsTruncated"/>); then enumeration stops with <see cref="Error"/> set. A header that does
/// not fit stops enumeration at once with <see cref="Error"/> set. Never throws.</summary>
public ref struct InodeRefEnumerator
{
    private readonly ReadOnlySpan<byte> _d;
    private int _pos;

    internal InodeRefEnumerator(ReadOnlySpan<byte> d) { _d = d; _pos = 0; Current = default; Error = null; ErrorOffset = 0; }

    public InodeRefEntry Current { get; private set; }
    public string? Error { get; private set; }
    public int ErrorOffset { get; private set; }
    public readonly InodeRefEnumerator GetEnumerator() => this;

    public bool MoveNext()
    {
        if (Error != null || _pos >= _d.Length) return false;
        int at = _pos;
        if (_d.Length - at < InodeRef.EntryHeaderSize)
        {
            Fail($"inode ref header truncated: need {InodeRef.EntryHeaderSize} bytes at offset {at}, item has {_d.Length}", at);
            return false;
        }
        ushort nameLen = Le.U16(_d, at + InodeRef.NameLenAt);
        int nameAt = at + InodeRef.NameAt;
        int avail = _d.Length - nameAt;
        Current = new InodeRefEntry
        {
            Index = Le.U64(_d, at + InodeRef.IndexAt),
            NameLength = nameLen,
            Name = _d.Slice(nameAt, Math.Min(nameLen, avail)),
            ItemOffset = at,
        };
        if (nameLen > avail)
        {
            Fail($"inode ref name truncated: name_len {nameLen} at offset {at}, only {avail} bytes left", at);
            _pos = _d.Length;
            return true;
        }
        _pos = nameAt + nameLen;
        return true;
    }

    private void Fail(string message, int at) { Error = message; ErrorOffset = at; }
}
