namespace BtrfsRefcheck.Format.Items;

/// <summary>View of a keyed EXTENT_DATA_REF, (extent bytenr, EXTENT_DATA_REF, hash(root, objectid, offset)):
/// the 28-byte btrfs_extent_data_ref read through <see cref="ExtentDataRefs.Read"/>.</summary>
public readonly ref struct ExtentDataRef
{
    public const int Size = ExtentDataRefs.Size; // 28

    private readonly ReadOnlySpan<byte> _d;

    public ExtentDataRef(ReadOnlySpan<byte> d)
    {
        if (d.Length < Size) Throw.Truncated("extent data ref", Size, d.Length);
        _d = d;
    }

    public ulong Root => ExtentDataRefs.Read(_d).Root;
    public ulong ObjectId => ExtentDataRefs.Read(_d).ObjectId;
    public ulong Offset => ExtentDataRefs.Read(_d).Offset;
    public uint Count => ExtentDataRefs.Read(_d).Count;

    /// <summary>The key offset this ref should be stored under.</summary>
    public ulong ExpectedKeyOffset
    {
        get
        {
            var r = ExtentDataRefs.Read(_d);
            return ExtentDataRefs.Hash(r.Root, r.ObjectId, r.Offset);
        }
    }
}
