using BtrfsRefcheck.Format.Items;

namespace BtrfsRefcheck.Tests.Format;

/// <summary>The interleaved CRC32C must equal the single-chain one for every length and seed it can meet, and the
/// single chain the bitwise definition.</summary>
public class Crc32CTests
{
    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(3071)]
    [InlineData(3072)]
    [InlineData(3073)]
    [InlineData(4064)]   // 4 KiB node minus the checksum field
    [InlineData(16352)]  // 16 KiB node minus the checksum field
    [InlineData(65504)]  // 64 KiB node minus the checksum field
    [InlineData(100003)]
    public void InterleavedEqualsSimple(int length)
    {
        var rng = new Random(length);
        var data = new byte[length];
        rng.NextBytes(data);
        foreach (uint seed in new[] { 0u, ~0u, 0x12345678u })
            Assert.Equal(RawCrc32C.UpdateSimple(seed, data), RawCrc32C.Update(seed, data));
    }

    /// <summary>The word loop and its 4-, 2- and 1-byte tail (every remainder, at every start offset) against the
    /// bitwise definition: reflected polynomial 0x82F63B78, no final inversion.</summary>
    [Fact]
    public void SimpleEqualsBitwiseDefinition()
    {
        var rng = new Random(7);
        var data = new byte[64];
        rng.NextBytes(data);
        foreach (uint seed in new[] { 0u, ~0u, ~1u, 0x12345678u })
            for (int start = 0; start < 8; start++)
                for (int length = 0; start + length <= data.Length; length++)
                {
                    var span = data.AsSpan(start, length);
                    Assert.Equal(Bitwise(seed, span), RawCrc32C.UpdateSimple(seed, span));
                }
    }

    private static uint Bitwise(uint crc, ReadOnlySpan<byte> data)
    {
        foreach (byte b in data)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++) crc = (crc & 1) != 0 ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
        }
        return crc;
    }

    [Fact]
    public void KnownVector()
    {
        // CRC-32C("123456789") = 0xE3069283 (init ~0, final inversion)
        var digits = "123456789"u8.ToArray();
        Assert.Equal(0xE3069283u, ~RawCrc32C.Update(~0u, digits));
        var longer = Enumerable.Repeat(digits, 500).SelectMany(d => d).ToArray(); // 4500 bytes: the interleaved path
        Assert.Equal(~RawCrc32C.UpdateSimple(~0u, longer), ~RawCrc32C.Update(~0u, longer));
    }

    /// <summary>hash_extent_data_ref, spelled out as the kernel does it: crc32c over each field's little-endian bytes.</summary>
    [Fact]
    public void ExtentDataRefHashIsCrc32COverTheLittleEndianFields()
    {
        static uint Crc(uint seed, ulong v)
        {
            var le = new byte[8];
            System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(le, v);
            return RawCrc32C.UpdateSimple(seed, le);
        }
        var rng = new Random(3);
        for (int i = 0; i < 1000; i++)
        {
            ulong root = (ulong)rng.NextInt64(), ino = (ulong)rng.NextInt64(), off = (ulong)rng.NextInt64();
            if (i == 0) (root, ino, off) = (5, 257, 0);
            Assert.Equal(((ulong)Crc(~0u, root) << 31) ^ Crc(Crc(~0u, ino), off), ExtentDataRefs.Hash(root, ino, off));
        }
    }
}
