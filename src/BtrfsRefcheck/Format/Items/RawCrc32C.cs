using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;

namespace BtrfsRefcheck.Format.Items;

/// <summary>CRC32C without the final inversion, as the kernel's crc32c(seed, data, len) used for name and ref hashes
/// (and, inverted, for block checksums). Uses the CPU's CRC32C instruction: SSE4.2 on x64, tested once per call
/// rather than per word (a Native AOT build that does not assume SSE4.2 turns every <see cref="System.Numerics.BitOperations.Crc32C(uint, ulong)"/>
/// into a run-time test with the table fallback inline, which spills the loop's state to the stack), and
/// <see cref="System.Numerics.BitOperations.Crc32C(uint, ulong)"/> elsewhere (Arm64 instruction or software).
/// Long buffers run three independent streams interleaved (the instruction's latency is three times its throughput)
/// and combine them: crc(A|B|C) = shift(crcA, |B|+|C|) xor shift(crcB, |C|) xor crcC, where shift(c, n) is the CRC state
/// after n zero bytes, a linear map applied with four 256-entry tables built once per length.</summary>
public static class RawCrc32C
{
    private const int InterleaveMin = 3 * 1024;

    public static uint Update(uint crc, ReadOnlySpan<byte> data) =>
        data.Length >= InterleaveMin ? UpdateInterleaved(crc, data) : UpdateSimple(crc, data);

    /// <summary>One dependency chain; the reference the interleaved version is tested against.</summary>
    public static uint UpdateSimple(uint crc, ReadOnlySpan<byte> data)
    {
        if (Sse42.X64.IsSupported)
        {
            ref byte r = ref MemoryMarshal.GetReference(data);
            int n = data.Length, i = 0;
            for (; n - i >= 8; i += 8) crc = (uint)Sse42.X64.Crc32(crc, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref r, i)));
            if ((n & 4) != 0) { crc = Sse42.Crc32(crc, Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref r, i))); i += 4; }
            if ((n & 2) != 0) { crc = Sse42.Crc32(crc, Unsafe.ReadUnaligned<ushort>(ref Unsafe.Add(ref r, i))); i += 2; }
            if ((n & 1) != 0) crc = Sse42.Crc32(crc, Unsafe.Add(ref r, i));
            return crc;
        }
        while (data.Length >= 8)
        {
            crc = BitOperations.Crc32C(crc, BinaryPrimitives.ReadUInt64LittleEndian(data));
            data = data[8..];
        }
        foreach (byte b in data) crc = BitOperations.Crc32C(crc, b);
        return crc;
    }

    private static uint UpdateInterleaved(uint crc, ReadOnlySpan<byte> data)
    {
        int part = (data.Length / 3) & ~7;
        var a = data[..part];
        var b = data.Slice(part, part);
        var c = data[(2 * part)..];
        uint ca = crc, cb = 0, cc = 0;
        ref byte ra = ref MemoryMarshal.GetReference(a);
        ref byte rb = ref MemoryMarshal.GetReference(b);
        ref byte rc = ref MemoryMarshal.GetReference(c);
        if (Sse42.X64.IsSupported)
        {
            ulong xa = ca, xb = cb, xc = cc;
            for (int i = 0; i < part; i += 8)
            {
                xa = Sse42.X64.Crc32(xa, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref ra, i)));
                xb = Sse42.X64.Crc32(xb, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref rb, i)));
                xc = Sse42.X64.Crc32(xc, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref rc, i)));
            }
            (ca, cb, cc) = ((uint)xa, (uint)xb, (uint)xc);
        }
        else
        {
            for (int i = 0; i < part; i += 8)
            {
                ca = BitOperations.Crc32C(ca, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref ra, i)));
                cb = BitOperations.Crc32C(cb, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref rb, i)));
                cc = BitOperations.Crc32C(cc, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref rc, i)));
            }
        }
        cc = UpdateSimple(cc, c[part..]);
        return Shift(ca, b.Length + c.Length) ^ Shift(cb, c.Length) ^ cc;
    }

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<int, uint[]> ShiftTables = new();

    /// <summary>The CRC state <paramref name="crc"/> after <paramref name="zeros"/> more zero bytes.</summary>
    private static uint Shift(uint crc, int zeros)
    {
        var t = ShiftTables.GetOrAdd(zeros, BuildShiftTable);
        return t[crc & 0xff] ^ t[256 + ((crc >> 8) & 0xff)] ^ t[512 + ((crc >> 16) & 0xff)] ^ t[768 + (crc >> 24)];
    }

    private static uint[] BuildShiftTable(int zeros)
    {
        // The map is linear over GF(2): find the image of each of the 32 basis states, then tabulate per byte.
        Span<uint> basis = stackalloc uint[32];
        Span<byte> zero = stackalloc byte[256];
        for (int bit = 0; bit < 32; bit++)
        {
            uint c = 1u << bit;
            int left = zeros;
            while (left > 0) { int n = Math.Min(left, zero.Length); c = UpdateSimple(c, zero[..n]); left -= n; }
            basis[bit] = c;
        }
        var table = new uint[1024];
        for (int k = 0; k < 4; k++)
            for (int v = 0; v < 256; v++)
            {
                uint r = 0;
                for (int bit = 0; bit < 8; bit++) if ((v & (1 << bit)) != 0) r ^= basis[k * 8 + bit];
                table[k * 256 + v] = r;
            }
        return table;
    }
}
