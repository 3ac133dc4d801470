using BtrfsRefcheck.Format;

namespace BtrfsRefcheck.Volume;

/// <summary>Where the bytes at a logical address come from, for the <see cref="TreeBlockReader"/>: the devices, through
/// the chunk's stripes, mirrors and parity (<see cref="DeviceBlockSource"/>), or a btrfs-image metadata dump, which
/// holds each tree block once by its logical address (<see cref="MetadumpImage"/>). The reader keeps what does not
/// depend on the source: the chunk lookup (an address in no chunk is 204 either way), verification and the cache.</summary>
internal interface IBlockSource
{
    /// <summary>How many copies of an address in <paramref name="chunk"/> can be read (1 for a dump).</summary>
    int Copies(Chunk chunk);

    /// <summary>Reads copy <paramref name="copy"/> of [logical, logical + dest.Length), which lies inside
    /// <paramref name="chunk"/>, into <paramref name="dest"/>. Null when every byte was read, else what failed.</summary>
    CopyFailure? Read(Chunk chunk, ulong logical, int copy, Span<byte> dest);

    /// <summary>A key that orders reads the cheapest way (copy 0's physical offset on its device; a dump's file offset).</summary>
    ulong ReadOrder(Chunk chunk, ulong logical);

    /// <summary>A hint that copy 0 of [logical, logical + length) will be read soon.</summary>
    void WillNeed(Chunk chunk, ulong logical, ulong length);

    /// <summary>The checksum tree blocks carry here when it is not the superblock's csum_type: btrfs-image reseals every
    /// tree block it dumps with crc32c (image/common.c, csum_block), whatever the filesystem's type. Null: the superblock's.</summary>
    ChecksumType? ResealedWith { get; }
}
