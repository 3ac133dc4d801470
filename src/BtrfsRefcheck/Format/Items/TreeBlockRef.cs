namespace BtrfsRefcheck.Format.Items;

/// <summary>Keyed TREE_BLOCK_REF: (tree block bytenr, TREE_BLOCK_REF, root id). Everything is in the key; no data.</summary>
public static class TreeBlockRef
{
    public const int Size = 0;
}
