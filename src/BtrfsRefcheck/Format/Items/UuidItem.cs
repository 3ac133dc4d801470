namespace BtrfsRefcheck.Format.Items;

/// <summary>View of a UUID_KEY_SUBVOL / UUID_KEY_RECEIVED_SUBVOL item, keyed (uuid upper 64 bits, type,
/// uuid lower 64 bits): an array of u64 subvolume ids.</summary>
public readonly ref struct UuidItem
{
    public const int EntrySize = 8;

    private readonly ReadOnlySpan<byte> _d;

    public UuidItem(ReadOnlySpan<byte> d) => _d = d;

    public int Count => _d.Length / EntrySize;

    /// <summary>Bytes after the last whole id (non-zero means the item size is wrong).</summary>
    public int Leftover => _d.Length % EntrySize;

    public ulong SubvolId(int i)
    {
        if ((uint)i >= (uint)Count) Throw.OutOfBounds("uuid item", (long)i * EntrySize, EntrySize, _d.Length);
        return Le.U64(_d, i * EntrySize);
    }

    /// <summary>The UUID a key stands for: objectid holds bytes 0..7 and offset bytes 8..15, both little-endian
    /// (btrfs_uuid_to_key).</summary>
    public static Guid KeyToUuid(BtrfsKey key)
    {
        Span<byte> b = stackalloc byte[16];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(b, key.ObjectId);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(b[8..], key.Offset);
        return Uuids.Read(b);
    }
}
