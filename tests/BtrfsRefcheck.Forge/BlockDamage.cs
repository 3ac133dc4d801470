using System.Buffers.Binary;
using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Trees;
using BtrfsRefcheck.Volume;

namespace BtrfsRefcheck.Forge;

/// <summary>Raw edits of a tree block's header and of a node's key pointers, on the bytes a <see cref="BlockEdits"/>
/// session hands out (<see cref="BlockEdits.Block"/>): the session recomputes the checksum and writes every copy.</summary>
public static class BlockBytes
{
    public static ulong Bytenr(byte[] b) => BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan(Header.BytenrAt));
    public static void SetBytenr(byte[] b, ulong v) => BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(Header.BytenrAt), v);
    public static ulong Generation(byte[] b) => BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan(Header.GenerationAt));
    public static void SetGeneration(byte[] b, ulong v) => BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(Header.GenerationAt), v);
    public static ulong Owner(byte[] b) => BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan(Header.OwnerAt));
    public static void SetOwner(byte[] b, ulong v) => BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(Header.OwnerAt), v);
    /// <summary>The whole 64-bit flags field (WRITTEN, RELOC, and the backref revision in the top byte).</summary>
    public static ulong RawFlags(byte[] b) => BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan(Header.FlagsAt));
    public static void SetRawFlags(byte[] b, ulong v) => BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(Header.FlagsAt), v);
    public static uint NrItems(byte[] b) => BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(Header.NrItemsAt));
    public static void SetNrItems(byte[] b, uint v) => BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(Header.NrItemsAt), v);
    public static int Level(byte[] b) => b[Header.LevelAt];

    /// <summary>Flips every bit of byte <paramref name="index"/> (0-15) of the header fsid.</summary>
    public static void FlipFsidByte(byte[] b, int index = 15) => b[Header.FsidAt + index] ^= 0xff;

    /// <summary>Flips every bit of byte <paramref name="index"/> (0-15) of the header chunk tree uuid.</summary>
    public static void FlipChunkTreeUuidByte(byte[] b, int index = 15) => b[Header.ChunkTreeUuidAt + index] ^= 0xff;

    private static Span<byte> Ptr(byte[] node, int slot)
    {
        if (node[Header.LevelAt] == 0) throw new ForgeException("not a node");
        if ((uint)slot >= NrItems(node)) throw new ArgumentOutOfRangeException(nameof(slot), $"node has {NrItems(node)} pointers");
        return node.AsSpan(Header.Size + slot * KeyPtr.Size, KeyPtr.Size);
    }

    public static BtrfsKey PtrKey(byte[] node, int slot) => BtrfsKey.Read(Ptr(node, slot));
    public static void SetPtrKey(byte[] node, int slot, BtrfsKey key) => key.Write(Ptr(node, slot));
    public static ulong PtrBlock(byte[] node, int slot) => BinaryPrimitives.ReadUInt64LittleEndian(Ptr(node, slot)[BtrfsKey.Size..]);
    public static void SetPtrBlock(byte[] node, int slot, ulong v) => BinaryPrimitives.WriteUInt64LittleEndian(Ptr(node, slot)[BtrfsKey.Size..], v);
    public static ulong PtrGeneration(byte[] node, int slot) => BinaryPrimitives.ReadUInt64LittleEndian(Ptr(node, slot)[(BtrfsKey.Size + 8)..]);
    public static void SetPtrGeneration(byte[] node, int slot, ulong v) => BinaryPrimitives.WriteUInt64LittleEndian(Ptr(node, slot)[(BtrfsKey.Size + 8)..], v);

    /// <summary>The slot of <paramref name="node"/> that points at <paramref name="child"/>.</summary>
    public static int SlotOf(byte[] node, ulong child)
    {
        for (int i = 0; i < NrItems(node); i++)
            if (PtrBlock(node, i) == child) return i;
        throw new ForgeException($"node {Bytenr(node)} has no pointer to {child}");
    }
}

/// <summary>Field offsets of a ROOT_ITEM (btrfs_root_item) the forge changes.</summary>
public static class RootItemFields
{
    public const int GenerationAt = 160;
    public const int BytenrAt = GenerationAt + 16;   // after generation, root_dirid
    public const int LevelAt = 238;                  // after flags, refs, drop_progress, drop_level
    public const int GenerationV2At = LevelAt + 1;
}

/// <summary>Superblock copies of one device file, one at a time (<see cref="BlockEdits.WriteSuperblocks"/> changes
/// every copy of every device alike), plus the backup roots' field offsets.</summary>
public static class SuperblockDamage
{
    public const int BackupTreeRootAt = 0, BackupTreeRootGenAt = 8, BackupChunkRootAt = 16, BackupChunkRootGenAt = 24,
        BackupBytesUsedAt = 104, BackupTreeRootLevelAt = 152, BackupChunkRootLevelAt = 153;

    /// <summary>Offset of backup root <paramref name="index"/> inside the superblock.</summary>
    public static int BackupRootAt(int index) => Superblock.SuperRootsAt + index * BackupRoot.Size;

    /// <summary>Changes superblock copy <paramref name="mirror"/> of <paramref name="devicePath"/> only; with
    /// <paramref name="fixChecksum"/> its checksum is recomputed with the checksum type the copy then names.</summary>
    public static void PatchCopy(string devicePath, int mirror, Action<Span<byte>> patch, bool fixChecksum)
    {
        long off = Superblock.MirrorOffsets[mirror];
        var buf = new byte[Superblock.Size];
        using var h = File.OpenHandle(devicePath, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete);
        if (RandomAccess.Read(h, buf, off) != buf.Length) throw new ForgeException($"{devicePath} holds no superblock copy {mirror} at {off}");
        patch(buf);
        if (fixChecksum)
        {
            var type = (ChecksumType)BinaryPrimitives.ReadUInt16LittleEndian(buf.AsSpan(Superblock.CsumTypeAt));
            if (!Checksum.IsKnown((ushort)type)) throw new ForgeException($"checksum type {(ushort)type} is unknown: cannot recompute");
            Checksum.Compute(type, buf.AsSpan(Checksum.FieldSize), buf.AsSpan(0, Checksum.FieldSize));
        }
        RandomAccess.Write(h, buf, off);
    }

    /// <summary>Patches every superblock copy of one device file (checksums recomputed).</summary>
    public static void PatchDevice(string devicePath, Action<Span<byte>> patch)
    {
        long length = new FileInfo(devicePath).Length;
        for (int m = 0; m < Superblock.MirrorOffsets.Length; m++)
            if (Superblock.MirrorOffsets[m] + Superblock.Size <= length) PatchCopy(devicePath, m, patch, fixChecksum: true);
    }

    /// <summary>Cuts (or sparsely extends) an image file to <paramref name="length"/> bytes, as a truncated copy or a
    /// partition that ends early would.</summary>
    public static void Truncate(string path, long length)
    {
        using var f = new FileStream(path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete);
        f.SetLength(length);
    }
}

/// <summary>Places tree blocks at new logical addresses: finds free space, writes a block's bytes there (header
/// bytenr set to the new address, checksum recomputed, every copy), and moves its extent item to the new address.
/// The caller points the referrer (parent pointer, ROOT_ITEM or superblock field) at it.</summary>
public static class TreeBlockPlacement
{
    /// <summary>Sector-aligned start addresses of free nodesize ranges, in address order, inside block groups of
    /// exactly <paramref name="type"/> (DATA/METADATA/SYSTEM bits), such that no extent item overlaps the range and
    /// no copy of it touches a superblock mirror on disk. <paramref name="align"/> is the step (default nodesize).</summary>
    public static IEnumerable<ulong> FreeRanges(BtrfsVolume vol, ImageScan scan, BlockGroupFlags type, ulong? align = null)
    {
        ulong ns = vol.NodeSize, step = align ?? ns;
        var covered = scan.Extents.Select(e => (Start: e.Bytenr, End: e.Bytenr + e.Length(vol.NodeSize))).OrderBy(c => c.Start).ToList();
        foreach (var bg in scan.BlockGroups.Where(g => (g.Flags & BlockGroupFlags.TypeMask) == type))
        {
            var chunk = vol.Chunks.Find(bg.Start) ?? throw new ForgeException($"block group {bg.Start} has no chunk");
            for (ulong a = bg.Start + (step - bg.Start % step) % step; a + ns <= bg.End; a += step)
            {
                ulong s = a, e = a + ns;
                if (covered.Any(c => c.Start < e && s < c.End)) continue;
                if (TouchesSuperblock(vol, chunk, a, ns)) continue;
                yield return a;
            }
        }
    }

    private static bool TouchesSuperblock(BtrfsVolume vol, Chunk chunk, ulong logical, ulong length)
    {
        for (int copy = 0; copy < chunk.Copies; copy++)
            for (ulong done = 0; done < length;)
            {
                var loc = chunk.Map(logical + done, copy, out ulong contiguous);
                ulong n = Math.Min(length - done, contiguous);
                foreach (long m in Superblock.MirrorOffsets)
                    if ((ulong)m < loc.Offset + n && loc.Offset < (ulong)m + Superblock.Size) return true;
                done += n;
            }
        return false;
    }

    /// <summary>Writes <paramref name="block"/> (a copy is made) at <paramref name="newLogical"/> in every copy, its
    /// header bytenr set to the new address and its checksum recomputed. Returns the bytes written.</summary>
    public static byte[] WriteAt(BtrfsVolume vol, byte[] block, ulong newLogical)
    {
        var b = (byte[])block.Clone();
        BlockBytes.SetBytenr(b, newLogical);
        Checksum.Compute(vol.CsumType, b.AsSpan(Checksum.FieldSize), b.AsSpan(0, Checksum.FieldSize));
        var chunk = vol.Chunks.Find(newLogical) ?? throw new ForgeException($"{newLogical} is in no chunk");
        for (int c = 0; c < chunk.Copies; c++) BlockEdits.WriteCopy(vol, newLogical, c, b);
        return b;
    }

    /// <summary>Moves the extent item (METADATA_ITEM or EXTENT_ITEM) of the tree block at <paramref name="from"/> to
    /// <paramref name="to"/>: deleted from its leaf, inserted in key order into the extent leaf that covers the new
    /// key. Refuses when either edit would change a leaf's first key (the parent's key would then be wrong).</summary>
    public static void MoveExtentItem(BlockEdits ed, ImageScan scan, ulong from, ulong to)
    {
        var e = scan.ExtentAt(from) ?? throw new ForgeException($"tree block {from} has no extent item");
        var newKey = e.Key with { ObjectId = to };
        var target = scan.LeafFor(newKey) ?? throw new ForgeException($"no extent leaf covers {newKey}");
        bool hasParent(ulong leaf) => scan.Blocks.TryGetValue(leaf, out var b) && b.Parent != null;
        var src = ed.Leaf(e.Leaf);
        int slot = src.Find(e.Key);
        if (slot < 0) throw new ForgeException($"{e.Key} not found in leaf {e.Leaf}");
        if (slot == 0 && hasParent(e.Leaf)) throw new ForgeException($"{e.Key} is the first item of leaf {e.Leaf}");
        var data = src.Data(slot).ToArray();
        src.DeleteItem(slot);
        var dst = ed.Leaf(target.Bytenr);
        int at = dst.InsertSorted(newKey, data);
        if (at == 0 && hasParent(target.Bytenr)) throw new ForgeException($"{newKey} would become the first item of leaf {target.Bytenr}");
    }

    /// <summary>The leaf and slot of the ROOT_ITEM of tree <paramref name="treeId"/> in the root tree.</summary>
    public static (ulong Leaf, int Slot) RootItem(BtrfsVolume vol, ulong treeId)
    {
        var finder = new RootItemFinder(treeId);
        new TreeWalker(vol, new FindingBag()).Walk(TreeRoots.RootTree(vol), finder);
        return finder.Found ?? throw new ForgeException($"no ROOT_ITEM for tree {treeId}");
    }

    private sealed class RootItemFinder(ulong treeId) : ITreeVisitor
    {
        public (ulong, int)? Found;

        public bool OnBlock(in BlockContext ctx, TreeBlock block, bool valid)
        {
            var v = block.View;
            if (!v.IsLeaf) return true;
            for (int i = 0; i < v.Count; i++)
            {
                var k = v.ItemKey(i);
                if (k.ObjectId == treeId && k.ItemType == ItemType.RootItem) Found = (block.Logical, i);
            }
            return true;
        }
    }
}
