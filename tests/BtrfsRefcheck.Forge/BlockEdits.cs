using System.Buffers.Binary;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Volume;
using Microsoft.Win32.SafeHandles;

namespace BtrfsRefcheck.Forge;

/// <summary>One forge edit: tree blocks changed in memory (each read once, so two changes to one leaf land in
/// the same buffer) and superblock field patches. <see cref="Commit"/> recomputes every changed block's
/// checksum with the volume's checksum type and writes it to every copy, then patches every superblock copy
/// that exists. The only place in the repository that opens an image for writing.</summary>
public sealed class BlockEdits(BtrfsVolume vol)
{
    private readonly Dictionary<ulong, byte[]> _blocks = [];
    private readonly List<Action<Span<byte>>> _superPatches = [];

    public BtrfsVolume Volume => vol;

    /// <summary>The verified bytes of the tree block at <paramref name="logical"/>, to change in place.</summary>
    public byte[] Block(ulong logical)
    {
        if (_blocks.TryGetValue(logical, out var b)) return b;
        var read = vol.ReadTreeBlock(logical);
        if (read.Block == null) throw new ForgeException($"tree block {logical} is unreadable: {read.Describe()}");
        b = (byte[])read.Block.Data.Clone();
        _blocks[logical] = b;
        return b;
    }

    public LeafEditor Leaf(ulong logical) => new(Block(logical));

    /// <summary>Queues a change to the raw 4096 bytes of every superblock copy (the checksum is recomputed after it).</summary>
    public void PatchSuper(Action<Span<byte>> patch) => _superPatches.Add(patch);

    /// <summary>Adds <paramref name="delta"/> to superblock bytes_used.</summary>
    public void AddSuperBytesUsed(long delta) => PatchSuper(s =>
        BinaryPrimitives.WriteUInt64LittleEndian(s[Superblock.BytesUsedAt..],
            unchecked(BinaryPrimitives.ReadUInt64LittleEndian(s[Superblock.BytesUsedAt..]) + (ulong)delta)));

    /// <summary>Adds <paramref name="delta"/> to the used field of the BLOCK_GROUP_ITEM of <paramref name="bg"/>.</summary>
    public void AddBlockGroupUsed(ScannedBlockGroup bg, long delta)
    {
        var leaf = Leaf(bg.Leaf);
        int slot = leaf.Find(new BtrfsKey(bg.Start, (byte)ItemType.BlockGroupItem, bg.Length));
        if (slot < 0) throw new ForgeException($"block group item {bg.Start} not found in leaf {bg.Leaf}");
        var d = leaf.Data(slot);
        BinaryPrimitives.WriteUInt64LittleEndian(d, unchecked(BinaryPrimitives.ReadUInt64LittleEndian(d) + (ulong)delta));
    }

    public void Commit()
    {
        foreach (var (logical, b) in _blocks)
        {
            Checksum.Compute(vol.CsumType, b.AsSpan(Checksum.FieldSize), b.AsSpan(0, Checksum.FieldSize));
            var chunk = vol.Chunks.Find(logical) ?? throw new ForgeException($"block {logical} is in no chunk");
            for (int c = 0; c < chunk.Copies; c++) WriteCopy(vol, logical, c, b);
        }
        if (_superPatches.Count > 0) WriteSuperblocks(vol, _superPatches);
        _blocks.Clear();
        _superPatches.Clear();
    }

    /// <summary>Writes <paramref name="bytes"/> at <paramref name="logical"/> into copy <paramref name="copy"/> only,
    /// piece by piece as the chunk maps it (a block may span stripes).</summary>
    public static void WriteCopy(BtrfsVolume vol, ulong logical, int copy, ReadOnlySpan<byte> bytes)
    {
        var chunk = vol.Chunks.Find(logical) ?? throw new ForgeException($"logical {logical} is in no chunk");
        if (logical + (ulong)bytes.Length > chunk.End) throw new ForgeException($"[{logical}, +{bytes.Length}) crosses the end of its chunk");
        int done = 0;
        while (done < bytes.Length)
        {
            var loc = chunk.Map(logical + (ulong)done, copy, out ulong contiguous);
            int n = (int)Math.Min((ulong)(bytes.Length - done), contiguous);
            var dev = vol.DeviceById(loc.DevId) ?? throw new ForgeException($"device devid {loc.DevId} is not open");
            using var h = OpenWritable(dev.Path);
            RandomAccess.Write(h, bytes.Slice(done, n), (long)loc.Offset);
            done += n;
        }
    }

    /// <summary>Reads copy <paramref name="copy"/> of [<paramref name="logical"/>, +dest.Length) raw (no checksum check).</summary>
    public static void ReadCopy(BtrfsVolume vol, ulong logical, int copy, Span<byte> dest)
    {
        if (!vol.TryReadLogical(logical, dest, copy, out string? problem))
            throw new ForgeException($"cannot read copy {copy} of {logical}: {problem}");
    }

    /// <summary>Applies <paramref name="patches"/> to every superblock copy of every device that holds one (magic
    /// present), recomputing each copy's checksum.</summary>
    public static void WriteSuperblocks(BtrfsVolume vol, IReadOnlyList<Action<Span<byte>>> patches)
    {
        var buf = new byte[Superblock.Size];
        foreach (var dev in vol.Devices)
        {
            using var h = OpenWritable(dev.Path);
            long length = RandomAccess.GetLength(h);
            foreach (long off in Superblock.MirrorOffsets)
            {
                if (off + Superblock.Size > length) break;
                if (RandomAccess.Read(h, buf, off) != buf.Length) continue;
                if (BinaryPrimitives.ReadUInt64LittleEndian(buf.AsSpan(Superblock.MagicAt)) != Superblock.MagicValue) continue;
                foreach (var p in patches) p(buf);
                var type = (ChecksumType)BinaryPrimitives.ReadUInt16LittleEndian(buf.AsSpan(Superblock.CsumTypeAt));
                Checksum.Compute(type, buf.AsSpan(Checksum.FieldSize), buf.AsSpan(0, Checksum.FieldSize));
                RandomAccess.Write(h, buf, off);
            }
        }
    }

    private static SafeFileHandle OpenWritable(string path) =>
        File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete);
}
