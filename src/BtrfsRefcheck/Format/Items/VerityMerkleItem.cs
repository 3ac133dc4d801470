namespace BtrfsRefcheck.Format.Items;

/// <summary>VERITY_MERKLE_ITEM, keyed (inode, VERITY_MERKLE_ITEM, byte offset in the Merkle tree): opaque
/// Merkle tree bytes, shown raw.</summary>
public readonly ref struct VerityMerkleItem
{
    private readonly ReadOnlySpan<byte> _d;
    public VerityMerkleItem(ReadOnlySpan<byte> d) => _d = d;
    public ReadOnlySpan<byte> Bytes => _d;
}
