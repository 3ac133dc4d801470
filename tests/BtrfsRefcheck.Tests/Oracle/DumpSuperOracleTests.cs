namespace BtrfsRefcheck.Tests.Oracle;

/// <summary>Runs the installed <c>btrfs inspect-internal dump-super</c> on mkfs fixtures and checks the parsed values.</summary>
public class DumpSuperOracleTests
{
    private static readonly Dictionary<string, ulong> IncompatBits = new()
    {
        ["MIXED_BACKREF"] = 1UL << 0, ["DEFAULT_SUBVOL"] = 1UL << 1, ["MIXED_GROUPS"] = 1UL << 2,
        ["COMPRESS_LZO"] = 1UL << 3, ["COMPRESS_ZSTD"] = 1UL << 4, ["BIG_METADATA"] = 1UL << 5,
        ["EXTENDED_IREF"] = 1UL << 6, ["RAID56"] = 1UL << 7, ["SKINNY_METADATA"] = 1UL << 8,
        ["NO_HOLES"] = 1UL << 9, ["METADATA_UUID"] = 1UL << 10, ["RAID1C34"] = 1UL << 11,
        ["ZONED"] = 1UL << 12, ["EXTENT_TREE_V2"] = 1UL << 13,
    };

    private static readonly Dictionary<string, ulong> CompatRoBits = new()
    {
        ["FREE_SPACE_TREE"] = 1, ["FREE_SPACE_TREE_VALID"] = 2, ["BLOCK_GROUP_TREE"] = 4,
    };

    private static readonly Dictionary<string, ulong> SuperFlagBits = new()
    {
        ["WRITTEN"] = 1, ["RELOC"] = 2, ["SEEDING"] = 1UL << 32, ["METADUMP"] = 1UL << 33,
        ["METADUMP_V2"] = 1UL << 34, ["CHANGING_FSID"] = 1UL << 35,
    };

    [ProgsFact]
    public void DefaultFixture_HasExpectedBasicFields()
    {
        var s = OracleCache.FixtureSuper("crc32c");
        var spec = MkfsFixtures.Spec("crc32c");
        Assert.Equal(65536UL, s.BannerBytenr);
        Assert.Equal(65536UL, s.U64("bytenr"));
        Assert.Equal("_BHRfS_M [match]", s["magic"]);
        Assert.True(s.Matches("csum"));
        Assert.True(s.Matches("dev_item.fsid"));
        Assert.Equal("0 (crc32c)", s["csum_type"]);
        Assert.Equal(0UL, s.U64("csum_type"));
        Assert.Equal(4UL, s.U64("csum_size"));
        Assert.Matches("^0x[0-9a-f]{8} \\[match\\]$", s["csum"]);
        Assert.Equal(16384UL, s.U64("nodesize"));
        Assert.Equal(16384UL, s.U64("leafsize"));
        Assert.Equal(s["leafsize (deprecated)"], s["leafsize"]);
        Assert.Equal("0", s["log_root_transid"]);
        Assert.Equal(4096UL, s.U64("sectorsize"));
        Assert.Equal(4096UL, s.U64("stripesize"));
        Assert.Equal(6UL, s.U64("root_dir"));
        Assert.Equal(1UL, s.U64("num_devices"));
        Assert.Equal((ulong)MkfsFixtures.DefaultImageSize, s.U64("total_bytes"));
        Assert.Equal((ulong)MkfsFixtures.DefaultImageSize, s.U64("dev_item.total_bytes"));
        Assert.Equal(1UL, s.U64("dev_item.devid"));
        Assert.Equal("crc32c", s["label"]);
        Assert.Equal(spec.Uuid, s["fsid"]);
        Assert.Equal(spec.Uuid, s["metadata_uuid"]);
        Assert.Equal(spec.Uuid + " [match]", s["dev_item.fsid"]);
        Assert.Equal(0UL, s.U64("log_root"));
        Assert.True(s.U64("bytes_used") > 15UL << 20, "content (~20 MiB) should be accounted");
        Assert.Equal(["WRITTEN"], s.FlagNames["flags"]);
        Assert.Contains("SKINNY_METADATA", s.FlagNames["incompat_flags"]);
        Assert.Contains("NO_HOLES", s.FlagNames["incompat_flags"]);
        Assert.Equal(["FREE_SPACE_TREE", "FREE_SPACE_TREE_VALID"], s.FlagNames["compat_ro_flags"]);
        Assert.False(s.FlagNames.ContainsKey("compat_flags")); // value 0: no name list printed
    }

    [ProgsTheory]
    [MemberData(nameof(MkfsFixtures.Names), MemberType = typeof(MkfsFixtures))]
    public void FlagNames_AgreeWithNumericValues(string fixture)
    {
        var s = OracleCache.FixtureSuper(fixture);
        Check("incompat_flags", IncompatBits);
        Check("compat_ro_flags", CompatRoBits);
        Check("flags", SuperFlagBits);

        void Check(string field, Dictionary<string, ulong> bits)
        {
            var value = s.U64(field);
            var names = s.FlagNames.GetValueOrDefault(field, []);
            Assert.Equal(value == 0, names.Count == 0);
            Assert.Equal(value, names.Aggregate(0UL, (acc, n) => acc | bits[n]));
        }
    }

    [ProgsFact]
    public void SysChunkArray_IsParsedAndSizeMatches()
    {
        var s = OracleCache.FixtureSuper("crc32c");
        Assert.True(s.HasSysChunkArray);
        Assert.NotEmpty(s.SysChunks);
        // sys_array_size = sum(disk key 17 + chunk 48 + 32 per stripe)
        Assert.Equal(s.U64("sys_array_size"), (ulong)s.SysChunks.Sum(c => 17 + 48 + 32 * c.NumStripes));
        foreach (var c in s.SysChunks)
        {
            Assert.Equal(ProgsKeyFormat.FirstChunkTree, c.Key.ObjectId);
            Assert.Equal(ProgsKeyFormat.ChunkItem, c.Key.Type);
            Assert.StartsWith("SYSTEM", c.Type);
            Assert.Equal(c.NumStripes, c.Stripes.Count);
            Assert.Equal(2UL, c.Owner);
            Assert.Equal(65536UL, c.StripeLen);
            Assert.All(c.Stripes, st => Assert.Equal(s["dev_item.uuid"], st.DevUuid));
        }
    }

    [ProgsFact]
    public void BackupRoots_AreParsed()
    {
        var s = OracleCache.FixtureSuper("crc32c");
        Assert.True(s.HasBackupRoots);
        Assert.Equal([0, 1, 2, 3], s.BackupRoots.Select(b => b.Index));
        foreach (var b in s.BackupRoots)
        {
            foreach (var f in new[] { "backup_tree_root", "backup_chunk_root", "backup_extent_root", "backup_fs_root", "backup_dev_root", "csum_root" })
            {
                Assert.True(b.Fields.ContainsKey(f), f);
                Assert.True(b.Fields.ContainsKey(f + "_gen"), f + "_gen");
                Assert.True(b.Fields.ContainsKey(f + "_level"), f + "_level");
            }
            Assert.Equal(s.U64("total_bytes"), b.U64("backup_total_bytes"));
            Assert.Equal(1UL, b.U64("backup_num_devices"));
        }
        var current = Assert.Single(s.BackupRoots, b => b.U64("backup_tree_root_gen") == s.U64("generation"));
        Assert.Equal(s.U64("root"), current.U64("backup_tree_root"));
        Assert.Equal(s.U64("root_level"), current.U64("backup_tree_root_level"));
        Assert.Equal(s.U64("bytes_used"), current.U64("backup_bytes_used"));
        Assert.Equal(s.U64("chunk_root"), current.U64("backup_chunk_root"));
    }

    [ProgsFact]
    public void MirrorAndAllOptions_AreParsed()
    {
        var image = MkfsFixtures.Get("crc32c");
        var m1 = DumpSuperParser.Parse(Progs.DumpSuper(image, "-s", "1"));
        Assert.Equal(64UL << 20, m1.BannerBytenr);
        Assert.Equal(64UL << 20, m1.U64("bytenr"));
        Assert.False(m1.HasSysChunkArray);
        Assert.Empty(m1.SysChunks);

        var all = DumpSuperParser.ParseAll(Progs.DumpSuper(image, "-a", "-f"));
        Assert.Equal([65536UL, 64UL << 20], all.Select(s => s.U64("bytenr"))); // 512 MiB image: no 256 GiB mirror
        Assert.All(all, s => Assert.True(s.Matches("magic") && s.Matches("csum")));
        Assert.All(all, s => Assert.NotEmpty(s.SysChunks));
        Assert.Equal(all[0]["generation"], all[1]["generation"]);

        Assert.Empty(DumpSuperParser.ParseAll(Progs.DumpSuper(image, "-s", "2")));
    }

    [ProgsTheory]
    [InlineData("crc32c", 0, "crc32c", 4)]
    [InlineData("xxhash", 1, "xxhash64", 8)]
    [InlineData("sha256", 2, "sha256", 32)]
    [InlineData("blake2", 3, "blake2", 32)]
    public void ChecksumFixtures_ReportTheirCsumType(string fixture, int type, string name, int size)
    {
        var s = OracleCache.FixtureSuper(fixture);
        Assert.Equal($"{type} ({name})", s["csum_type"]);
        Assert.Equal((ulong)size, s.U64("csum_size"));
        Assert.Matches($"^0x[0-9a-f]{{{2 * size}}} \\[match\\]$", s["csum"]);
    }
}
