using System.Numerics;

namespace BtrfsRefcheck.Checks;

/// <summary>One INODE_REF / INODE_EXTREF entry of an inode, as the fast path keeps it until the inode is closed (its
/// type, from the inode's mode, is part of the name's fingerprint).</summary>
internal struct RefTuple
{
    public ulong Parent, Index;
    public uint Crc, Hash2;
    public byte NameLen;

    public readonly bool SameName(in RefTuple o) => Parent == o.Parent && Crc == o.Crc && Hash2 == o.Hash2 && NameLen == o.NameLen;
}

/// <summary>The fast path's multiset fingerprints of a tree's names. A name fact (directory, inode, name, type) is hashed to
/// 64 bits, twice: without the index (<see cref="Item"/>, the DIR_ITEM side) and with it (<see cref="Index"/>, the DIR_INDEX
/// side). Each INODE_REF / INODE_EXTREF entry adds both (typed by its inode's mode), each DIR_ITEM entry subtracts the
/// first, each DIR_INDEX entry the second, all mod 2^64 and additive over leaves: a tree whose two sums are zero has,
/// with overwhelming probability, for every name exactly as many DIR_ITEMs and DIR_INDEXes (same index, same type as the
/// inode) as refs. Names are identified as <see cref="NameRec"/> identifies them (crc32c, second hash, length).</summary>
internal static class NameFingerprint
{
    private const ulong SeedItem = 0x6A09E667F3BCC908, SeedIndex = 0xBB67AE8584CAA73B;

    public static ulong Item(ulong parent, ulong child, uint crc, uint hash2, byte nameLen, byte type) =>
        Fin(Mix(Mix(Mix(Mix(SeedItem, parent), child), crc | (ulong)hash2 << 32), nameLen | (ulong)type << 8));

    public static ulong Index(ulong parent, ulong child, uint crc, uint hash2, byte nameLen, byte type, ulong index) =>
        Fin(Mix(Mix(Mix(Mix(Mix(SeedIndex, parent), child), crc | (ulong)hash2 << 32), nameLen | (ulong)type << 8), index));

    private static ulong Mix(ulong h, ulong v)
    {
        h ^= Fin(v + 0x9E3779B97F4A7C15);
        return BitOperations.RotateLeft(h, 27) * 0x94D049BB133111EB + 0x632BE59BD9B4E019;
    }

    /// <summary>MurmurHash3's 64-bit finaliser.</summary>
    private static ulong Fin(ulong h)
    {
        h ^= h >> 33;
        h *= 0xFF51AFD7ED558CCD;
        h ^= h >> 33;
        h *= 0xC4CEB9FE1A85EC53;
        h ^= h >> 33;
        return h;
    }

    private static readonly uint DotDotCrc = (uint)Trees.ItemValidation.DirItemValidator.NameHash(".."u8);
    private static readonly uint DotDotHash2 = NameRec.SecondHash(".."u8);

    /// <summary>What a closed inode adds to its tree's fingerprints, and what it needs of the rest of the tree.</summary>
    public struct Verdict
    {
        public ulong Ino, Item, Index;
        /// <summary>Why the exact join must decide (null: nothing seen that the sums and the local rules do not cover).</summary>
        public string? Why;
        /// <summary>nlink 0: needs an ORPHAN_ITEM in the same tree.</summary>
        public bool Unlinked;
        /// <summary>A directory with nlink 0: its entries do not count (the exact join decides the whole batch).</summary>
        public bool DeadDir;
        /// <summary>The tree's root directory, and it is as it must be.</summary>
        public bool RootDirOk;
    }

    /// <summary>The rules the exact join (<see cref="NameJoin"/>) applies to one inode that depend on its own items only,
    /// and its refs' contribution to the sums. <paramref name="rootDirId"/>: the root directory of every tree checked.</summary>
    public static Verdict Close(InodeAcc a, ulong rootDirId)
    {
        var v = new Verdict { Ino = a.Ino };
        if (a.Partial) { v.Why = "a short file extent item"; return v; }
        if (!a.HasItem) { v.Why = "no INODE_ITEM"; return v; }
        if (a.DupItem || a.Odd) { v.Why = "two INODE_ITEMs or items out of order"; return v; }
        byte type = InodeAcc.TypeOfMode(a.Mode);
        if (a.IsDir && a.Nlink == 0) v.DeadDir = true;
        if (a.RefsMore is { } more)
            for (int i = 0; i < more.Count; i++)
                for (int j = 0; j < i; j++)
                    if (more[i].SameName(more[j])) { v.Why = "a name recorded twice"; return v; }
        if (a.Ino == rootDirId)
        {
            var r = a.Ref0;
            if (a.Nlink == 1 && a.RefCount == 1 && r.Parent == a.Ino && r.NameLen == 2 && r.Crc == DotDotCrc && r.Hash2 == DotDotHash2 && r.Index == 0)
                v.RootDirOk = true;
            else v.Why = "the root directory";
            return v; // its "..": no dir entry names it, so nothing is added (an entry naming it unbalances the sums)
        }
        if (a.IsDir && a.RefCount > 1) { v.Why = "a directory with more than one name"; return v; }
        if (a.Nlink != (uint)a.RefCount) { v.Why = "nlink is not the number of names"; return v; }
        v.Unlinked = a.Nlink == 0;
        if (a.RefCount == 0) return v;
        if (a.RefsMore is { } all)
            foreach (var r in all) Add(ref v, a.Ino, r, type);
        else Add(ref v, a.Ino, a.Ref0, type);
        return v;
    }

    private static void Add(ref Verdict v, ulong ino, in RefTuple r, byte type)
    {
        v.Item += Item(r.Parent, ino, r.Crc, r.Hash2, r.NameLen, type);
        v.Index += Index(r.Parent, ino, r.Crc, r.Hash2, r.NameLen, type, r.Index);
    }
}
