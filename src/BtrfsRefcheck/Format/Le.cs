using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace BtrfsRefcheck.Format;

/// <summary>Static bounds-checked field reads for fixed-layout views. A read past the end of the span (a short or
/// malformed payload) raises <see cref="BtrfsFormatException"/>, the format's own exception, never
/// ArgumentOutOfRangeException; the check is overflow-safe (<c>(ulong)(uint)at + size &gt; length</c>).</summary>
public static class Le
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong U64(ReadOnlySpan<byte> d, int at)
    {
        if ((ulong)(uint)at + 8 > (ulong)d.Length) Throw.OutOfBounds("field", at, 8, d.Length);
        ulong v = Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref MemoryMarshal.GetReference(d), at)); // checked above
        return BitConverter.IsLittleEndian ? v : BinaryPrimitives.ReverseEndianness(v);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint U32(ReadOnlySpan<byte> d, int at)
    {
        if ((ulong)(uint)at + 4 > (ulong)d.Length) Throw.OutOfBounds("field", at, 4, d.Length);
        uint v = Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref MemoryMarshal.GetReference(d), at)); // checked above
        return BitConverter.IsLittleEndian ? v : BinaryPrimitives.ReverseEndianness(v);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort U16(ReadOnlySpan<byte> d, int at)
    {
        if ((ulong)(uint)at + 2 > (ulong)d.Length) Throw.OutOfBounds("field", at, 2, d.Length);
        ushort v = Unsafe.ReadUnaligned<ushort>(ref Unsafe.Add(ref MemoryMarshal.GetReference(d), at)); // checked above
        return BitConverter.IsLittleEndian ? v : BinaryPrimitives.ReverseEndianness(v);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static byte U8(ReadOnlySpan<byte> d, int at)
    {
        if ((uint)at >= (uint)d.Length) Throw.OutOfBounds("field", at, 1, d.Length);
        return Unsafe.Add(ref MemoryMarshal.GetReference(d), at);
    }
}

/// <summary>btrfs stores UUIDs as 16 raw bytes in RFC 4122 (big-endian) order.</summary>
public static class Uuids
{
    public static Guid Read(ReadOnlySpan<byte> b) => new(b[..16], bigEndian: true);
    public static string Format(ReadOnlySpan<byte> b) => Read(b).ToString("D");
    public static bool IsZero(ReadOnlySpan<byte> b) => !b[..16].ContainsAnyExcept((byte)0);
}
