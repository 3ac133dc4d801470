using BtrfsRefcheck.Format;

namespace BtrfsRefcheck.Checks;

/// <summary>Back-ref kinds, numbered as their key types.</summary>
public enum RefKind : byte
{
    Owner = (byte)ItemType.ExtentOwnerRef,
    TreeBlock = (byte)ItemType.TreeBlockRef,
    ExtentData = (byte)ItemType.ExtentDataRef,
    SharedBlock = (byte)ItemType.SharedBlockRef,
    SharedData = (byte)ItemType.SharedDataRef,
}

/// <summary>One back-reference, found in the extent tree or expected from the trees. Compact: a struct kept
/// in a flat list, sorted and merged; no per-reference objects.</summary>
internal struct RefRec
{
    public ulong Bytenr;   // extent start
    public ulong A;        // root (TREE_BLOCK_REF, EXTENT_DATA_REF, EXTENT_OWNER_REF) or parent block (SHARED_*)
    public ulong ObjectId; // EXTENT_DATA_REF: inode
    public ulong Offset;   // EXTENT_DATA_REF: file offset minus extent offset
    public ulong Count;
    public ulong Where;    // found: extent-tree leaf holding the item; expected: the referencing block (0: a root item)
    public ulong Tree;     // expected: the tree walked
    public int Slot;       // slot of the item (found) or of the pointer / file extent (expected)
    public RefKind Kind;
    public bool Inline;    // found: inline in the extent item rather than a keyed item

    public static int CompareKey(RefRec x, RefRec y)
    {
        int c = x.Bytenr.CompareTo(y.Bytenr);
        if (c != 0) return c;
        c = ((byte)x.Kind).CompareTo((byte)y.Kind);
        if (c != 0) return c;
        c = x.A.CompareTo(y.A);
        if (c != 0) return c;
        c = x.ObjectId.CompareTo(y.ObjectId);
        return c != 0 ? c : x.Offset.CompareTo(y.Offset);
    }

    public readonly bool SameKey(in RefRec o) => Bytenr == o.Bytenr && Kind == o.Kind && A == o.A && ObjectId == o.ObjectId && Offset == o.Offset;

    public readonly bool IsTreeRef => Kind is RefKind.TreeBlock or RefKind.SharedBlock;

    public readonly string Describe() => Kind switch
    {
        RefKind.TreeBlock => $"TREE_BLOCK_REF root={ObjectIds.TreeName(A)}",
        RefKind.SharedBlock => $"SHARED_BLOCK_REF parent={A}",
        RefKind.ExtentData => $"EXTENT_DATA_REF root={ObjectIds.TreeName(A)} objectid={ObjectId} offset={Offset}",
        RefKind.SharedData => $"SHARED_DATA_REF parent={A}",
        _ => $"EXTENT_OWNER_REF root={ObjectIds.TreeName(A)}",
    };
}

/// <summary>An EXTENT_ITEM or METADATA_ITEM.</summary>
internal struct ExtentRec
{
    public ulong Bytenr;
    public ulong Length;
    public ulong Refs;
    public ulong Flags;
    public ulong Generation;
    public ulong ItemBlock;
    public int ItemSlot;
    public byte Level;          // tree blocks: level from the key or tree_block_info; 0xff: not a tree block
    public bool IsMetadataItem;
    public ulong FoundRefs;     // sum of back-ref counts (filled in the merge)
    public bool Referenced;     // some real reference points at it (filled in the merge)

    public readonly bool IsTreeBlock => (Flags & (ulong)Format.Items.ExtentFlags.TreeBlock) != 0;
    public readonly bool IsData => (Flags & (ulong)Format.Items.ExtentFlags.Data) != 0;
    public readonly bool FullBackref => (Flags & (ulong)Format.Items.ExtentFlags.FullBackref) != 0;
    public readonly ulong End => Bytenr + Length;
    public readonly BtrfsKey Key => new(Bytenr, IsMetadataItem ? (byte)ItemType.MetadataItem : (byte)ItemType.ExtentItem, IsMetadataItem ? Level : Length);
}

/// <summary>A tree block the walk visited.</summary>
internal struct BlockRec
{
    public ulong Bytenr;
    public ulong Owner;
    public ulong Tree;
    public byte Level;
    public byte BackrefRev;
}

/// <summary>A node's pointer to a child: resolved to TREE_BLOCK_REF or SHARED_BLOCK_REF once the parent's flags are known.</summary>
internal struct PtrRec
{
    public ulong Child;
    public ulong Parent;
    public ulong ParentOwner;
    public ulong Tree;
    public int Slot;
}

/// <summary>A file extent item referencing a data extent.</summary>
internal struct DataRec
{
    public ulong Disk;
    public ulong DiskLen;
    public ulong Leaf;
    public ulong LeafOwner;
    public ulong Inode;
    public ulong Offset;
    public ulong Tree;
    public int Slot;
}

internal struct BlockGroupRec
{
    public ulong Start;
    public ulong Length;
    public ulong Used;
    public ulong Flags;
    public ulong ItemBlock;
    public int Slot;
    public ulong Sum; // filled by the accounting pass
    public readonly ulong End => Start + Length;
}

/// <summary>A DEV_EXTENT: [Physical, Physical + Length) on device DevId belongs to the chunk at ChunkOffset.</summary>
internal struct DevExtentRec
{
    public ulong DevId;
    public ulong Physical;
    public ulong Length;
    public ulong ChunkOffset;
    public ulong ItemBlock;
    public int Slot;
    public readonly ulong End => Physical + Length;
}
