using BtrfsRefcheck.Format;
using BtrfsRefcheck.Format.Items;

namespace BtrfsRefcheck.Tests.Format;

/// <summary>Every on-disk structure's size and key offsets, pinned against btrfs_tree.h.</summary>
public class StructSizeTests
{
    [Theory]
    [InlineData("key", BtrfsKey.Size, 17)]
    [InlineData("header", Header.Size, 0x65)]
    [InlineData("item", ItemHeader.Size, 25)]
    [InlineData("key_ptr", KeyPtr.Size, 33)]
    [InlineData("superblock", Superblock.Size, 4096)]
    [InlineData("dev_item", DevItem.Size, 98)]
    [InlineData("root_backup", BackupRoot.Size, 168)]
    [InlineData("chunk (without stripes)", ChunkItem.HeaderSize, 48)]
    [InlineData("stripe", ChunkItem.StripeSize, 32)]
    [InlineData("inode_item", InodeItem.Size, 160)]
    [InlineData("root_item", RootItem.FullSize, 439)]
    [InlineData("root_item legacy", RootItem.LegacySize, 239)]
    [InlineData("root_item inode", RootItem.InodeSize, InodeItem.Size)]
    [InlineData("file_extent_item inline header", FileExtentItem.InlineHeaderSize, 21)]
    [InlineData("file_extent_item", FileExtentItem.RegularSize, 53)]
    [InlineData("extent_item", ExtentItem.FixedSize, 24)]
    [InlineData("tree_block_info", ExtentItem.TreeBlockInfoSize, 18)]
    [InlineData("extent_data_ref", ExtentDataRefs.Size, 28)]
    [InlineData("extent_data_ref keyed", ExtentDataRef.Size, 28)]
    [InlineData("shared_data_ref", SharedDataRef.Size, 4)]
    [InlineData("extent_owner_ref", ExtentOwnerRef.Size, 8)]
    [InlineData("extent_ref_v0", ExtentRefV0.Size, 28)]
    [InlineData("tree block ref", TreeBlockRef.Size, 0)]
    [InlineData("shared block ref", SharedBlockRef.Size, 0)]
    [InlineData("inode_ref header", InodeRef.EntryHeaderSize, 10)]
    [InlineData("inode_extref header", InodeExtref.EntryHeaderSize, 18)]
    [InlineData("dir_item header", DirItem.EntryHeaderSize, 30)]
    [InlineData("dir_log_item", DirLogItem.Size, 8)]
    [InlineData("orphan", OrphanItem.Size, 0)]
    [InlineData("root_ref header", RootRef.HeaderSize, 18)]
    [InlineData("block_group_item", BlockGroupItem.Size, 24)]
    [InlineData("free_space_info", FreeSpaceInfo.Size, 8)]
    [InlineData("free_space_extent", FreeSpaceExtent.Size, 0)]
    [InlineData("free_space_header", FreeSpaceHeader.Size, 41)]
    [InlineData("dev_extent", DevExtent.Size, 48)]
    [InlineData("qgroup_status_item", QgroupStatus.Size, 32)]
    [InlineData("qgroup_status_item with enable_gen", QgroupStatus.SizeWithEnableGen, 40)]
    [InlineData("qgroup_info_item", QgroupInfo.Size, 40)]
    [InlineData("qgroup_limit_item", QgroupLimit.Size, 40)]
    [InlineData("qgroup relation", QgroupRelation.Size, 0)]
    [InlineData("dev_stats_item", DevStatsItem.Size, 40)]
    [InlineData("dev_replace_item", DevReplaceItem.Size, 72)]
    [InlineData("disk_balance_args", DiskBalanceArgs.Size, 136)]
    [InlineData("balance_item", BalanceItem.Size, 448)]
    [InlineData("verity_descriptor_item", VerityDescItem.Size, 25)]
    [InlineData("raid_stride", RaidStripeItem.StrideSize, 16)]
    [InlineData("uuid item entry", UuidItem.EntrySize, 8)]
    [InlineData("timespec", Timespec.Size, 12)]
    public void Size_is_pinned(string what, int actual, int expected) => Assert.True(actual == expected, $"{what}: {actual} != {expected}");

    [Theory]
    [InlineData("csum_type", Superblock.CsumTypeAt, 0xc4)]
    [InlineData("dev_item", Superblock.DevItemAt, 0xc9)]
    [InlineData("label", Superblock.LabelAt, 0x12b)]
    [InlineData("sys_chunk_array", Superblock.SysChunkArrayAt, 0x32b)]
    [InlineData("super_roots", Superblock.SuperRootsAt, 0xb2b)]
    [InlineData("magic", Superblock.MagicAt, 0x40)]
    [InlineData("generation", Superblock.GenerationAt, 0x48)]
    [InlineData("root", Superblock.RootAt, 0x50)]
    [InlineData("sectorsize", Superblock.SectorSizeAt, 0x90)]
    [InlineData("nodesize", Superblock.NodeSizeAt, 0x94)]
    [InlineData("incompat_flags", Superblock.IncompatFlagsAt, 0xbc)]
    [InlineData("padding", Superblock.PaddingAt, 4096 - 565)]
    public void Superblock_offset_is_pinned(string what, int actual, int expected) => Assert.True(actual == expected, $"{what}: 0x{actual:x} != 0x{expected:x}");

    [Fact]
    public void Header_offsets_are_pinned()
    {
        Assert.Equal(0x30, Header.BytenrAt);
        Assert.Equal(0x50, Header.GenerationAt);
        Assert.Equal(0x58, Header.OwnerAt);
        Assert.Equal(0x60, Header.NrItemsAt);
        Assert.Equal(0x64, Header.LevelAt);
    }

    [Fact]
    public void Views_reject_short_buffers_with_format_exception()
    {
        // One representative per fixed-size view: a short buffer throws the format exception, never an
        // ArgumentOutOfRangeException from a slice.
        byte[] b = new byte[7];
        Assert.Throws<BtrfsFormatException>(() => { new InodeItem(new byte[159]); });
        Assert.Throws<BtrfsFormatException>(() => { new BlockGroupItem(new byte[23]); });
        Assert.Throws<BtrfsFormatException>(() => { new DevExtent(new byte[47]); });
        Assert.Throws<BtrfsFormatException>(() => { new QgroupStatus(new byte[31]); });
        Assert.Throws<BtrfsFormatException>(() => { new QgroupInfo(new byte[39]); });
        Assert.Throws<BtrfsFormatException>(() => { new QgroupLimit(new byte[39]); });
        Assert.Throws<BtrfsFormatException>(() => { new DevReplaceItem(new byte[71]); });
        Assert.Throws<BtrfsFormatException>(() => { new BalanceItem(new byte[447]); });
        Assert.Throws<BtrfsFormatException>(() => { new FreeSpaceInfo(b); });
        Assert.Throws<BtrfsFormatException>(() => { new FreeSpaceHeader(new byte[40]); });
        Assert.Throws<BtrfsFormatException>(() => { new DirLogItem(b); });
        Assert.Throws<BtrfsFormatException>(() => { new RootRef(new byte[17]); });
        Assert.Throws<BtrfsFormatException>(() => { new SharedDataRef(new byte[3]); });
        Assert.Throws<BtrfsFormatException>(() => { new ExtentDataRef(new byte[27]); });
        Assert.Throws<BtrfsFormatException>(() => { new VerityDescItem(new byte[24]); });
        Assert.Throws<BtrfsFormatException>(() => { new CsumItem(b, 0); });
        Assert.Throws<BtrfsFormatException>(() => { new UuidItem(b).SubvolId(0); });
        Assert.Throws<BtrfsFormatException>(() => { new RaidStripeItem(new byte[16]).DevId(1); });
    }
}
