using System.Buffers.Binary;
using System.IO.Hashing;
using System.Security.Cryptography;

namespace BtrfsRefcheck.Format;

/// <summary>The superblock's csum_type.</summary>
public enum ChecksumType : ushort
{
    Crc32c = 0,
    XxHash64 = 1,
    Sha256 = 2,
    Blake2b = 3,
}

/// <summary>Checksums of tree blocks and superblocks: the digest of bytes [32, end) stored at offset 0,
/// zero-padded to 32 bytes. crc32c and xxhash64 are stored little-endian.</summary>
public static class Checksum
{
    public const int FieldSize = 32;

    public static bool IsKnown(ushort type) => type <= (ushort)ChecksumType.Blake2b;

    public static string Name(ushort type) => type switch
    {
        0 => "crc32c",
        1 => "xxhash64",
        2 => "sha256",
        3 => "blake2", // as btrfs-progs prints it (dump-super, mkfs --csum); the kernel says "blake2b"
        _ => $"unknown({type})",
    };

    /// <summary>Digest length in bytes.</summary>
    public static int Length(ChecksumType type) => type switch
    {
        ChecksumType.Crc32c => 4,
        ChecksumType.XxHash64 => 8,
        _ => 32,
    };

    /// <summary>Computes the checksum of <paramref name="data"/> into the 32-byte <paramref name="dest"/>, zero-padded.</summary>
    public static void Compute(ChecksumType type, ReadOnlySpan<byte> data, Span<byte> dest)
    {
        dest[..FieldSize].Clear();
        switch (type)
        {
            case ChecksumType.Crc32c:
                BinaryPrimitives.WriteUInt32LittleEndian(dest, ~Items.RawCrc32C.Update(~0u, data));
                break;
            case ChecksumType.XxHash64:
                BinaryPrimitives.WriteUInt64LittleEndian(dest, K4os.Hash.xxHash.XXH64.DigestOf(data));
                break;
            case ChecksumType.Sha256:
                SHA256.HashData(data, dest);
                break;
            case ChecksumType.Blake2b:
                var digest = new Org.BouncyCastle.Crypto.Digests.Blake2bDigest(256);
                digest.BlockUpdate(data);
                digest.DoFinal(dest);
                break;
            default:
                Throw.Invalid($"unknown checksum type {(ushort)type}");
                break;
        }
    }

    /// <summary>Verifies a block whose first 32 bytes hold the checksum of the rest.</summary>
    public static bool Verify(ChecksumType type, ReadOnlySpan<byte> block, Span<byte> computed)
    {
        Compute(type, block[FieldSize..], computed);
        int n = Length(type);
        return block[..n].SequenceEqual(computed[..n]);
    }

    public static bool Verify(ChecksumType type, ReadOnlySpan<byte> block)
    {
        Span<byte> tmp = stackalloc byte[FieldSize];
        return Verify(type, block, tmp);
    }

    /// <summary>Hex of the first <see cref="Length"/> bytes of a checksum field.</summary>
    public static string ToHex(ChecksumType type, ReadOnlySpan<byte> field) =>
        "0x" + Convert.ToHexStringLower(field[..(IsKnown((ushort)type) ? Length(type) : FieldSize)]);
}
