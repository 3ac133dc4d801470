using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Format.Items;
using BtrfsRefcheck.Tests.Format;
using BtrfsRefcheck.Trees;
using BtrfsRefcheck.Trees.ItemValidation;

namespace BtrfsRefcheck.Tests.TreesTests;

/// <summary>Valid item payloads, built field by field, with parameters to break exactly one rule.</summary>
internal static class ItemBytes
{
    public const uint Sector = 4096;
    public const ulong Gen = 100; // ItemCheckContext.ForTest's superblock generation

    public static byte[] Inode(ulong gen = 90, ulong transid = 95, uint mode = 0x81A4 /* 0100644 */, uint nlink = 1, ulong flags = 0, int size = InodeItem.Size)
    {
        var b = new Buf().U64(gen).U64(transid).U64(4096).U64(4096).U64(0).U32(nlink).U32(0).U32(0).U32(mode).U64(0).U64(flags).U64(1)
            .Zeros(32).Time(1, 0).Time(2, 0).Time(3, 0).Time(4, 0).ToArray();
        Assert.Equal(InodeItem.Size, b.Length);
        return Resize(b, size);
    }

    public static byte[] InodeRef(params (ulong Index, string Name)[] entries)
    {
        var b = new Buf();
        foreach (var (index, name) in entries) b.U64(index).U16((ushort)name.Length).Str(name);
        return b.ToArray();
    }

    public static byte[] InodeExtref(params (ulong Parent, ulong Index, string Name)[] entries)
    {
        var b = new Buf();
        foreach (var (parent, index, name) in entries) b.U64(parent).U64(index).U16((ushort)name.Length).Str(name);
        return b.ToArray();
    }

    public static ulong ExtrefHash(ulong parent, string name) => InodeExtrefValidator.Hash(parent, System.Text.Encoding.UTF8.GetBytes(name));
    public static ulong NameHash(string name) => DirItemValidator.NameHash(System.Text.Encoding.UTF8.GetBytes(name));

    public static byte[] DirEntry(string name, BtrfsKey? location = null, byte type = 1, ulong transid = 90, byte[]? data = null, int? nameLen = null, int? dataLen = null)
    {
        var loc = location ?? new BtrfsKey(257, (byte)ItemType.InodeItem, 0);
        data ??= [];
        return new Buf().Key(loc.ObjectId, loc.Type, loc.Offset).U64(transid).U16((ushort)(dataLen ?? data.Length))
            .U16((ushort)(nameLen ?? name.Length)).U8(type).Str(name).Bytes(data).ToArray();
    }

    public static byte[] InlineExtent(int dataBytes = 100, ulong? ramBytes = null, byte compression = 0, byte encryption = 0, ulong gen = 90)
        => new Buf().U64(gen).U64(ramBytes ?? (ulong)dataBytes).U8(compression).U8(encryption).U16(0).U8(0).Zeros(dataBytes).ToArray();

    public static byte[] RegularExtent(ulong diskBytenr = 13631488, ulong diskNum = 8192, ulong offset = 0, ulong num = 8192, ulong? ram = null,
        byte type = 1, byte compression = 0, byte encryption = 0, ulong gen = 90, int extra = 0)
        => new Buf().U64(gen).U64(ram ?? diskNum).U8(compression).U8(encryption).U16(0).U8(type)
            .U64(diskBytenr).U64(diskNum).U64(offset).U64(num).Zeros(extra).ToArray();

    public static byte[] RootItem(ulong gen = 90, ulong bytenr = 30425088, byte level = 0, ulong flags = 0, byte dropLevel = 0, ulong genV2 = 90,
        ulong lastSnapshot = 0, int size = BtrfsRefcheck.Format.Items.RootItem.FullSize, ulong inodeGen = 1, ulong inodeFlags = 0, ulong inodeTransid = 0)
    {
        var b = new Buf().Bytes(Inode(gen: inodeGen, transid: inodeTransid, mode: 0x41ED, flags: inodeFlags))
            .U64(gen).U64(256).U64(bytenr).U64(0).U64(16384).U64(lastSnapshot).U64(flags).U32(1)
            .Key(0, 0, 0).U8(dropLevel).U8(level).U64(genV2).Zeros(16 * 3).U64(0).U64(0).U64(0).U64(0).Zeros(12 * 4).Zeros(64).ToArray();
        Assert.Equal(BtrfsRefcheck.Format.Items.RootItem.FullSize, b.Length);
        return Resize(b, size);
    }

    public static byte[] RootRef(string name, int? nameLen = null, int extra = 0) =>
        new Buf().U64(256).U64(3).U16((ushort)(nameLen ?? name.Length)).Str(name).Zeros(extra).ToArray();

    /// <summary>An EXTENT_ITEM / METADATA_ITEM: refs, generation, flags, optional tree_block_info, then inline refs.</summary>
    public static byte[] Extent(ulong refs, ulong flags, ulong gen = 90, (BtrfsKey Key, byte Level)? info = null, params byte[][] inline)
    {
        var b = new Buf().U64(refs).U64(gen).U64(flags);
        if (info is { } i) b.Key(i.Key.ObjectId, i.Key.Type, i.Key.Offset).U8(i.Level);
        foreach (var r in inline) b.Bytes(r);
        return b.ToArray();
    }

    public const ulong FlagData = (ulong)ExtentFlags.Data, FlagTree = (ulong)ExtentFlags.TreeBlock, FlagFull = (ulong)ExtentFlags.FullBackref;

    public static byte[] InlineTreeBlockRef(ulong root) => new Buf().U8((byte)ItemType.TreeBlockRef).U64(root).ToArray();
    public static byte[] InlineSharedBlockRef(ulong parent) => new Buf().U8((byte)ItemType.SharedBlockRef).U64(parent).ToArray();
    public static byte[] InlineDataRef(ulong root, ulong ino, ulong offset, uint count) =>
        new Buf().U8((byte)ItemType.ExtentDataRef).Bytes(DataRef(root, ino, offset, count)).ToArray();
    public static byte[] InlineSharedDataRef(ulong parent, uint count) => new Buf().U8((byte)ItemType.SharedDataRef).U64(parent).U32(count).ToArray();
    public static byte[] InlineOwnerRef(ulong root) => new Buf().U8((byte)ItemType.ExtentOwnerRef).U64(root).ToArray();
    public static byte[] DataRef(ulong root, ulong ino, ulong offset, uint count) => new Buf().U64(root).U64(ino).U64(offset).U32(count).ToArray();

    public static byte[] BlockGroup(ulong used = 4096, ulong chunkObjectId = 256, BlockGroupFlags flags = BlockGroupFlags.Data, int extra = 0) =>
        new Buf().U64(used).U64(chunkObjectId).U64((ulong)flags).Zeros(extra).ToArray();

    public static byte[] DevItem(ulong devid = 1, ulong total = 1UL << 30, ulong used = 1UL << 28, int size = BtrfsRefcheck.Format.DevItem.Size)
    {
        var b = new Buf().U64(devid).U64(total).U64(used).U32(4096).U32(4096).U32(4096).U64(0).U64(0).U64(0).U32(0).U8(0).U8(0)
            .Uuid(Guid.NewGuid()).Uuid(Guid.NewGuid()).ToArray();
        Assert.Equal(BtrfsRefcheck.Format.DevItem.Size, b.Length);
        return Resize(b, size);
    }

    public static byte[] DevExtent(ulong chunkTree = 3, ulong chunkObjectId = 256, ulong chunkOffset = 13631488, ulong length = 8388608, int extra = 0) =>
        new Buf().U64(chunkTree).U64(chunkObjectId).U64(chunkOffset).U64(length).Uuid(Guid.NewGuid()).Zeros(extra).ToArray();

    /// <summary>A chunk item; stripes on devid 1 at 1 GiB steps.</summary>
    public static byte[] Chunk(BlockGroupFlags type = BlockGroupFlags.Data, ushort? numStripes = null, ushort subStripes = 1, ulong length = 8388608,
        ulong stripeLen = 65536, uint sectorSize = Sector, int? stripesWritten = null, int extra = 0)
    {
        ushort n = numStripes ?? (ushort)((type.Profile() ?? RaidProfile.Single) switch
        {
            RaidProfile.Dup or RaidProfile.Raid1 or RaidProfile.Raid10 or RaidProfile.Raid5 => 2,
            RaidProfile.Raid1C3 or RaidProfile.Raid6 => 3,
            RaidProfile.Raid1C4 => 4,
            _ => 1,
        });
        var b = new Buf().U64(length).U64(2).U64(stripeLen).U64((ulong)type).U32(65536).U32(65536).U32(sectorSize).U16(n).U16(subStripes);
        for (int i = 0; i < (stripesWritten ?? n); i++) b.U64(1).U64((ulong)(i + 1) << 30).Uuid(Guid.Empty);
        return b.Zeros(extra).ToArray();
    }

    public static byte[] FreeSpaceInfo(uint extentCount = 1, uint flags = 0, int extra = 0) => new Buf().U32(extentCount).U32(flags).Zeros(extra).ToArray();

    public static byte[] Resize(byte[] b, int size)
    {
        var r = new byte[size];
        b.AsSpan(0, Math.Min(b.Length, size)).CopyTo(r);
        return r;
    }

    public static byte[] Concat(params byte[][] parts) => parts.SelectMany(p => p).ToArray();

    public static BtrfsKey Key(ulong objectId, ItemType type, ulong offset) => new(objectId, (byte)type, offset);
}

/// <summary>Item contexts as the walk would build them.</summary>
internal static class TestContexts
{
    /// <summary>Typical values: 4 KiB sectors, 16 KiB nodes, crc32c, MIXED_BACKREF, SKINNY_METADATA, EXTENDED_IREF and
    /// NO_HOLES, superblock generation 100, leaf 30425088 slot 1 of <paramref name="tree"/> (also the leaf's owner).</summary>
    public static ItemCheckContext For(BtrfsKey key, ulong tree = ObjectIds.FsTree, BtrfsKey? prevKey = null, int slot = 1) =>
        new(ItemBytes.Sector, 16384, 4, ItemBytes.Gen,
            Features.IncompatMixedBackref | Features.IncompatSkinnyMetadata | Features.IncompatExtendedIref | Features.IncompatNoHoles,
            tree, tree == ObjectIds.TreeLog, tree, 30425088, slot, key, prevKey);
}

/// <summary>Runs one validator through <see cref="ItemValidator.ValidateItem"/> and asserts what it reports.</summary>
internal static class Validate
{
    /// <summary>Every finding, wherever it says it is (the findings about an extent-tree item's extent name the extent).</summary>
    public static List<Finding> Unplaced(in ItemCheckContext c, byte[] data, byte[]? prevData = null)
    {
        var bag = new FindingBag();
        ItemValidator.ValidateItem(c, data, prevData ?? [], new ItemReporter(bag));
        return bag.Items.ToList();
    }

    public static List<Finding> Run(in ItemCheckContext c, byte[] data, byte[]? prevData = null)
    {
        var items = Unplaced(c, data, prevData);
        foreach (var f in items)
        {
            // Every finding says where: the leaf, its tree, the slot and the key.
            Assert.Equal(c.Block, f.Bytenr);
            Assert.Equal(c.Tree, f.Tree);
            Assert.Equal(c.Slot, f.Slot);
            Assert.Equal(c.Key, f.Key);
        }
        return items;
    }

    public static void Clean(in ItemCheckContext c, byte[] data, byte[]? prevData = null)
    {
        var f = Run(c, data, prevData);
        Assert.True(f.Count == 0, "expected no finding, got:\n  " + string.Join("\n  ", f));
    }

    /// <summary>Exactly one finding, of <paramref name="code"/> and <paramref name="severity"/>.</summary>
    public static Finding One(FindingCode code, in ItemCheckContext c, byte[] data, byte[]? prevData = null, Severity severity = Severity.Error)
    {
        var f = Run(c, data, prevData);
        Assert.True(f.Count == 1, $"expected exactly one {(int)code} {code}, got {f.Count}:\n  " + string.Join("\n  ", f));
        Assert.Equal(code, f[0].Code);
        Assert.Equal(severity, f[0].Severity);
        return f[0];
    }

    /// <summary>Exactly one finding of <paramref name="code"/> whose message contains <paramref name="text"/>.</summary>
    public static Finding One(FindingCode code, string text, in ItemCheckContext c, byte[] data, byte[]? prevData = null, Severity severity = Severity.Error)
    {
        var f = One(code, c, data, prevData, severity);
        Assert.Contains(text, f.Message);
        return f;
    }
}
