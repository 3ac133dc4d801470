namespace BtrfsRefcheck.Tests.Oracle;

/// <summary>Pure tests of the v6.2 key printing emulation and its inverse (no btrfs-progs needed).</summary>
public class ProgsKeyFormatTests
{
    private const ulong Max = ulong.MaxValue;

    public static IEnumerable<object[]> PrintedKeys =>
    [
        ["(EXTENT_TREE ROOT_ITEM 0)", 2UL, (byte)132, 0UL],
        ["(DEV_ITEMS DEV_ITEM 1)", 1UL, (byte)216, 1UL],
        ["(ROOT_TREE_DIR INODE_ITEM 0)", 6UL, (byte)1, 0UL],
        ["(FIRST_CHUNK_TREE CHUNK_ITEM 22020096)", 256UL, (byte)228, 22020096UL],
        ["(256 INODE_ITEM 0)", 256UL, (byte)1, 0UL],
        ["(1 DEV_EXTENT 13631488)", 1UL, (byte)204, 13631488UL],
        ["(FS_TREE ROOT_ITEM 18446744073709551615)", 5UL, (byte)132, Max],
        ["(FS_TREE INODE_REF 6)", 5UL, (byte)12, 6UL],
        ["(TREE_RELOC ROOT_ITEM FS_TREE)", ProgsKeyFormat.TreeReloc, (byte)132, 5UL],
        ["(TREE_RELOC ROOT_ITEM 257)", ProgsKeyFormat.TreeReloc, (byte)132, 257UL],
        ["(TREE_LOG ROOT_ITEM 5)", ProgsKeyFormat.TreeLog, (byte)132, 5UL],
        ["(DATA_RELOC_TREE ROOT_ITEM 0)", ProgsKeyFormat.DataRelocTree, (byte)132, 0UL],
        ["(EXTENT_CSUM EXTENT_CSUM 13631488)", ProgsKeyFormat.ExtentCsum, (byte)128, 13631488UL],
        ["(0x264d7811335fcadf UUID_KEY_SUBVOL 0x2422b5b0b2514084)", 0x264d7811335fcadfUL, (byte)251, 0x2422b5b0b2514084UL],
        ["(0x00000000000000ff UUID_KEY_RECEIVED_SUBVOL 0x0000000000000001)", 0xffUL, (byte)252, 1UL],
        ["(0 QGROUP_STATUS 0)", 0UL, (byte)240, 0UL],
        ["(0 QGROUP_INFO 0/5)", 0UL, (byte)242, 5UL],
        ["(0 QGROUP_LIMIT 1/258)", 0UL, (byte)244, (1UL << 48) | 258],
        ["(1/100 QGROUP_RELATION 0/5)", (1UL << 48) | 100, (byte)246, 5UL],
        ["(DEV_STATS PERSISTENT_ITEM 1)", 0UL, (byte)249, 1UL],
        ["(BALANCE TEMPORARY_ITEM 0)", ProgsKeyFormat.Balance, (byte)248, 0UL],
        ["(FREE_SPACE UNTYPED 30408704)", ProgsKeyFormat.FreeSpace, (byte)0, 30408704UL],
        ["(0 UNKNOWN.0 0)", 0UL, (byte)0, 0UL],
        ["(257 UNKNOWN.172 5)", 257UL, (byte)172, 5UL],
        ["(257 DIR_INDEX -1)", 257UL, (byte)96, Max],
        ["(-1 DIR_LOG_INDEX 0)", Max, (byte)72, 0UL],
        ["(LOG_FIXUP EXTENT_DATA 0)", ProgsKeyFormat.TreeLogFixup, (byte)108, 0UL],
        ["(ORPHAN ORPHAN_ITEM 258)", ProgsKeyFormat.Orphan, (byte)48, 258UL],
        ["(MULTIPLE EXTENT_DATA 0)", ProgsKeyFormat.Multiple, (byte)108, 0UL],
        ["(1048576 FREE_SPACE_INFO 4194304)", 1048576UL, (byte)198, 4194304UL],
        ["(BLOCK_GROUP_TREE ROOT_ITEM 0)", 11UL, (byte)132, 0UL],
    ];

    [Theory]
    [MemberData(nameof(PrintedKeys))]
    public void ParseKey_RecoversNumericKey(string text, ulong objectid, byte type, ulong offset)
    {
        Assert.Equal(new ProgsKey(objectid, type, offset), ProgsKeyFormat.ParseKey(text));
        Assert.Equal(new ProgsKey(objectid, type, offset), ProgsKeyFormat.ParseKey("key " + text));
    }

    [Theory]
    [MemberData(nameof(PrintedKeys))]
    public void Format_ReproducesV62Text(string text, ulong objectid, byte type, ulong offset)
    {
        _ = objectid; _ = type; _ = offset;
        var key = ProgsKeyFormat.ParseKey(text);
        Assert.Equal(text, ProgsKeyFormat.Format(key));
    }

    [Fact]
    public void ParseKey_AcceptsAliasesOfOtherProgsVersions()
    {
        Assert.Equal(ProgsKeyFormat.TreeLogFixup, ProgsKeyFormat.ParseKey("(TREE_LOG_FIXUP EXTENT_DATA 0)").ObjectId);
        Assert.Equal((byte)172, ProgsKeyFormat.ParseKey("(257 EXTENT_OWNER_REF 5)").Type);
        Assert.Equal((byte)230, ProgsKeyFormat.ParseKey("(30408704 RAID_STRIPE 16384)").Type);
        Assert.Equal((byte)249, ProgsKeyFormat.ParseKey("(DEV_STATS DEV_STATS_ITEM 1)").Type);
    }

    [Theory]
    [InlineData("")]
    [InlineData("(1 2)")]
    [InlineData("(NOT_A_TREE INODE_ITEM 0)")]
    [InlineData("(256 NOT_A_TYPE 0)")]
    [InlineData("(256 INODE_ITEM 0")]
    [InlineData("(256 UNKNOWN.300 0)")]
    public void TryParseKey_RejectsMalformed(string text) =>
        Assert.False(ProgsKeyFormat.TryParseKey(text, out _));

    [Fact]
    public void Format_UsesContextDependentObjectidNames()
    {
        Assert.Equal("(ROOT_TREE ROOT_ITEM 0)", ProgsKeyFormat.Format(new(1, 132, 0)));
        Assert.Equal("(DEV_ITEMS DEV_ITEM 1)", ProgsKeyFormat.Format(new(1, 216, 1)));
        Assert.Equal("(256 DEV_ITEM 1)", ProgsKeyFormat.Format(new(256, 216, 1)));
        Assert.Equal("(FIRST_CHUNK_TREE CHUNK_ITEM 0)", ProgsKeyFormat.Format(new(256, 228, 0)));
        Assert.Equal("(256 EXTENT_DATA 0)", ProgsKeyFormat.Format(new(256, 108, 0)));
        Assert.Equal("(0 INODE_ITEM 0)", ProgsKeyFormat.Format(new(0, 1, 0)));
        Assert.Equal("(DEV_STATS PERSISTENT_ITEM 1)", ProgsKeyFormat.Format(new(0, 249, 1)));
        Assert.Equal("(5 PERSISTENT_ITEM 1)", ProgsKeyFormat.Format(new(5, 249, 1)));
        Assert.Equal("(5 DEV_EXTENT 1)", ProgsKeyFormat.Format(new(5, 204, 1)));
        Assert.Equal("(FS_TREE ROOT_ITEM 18446744073709551615)", ProgsKeyFormat.Format(new(5, 132, ulong.MaxValue)));
        Assert.Equal("(FS_TREE DIR_ITEM -1)", ProgsKeyFormat.Format(new(5, 84, ulong.MaxValue)));
        Assert.Equal("ROOT_TREE", ProgsKeyFormat.FormatObjectId(1, 0));
        Assert.Equal("258", ProgsKeyFormat.FormatObjectId(258, 0));
    }

    [Fact]
    public void RandomKeys_RoundTripThroughFormat()
    {
        var rng = new Random(1234);
        ulong[] specialIds =
        [
            0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 255, 256, 257, ulong.MaxValue,
            ProgsKeyFormat.Balance, ProgsKeyFormat.Orphan, ProgsKeyFormat.TreeLog, ProgsKeyFormat.TreeLogFixup,
            ProgsKeyFormat.TreeReloc, ProgsKeyFormat.DataRelocTree, ProgsKeyFormat.ExtentCsum, ProgsKeyFormat.FreeSpace,
            ProgsKeyFormat.FreeIno, ProgsKeyFormat.Multiple,
        ];
        for (int i = 0; i < 20000; i++)
        {
            byte type = (byte)rng.Next(256);
            ulong Pick() => rng.Next(3) switch
            {
                0 => specialIds[rng.Next(specialIds.Length)],
                1 => unchecked(((ulong)rng.NextInt64() << 1) | (uint)rng.Next(2)),
                _ => (ulong)rng.Next(100000),
            };
            var objectid = Pick();
            var offset = Pick();
            var key = new ProgsKey(objectid, type, offset);
            var text = ProgsKeyFormat.Format(key);
            Assert.True(ProgsKeyFormat.TryParseKey(text, out var back), text);
            Assert.Equal(key, back);
        }
    }

    [Fact]
    public void ProgsKey_OrdersLikeBtrfs()
    {
        Assert.True(new ProgsKey(1, 200, 0) < new ProgsKey(2, 0, 0));
        Assert.True(new ProgsKey(2, 1, 9) < new ProgsKey(2, 2, 0));
        Assert.True(new ProgsKey(2, 2, 0) < new ProgsKey(2, 2, 1));
        Assert.True(new ProgsKey(2, 2, 1) >= new ProgsKey(2, 2, 1));
    }
}
