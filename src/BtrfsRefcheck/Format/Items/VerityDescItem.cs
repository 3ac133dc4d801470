namespace BtrfsRefcheck.Format.Items;

/// <summary>VERITY_DESC_ITEM, keyed (inode, VERITY_DESC_ITEM, offset). At offset 0 a btrfs_verity_descriptor_item
/// (size u64, reserved u64[2], encryption u8: 25 bytes); at offsets from 1 on, opaque fs-verity descriptor bytes.</summary>
public readonly ref struct VerityDescItem
{
    public const int Size = EncryptionAt + 1; // 25
    private const int SizeAt = 0;
    private const int ReservedAt = SizeAt + 8;
    private const int EncryptionAt = ReservedAt + 2 * 8;

    private readonly ReadOnlySpan<byte> _d;

    /// <summary>For the item at key offset 0 only.</summary>
    public VerityDescItem(ReadOnlySpan<byte> d)
    {
        if (d.Length < Size) Throw.Truncated("verity descriptor item", Size, d.Length);
        _d = d;
    }

    /// <summary>Size of the fs-verity descriptor stored in the items from offset 1 on.</summary>
    public ulong DescriptorSize => Le.U64(_d, SizeAt);
    public byte Encryption => _d[EncryptionAt];
}
