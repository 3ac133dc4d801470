using System.Runtime.InteropServices;

namespace BtrfsRefcheck.Checks;

/// <summary>What a name record is.</summary>
internal enum NameKind : byte
{
    /// <summary>A closed inode: <see cref="NameRec.Nlink"/>, its dir-entry type (0 without an INODE_ITEM), the leaf of its item.</summary>
    Inode = 0,
    /// <summary>An INODE_REF or INODE_EXTREF entry of <see cref="NameRec.Child"/> naming it in directory <see cref="NameRec.Parent"/>.</summary>
    Ref = 1,
    /// <summary>A DIR_ITEM entry of directory <see cref="NameRec.Parent"/> naming inode <see cref="NameRec.Child"/>.</summary>
    DirItem = 2,
    /// <summary>A DIR_INDEX entry (its key offset in <see cref="NameRec.Index"/>).</summary>
    DirIndex = 3,
    /// <summary>An ORPHAN_ITEM of this subvolume tree for inode <see cref="NameRec.Child"/>.</summary>
    Orphan = 4,
    /// <summary>A DIR_ITEM / DIR_INDEX whose location is a ROOT_ITEM: <see cref="NameRec.Child"/> is a subvolume id.</summary>
    SubvolItem = 5,
    SubvolIndex = 6,
}

/// <summary>One name-related fact of a subvolume tree, 56 bytes: an inode's summary, or one entry of an INODE_REF,
/// INODE_EXTREF, DIR_ITEM or DIR_INDEX, or an ORPHAN_ITEM. Names are kept as their btrfs name hash (crc32c, the DIR_ITEM
/// key offset), a second independent 32-bit hash and their length: two entries "have the same name" when all three
/// agree. Records are joined by <see cref="NameJoin"/>: grouped by inode, then by (directory, name).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct NameRec
{
    public ulong Child;
    public ulong Parent;
    /// <summary>Ref and DIR_INDEX: the index; Inode: its size (isize) is not kept, this is unused (0).</summary>
    public ulong Index;
    /// <summary>The leaf the item was found in (for the finding's bytenr).</summary>
    public ulong Leaf;
    /// <summary>The checked trees (by their bit, <see cref="ForestJoin"/>) that hold this record.</summary>
    public ulong Mask;
    public uint Crc;
    public uint Hash2;
    public uint Nlink;
    public NameKind Kind;
    /// <summary>Dir entries: the entry's type; Inode: the type its mode says (0 without an INODE_ITEM).</summary>
    public byte Type;
    public byte NameLen;
    /// <summary>Inode: <see cref="FlagHasItem"/>, <see cref="FlagPartial"/>.</summary>
    public byte Flags;

    public const byte FlagHasItem = 1, FlagPartial = 2;

    public readonly bool SameName(in NameRec o) => Parent == o.Parent && Crc == o.Crc && Hash2 == o.Hash2 && NameLen == o.NameLen;

    /// <summary>Group order: by inode, its Inode record first, then by directory and name, refs before dir items before indexes.</summary>
    public static int Compare(NameRec a, NameRec b) => CompareIn(in a, in b);

    /// <summary>The sort's comparer, a struct so that the sort inlines it.</summary>
    public readonly struct Order : IComparer<NameRec>
    {
        public int Compare(NameRec a, NameRec b) => CompareIn(in a, in b);
    }

    private static int CompareIn(in NameRec a, in NameRec b)
    {
        int c = a.Child.CompareTo(b.Child);
        if (c != 0) return c;
        c = (a.Kind == NameKind.Inode ? 0 : 1).CompareTo(b.Kind == NameKind.Inode ? 0 : 1);
        if (c != 0) return c;
        c = a.Parent.CompareTo(b.Parent);
        if (c != 0) return c;
        c = a.Crc.CompareTo(b.Crc);
        if (c != 0) return c;
        c = a.Hash2.CompareTo(b.Hash2);
        if (c != 0) return c;
        c = a.NameLen.CompareTo(b.NameLen);
        if (c != 0) return c;
        return ((byte)a.Kind).CompareTo((byte)b.Kind);
    }

    /// <summary>A second 32-bit hash of a name (FNV-1a), independent of crc32c.</summary>
    public static uint SecondHash(ReadOnlySpan<byte> name)
    {
        uint h = 2166136261;
        foreach (byte b in name) { h ^= b; h *= 16777619; }
        return h;
    }
}
