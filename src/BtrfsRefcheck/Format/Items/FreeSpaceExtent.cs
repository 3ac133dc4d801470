namespace BtrfsRefcheck.Format.Items;

/// <summary>FREE_SPACE_EXTENT: (start, FREE_SPACE_EXTENT, length). Everything is in the key; the item has no data.</summary>
public static class FreeSpaceExtent
{
    public const int Size = 0;
}
