namespace BtrfsRefcheck.Format;

/// <summary>View of one 1 KiB cluster header of a btrfs-image metadata dump (btrfs-progs <c>image/metadump.h</c>):
/// magic, the cluster's own file offset, the item count and the compression, then <see cref="NrItems"/> items
/// {logical start, stored size}. The items' payloads follow the header in the same order, each compressed on its own
/// (zlib) or stored, and the cluster is padded to a multiple of 1 KiB.</summary>
public readonly ref struct MetadumpCluster
{
    public const int Size = 1024;
    public const int MagicAt = 0;
    public const int BytenrAt = MagicAt + 8;
    public const int NrItemsAt = BytenrAt + 8;
    public const int CompressAt = NrItemsAt + 4;
    public const int HeaderSize = CompressAt + 1;      // 21
    public const int ItemSize = 12;                    // __le64 bytenr, __le32 size
    public const int MaxItems = (Size - HeaderSize) / ItemSize; // ITEMS_PER_CLUSTER: 83

    /// <summary>Dump format 0 (every btrfs-image): tree blocks and the free space cache, items up to 256 KiB.</summary>
    public const ulong MagicV0 = 0xbd5c25e27295668bUL;
    /// <summary>Dump format 1 (btrfs-image -d of an EXPERIMENTAL build, "_DUmP_v1"): data extents too, items up to 256 MiB.</summary>
    public const ulong MagicV1 = 0x31765f506d55445fUL;

    public const byte CompressNone = 0;
    public const byte CompressZlib = 1;

    /// <summary>The largest raw item each format writes (max_pending_size).</summary>
    public static int MaxItemBytes(int version) => version == 0 ? 256 << 10 : 256 << 20;

    /// <summary>The format version a cluster magic says, or -1 when it is not a dump's.</summary>
    public static int Version(ulong magic) => magic switch { MagicV0 => 0, MagicV1 => 1, _ => -1 };

    /// <summary>The file starts with a cluster header of a known dump format.</summary>
    public static bool IsMetadump(ReadOnlySpan<byte> first) => first.Length >= 8 && Version(Le.U64(first, MagicAt)) >= 0;

    private readonly ReadOnlySpan<byte> _d;

    public MetadumpCluster(ReadOnlySpan<byte> header)
    {
        if (header.Length < Size) Throw.Truncated("metadump cluster header", Size, header.Length);
        _d = header;
    }

    public ulong Magic => Le.U64(_d, MagicAt);
    /// <summary>The file offset btrfs-image wrote this cluster at.</summary>
    public ulong Bytenr => Le.U64(_d, BytenrAt);
    public uint NrItems => Le.U32(_d, NrItemsAt);
    public byte Compress => Le.U8(_d, CompressAt);

    /// <summary>Item <paramref name="i"/> (below <see cref="MaxItems"/>): its logical start (65536: the superblock) and
    /// the size of its payload in the file.</summary>
    public (ulong Logical, uint StoredSize) Item(int i)
    {
        int at = HeaderSize + i * ItemSize;
        return (Le.U64(_d, at), Le.U32(_d, at + 8));
    }
}
