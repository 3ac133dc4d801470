namespace BtrfsRefcheck.Format.Items;

/// <summary>Keyed SHARED_BLOCK_REF: (tree block bytenr, SHARED_BLOCK_REF, parent block bytenr). No data.</summary>
public static class SharedBlockRef
{
    public const int Size = 0;
}
