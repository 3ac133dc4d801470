namespace BtrfsRefcheck.Format.Items;

/// <summary>View of a keyed SHARED_DATA_REF, (extent bytenr, SHARED_DATA_REF, parent leaf bytenr): count u32.</summary>
public readonly ref struct SharedDataRef
{
    public const int Size = CountAt + 4; // 4
    private const int CountAt = 0;

    private readonly ReadOnlySpan<byte> _d;

    public SharedDataRef(ReadOnlySpan<byte> d)
    {
        if (d.Length < Size) Throw.Truncated("shared data ref", Size, d.Length);
        _d = d;
    }

    public uint Count => Le.U32(_d, CountAt);
}
