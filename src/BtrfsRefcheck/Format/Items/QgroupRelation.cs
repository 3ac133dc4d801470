namespace BtrfsRefcheck.Format.Items;

/// <summary>QGROUP_RELATION: (child, QGROUP_RELATION, parent) and the mirror (parent, QGROUP_RELATION, child).
/// Everything is in the key; the item has no data.</summary>
public static class QgroupRelation
{
    public const int Size = 0;
}
