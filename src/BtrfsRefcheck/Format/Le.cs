using System.Buffers.Binary;

namespace BtrfsRefcheck.Format;

/// <summary>Bounds-checked little-endian reader over a span. Every read checks
/// <c>(ulong)offset + count &gt; length</c> first, so a length taken from the image can never overflow.</summary>
public ref struct SpanCursor
{
    private readonly ReadOnlySpan<byte> _data;
    private readonly string _what;
    private int _pos;

    public SpanCursor(ReadOnlySpan<byte> data, string what = "item")
    {
        _data = data;
        _what = what;
        _pos = 0;
    }

    public readonly int Position => _pos;
    public readonly int Remaining => _data.Length - _pos;
    public readonly bool AtEnd => _pos >= _data.Length;

    private ReadOnlySpan<byte> Take(int count)
    {
        if (count < 0 || (ulong)(uint)_pos + (ulong)(uint)count > (ulong)_data.Length)
            Throw.OutOfBounds(_what, _pos, count, _data.Length);
        var s = _data.Slice(_pos, count);
        _pos += count;
        return s;
    }

    public byte U8() => Take(1)[0];
    public ushort U16() => BinaryPrimitives.ReadUInt16LittleEndian(Take(2));
    public uint U32() => BinaryPrimitives.ReadUInt32LittleEndian(Take(4));
    public ulong U64() => BinaryPrimitives.ReadUInt64LittleEndian(Take(8));
    public long I64() => BinaryPrimitives.ReadInt64LittleEndian(Take(8));
    public BtrfsKey Key() => BtrfsKey.Read(Take(BtrfsKey.Size));
    public Guid Uuid() => Uuids.Read(Take(16));
    public ReadOnlySpan<byte> Bytes(int count) => Take(count);
    public void Skip(int count) => Take(count);

    /// <summary>Checks that <paramref name="count"/> more bytes exist without consuming them.</summary>
    public readonly bool Has(long count) => count >= 0 && (ulong)(uint)_pos + (ulong)count <= (ulong)_data.Length;
}

/// <summary>Static bounds-checked field reads for fixed-layout views. A read past the end of the span (a short or
/// malformed payload) raises <see cref="BtrfsFormatException"/>, the format's own exception, never
/// ArgumentOutOfRangeException; the check is overflow-safe (<c>(ulong)(uint)at + size &gt; length</c>).</summary>
public static class Le
{
    public static ulong U64(ReadOnlySpan<byte> d, int at)
    {
        if ((ulong)(uint)at + 8 > (ulong)d.Length) Throw.OutOfBounds("field", at, 8, d.Length);
        return BinaryPrimitives.ReadUInt64LittleEndian(d.Slice(at, 8));
    }

    public static uint U32(ReadOnlySpan<byte> d, int at)
    {
        if ((ulong)(uint)at + 4 > (ulong)d.Length) Throw.OutOfBounds("field", at, 4, d.Length);
        return BinaryPrimitives.ReadUInt32LittleEndian(d.Slice(at, 4));
    }

    public static ushort U16(ReadOnlySpan<byte> d, int at)
    {
        if ((ulong)(uint)at + 2 > (ulong)d.Length) Throw.OutOfBounds("field", at, 2, d.Length);
        return BinaryPrimitives.ReadUInt16LittleEndian(d.Slice(at, 2));
    }

    public static byte U8(ReadOnlySpan<byte> d, int at)
    {
        if ((uint)at >= (uint)d.Length) Throw.OutOfBounds("field", at, 1, d.Length);
        return d[at];
    }
}

/// <summary>btrfs stores UUIDs as 16 raw bytes in RFC 4122 (big-endian) order.</summary>
public static class Uuids
{
    public static Guid Read(ReadOnlySpan<byte> b) => new(b[..16], bigEndian: true);
    public static string Format(ReadOnlySpan<byte> b) => Read(b).ToString("D");
    public static bool IsZero(ReadOnlySpan<byte> b) => !b[..16].ContainsAnyExcept((byte)0);
}
