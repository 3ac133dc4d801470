using BtrfsRefcheck.Format;

namespace BtrfsRefcheck.Trees;

/// <summary>Where a tree's root block came from.</summary>
public enum RootSource { Superblock, RootItem, LogRootItem }

/// <summary>A tree to walk: its id (the ROOT_ITEM key objectid; for relocation trees also the key offset),
/// root block, level and generation as the referencing superblock or ROOT_ITEM states them.</summary>
public sealed record TreeRoot(ulong Id, ulong Bytenr, int Level, ulong Generation, RootSource Source, ulong KeyOffset = 0)
{
    /// <summary>A deleted subvolume the cleaner has started to drop: its ROOT_ITEM's drop_progress key (objectid not 0)
    /// and drop_level. What lies before that key at that level is already freed; see <see cref="DropFilter"/>.</summary>
    public BtrfsKey? DropProgress { get; init; }
    public int DropLevel { get; init; }

    /// <summary>True while the cleaner is part-way through dropping this tree.</summary>
    public bool IsDropping => DropProgress is not null;

    /// <summary>The owner tree blocks of this tree carry in their headers (and hence in TREE_BLOCK_REFs).</summary>
    public ulong ExpectedOwner => Source == RootSource.LogRootItem ? ObjectIds.TreeLog : Id;

    public bool IsFsTree => ObjectIds.IsFsTree(Id);
    public bool IsLog => Id == ObjectIds.TreeLog || Source == RootSource.LogRootItem;
    public bool IsReloc => Id == ObjectIds.TreeReloc;

    public string Name => Source switch
    {
        RootSource.LogRootItem => $"log tree of {ObjectIds.TreeName(KeyOffset)}",
        _ when Id == ObjectIds.TreeReloc => $"relocation tree of {ObjectIds.TreeName(KeyOffset)}",
        _ => ObjectIds.TreeName(Id),
    };
}
