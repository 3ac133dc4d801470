using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Trees.ItemValidation;
using static BtrfsRefcheck.Tests.TreesTests.ItemBytes;
using BG = BtrfsRefcheck.Format.BlockGroupFlags;

namespace BtrfsRefcheck.Tests.TreesTests;

/// <summary>CHUNK_ITEM, DEV_ITEM, DEV_EXTENT, BLOCK_GROUP_ITEM and the free-space-tree items.</summary>
public class DeviceValidatorTests
{
    private static ItemCheckContext Chunk(ulong logical = 13631488, bool mixed = false, bool reported = false)
    {
        var c = TestContexts.For(Key(ObjectIds.FirstChunkTree, ItemType.ChunkItem, logical), ObjectIds.ChunkTree) with { ChunkDecodeReported = reported };
        return mixed ? c with { IncompatFlags = c.IncompatFlags | Features.IncompatMixedGroups } : c;
    }

    public static IEnumerable<object[]> ValidChunks =>
    [
        [BG.Data, null!, (ushort)1], [BG.System | BG.Dup, null!, (ushort)1], [BG.Metadata | BG.Raid1, null!, (ushort)1],
        [BG.Data | BG.Raid0, (ushort)1, (ushort)1], [BG.Data | BG.Raid0, (ushort)5, (ushort)1], [BG.Data | BG.Raid10, (ushort)4, (ushort)2],
        [BG.Data | BG.Raid5, (ushort)2, (ushort)1], [BG.Data | BG.Raid6, (ushort)5, (ushort)1], [BG.Data | BG.Raid1C3, null!, (ushort)1],
        [BG.Metadata | BG.Raid1C4, null!, (ushort)1],
    ];

    [Theory]
    [MemberData(nameof(ValidChunks))]
    public void ValidChunksPass(BG type, ushort? numStripes, ushort subStripes) =>
        Validate.Clean(Chunk(), ItemBytes.Chunk(type, numStripes, subStripes));

    [Fact]
    public void MixedChunkOnAMixedFilesystemPasses() => Validate.Clean(Chunk(mixed: true), ItemBytes.Chunk(BG.Data | BG.Metadata));

    [Fact]
    public void WhatTheChunkMapRejectsIsReportedOnceByTheVolume()
    {
        var unusable = ItemBytes.Chunk(numStripes: 0, stripesWritten: 0);
        Validate.Clean(Chunk(reported: true), unusable);
        Validate.One(FindingCode.ChunkItemInvalid, "chunk item unusable: chunk has num_stripes 0", Chunk(reported: false), unusable);
        Validate.Clean(Chunk(reported: true), ItemBytes.Chunk(BG.Data | BG.Raid1, numStripes: 1));
    }

    [Fact]
    public void ItemLargerThanItsStripes() =>
        Validate.One(FindingCode.ChunkItemInvalid, "item size 81 does not match num_stripes 1", Chunk(), ItemBytes.Chunk(extra: 1));

    [Fact]
    public void LogicalNotAligned() => Validate.One(FindingCode.ChunkItemInvalid, "chunk logical start (key offset)", Chunk(13631488 + 512), ItemBytes.Chunk());

    [Fact]
    public void SectorSizeDiffers() => Validate.One(FindingCode.ChunkItemInvalid, "chunk sector_size 8192", Chunk(), ItemBytes.Chunk(sectorSize: 8192));

    [Fact]
    public void LengthNotAligned() => Validate.One(FindingCode.ChunkItemInvalid, "chunk length 8388609", Chunk(), ItemBytes.Chunk(length: 8388609));

    [Theory]
    [InlineData(0UL)]
    [InlineData(32768UL)]
    [InlineData(65535UL)]
    [InlineData(131072UL)]
    public void StripeLenNot64K(ulong stripeLen) =>
        Validate.One(FindingCode.ChunkItemInvalid, $"invalid stripe_len {stripeLen}", Chunk(), ItemBytes.Chunk(BG.Data | BG.Dup, stripeLen: stripeLen));

    [Fact]
    public void LengthTooLarge() =>
        Validate.One(FindingCode.ChunkItemInvalid, "too large", Chunk(), ItemBytes.Chunk(length: ChunkItemValidator.MaxLength));

    [Fact]
    public void UnknownTypeBits() => Validate.One(FindingCode.ChunkItemInvalid, "unknown chunk type bits 0x1000", Chunk(), ItemBytes.Chunk(BG.Data | (BG)0x1000));

    /// <summary>REMAPPED (bit 11) is a known type bit: a REMAP_TREE filesystem's chunk may carry it, and a fully remapped
    /// chunk has no stripes; without REMAP_TREE nothing translates its addresses.</summary>
    [Fact]
    public void RemappedChunks()
    {
        var remapTree = Chunk() with { IncompatFlags = Chunk().IncompatFlags | Features.IncompatRemapTree };
        Validate.Clean(remapTree, ItemBytes.Chunk(BG.Data | BG.Remapped));
        Validate.Clean(remapTree, ItemBytes.Chunk(BG.Data | BG.Remapped, numStripes: 0, stripesWritten: 1));
        Validate.One(FindingCode.ChunkItemInvalid, "below one chunk with one stripe", remapTree, ItemBytes.Chunk(BG.Data | BG.Remapped, numStripes: 0));
        Validate.One(FindingCode.ChunkItemInvalid, "REMAPPED chunk", Chunk(), ItemBytes.Chunk(BG.Data | BG.Remapped));
        Validate.One(FindingCode.ChunkItemInvalid, "chunk has num_stripes 0", remapTree, ItemBytes.Chunk(BG.Data, numStripes: 0));
    }

    [Fact]
    public void NoTypeBit() => Validate.One(FindingCode.ChunkItemInvalid, "none of DATA, METADATA, SYSTEM", Chunk(), ItemBytes.Chunk(BG.Dup));

    [Fact]
    public void SystemWithData() => Validate.One(FindingCode.ChunkItemInvalid, "SYSTEM chunk also typed", Chunk(), ItemBytes.Chunk(BG.System | BG.Metadata));

    [Fact]
    public void MixedChunkWithoutMixedGroups() => Validate.One(FindingCode.ChunkItemInvalid, "without MIXED_GROUPS", Chunk(), ItemBytes.Chunk(BG.Data | BG.Metadata));

    [Theory]
    [InlineData(BG.Data, (ushort)2)]
    [InlineData(BG.Data | BG.Dup, (ushort)3)]
    [InlineData(BG.Data | BG.Raid1, (ushort)3)]
    [InlineData(BG.Data | BG.Raid1C3, (ushort)4)]
    [InlineData(BG.Data | BG.Raid1C4, (ushort)5)]
    public void StripeCountNotTheProfiles(BG type, ushort n) =>
        Validate.One(FindingCode.ChunkItemInvalid, $"num_stripes {n}", Chunk(), ItemBytes.Chunk(type, n));

    [Fact]
    public void Raid10SubStripesNotTwo() =>
        Validate.One(FindingCode.ChunkItemInvalid, "RAID10 chunk with sub_stripes 3", Chunk(), ItemBytes.Chunk(BG.Data | BG.Raid10, 6, 3));

    [Theory]
    [InlineData((ushort)0)] // mkfs.btrfs's first chunk
    [InlineData((ushort)2)]
    public void SubStripesOutsideRaid10AreIgnored(ushort sub) => Validate.Clean(Chunk(), ItemBytes.Chunk(BG.Metadata | BG.Dup, subStripes: sub));

    // ---- DEV_ITEM

    private static ItemCheckContext Dev(ulong devid = 1, ulong objectId = 1) =>
        TestContexts.For(new BtrfsKey(objectId, (byte)ItemType.DevItem, devid), ObjectIds.ChunkTree);

    [Fact]
    public void ValidDevItemPasses() => Validate.Clean(Dev(), DevItem());

    [Fact]
    public void DevItemObjectid() => Validate.One(FindingCode.DevItemInvalid, "invalid key objectid 2", Dev(objectId: 2), DevItem());

    [Theory]
    [InlineData(97)]
    [InlineData(99)]
    public void DevItemWrongSize(int size) => Validate.One(FindingCode.DevItemInvalid, $"invalid item size {size}", Dev(), DevItem(size: size));

    [Fact]
    public void DevidDiffersFromKey() => Validate.One(FindingCode.DevItemInvalid, "devid 2 differs from the key offset 1", Dev(), DevItem(devid: 2));

    [Fact]
    public void BytesUsedBeyondTotal() => Validate.One(FindingCode.DevItemInvalid, "bytes_used", Dev(), DevItem(total: 4096, used: 8192));

    // ---- DEV_EXTENT

    private static ItemCheckContext DevExt(ulong physical = 13631488) => TestContexts.For(Key(1, ItemType.DevExtent, physical), ObjectIds.DevTree);

    [Fact]
    public void ValidDevExtentPasses() => Validate.Clean(DevExt(), DevExtent());

    [Theory]
    [InlineData(47)]
    [InlineData(49)]
    public void DevExtentWrongSize(int size) =>
        Validate.One(FindingCode.DevExtentInvalid, $"invalid item size {size}", DevExt(), size < 48 ? Resize(DevExtent(), size) : DevExtent(extra: size - 48));

    [Fact]
    public void DevExtentChunkTree() => Validate.One(FindingCode.DevExtentInvalid, "invalid chunk_tree 4", DevExt(), DevExtent(chunkTree: 4));

    [Fact]
    public void DevExtentChunkObjectid() => Validate.One(FindingCode.DevExtentInvalid, "invalid chunk_objectid 257", DevExt(), DevExtent(chunkObjectId: 257));

    [Fact]
    public void DevExtentPhysicalNotAligned() => Validate.One(FindingCode.DevExtentInvalid, "physical offset (key offset)", DevExt(13631488 + 1), DevExtent());

    [Fact]
    public void DevExtentChunkOffsetNotAligned() => Validate.One(FindingCode.DevExtentInvalid, "chunk_offset", DevExt(), DevExtent(chunkOffset: 13631488 + 1));

    [Fact]
    public void DevExtentLengthNotAligned() => Validate.One(FindingCode.DevExtentInvalid, "length 8388609", DevExt(), DevExtent(length: 8388609));

    [Fact]
    public void DevExtentLengthZero() => Validate.One(FindingCode.DevExtentInvalid, "length 0", DevExt(), DevExtent(length: 0));

    // ---- BLOCK_GROUP_ITEM

    private static ItemCheckContext Bg(ulong length = 8388608, ulong tree = ObjectIds.ExtentTree) =>
        TestContexts.For(Key(13631488, ItemType.BlockGroupItem, length), tree);

    [Fact]
    public void ValidBlockGroupsPass()
    {
        Validate.Clean(Bg(), BlockGroup());
        Validate.Clean(Bg(), BlockGroup(used: 8388608, flags: BG.Metadata | BG.Dup));
        Validate.Clean(Bg(tree: ObjectIds.BlockGroupTree), BlockGroup(flags: BG.Data | BG.Metadata));
        Validate.Clean(Bg(), BlockGroup(flags: BG.System | BG.Raid1C4));
    }

    [Fact]
    public void BlockGroupLengthZero() => Validate.One(FindingCode.BlockGroupItemInvalid, "length (key offset) 0", Bg(0), BlockGroup(used: 0));

    [Fact]
    public void BlockGroupTooLarge() => Validate.One(FindingCode.BlockGroupItemInvalid, "invalid item size 25", Bg(), BlockGroup(extra: 1));

    [Fact]
    public void ShortBlockGroupIsUndecodable()
    {
        var f = Validate.Unplaced(Bg(), Resize(BlockGroup(), 23));
        Assert.Equal((FindingCode.ItemUndecodable, "BLOCK_GROUP_ITEM of 23 bytes, expected 24", 30425088UL), (Assert.Single(f).Code, f[0].Message, f[0].Bytenr!.Value));
        Validate.One(FindingCode.BlockGroupItemInvalid, "invalid item size 23", Bg(tree: ObjectIds.CsumTree), Resize(BlockGroup(), 23));
    }

    [Fact]
    public void BlockGroupChunkObjectid()
    {
        Validate.One(FindingCode.BlockGroupItemInvalid, "invalid chunk_objectid 3", Bg(), BlockGroup(chunkObjectId: 3));
        var v2 = Bg() with { IncompatFlags = Bg().IncompatFlags | Features.IncompatExtentTreeV2 };
        Validate.Clean(v2, BlockGroup(chunkObjectId: 3)); // a global root id with EXTENT_TREE_V2
    }

    [Fact]
    public void BlockGroupUsedBeyondLength() => Validate.One(FindingCode.BlockGroupItemInvalid, "used 8388609", Bg(), BlockGroup(used: 8388609));

    [Fact]
    public void BlockGroupTwoProfiles() => Validate.One(FindingCode.BlockGroupItemInvalid, "more than one profile", Bg(), BlockGroup(flags: BG.Data | BG.Raid1 | BG.Dup));

    [Theory]
    [InlineData(BG.Dup)]
    [InlineData(BG.System | BG.Data)]
    [InlineData(BG.System | BG.Metadata | BG.Data)]
    public void BlockGroupInvalidType(BG flags) => Validate.One(FindingCode.BlockGroupItemInvalid, "invalid type", Bg(), BlockGroup(flags: flags));

    // ---- free space tree

    private const ulong BgStart = 13631488, BgLen = 8388608;
    private static readonly BtrfsKey InfoKey = Key(BgStart, ItemType.FreeSpaceInfo, BgLen);

    private static ItemCheckContext Fst(ItemType t, ulong start, ulong length, BtrfsKey? info = null, BtrfsKey? prev = null) =>
        TestContexts.For(Key(start, t, length), ObjectIds.FreeSpaceTree, prev) with { FreeSpaceInfo = info };

    [Fact]
    public void ValidFreeSpaceItemsPass()
    {
        Validate.Clean(Fst(ItemType.FreeSpaceInfo, BgStart, BgLen), FreeSpaceInfo(2));
        Validate.Clean(Fst(ItemType.FreeSpaceInfo, BgStart, BgLen), FreeSpaceInfo(0, flags: 1));
        Validate.Clean(Fst(ItemType.FreeSpaceExtent, BgStart + 4096, 8192, InfoKey, InfoKey), []);
        Validate.Clean(Fst(ItemType.FreeSpaceExtent, BgStart + 16384, 4096, InfoKey, Key(BgStart + 4096, ItemType.FreeSpaceExtent, 8192)), []);
        Validate.Clean(Fst(ItemType.FreeSpaceBitmap, BgStart, BgLen, InfoKey, InfoKey), new byte[BgLen / 4096 / 8]);
        Validate.Clean(Fst(ItemType.FreeSpaceExtent, BgStart + 4096, 8192), []); // its block group is in another leaf
    }

    [Fact]
    public void FreeSpaceInfoWrongSize() => Validate.One(FindingCode.FreeSpaceItemInvalid, "invalid item size 9", Fst(ItemType.FreeSpaceInfo, BgStart, BgLen), FreeSpaceInfo(extra: 1));

    [Fact]
    public void FreeSpaceInfoUnknownFlags() => Validate.One(FindingCode.FreeSpaceItemInvalid, "unknown flags 0x2", Fst(ItemType.FreeSpaceInfo, BgStart, BgLen), FreeSpaceInfo(flags: 3));

    [Fact]
    public void FreeSpaceInfoTooManyExtents() =>
        Validate.One(FindingCode.FreeSpaceItemInvalid, "extent_count 2049 exceeds the 2048 sectors", Fst(ItemType.FreeSpaceInfo, BgStart, BgLen), FreeSpaceInfo(2049));

    [Theory]
    [InlineData(BgStart + 1, 4096UL, "start (key objectid)")]
    [InlineData(BgStart, 4097UL, "length (key offset) 4097")]
    [InlineData(BgStart, 0UL, "length (key offset) 0")]
    public void FreeSpaceKeyNotAligned(ulong start, ulong length, string text) =>
        Validate.One(FindingCode.FreeSpaceItemInvalid, text, Fst(ItemType.FreeSpaceExtent, start, length), []);

    [Fact]
    public void FreeSpaceRangeOverflows() =>
        Validate.One(FindingCode.FreeSpaceItemInvalid, "overflows", Fst(ItemType.FreeSpaceExtent, ulong.MaxValue - 4095, 8192), []);

    [Fact]
    public void FreeSpaceExtentWithData() => Validate.One(FindingCode.FreeSpaceItemInvalid, "invalid item size 1", Fst(ItemType.FreeSpaceExtent, BgStart, 4096), [0]);

    [Fact]
    public void FreeSpaceBitmapWrongSize() =>
        Validate.One(FindingCode.FreeSpaceItemInvalid, "bitmap of 255 bytes", Fst(ItemType.FreeSpaceBitmap, BgStart, BgLen), new byte[255]);

    [Fact]
    public void FreeSpaceExtentOutsideItsBlockGroup()
    {
        var f = Validate.One(FindingCode.FreeSpaceItemInvalid, "outside its block group", Fst(ItemType.FreeSpaceExtent, BgStart + BgLen - 4096, 8192, InfoKey, InfoKey), []);
        Assert.Equal($"inside [{BgStart}, {BgStart + BgLen})", f.Expected);
    }

    [Fact]
    public void FreeSpaceExtentOverlapsThePreviousOne() =>
        Validate.One(FindingCode.FreeSpaceItemInvalid, "ends at", Fst(ItemType.FreeSpaceExtent, BgStart + 8192, 4096, InfoKey, Key(BgStart, ItemType.FreeSpaceExtent, 12288)), []);
}
