using System.Numerics;

namespace BtrfsRefcheck.Format.Items;

/// <summary>View of a FREE_SPACE_BITMAP, keyed (start, FREE_SPACE_BITMAP, length): one bit per sector of the
/// range, bit i (LSB-first within each byte) set when sector i is free.</summary>
public readonly ref struct FreeSpaceBitmap
{
    private readonly ReadOnlySpan<byte> _d;

    public FreeSpaceBitmap(ReadOnlySpan<byte> d) => _d = d;

    public ReadOnlySpan<byte> Bits => _d;
    public long BitCount => (long)_d.Length * 8;

    public long SetBits
    {
        get
        {
            long n = 0;
            var d = _d;
            while (d.Length >= 8) { n += BitOperations.PopCount(Le.U64(d, 0)); d = d[8..]; }
            foreach (byte b in d) n += BitOperations.PopCount(b);
            return n;
        }
    }

    public bool IsSet(long bit)
    {
        if (bit < 0 || bit >= BitCount) Throw.OutOfBounds("free space bitmap", bit / 8, 1, _d.Length);
        return (_d[(int)(bit >> 3)] & (1 << (int)(bit & 7))) != 0;
    }

    /// <summary>Item size for a bitmap covering <paramref name="length"/> bytes: DIV_ROUND_UP(length / sectorsize, 8).
    /// -1 when the sector size is zero.</summary>
    public static long ExpectedSize(ulong length, uint sectorSize) =>
        sectorSize == 0 ? -1 : (long)((length / sectorSize + 7) / 8);
}
