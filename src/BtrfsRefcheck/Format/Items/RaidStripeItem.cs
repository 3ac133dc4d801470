namespace BtrfsRefcheck.Format.Items;

/// <summary>View of a RAID_STRIPE item (raid stripe tree), keyed (logical, RAID_STRIPE, length): an array of
/// strides (devid u64, physical u64), the on-disk format since kernel 6.11. Kernels 6.7 to 6.10 (experimental)
/// wrote an 8-byte header (encoding u8, reserved[7]) before the strides; an item whose size is 8 more than a
/// multiple of 16 is read that way (<see cref="HasLegacyEncoding"/>).</summary>
public readonly ref struct RaidStripeItem
{
    public const int StrideSize = PhysicalAt + 8; // 16
    public const int LegacyHeaderSize = 8;
    private const int DevIdAt = 0;
    private const int PhysicalAt = DevIdAt + 8;

    private readonly ReadOnlySpan<byte> _d;
    private readonly int _start;

    public RaidStripeItem(ReadOnlySpan<byte> d)
    {
        _d = d;
        _start = d.Length % StrideSize == LegacyHeaderSize ? LegacyHeaderSize : 0;
    }

    public bool HasLegacyEncoding => _start == LegacyHeaderSize;

    /// <summary>The legacy encoding byte (1:1 with btrfs_raid_types), 0 when absent.</summary>
    public byte LegacyEncoding => HasLegacyEncoding ? _d[0] : (byte)0;

    public int Count => (_d.Length - _start) / StrideSize;

    /// <summary>Bytes after the last whole stride.</summary>
    public int Leftover => (_d.Length - _start) % StrideSize;

    public ulong DevId(int i) => Le.U64(Stride(i), DevIdAt);
    public ulong Physical(int i) => Le.U64(Stride(i), PhysicalAt);

    private ReadOnlySpan<byte> Stride(int i)
    {
        if ((uint)i >= (uint)Count) Throw.OutOfBounds("raid stripe", _start + (long)i * StrideSize, StrideSize, _d.Length);
        return _d.Slice(_start + i * StrideSize, StrideSize);
    }

    /// <summary>Name of a legacy encoding value (btrfs_raid_types order).</summary>
    public static string EncodingName(byte e) => e switch
    {
        1 => "RAID0",
        2 => "RAID1",
        3 => "DUP",
        4 => "RAID10",
        5 => "RAID5",
        6 => "RAID6",
        7 => "RAID1C3",
        8 => "RAID1C4",
        _ => $"UNKNOWN.{e}",
    };
}
