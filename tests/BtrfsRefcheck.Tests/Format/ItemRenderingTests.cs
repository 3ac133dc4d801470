using System.Text;
using System.Text.Json;
using BtrfsRefcheck.Cli.Rendering;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Format.Items;

namespace BtrfsRefcheck.Tests.Format;

/// <summary>The text and JSON renderers of decoded items.</summary>
public class ItemRenderingTests
{
    private static readonly byte[] TreeBlockExtent = new Buf().U64(2).U64(9).U64(2).Key(256, 1, 0).U8(1)
        .U8(176).U64(5).U8(182).U64(30408704).ToArray();

    private static readonly BtrfsKey TreeBlockKey = new(30425088, (byte)ItemType.ExtentItem, 16384);

    private static string Json(Action<Utf8JsonWriter> write)
    {
        using var ms = new MemoryStream();
        using (var json = new Utf8JsonWriter(ms)) write(json);
        return Encoding.UTF8.GetString(ms.ToArray());
    }

    private static string Text(BtrfsKey key, byte[] data)
    {
        var sw = new StringWriter { NewLine = "\n" };
        ItemDecoder.Decode(Dec.Ctx, key, data, new TextItemWriter(sw, "\t\t"));
        return sw.ToString();
    }

    // ---- JSON ----

    [Fact]
    public void Json_extent_item_has_numbers_flags_and_arrays()
    {
        string s = Json(j => JsonItemWriter.WriteItem(j, Dec.Ctx, TreeBlockKey, TreeBlockExtent));
        using var doc = JsonDocument.Parse(s);
        var r = doc.RootElement;
        Assert.Equal(2UL, r.GetProperty("refs").GetUInt64());
        Assert.Equal(9UL, r.GetProperty("gen").GetUInt64());
        Assert.Equal(2UL, r.GetProperty("flags").GetProperty("value").GetUInt64());
        Assert.Equal(["TREE_BLOCK"], r.GetProperty("flags").GetProperty("names").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal("(256 INODE_ITEM 0)", r.GetProperty("tree_block_key").GetString());
        Assert.Equal(1UL, r.GetProperty("level").GetUInt64());
        var refs = r.GetProperty("inline_refs").EnumerateArray().ToList();
        Assert.Equal(2, refs.Count);
        Assert.Equal("TREE_BLOCK_REF", refs[0].GetProperty("type").GetString());
        Assert.Equal(5UL, refs[0].GetProperty("root").GetUInt64());
        Assert.Equal(30408704UL, refs[1].GetProperty("parent").GetUInt64());
        Assert.False(r.TryGetProperty("problems", out _));
    }

    [Fact]
    public void Json_u64_above_2_pow_53_is_a_number()
    {
        var data = new Buf().U64(1).U64(ulong.MaxValue).U64(ulong.MaxValue - 1).U64(0).U64(0).ToArray();
        string s = Json(j => JsonItemWriter.WriteItem(j, Dec.Ctx, new BtrfsKey(0, (byte)ItemType.QgroupLimit, 5), data));
        Assert.Contains("\"max_rfer\":18446744073709551615", s);
        using var doc = JsonDocument.Parse(s);
        Assert.Equal(JsonValueKind.Number, doc.RootElement.GetProperty("max_excl").ValueKind);
        Assert.Equal(ulong.MaxValue - 1, doc.RootElement.GetProperty("max_excl").GetUInt64());
    }

    [Fact]
    public void Json_problem_inside_an_array_stays_well_formed()
    {
        var data = new Buf().U64(2).U64(5).U64(2).U8(176).U64(5).U8(99).U64(1).ToArray();
        string s = Json(j => JsonItemWriter.WriteItem(j, Dec.Ctx, new BtrfsKey(30425088, (byte)ItemType.MetadataItem, 0), data));
        using var doc = JsonDocument.Parse(s);
        var r = doc.RootElement;
        Assert.Single(r.GetProperty("inline_refs").EnumerateArray());
        var p = Assert.Single(r.GetProperty("problems").EnumerateArray());
        Assert.Contains("unknown inline ref type 99", p.GetString());
        // problems is the last property.
        Assert.Equal("problems", r.EnumerateObject().Last().Name);
    }

    [Fact]
    public void Json_unknown_type_and_truncated_item()
    {
        string s = Json(j => JsonItemWriter.WriteItem(j, Dec.Ctx, new BtrfsKey(1, 7, 0), [0xca, 0xfe]));
        using (var doc = JsonDocument.Parse(s))
        {
            Assert.Equal("cafe", doc.RootElement.GetProperty("raw").GetString());
            Assert.Equal("unknown item type 7", doc.RootElement.GetProperty("problems")[0].GetString());
        }
        s = Json(j => JsonItemWriter.WriteItem(j, Dec.Ctx, new BtrfsKey(1, (byte)ItemType.BlockGroupItem, 0), new byte[10]));
        using (var doc = JsonDocument.Parse(s))
        {
            Assert.Equal("BLOCK_GROUP_ITEM: item size 10, expected 24", doc.RootElement.GetProperty("problems")[0].GetString());
        }
    }

    [Fact]
    public void Json_by_hand_closes_what_was_left_open_and_appends_problems()
    {
        string s = Json(j =>
        {
            var w = new JsonItemWriter(j);
            w.Begin();
            w.Field("a", 1UL);
            w.BeginArray("list");
            w.Field("x", 2UL);              // bare value inside an array
            w.Flags("f", 3, "A|B");          // flags object inside an array
            w.BeginObject(null);
            w.Field("deep", -4L);
            w.Problem("mid-object \"quoted\"");
            // Neither the object nor the array is closed.
            w.End();
        });
        using var doc = JsonDocument.Parse(s);
        var r = doc.RootElement;
        Assert.Equal(1, r.GetProperty("a").GetInt32());
        var list = r.GetProperty("list").EnumerateArray().ToList();
        Assert.Equal(2, list[0].GetInt32());
        Assert.Equal(["A", "B"], list[1].GetProperty("names").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal(-4, list[2].GetProperty("deep").GetInt32());
        Assert.Equal("mid-object \"quoted\"", r.GetProperty("problems")[0].GetString());
    }

    [Fact]
    public void Json_extra_and_mismatched_ends_are_tolerated()
    {
        string s = Json(j =>
        {
            var w = new JsonItemWriter(j);
            w.Begin();
            w.BeginObject("o");
            w.BeginArray("a");
            w.EndObject();   // closes the array and the object
            w.EndArray();    // nothing open: ignored
            w.Field("after", "x");
            w.End();
        });
        using var doc = JsonDocument.Parse(s);
        Assert.Equal("x", doc.RootElement.GetProperty("after").GetString());
        Assert.Equal(0, doc.RootElement.GetProperty("o").GetProperty("a").GetArrayLength());
    }

    [Fact]
    public void Json_as_a_property_value_with_decoder_framing()
    {
        // The way a dump verb uses it: property name, then the decoder frames the body itself.
        string s = Json(j =>
        {
            j.WriteStartObject();
            j.WriteNumber("slot", 3);
            j.WritePropertyName("body");
            ItemDecoder.Decode(Dec.Ctx, TreeBlockKey, TreeBlockExtent, new JsonItemWriter(j));
            j.WritePropertyName("empty");
            ItemDecoder.Decode(Dec.Ctx, new BtrfsKey(1, (byte)ItemType.TreeBlockRef, 5), [], new JsonItemWriter(j));
            j.WriteEndObject();
        });
        using var doc = JsonDocument.Parse(s);
        Assert.Equal(2UL, doc.RootElement.GetProperty("body").GetProperty("refs").GetUInt64());
        Assert.Equal(JsonValueKind.Object, doc.RootElement.GetProperty("empty").ValueKind);
        Assert.Empty(doc.RootElement.GetProperty("empty").EnumerateObject());
    }

    [Fact]
    public void Json_inline_into_caller_object()
    {
        string s = Json(j =>
        {
            j.WriteStartObject();
            j.WriteString("key", "(1 BLOCK_GROUP_ITEM 0)");
            var w = new JsonItemWriter(j);
            w.BeginInline();
            ItemDecoder.Decode(Dec.Ctx, new BtrfsKey(1, (byte)ItemType.BlockGroupItem, 0), new byte[20], w);
            w.End();
            j.WriteString("after", "yes");
            j.WriteEndObject();
        });
        using var doc = JsonDocument.Parse(s);
        Assert.Equal("(1 BLOCK_GROUP_ITEM 0)", doc.RootElement.GetProperty("key").GetString());
        Assert.Single(doc.RootElement.GetProperty("problems").EnumerateArray());
        Assert.Equal("yes", doc.RootElement.GetProperty("after").GetString());
    }

    [Fact]
    public void Json_every_type_parses_for_random_bytes()
    {
        var rng = new Random(7);
        for (int type = 0; type < 256; type++)
        {
            var data = new byte[rng.Next(0, 300)];
            rng.NextBytes(data);
            string s = Json(j =>
            {
                j.WriteStartArray();
                JsonItemWriter.WriteItem(j, Dec.Ctx, new BtrfsKey(256, (byte)type, 4096), data);
                JsonItemWriter.WriteItem(j, Dec.Ctx, new BtrfsKey(256, (byte)type, 4096), data.AsSpan(0, data.Length / 2));
                j.WriteEndArray();
            });
            using var doc = JsonDocument.Parse(s);
            Assert.Equal(2, doc.RootElement.GetArrayLength());
        }
    }

    // ---- text ----

    [Fact]
    public void Text_extent_item()
    {
        string s = Text(TreeBlockKey, TreeBlockExtent);
        Assert.Equal(
            "\t\trefs 2 gen 9 flags TREE_BLOCK tree_block_key (256 INODE_ITEM 0) level 1\n" +
            "\t\tinline_refs\n" +
            "\t\t\ttype TREE_BLOCK_REF root 5\n" +
            "\t\t\ttype SHARED_BLOCK_REF parent 30408704\n", s);
    }

    [Fact]
    public void Text_problem_and_raw()
    {
        string s = Text(new BtrfsKey(1, (byte)ItemType.BlockGroupItem, 0), [1, 2, 3]);
        Assert.Equal("\t\t!! BLOCK_GROUP_ITEM: item size 3, expected 24\n\t\traw 010203\n", s);
    }

    [Fact]
    public void Text_nested_object_scalar_array_and_fields_after_containers()
    {
        var sw = new StringWriter { NewLine = "\n" };
        var w = new TextItemWriter(sw, "  ", "  ");
        w.Field("a", 1UL);
        w.Flags("f", 0, "");
        w.BeginObject("inode");
        w.Field("size", 3UL);
        w.EndObject();
        w.BeginArray("ids");
        w.Field("id", 256UL);
        w.Field("id", 257UL);
        w.EndArray();
        w.Field("b", "x");
        w.Problem("oops");
        w.Flush();
        w.Field("next", 1UL);
        w.Flush();
        Assert.Equal(
            "  a 1 f none\n" +
            "    inode size 3\n" +
            "  ids\n" +
            "    id 256\n" +
            "    id 257\n" +
            "  b x\n" +
            "  !! oops\n" +
            "  next 1\n", sw.ToString());
    }

    [Fact]
    public void Text_empty_item_writes_nothing()
    {
        Assert.Equal("", Text(new BtrfsKey(1, (byte)ItemType.TreeBlockRef, 5), []));
    }
}
