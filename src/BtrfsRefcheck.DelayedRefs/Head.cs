namespace BtrfsRefcheck.DelayedRefs;

/// <summary><c>btrfs_delayed_ref_head</c>: the pending refs of one bytenr. 4.2/4.3 keep them in a list in insertion
/// order (<see cref="List"/>); 6.10 and current in a red-black tree ordered by <c>comp_refs</c> plus
/// <c>ref_add_list</c>, the ADDs in insertion order (<see cref="Tree"/>, <see cref="AddList"/>).</summary>
public sealed class Head
{
    public required string Block { get; init; }
    public required ulong Bytenr { get; init; }
    /// <summary>node.ref_mod: the signed sum of the pending refs.</summary>
    public int RefMod { get; set; }
    /// <summary>Every count_mod added since the head was created (never decremented at run).</summary>
    public int TotalRefMod { get; set; }
    public bool MustInsertReserved { get; set; }
    public bool HasExtentOp { get; set; }
    public bool Processing { get; set; }
    /// <summary>Bookkeeping outside the kernel's fields, for invariant 1: the count_mods issued to this head.</summary>
    internal int IssuedForCheck { get; set; }

    public List<DelayedRef>? List { get; init; }
    public RbTree<DelayedRef>? Tree { get; init; }
    public List<DelayedRef> AddList { get; } = [];
    internal Dictionary<DelayedRef, RbTree<DelayedRef>.Node> Nodes { get; } = new(ReferenceEqualityComparer.Instance);

    /// <summary>Pending refs in list order (4.x) or in-order (rbtree).</summary>
    public IEnumerable<DelayedRef> Pending => List ?? Tree!.InOrder().Select(n => n.Value);

    public int PendingCount => List?.Count ?? Tree!.Count;

    public void Remove(DelayedRef r)
    {
        if (List != null) List.Remove(r);
        else
        {
            Tree!.Erase(Nodes[r]);
            Nodes.Remove(r);
            AddList.Remove(r);
        }
    }

    /// <summary>Shape of the rbtree: <c>R4(R3(R5,-),R1)</c>, red nodes marked with <c>*</c>.</summary>
    public string Shape()
    {
        if (Tree?.Root == null) return "-";
        static string S(RbTree<DelayedRef>.Node? n) => n == null ? "-"
            : n.LeftChild == null && n.RightChild == null ? $"R{n.Value.Id}{(n.IsRed ? "*" : "")}"
            : $"R{n.Value.Id}{(n.IsRed ? "*" : "")}({S(n.LeftChild)},{S(n.RightChild)})";
        return S(Tree.Root);
    }
}
