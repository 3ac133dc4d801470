namespace BtrfsRefcheck.Format.Items;

/// <summary>ORPHAN_ITEM: (ORPHAN, ORPHAN_ITEM, inode or root id). Everything is in the key; the item has no data.</summary>
public static class OrphanItem
{
    public const int Size = 0;
}
