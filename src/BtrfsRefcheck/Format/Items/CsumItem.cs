namespace BtrfsRefcheck.Format.Items;

/// <summary>View of an EXTENT_CSUM item: (EXTENT_CSUM, EXTENT_CSUM, logical start) followed by one checksum of
/// csum_size bytes per sector. Bytes past the last whole checksum are <see cref="Leftover"/>.</summary>
public readonly ref struct CsumItem
{
    private readonly ReadOnlySpan<byte> _d;
    private readonly int _csumSize;

    public CsumItem(ReadOnlySpan<byte> d, int csumSize)
    {
        if (csumSize <= 0 || csumSize > Checksum.FieldSize) Throw.Invalid($"csum item: invalid checksum size {csumSize}");
        _d = d;
        _csumSize = csumSize;
    }

    public int CsumSize => _csumSize;
    public int Count => _d.Length / _csumSize;

    /// <summary>Bytes after the last whole checksum (non-zero means the item size is wrong).</summary>
    public int Leftover => _d.Length % _csumSize;

    public ReadOnlySpan<byte> Csum(int i)
    {
        if ((uint)i >= (uint)Count) Throw.OutOfBounds("csum item", (long)i * _csumSize, _csumSize, _d.Length);
        return _d.Slice(i * _csumSize, _csumSize);
    }

    /// <summary>Bytes of data covered: count × sector size.</summary>
    public ulong CoveredBytes(uint sectorSize) => (ulong)Count * sectorSize;
}
