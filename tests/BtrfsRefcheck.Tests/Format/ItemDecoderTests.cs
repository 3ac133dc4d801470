using BtrfsRefcheck.Cli.Rendering;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Format.Items;

namespace BtrfsRefcheck.Tests.Format;

/// <summary>Synthesized item buffers decoded through <see cref="ItemDecoder"/>, asserting exact field values,
/// and damaged buffers asserting a problem instead of an exception.</summary>
public class ItemDecoderTests
{
    private static readonly Guid U1 = Guid.Parse("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0");
    private static readonly Guid U2 = Guid.Parse("11111111-2222-3333-4444-555555555555");

    private static Buf Inode(ulong generation = 7, uint mode = 0x81a4, ulong flags = 0) => new Buf()
        .U64(generation).U64(8).U64(4096).U64(8192).U64(0).U32(1).U32(1000).U32(100).U32(mode).U64(0x0801)
        .U64(flags).U64(42).Zeros(32)
        .Time(1700000000, 5).Time(1700000001, 123456789).Time(1700000002, 0).Time(1600000000, 999999999);

    // ---- inode items ----

    [Fact]
    public void InodeItem_all_fields()
    {
        var data = Inode(flags: 0x3 | (1UL << 31)).ToArray();
        Assert.Equal(160, data.Length);
        var r = Dec.Run(ItemType.InodeItem, data).Root;
        Assert.Equal(7UL, r.U("generation"));
        Assert.Equal(8UL, r.U("transid"));
        Assert.Equal(4096UL, r.U("size"));
        Assert.Equal(8192UL, r.U("nbytes"));
        Assert.Equal(0UL, r.U("block_group"));
        Assert.Equal(1UL, r.U("nlink"));
        Assert.Equal(1000UL, r.U("uid"));
        Assert.Equal(100UL, r.U("gid"));
        Assert.Equal(0x81a4UL, r.U("mode"));
        Assert.Equal(0x801UL, r.U("rdev"));
        Assert.Equal(new RecFlags(0x80000003, "NODATASUM|NODATACOW|ROOT_ITEM_INIT"), r.F("flags"));
        Assert.Equal(42UL, r.U("sequence"));
        Assert.Equal("1700000000.000000005", r.S("atime"));
        Assert.Equal("1700000001.123456789", r.S("ctime"));
        Assert.Equal("1700000002.000000000", r.S("mtime"));
        Assert.Equal("1600000000.999999999", r.S("otime"));
    }

    [Fact]
    public void InodeItem_unknown_flag_bits_are_shown_in_hex()
    {
        var r = Dec.Run(ItemType.InodeItem, Inode(flags: (1UL << 11) | (1UL << 40)).ToArray()).Root;
        Assert.Equal("COMPRESS|0x10000000000", r.F("flags").Names);
    }

    [Fact]
    public void InodeItem_truncated_is_a_problem_with_raw_bytes()
    {
        var data = Inode().ToArray()[..100];
        var w = Dec.Run(ItemType.InodeItem, data);
        Assert.Equal(["INODE_ITEM: item size 100, expected 160"], w.Problems);
        Assert.Equal(Convert.ToHexStringLower(data), w.Root.S("raw"));
        Assert.False(w.Root.Has("generation"));
    }

    [Fact]
    public void InodeItem_too_long_is_a_problem_but_decoded()
    {
        var w = Dec.Run(ItemType.InodeItem, Inode().Zeros(8).ToArray());
        Assert.Equal(["INODE_ITEM: item size 168, expected 160"], w.Problems);
        Assert.Equal(7UL, w.Root.U("generation"));
    }

    [Fact]
    public void InodeRef_two_entries()
    {
        var data = new Buf().U64(2).U16(3).Str("foo").U64(5).U16(4).Str("bar2").ToArray();
        var w = Dec.Run(ItemType.InodeRef, data, 257, 256);
        Assert.Empty(w.Problems);
        var e = w.Root.Arr("entries").Objects;
        Assert.Equal(2, e.Count);
        Assert.Equal(2UL, e[0].U("index"));
        Assert.Equal(3UL, e[0].U("name_len"));
        Assert.Equal("foo", e[0].S("name"));
        Assert.Equal(5UL, e[1].U("index"));
        Assert.Equal("bar2", e[1].S("name"));
    }

    [Fact]
    public void InodeRef_name_running_past_item_is_capped_and_reported()
    {
        var data = new Buf().U64(2).U16(3).Str("foo").U64(9).U16(200).Str("abc").ToArray();
        var w = Dec.Run(ItemType.InodeRef, data);
        var e = w.Root.Arr("entries").Objects;
        Assert.Equal(2, e.Count);
        Assert.Equal(200UL, e[1].U("name_len"));
        Assert.Equal("abc", e[1].S("name"));
        var p = Assert.Single(w.Problems);
        Assert.Contains("name_len 200 at offset 13", p);
    }

    [Fact]
    public void InodeRef_truncated_header_is_reported()
    {
        var data = new Buf().U64(2).U16(1).Str("a").U64(3).ToArray();
        var w = Dec.Run(ItemType.InodeRef, data);
        Assert.Single(w.Root.Arr("entries").Objects);
        Assert.Contains("need 10 bytes at offset 11, item has 19", Assert.Single(w.Problems));
    }

    [Fact]
    public void InodeExtref_entry()
    {
        var data = new Buf().U64(300).U64(7).U16(5).Str("hello").ToArray();
        var w = Dec.Run(ItemType.InodeExtref, data, 257, 0x1234);
        Assert.Empty(w.Problems);
        var e = Assert.Single(w.Root.Arr("entries").Objects);
        Assert.Equal(7UL, e.U("index"));
        Assert.Equal(300UL, e.U("parent_objectid"));
        Assert.Equal(5UL, e.U("name_len"));
        Assert.Equal("hello", e.S("name"));
    }

    private static Buf DirEntry(ulong target, byte keyType, byte ftype, string name, byte[]? value = null, ulong transid = 9)
    {
        var n = System.Text.Encoding.UTF8.GetBytes(name);
        return new Buf().Key(target, keyType, 0).U64(transid).U16((ushort)(value?.Length ?? 0)).U16((ushort)n.Length)
            .U8(ftype).Bytes(n).Bytes(value ?? []);
    }

    [Fact]
    public void DirIndex_entry()
    {
        var w = Dec.Run(ItemType.DirIndex, DirEntry(257, 1, 1, "file.txt").ToArray(), 256, 2);
        Assert.Empty(w.Problems);
        var e = Assert.Single(w.Root.Arr("entries").Objects);
        Assert.Equal("(257 INODE_ITEM 0)", e.S("location"));
        Assert.Equal("FILE", e.S("type"));
        Assert.Equal(9UL, e.U("transid"));
        Assert.Equal(0UL, e.U("data_len"));
        Assert.Equal(8UL, e.U("name_len"));
        Assert.Equal("file.txt", e.S("name"));
        Assert.False(e.Has("data"));
    }

    [Fact]
    public void DirItem_hash_collision_holds_two_entries_and_subvolume_location()
    {
        var data = new Buf().Bytes(DirEntry(257, 1, 2, "a").ToArray()).Bytes(DirEntry(258, 132, 2, "b").ToArray()).ToArray();
        var e = Dec.Run(ItemType.DirItem, data).Root.Arr("entries").Objects;
        Assert.Equal(2, e.Count);
        Assert.Equal("DIR", e[0].S("type"));
        Assert.Equal("(258 ROOT_ITEM 0)", e[1].S("location"));
    }

    [Fact]
    public void XattrItem_shows_value_with_escapes()
    {
        var w = Dec.Run(ItemType.XattrItem, DirEntry(0, 0, 8, "user.x", [(byte)'v', 0, 0xff, (byte)'\n']).ToArray());
        var e = Assert.Single(w.Root.Arr("entries").Objects);
        Assert.Equal("XATTR", e.S("type"));
        Assert.Equal(4UL, e.U("data_len"));
        Assert.Equal("v\\000\\377\\n", e.S("data"));
    }

    [Fact]
    public void DirItem_names_escape_invalid_utf8_and_keep_valid_utf8()
    {
        var raw = new Buf().Key(257, 1, 0).U64(1).U16(0).U16(8).U8(1)
            .Bytes([0xc3, 0xa9, (byte)'\\', (byte)'\t', 0xc3, (byte)'z', 0x80, (byte)' ']).ToArray();
        var e = Assert.Single(Dec.Run(ItemType.DirItem, raw).Root.Arr("entries").Objects);
        Assert.Equal("é\\\\\\t\\303z\\200 ", e.S("name"));
    }

    [Fact]
    public void DirItem_unknown_and_encrypted_types()
    {
        Assert.Equal("DIR_ITEM.12", DirItem.TypeName(12));
        Assert.Equal("FILE|ENCRYPTED", DirItem.TypeName(0x81));
        Assert.Equal("SYMLINK", DirItem.TypeName(7));
    }

    [Fact]
    public void DirItem_data_running_past_item_is_reported()
    {
        var full = DirEntry(0, 0, 8, "user.y", new byte[40]).ToArray();
        var w = Dec.Run(ItemType.XattrItem, full[..(30 + 6 + 10)]);
        var e = Assert.Single(w.Root.Arr("entries").Objects);
        Assert.Equal("user.y", e.S("name"));
        Assert.Equal(40UL, e.U("data_len"));
        Assert.Contains("dir item entry truncated", Assert.Single(w.Problems));
    }

    [Fact]
    public void DirLogIndex_end()
    {
        var r = Dec.Run(ItemType.DirLogIndex, new Buf().U64(123).ToArray()).Root;
        Assert.Equal(123UL, r.U("end"));
    }

    [Fact]
    public void OrphanItem_is_empty_and_data_is_a_problem()
    {
        var w = Dec.Run(ItemType.OrphanItem, [], ObjectIds.Orphan, 257);
        Assert.Empty(w.Problems);
        Assert.Empty(w.Root.Entries);
        w = Dec.Run(ItemType.OrphanItem, [1, 2], ObjectIds.Orphan, 257);
        Assert.Equal(["ORPHAN_ITEM: item size 2, expected 0"], w.Problems);
        Assert.Equal("0102", w.Root.S("raw"));
    }

    // ---- file extents and checksums ----

    [Fact]
    public void FileExtent_inline()
    {
        var data = new Buf().U64(6).U64(11).U8(1).U8(0).U16(0).U8(0).Str("hello world").ToArray();
        var w = Dec.Run(ItemType.ExtentData, data, 257, 0);
        Assert.Empty(w.Problems);
        var r = w.Root;
        Assert.Equal(6UL, r.U("generation"));
        Assert.Equal("inline", r.S("type"));
        Assert.Equal("zlib", r.S("compression"));
        Assert.Equal(11UL, r.U("ram_bytes"));
        Assert.Equal(11UL, r.U("inline_size"));
        Assert.False(r.Has("disk_bytenr"));
    }

    [Theory]
    [InlineData(1, "regular")]
    [InlineData(2, "prealloc")]
    public void FileExtent_regular_and_prealloc(byte type, string name)
    {
        var data = new Buf().U64(6).U64(131072).U8(3).U8(0).U16(0).U8(type)
            .U64(13631488).U64(131072).U64(4096).U64(65536).ToArray();
        var w = Dec.Run(ItemType.ExtentData, data, 257, 0);
        Assert.Empty(w.Problems);
        var r = w.Root;
        Assert.Equal(name, r.S("type"));
        Assert.Equal("zstd", r.S("compression"));
        Assert.Equal(131072UL, r.U("ram_bytes"));
        Assert.Equal(13631488UL, r.U("disk_bytenr"));
        Assert.Equal(131072UL, r.U("disk_num_bytes"));
        Assert.Equal(4096UL, r.U("offset"));
        Assert.Equal(65536UL, r.U("num_bytes"));
        Assert.False(r.Has("inline_size"));
    }

    [Fact]
    public void FileExtent_regular_truncated_is_a_problem()
    {
        var data = new Buf().U64(6).U64(4096).U8(0).U8(0).U16(0).U8(1).U64(1).ToArray();
        var w = Dec.Run(ItemType.ExtentData, data);
        Assert.Equal(["EXTENT_DATA: item size 29, expected 53 for a regular extent"], w.Problems);
        Assert.True(w.Root.Has("raw"));
    }

    [Fact]
    public void FileExtent_unknown_type_is_a_problem()
    {
        var data = new Buf().U64(6).U64(4096).U8(0).U8(0).U16(0).U8(9).Zeros(32).ToArray();
        var w = Dec.Run(ItemType.ExtentData, data);
        Assert.Equal("unknown(9)", w.Root.S("type"));
        Assert.Equal(["EXTENT_DATA: unknown file extent type 9"], w.Problems);
    }

    [Fact]
    public void ExtentCsum_crc32c_with_leftover()
    {
        var data = new Buf().U32(0x11223344).U32(0xaabbccdd).U32(0).U16(0xffff).ToArray();
        var w = Dec.Run(ItemType.ExtentCsum, data, ObjectIds.ExtentCsum, 13631488);
        var r = w.Root;
        Assert.Equal(13631488UL, r.U("start"));
        Assert.Equal(3UL, r.U("count"));
        Assert.Equal(3UL * 4096, r.U("length"));
        Assert.Equal(13631488UL + 3 * 4096, r.U("end"));
        Assert.Equal(["0x44332211", "0xddccbbaa", "0x00000000"], r.Arr("csums").Entries.Select(e => (string)e.Value));
        Assert.Equal(["EXTENT_CSUM: item size 14 is not a multiple of the checksum size 4 (2 bytes left over)"], w.Problems);
    }

    [Fact]
    public void ExtentCsum_uses_the_context_checksum_size()
    {
        var ctx = new ItemContext(ChecksumType.Sha256, 4096, 16384);
        var w = Dec.Run(new BtrfsKey(ObjectIds.ExtentCsum, (byte)ItemType.ExtentCsum, 0), new byte[64], ctx);
        Assert.Empty(w.Problems);
        Assert.Equal(2UL, w.Root.U("count"));
    }

    // ---- root tree ----

    private static Buf RootItemBytes(bool full)
    {
        var b = Inode(generation: 3).U64(10).U64(256).U64(30408704).U64(0).U64(16384).U64(9).U64(1)
            .U32(1).Key(257, 1, 0).U8(0).U8(2);
        Assert.Equal(239, b.Length);
        if (!full) return b;
        return b.U64(10).Uuid(U1).Uuid(U2).Uuid(Guid.Empty).U64(10).U64(5).U64(0).U64(0)
            .Time(1700000000, 1).Time(1700000001, 2).Time(0, 0).Time(0, 0).Zeros(64);
    }

    [Fact]
    public void RootItem_full()
    {
        var data = RootItemBytes(true).ToArray();
        Assert.Equal(439, data.Length);
        var w = Dec.Run(ItemType.RootItem, data, ObjectIds.FsTree, 0);
        Assert.Empty(w.Problems);
        var r = w.Root;
        Assert.Equal(10UL, r.U("generation"));
        Assert.Equal(256UL, r.U("root_dirid"));
        Assert.Equal(30408704UL, r.U("bytenr"));
        Assert.Equal(0UL, r.U("byte_limit"));
        Assert.Equal(16384UL, r.U("bytes_used"));
        Assert.Equal(9UL, r.U("last_snapshot"));
        Assert.Equal(new RecFlags(1, "RDONLY"), r.F("flags"));
        Assert.Equal(1UL, r.U("refs"));
        Assert.Equal("(257 INODE_ITEM 0)", r.S("drop_progress"));
        Assert.Equal(0UL, r.U("drop_level"));
        Assert.Equal(2UL, r.U("level"));
        Assert.Equal(10UL, r.U("generation_v2"));
        Assert.Equal(U1.ToString(), r.S("uuid"));
        Assert.Equal(U2.ToString(), r.S("parent_uuid"));
        Assert.Equal(Guid.Empty.ToString(), r.S("received_uuid"));
        Assert.Equal(10UL, r.U("ctransid"));
        Assert.Equal(5UL, r.U("otransid"));
        Assert.Equal("1700000000.000000001", r.S("ctime"));
        Assert.Equal("1700000001.000000002", r.S("otime"));
        var inode = r.Obj("inode");
        Assert.Equal(3UL, inode.U("generation"));
        Assert.Equal(4096UL, inode.U("size"));
        Assert.Equal(1UL, inode.U("nlink"));
        Assert.Equal(0x81a4UL, inode.U("mode"));
    }

    [Fact]
    public void RootItem_legacy_has_no_v2_fields()
    {
        var w = Dec.Run(ItemType.RootItem, RootItemBytes(false).ToArray(), ObjectIds.FsTree, 0);
        Assert.Empty(w.Problems);
        Assert.Equal(2UL, w.Root.U("level"));
        Assert.False(w.Root.Has("generation_v2"));
        Assert.False(w.Root.Has("uuid"));
    }

    [Fact]
    public void RootItem_odd_size_is_a_problem()
    {
        var data = RootItemBytes(true).ToArray()[..300];
        var w = Dec.Run(ItemType.RootItem, data, ObjectIds.FsTree, 0);
        Assert.Equal(["ROOT_ITEM: item size 300, expected 439 (or legacy 239)"], w.Problems);
        Assert.Equal(30408704UL, w.Root.U("bytenr"));
        w = Dec.Run(ItemType.RootItem, data[..200], ObjectIds.FsTree, 0);
        Assert.Equal(["ROOT_ITEM: item size 200, expected 439 (or legacy 239)"], w.Problems);
        Assert.Equal(3UL, w.Root.Obj("inode").U("generation"));
        Assert.True(w.Root.Has("raw"));
    }

    [Theory]
    [InlineData(ItemType.RootRef)]
    [InlineData(ItemType.RootBackref)]
    public void RootRef_and_backref(ItemType type)
    {
        var w = Dec.Run(type, new Buf().U64(256).U64(3).U16(4).Str("snap").ToArray(), 5, 257);
        Assert.Empty(w.Problems);
        Assert.Equal(256UL, w.Root.U("dirid"));
        Assert.Equal(3UL, w.Root.U("sequence"));
        Assert.Equal(4UL, w.Root.U("name_len"));
        Assert.Equal("snap", w.Root.S("name"));
    }

    [Fact]
    public void RootRef_name_len_beyond_item_is_capped()
    {
        var w = Dec.Run(ItemType.RootRef, new Buf().U64(256).U64(3).U16(10).Str("snap").ToArray(), 5, 257);
        Assert.Equal("snap", w.Root.S("name"));
        Assert.Equal(["ROOT_REF: item size 22, expected 28 for name_len 10"], w.Problems);
    }

    [Fact]
    public void FreeSpaceHeader_in_root_tree()
    {
        var data = new Buf().Key(257, 1, 0).U64(8).U64(3).U64(1).ToArray();
        var w = Dec.Run(new BtrfsKey(ObjectIds.FreeSpace, 0, 1048576), data);
        Assert.Empty(w.Problems);
        Assert.Equal("(257 INODE_ITEM 0)", w.Root.S("location"));
        Assert.Equal(8UL, w.Root.U("generation"));
        Assert.Equal(3UL, w.Root.U("num_entries"));
        Assert.Equal(1UL, w.Root.U("num_bitmaps"));
    }

    [Fact]
    public void Balance_item()
    {
        var args = new Buf().U64((1UL << 48) | 0x10).U64(90).U64(1).U64(0).U64(0).U64(0).U64(0)
            .U64(1UL << 4).U64(0x1 | 0x2 | 0x100).U32(1).U32(5).U32(0).U32(0).Zeros(48).ToArray();
        Assert.Equal(136, args.Length);
        var range = new Buf().U64(0).U32(10).U32(20).Zeros(6 * 8).U64(0x400 | 0x40).U32(2).U32(3).U32(1).U32(4).Zeros(48).ToArray();
        var data = new Buf().U64(0x1 | 0x4 | 0x10).Bytes(args).Bytes(range).Bytes(args).Zeros(32).ToArray();
        Assert.Equal(448, data.Length);
        var w = Dec.Run(ItemType.TemporaryItem, data, ObjectIds.Balance, 0);
        Assert.Empty(w.Problems);
        Assert.Equal(new RecFlags(0x15, "DATA|METADATA|RESUME"), w.Root.F("flags"));
        var d = w.Root.Obj("data");
        Assert.Equal(new RecFlags((1UL << 48) | 0x10, "RAID1|SINGLE"), d.F("profiles"));
        Assert.Equal(90UL, d.U("usage"));
        Assert.Equal(1UL, d.U("devid"));
        Assert.Equal("RAID1", d.F("target").Names);
        Assert.Equal("PROFILES|USAGE|CONVERT", d.F("flags").Names);
        Assert.Equal(0x5_0000_0001UL, d.U("limit"));
        var m = w.Root.Obj("meta");
        Assert.Equal(10UL, m.U("usage_min"));
        Assert.Equal(20UL, m.U("usage_max"));
        Assert.Equal(2UL, m.U("limit_min"));
        Assert.Equal(3UL, m.U("limit_max"));
        Assert.Equal(1UL, m.U("stripes_min"));
        Assert.Equal(4UL, m.U("stripes_max"));
        Assert.True(w.Root.Has("sys"));
    }

    [Fact]
    public void Temporary_item_of_unknown_objectid_is_a_problem()
    {
        var w = Dec.Run(ItemType.TemporaryItem, [1, 2, 3], 77, 0);
        Assert.Equal(["TEMPORARY_ITEM: unknown temporary item objectid 77"], w.Problems);
        Assert.Equal("010203", w.Root.S("raw"));
    }

    // ---- extent tree ----

    [Fact]
    public void ExtentItem_data_with_every_data_ref()
    {
        var data = new Buf().U64(3).U64(7).U64(1)
            .U8(178).U64(5).U64(257).U64(0).U32(2)
            .U8(184).U64(30425088).U32(1)
            .ToArray();
        var w = Dec.Run(ItemType.ExtentItem, data, 13631488, 131072);
        Assert.Empty(w.Problems);
        var r = w.Root;
        Assert.Equal(["refs", "gen", "flags", "inline_refs"], r.Names);
        Assert.Equal(3UL, r.U("refs"));
        Assert.Equal(7UL, r.U("gen"));
        Assert.Equal(new RecFlags(1, "DATA"), r.F("flags"));
        var refs = r.Arr("inline_refs").Objects;
        Assert.Equal(2, refs.Count);
        Assert.Equal(["type", "root", "objectid", "offset", "count"], refs[0].Names);
        Assert.Equal("EXTENT_DATA_REF", refs[0].S("type"));
        Assert.Equal(5UL, refs[0].U("root"));
        Assert.Equal(257UL, refs[0].U("objectid"));
        Assert.Equal(0UL, refs[0].U("offset"));
        Assert.Equal(2UL, refs[0].U("count"));
        Assert.Equal(["type", "parent", "count"], refs[1].Names);
        Assert.Equal("SHARED_DATA_REF", refs[1].S("type"));
        Assert.Equal(30425088UL, refs[1].U("parent"));
        Assert.Equal(1UL, refs[1].U("count"));
    }

    [Fact]
    public void ExtentItem_tree_block_with_tree_block_info_and_block_refs()
    {
        var data = new Buf().U64(2).U64(9).U64(2 | 0x100).Key(256, 1, 0).U8(1)
            .U8(176).U64(5)
            .U8(182).U64(30408704)
            .ToArray();
        var w = Dec.Run(ItemType.ExtentItem, data, 30425088, 16384);
        Assert.Empty(w.Problems);
        var r = w.Root;
        Assert.Equal(["refs", "gen", "flags", "tree_block_key", "level", "inline_refs"], r.Names);
        Assert.Equal(new RecFlags(0x102, "TREE_BLOCK|FULL_BACKREF"), r.F("flags"));
        Assert.Equal("(256 INODE_ITEM 0)", r.S("tree_block_key"));
        Assert.Equal(1UL, r.U("level"));
        var refs = r.Arr("inline_refs").Objects;
        Assert.Equal(["type", "root"], refs[0].Names);
        Assert.Equal("TREE_BLOCK_REF", refs[0].S("type"));
        Assert.Equal(5UL, refs[0].U("root"));
        Assert.Equal(["type", "parent"], refs[1].Names);
        Assert.Equal("SHARED_BLOCK_REF", refs[1].S("type"));
        Assert.Equal(30408704UL, refs[1].U("parent"));
    }

    [Fact]
    public void MetadataItem_skinny_level_comes_from_the_key()
    {
        var data = new Buf().U64(1).U64(5).U64(2).U8(176).U64(2).ToArray();
        var w = Dec.Run(ItemType.MetadataItem, data, 30425088, 1);
        Assert.Empty(w.Problems);
        Assert.Equal(["refs", "gen", "flags", "skinny_level", "inline_refs"], w.Root.Names);
        Assert.Equal(1UL, w.Root.U("skinny_level"));
        Assert.Equal(new RecFlags(2, "TREE_BLOCK"), w.Root.F("flags"));
        var rf = Assert.Single(w.Root.Arr("inline_refs").Objects);
        Assert.Equal(2UL, rf.U("root"));
    }

    [Fact]
    public void ExtentItem_owner_ref_inline()
    {
        var data = new Buf().U64(1).U64(5).U64(1).U8(172).U64(256).U8(178).U64(256).U64(257).U64(0).U32(1).ToArray();
        var w = Dec.Run(ItemType.ExtentItem, data, 13631488, 4096);
        Assert.Empty(w.Problems);
        var refs = w.Root.Arr("inline_refs").Objects;
        Assert.Equal("EXTENT_OWNER_REF", refs[0].S("type"));
        Assert.Equal(256UL, refs[0].U("root"));
        Assert.Equal("EXTENT_DATA_REF", refs[1].S("type"));
    }

    [Fact]
    public void ExtentItem_unknown_inline_ref_type_is_a_problem_with_offset_and_type()
    {
        var data = new Buf().U64(2).U64(5).U64(2).U8(176).U64(5).U8(99).U64(1).ToArray();
        var w = Dec.Run(ItemType.MetadataItem, data, 30425088, 0);
        Assert.Single(w.Root.Arr("inline_refs").Objects);
        var p = Assert.Single(w.Problems);
        Assert.Equal("METADATA_ITEM: unknown inline ref type 99 (inline ref at item offset 33, type byte 99)", p);
    }

    [Fact]
    public void ExtentItem_truncated_inline_ref_is_a_problem()
    {
        var data = new Buf().U64(1).U64(5).U64(1).U8(178).U64(5).U64(257).ToArray();
        var w = Dec.Run(ItemType.ExtentItem, data, 13631488, 4096);
        Assert.Empty(w.Root.Arr("inline_refs").Objects);
        var p = Assert.Single(w.Problems);
        Assert.Contains("inline ref of type EXTENT_DATA_REF truncated", p);
        Assert.Contains("item offset 24, type byte 178", p);
    }

    [Fact]
    public void ExtentItem_truncated_tree_block_info_is_a_problem()
    {
        var data = new Buf().U64(1).U64(5).U64(2).Key(256, 1, 0).ToArray();
        var w = Dec.Run(ItemType.ExtentItem, data, 30425088, 16384);
        Assert.Equal(["EXTENT_ITEM: tree_block_info truncated: item size 41, expected at least 42"], w.Problems);
        Assert.Equal(1UL, w.Root.U("refs"));
        Assert.True(w.Root.Has("raw"));
    }

    [Fact]
    public void ExtentItem_shorter_than_fixed_part_is_a_problem_and_v0_is_recognised()
    {
        var w = Dec.Run(ItemType.ExtentItem, new byte[10], 13631488, 4096);
        Assert.Equal(["EXTENT_ITEM: item size 10, expected at least 24"], w.Problems);
        w = Dec.Run(ItemType.ExtentItem, new Buf().U32(3).ToArray(), 13631488, 4096);
        Assert.Contains("v0 extent item", Assert.Single(w.Problems));
        Assert.Equal(3UL, w.Root.U("refs"));
    }

    [Theory]
    [InlineData(ItemType.TreeBlockRef)]
    [InlineData(ItemType.SharedBlockRef)]
    public void Keyed_block_refs_have_no_data(ItemType type)
    {
        var w = Dec.Run(type, [], 30425088, 5);
        Assert.Empty(w.Problems);
        Assert.Empty(w.Root.Entries);
        w = Dec.Run(type, new byte[4], 30425088, 5);
        Assert.Equal([$"{ItemTypes.Name((byte)type)}: item size 4, expected 0"], w.Problems);
    }

    [Fact]
    public void Keyed_extent_data_ref()
    {
        var w = Dec.Run(ItemType.ExtentDataRef, new Buf().U64(5).U64(257).U64(8192).U32(3).ToArray(), 13631488,
            ExtentDataRefs.Hash(5, 257, 8192));
        Assert.Empty(w.Problems);
        Assert.Equal(["root", "objectid", "offset", "count"], w.Root.Names);
        Assert.Equal(5UL, w.Root.U("root"));
        Assert.Equal(257UL, w.Root.U("objectid"));
        Assert.Equal(8192UL, w.Root.U("offset"));
        Assert.Equal(3UL, w.Root.U("count"));
    }

    [Fact]
    public void Keyed_shared_data_ref_and_wrong_size()
    {
        var w = Dec.Run(ItemType.SharedDataRef, new Buf().U32(4).ToArray(), 13631488, 30425088);
        Assert.Empty(w.Problems);
        Assert.Equal(4UL, w.Root.U("count"));
        w = Dec.Run(ItemType.SharedDataRef, new Buf().U32(4).U32(0).ToArray(), 13631488, 30425088);
        Assert.Equal(["SHARED_DATA_REF: item size 8, expected 4"], w.Problems);
        Assert.Equal(4UL, w.Root.U("count"));
        w = Dec.Run(ItemType.SharedDataRef, [1, 2], 13631488, 30425088);
        Assert.Equal(["SHARED_DATA_REF: item size 2, expected 4"], w.Problems);
        Assert.Equal("0102", w.Root.S("raw"));
    }

    [Fact]
    public void Extent_ref_v0_is_raw_with_a_problem()
    {
        var w = Dec.Run(ItemType.ExtentRefV0, new byte[28], 13631488, 1);
        Assert.Contains("v0 extent ref", Assert.Single(w.Problems));
        Assert.Equal(new string('0', 56), w.Root.S("raw"));
    }

    [Fact]
    public void BlockGroup_item_and_wrong_sizes()
    {
        var ok = new Buf().U64(16384).U64(256).U64(4 | 32).ToArray();
        var w = Dec.Run(ItemType.BlockGroupItem, ok, 30408704, 268435456);
        Assert.Empty(w.Problems);
        Assert.Equal(16384UL, w.Root.U("used"));
        Assert.Equal(256UL, w.Root.U("chunk_objectid"));
        Assert.Equal(new RecFlags(36, "METADATA|DUP"), w.Root.F("flags"));

        w = Dec.Run(ItemType.BlockGroupItem, ok[..20]);
        Assert.Equal(["BLOCK_GROUP_ITEM: item size 20, expected 24"], w.Problems);
        Assert.Equal(Convert.ToHexStringLower(ok[..20]), w.Root.S("raw"));

        w = Dec.Run(ItemType.BlockGroupItem, [.. ok, 0, 0, 0, 0, 0, 0, 0, 0]);
        Assert.Equal(["BLOCK_GROUP_ITEM: item size 32, expected 24"], w.Problems);
        Assert.Equal(16384UL, w.Root.U("used"));
    }

    // ---- free space tree ----

    [Fact]
    public void FreeSpaceInfo_flags()
    {
        var w = Dec.Run(ItemType.FreeSpaceInfo, new Buf().U32(12).U32(1).ToArray(), 1048576, 4194304);
        Assert.Empty(w.Problems);
        Assert.Equal(12UL, w.Root.U("extent_count"));
        Assert.Equal(new RecFlags(1, "USING_BITMAPS"), w.Root.F("flags"));
    }

    [Fact]
    public void FreeSpaceExtent_is_empty()
    {
        Assert.Empty(Dec.Run(ItemType.FreeSpaceExtent, [], 1048576, 4096).Problems);
    }

    [Fact]
    public void FreeSpaceBitmap_counts_bits_and_checks_size()
    {
        // 32 sectors of 4 KiB = 4 bytes of bitmap.
        var w = Dec.Run(ItemType.FreeSpaceBitmap, [0xff, 0x01, 0, 0x80], 1048576, 32 * 4096);
        Assert.Empty(w.Problems);
        Assert.Equal(32UL, w.Root.U("bits"));
        Assert.Equal(10UL, w.Root.U("set_bits"));
        Assert.Equal("ff010080", w.Root.S("bitmap"));
        w = Dec.Run(ItemType.FreeSpaceBitmap, [0xff, 0x01], 1048576, 32 * 4096);
        Assert.Equal(["FREE_SPACE_BITMAP: item size 2, expected 4 for length 131072 at sector size 4096"], w.Problems);
        Assert.True(new FreeSpaceBitmap([0x02]).IsSet(1));
        Assert.False(new FreeSpaceBitmap([0x02]).IsSet(0));
    }

    // ---- device and chunk trees ----

    [Fact]
    public void DevExtent_item_and_wrong_size()
    {
        var data = new Buf().U64(3).U64(256).U64(22020096).U64(8388608).Uuid(U1).ToArray();
        var w = Dec.Run(ItemType.DevExtent, data, 1, 22020096);
        Assert.Empty(w.Problems);
        Assert.Equal(3UL, w.Root.U("chunk_tree"));
        Assert.Equal(256UL, w.Root.U("chunk_objectid"));
        Assert.Equal(22020096UL, w.Root.U("chunk_offset"));
        Assert.Equal(8388608UL, w.Root.U("length"));
        Assert.Equal(U1.ToString(), w.Root.S("chunk_tree_uuid"));
        w = Dec.Run(ItemType.DevExtent, data[..40], 1, 22020096);
        Assert.Equal(["DEV_EXTENT: item size 40, expected 48"], w.Problems);
    }

    [Fact]
    public void DevItem_every_field()
    {
        var data = new Buf().U64(1).U64(1073741824).U64(123731968).U32(4096).U32(4096).U32(4096).U64(0)
            .U64(7).U64(0).U32(0).U8(0).U8(0).Uuid(U1).Uuid(U2).ToArray();
        Assert.Equal(98, data.Length);
        var w = Dec.Run(ItemType.DevItem, data, ObjectIds.DevItems, 1);
        Assert.Empty(w.Problems);
        var r = w.Root;
        Assert.Equal(["devid", "total_bytes", "bytes_used", "io_align", "io_width", "sector_size", "type", "generation",
            "start_offset", "dev_group", "seek_speed", "bandwidth", "uuid", "fsid"], r.Names);
        Assert.Equal(1073741824UL, r.U("total_bytes"));
        Assert.Equal(123731968UL, r.U("bytes_used"));
        Assert.Equal(4096UL, r.U("sector_size"));
        Assert.Equal(7UL, r.U("generation"));
        Assert.Equal(U1.ToString(), r.S("uuid"));
        Assert.Equal(U2.ToString(), r.S("fsid"));
    }

    private static Buf Chunk(ushort numStripes, int stripesPresent)
    {
        var b = new Buf().U64(8388608).U64(2).U64(65536).U64(2 | 32).U32(65536).U32(65536).U32(4096)
            .U16(numStripes).U16(0);
        for (int i = 0; i < stripesPresent; i++) b.U64(1).U64(22020096 + (ulong)i * 8388608).Uuid(U1);
        return b;
    }

    [Fact]
    public void ChunkItem_with_two_stripes()
    {
        var w = Dec.Run(ItemType.ChunkItem, Chunk(2, 2).ToArray(), ObjectIds.FirstChunkTree, 22020096);
        Assert.Empty(w.Problems);
        var r = w.Root;
        Assert.Equal(8388608UL, r.U("length"));
        Assert.Equal(2UL, r.U("owner"));
        Assert.Equal(65536UL, r.U("stripe_len"));
        Assert.Equal(new RecFlags(34, "SYSTEM|DUP"), r.F("type"));
        Assert.Equal(65536UL, r.U("io_align"));
        Assert.Equal(4096UL, r.U("sector_size"));
        Assert.Equal(2UL, r.U("num_stripes"));
        Assert.Equal(0UL, r.U("sub_stripes"));
        var s = r.Arr("stripes").Objects;
        Assert.Equal(2, s.Count);
        Assert.Equal(["devid", "offset", "dev_uuid"], s[1].Names);
        Assert.Equal(22020096UL + 8388608, s[1].U("offset"));
        Assert.Equal(U1.ToString(), s[1].S("dev_uuid"));
    }

    [Fact]
    public void ChunkItem_claiming_more_stripes_than_present()
    {
        var w = Dec.Run(ItemType.ChunkItem, Chunk(3, 2).ToArray(), ObjectIds.FirstChunkTree, 22020096);
        Assert.Equal(["CHUNK_ITEM: item size 112, expected 144 for num_stripes 3"], w.Problems);
        Assert.Equal(2, w.Root.Arr("stripes").Objects.Count);
        w = Dec.Run(ItemType.ChunkItem, Chunk(0, 0).ToArray(), ObjectIds.FirstChunkTree, 22020096);
        Assert.Equal(["CHUNK_ITEM: num_stripes 0, expected at least 1"], w.Problems);
    }

    [Fact]
    public void RaidStripe_strides_and_legacy_header()
    {
        var w = Dec.Run(ItemType.RaidStripe, new Buf().U64(1).U64(1048576).U64(2).U64(2097152).ToArray(), 298844160, 65536);
        Assert.Empty(w.Problems);
        var s = w.Root.Arr("strides").Objects;
        Assert.Equal(2, s.Count);
        Assert.Equal(2UL, s[1].U("devid"));
        Assert.Equal(2097152UL, s[1].U("physical"));

        w = Dec.Run(ItemType.RaidStripe, new Buf().U8(2).Zeros(7).U64(1).U64(1048576).ToArray(), 298844160, 65536);
        Assert.Contains("encoding header", Assert.Single(w.Problems));
        Assert.Equal("RAID1", w.Root.S("encoding"));
        Assert.Equal(1048576UL, Assert.Single(w.Root.Arr("strides").Objects).U("physical"));
    }

    [Fact]
    public void DevStats_item()
    {
        var w = Dec.Run(ItemType.PersistentItem, new Buf().U64(1).U64(2).U64(3).U64(4).U64(5).ToArray(), ObjectIds.DevStats, 1);
        Assert.Empty(w.Problems);
        Assert.Equal(["write_errs", "read_errs", "flush_errs", "corruption_errs", "generation_errs"], w.Root.Names);
        Assert.Equal(4UL, w.Root.U("corruption_errs"));
        w = Dec.Run(ItemType.PersistentItem, new Buf().U64(1).U64(2).U64(3).U64(4).U64(5).U64(6).U8(0).ToArray(), ObjectIds.DevStats, 1);
        Assert.Equal(["PERSISTENT_ITEM: dev stats item size 49 is not a multiple of 8"], w.Problems);
        Assert.Equal(6UL, (ulong)Assert.Single(w.Root.Arr("unknown_values").Entries).Value);
    }

    [Fact]
    public void DevReplace_item()
    {
        var data = new Buf().U64(1).U64(10).U64(20).U64(0).U64(2).U64(1700000000).U64(1700000100).U64(0).U64(3).ToArray();
        var w = Dec.Run(ItemType.DevReplace, data, 0, 0);
        Assert.Empty(w.Problems);
        Assert.Equal(1UL, w.Root.U("src_devid"));
        Assert.Equal(20UL, w.Root.U("cursor_right"));
        Assert.Equal("ALWAYS", w.Root.S("cont_reading_from_srcdev_mode"));
        Assert.Equal("FINISHED", w.Root.S("replace_state"));
        Assert.Equal(1700000100UL, w.Root.U("time_stopped"));
        Assert.Equal(3UL, w.Root.U("num_uncorrectable_read_errors"));
    }

    // ---- quota tree ----

    [Fact]
    public void QgroupStatus_with_and_without_enable_gen()
    {
        var basic = new Buf().U64(1).U64(12).U64(1 | 4).U64(0).ToArray();
        var w = Dec.Run(ItemType.QgroupStatus, basic, 0, 0);
        Assert.Empty(w.Problems);
        Assert.Equal(1UL, w.Root.U("version"));
        Assert.Equal(12UL, w.Root.U("generation"));
        Assert.Equal(new RecFlags(5, "ON|INCONSISTENT"), w.Root.F("flags"));
        Assert.Equal(0UL, w.Root.U("rescan"));
        Assert.False(w.Root.Has("enable_gen"));
        w = Dec.Run(ItemType.QgroupStatus, [.. basic, .. new Buf().U64(9).ToArray()], 0, 0);
        Assert.Empty(w.Problems);
        Assert.Equal(9UL, w.Root.U("enable_gen"));
        w = Dec.Run(ItemType.QgroupStatus, basic[..24], 0, 0);
        Assert.Equal(["QGROUP_STATUS: item size 24, expected 32 (or 40 with enable_gen)"], w.Problems);
    }

    [Fact]
    public void QgroupInfo_and_limit()
    {
        var w = Dec.Run(ItemType.QgroupInfo, new Buf().U64(5).U64(16384).U64(16384).U64(8192).U64(8192).ToArray(), 0, 5);
        Assert.Empty(w.Problems);
        Assert.Equal(["generation", "rfer", "rfer_cmpr", "excl", "excl_cmpr"], w.Root.Names);
        Assert.Equal(8192UL, w.Root.U("excl"));
        w = Dec.Run(ItemType.QgroupLimit, new Buf().U64(1 | 2).U64(1UL << 30).U64(ulong.MaxValue).U64(0).U64(0).ToArray(), 0, 5);
        Assert.Empty(w.Problems);
        Assert.Equal(new RecFlags(3, "MAX_RFER|MAX_EXCL"), w.Root.F("flags"));
        Assert.Equal(1UL << 30, w.Root.U("max_rfer"));
        Assert.Equal(ulong.MaxValue, w.Root.U("max_excl"));
        Assert.Empty(Dec.Run(ItemType.QgroupRelation, [], 5, 1UL << 48).Problems);
    }

    // ---- uuid tree, strings, verity ----

    [Fact]
    public void UuidItem_ids_and_uuid_from_key()
    {
        var w = Dec.Run(ItemType.UuidKeySubvol, new Buf().U64(256).U64(257).ToArray(), 0x7766554433221100, 0xffeeddccbbaa9988);
        Assert.Empty(w.Problems);
        Assert.Equal([256UL, 257UL], w.Root.Arr("subvol_ids").Entries.Select(e => (ulong)e.Value));
        Assert.Equal("00112233-4455-6677-8899-aabbccddeeff", w.Root.S("uuid"));
        w = Dec.Run(ItemType.UuidKeyReceivedSubvol, new Buf().U64(256).U16(1).ToArray(), 1, 2);
        Assert.Equal(["UUID_KEY_RECEIVED_SUBVOL: item size 10 is not a multiple of 8"], w.Problems);
        Assert.Single(w.Root.Arr("subvol_ids").Entries);
    }

    [Fact]
    public void StringItem_is_escaped()
    {
        var w = Dec.Run(ItemType.StringItem, new Buf().Str("hi\nthere").ToArray(), 1, 0);
        Assert.Equal("hi\\nthere", w.Root.S("data"));
    }

    [Fact]
    public void Verity_items()
    {
        var w = Dec.Run(ItemType.VerityDescItem, new Buf().U64(256).Zeros(16).U8(0).ToArray(), 257, 0);
        Assert.Empty(w.Problems);
        Assert.Equal(256UL, w.Root.U("size"));
        Assert.Equal(0UL, w.Root.U("encryption"));
        w = Dec.Run(ItemType.VerityDescItem, [1, 2, 3], 257, 1);
        Assert.Empty(w.Problems);
        Assert.Equal("010203", w.Root.S("data"));
        w = Dec.Run(ItemType.VerityMerkleItem, [0xab], 257, 0);
        Assert.Equal(1UL, w.Root.U("size"));
        Assert.Equal("ab", w.Root.S("data"));
    }

    // ---- unknown types and robustness ----

    [Fact]
    public void Unknown_type_is_raw_with_a_problem()
    {
        var w = Dec.Run(new BtrfsKey(256, 7, 0), [0xde, 0xad]);
        Assert.Equal(["unknown item type 7"], w.Problems);
        Assert.Equal(["raw"], w.Root.Names);
        Assert.Equal("dead", w.Root.S("raw"));
    }

    [Fact]
    public void Raw_hex_is_capped()
    {
        var data = new byte[ItemDecoder.RawHexCap + 10];
        data[0] = 0x5a;
        var w = Dec.Run(new BtrfsKey(256, 3, 0), data);
        string raw = w.Root.S("raw");
        Assert.Equal(2 * ItemDecoder.RawHexCap, raw.Length);
        Assert.StartsWith("5a00", raw);
        Assert.Equal($"showing {ItemDecoder.RawHexCap} of {data.Length} bytes", w.Root.S("raw_truncated"));
    }

    /// <summary>Every key type, every prefix of a few plausible buffers, and random bytes: no exception, balanced
    /// output, and a problem or fields for each.</summary>
    [Fact]
    public void Never_throws_for_any_type_and_length()
    {
        var rng = new Random(1234);
        var samples = new List<byte[]>
        {
            Inode().ToArray(),
            RootItemBytes(true).ToArray(),
            Chunk(2, 2).ToArray(),
            new Buf().U64(2).U64(9).U64(2).Key(256, 1, 0).U8(1).U8(176).U64(5).U8(178).U64(5).U64(257).U64(0).U32(1).ToArray(),
            DirEntry(257, 1, 1, "name").ToArray(),
        };
        for (int i = 0; i < 4; i++)
        {
            var b = new byte[rng.Next(0, 600)];
            rng.NextBytes(b);
            samples.Add(b);
        }
        // Large length fields everywhere.
        samples.Add(Enumerable.Repeat((byte)0xff, 300).ToArray());

        for (int type = 0; type < 256; type++)
        {
            foreach (var s in samples)
            {
                for (int len = 0; len <= s.Length; len += len < 64 ? 1 : 37)
                {
                    ulong[] objectIds = type is 0 or (int)ItemType.TemporaryItem or (int)ItemType.PersistentItem
                        ? [256UL, ObjectIds.Balance, ObjectIds.DevStats, ObjectIds.FreeSpace]
                        : [256UL];
                    foreach (ulong objectId in objectIds)
                    {
                        var w = new RecordingItemWriter();
                        ItemDecoder.Decode(Dec.Ctx, new BtrfsKey(objectId, (byte)type, 4096), s.AsSpan(0, len), w);
                        Assert.True(w.Balanced, $"type {type} len {len}: unbalanced");
                        Assert.False(w.Problems.Any(p => p.Contains("internal decoder error")), $"type {type} len {len}: {string.Join("; ", w.Problems)}");
                    }
                }
            }
        }
    }

    [Fact]
    public void Decoder_closes_containers_when_a_view_throws_mid_array()
    {
        // A writer that throws the format exception inside the second inline ref object simulates a view failing
        // half-way through an array: the decoder must close the object and array it opened.
        var data = new Buf().U64(2).U64(5).U64(1)
            .U8(178).U64(5).U64(257).U64(0).U32(1)
            .U8(184).U64(30425088).U32(1).ToArray();
        var w = new ThrowingWriter(throwOnField: "parent");
        ItemDecoder.Decode(Dec.Ctx, new BtrfsKey(13631488, (byte)ItemType.ExtentItem, 4096), data, w);
        Assert.True(w.Inner.Balanced);
        Assert.Equal(["EXTENT_ITEM: boom"], w.Inner.Problems);
        Assert.True(w.Inner.Root.Has("raw"));
    }

    private sealed class ThrowingWriter(string throwOnField) : IItemWriter
    {
        public RecordingItemWriter Inner { get; } = new();
        public void Field(string name, ulong value)
        {
            if (name == throwOnField) throw new BtrfsFormatException("boom");
            Inner.Field(name, value);
        }
        public void Field(string name, long value) => Inner.Field(name, value);
        public void Field(string name, string value) => Inner.Field(name, value);
        public void Flags(string name, ulong value, string names) => Inner.Flags(name, value, names);
        public void BeginObject(string? name) => Inner.BeginObject(name);
        public void EndObject() => Inner.EndObject();
        public void BeginArray(string name) => Inner.BeginArray(name);
        public void EndArray() => Inner.EndArray();
        public void Problem(string message) => Inner.Problem(message);
    }
}
