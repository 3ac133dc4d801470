using System.Runtime.CompilerServices;
using BtrfsRefcheck.Format;

namespace BtrfsRefcheck.Checks;

/// <summary>An EXTENT_ITEM or METADATA_ITEM.</summary>
internal struct ExtentRec
{
    public ulong Bytenr;
    public ulong Length;
    public ulong Refs;
    public ulong Flags;
    public ulong ItemBlock;
    public int ItemSlot;
    public byte Level;          // tree blocks: level from the key or tree_block_info; 0xff: not a tree block
    public bool IsMetadataItem;

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
