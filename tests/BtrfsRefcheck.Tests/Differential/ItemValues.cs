using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using BtrfsRefcheck.Tests.Oracle;

namespace BtrfsRefcheck.Tests.Differential;

/// <summary>
/// Field by field comparison of the items btrfs-progs v6.19 prints differently from v6.2 or that only v6.19-era
/// filesystems have (block group tree, quotas and simple quotas, raid stripe tree, free space tree, dev extents) with our
/// decoder's JSON body (the names of <c>dump-tree --json</c>). Our text follows our own field names, not progs' wording,
/// so values are compared, not lines. Both versions' formats are accepted (v6.2: no <c>enable_gen</c>).
/// </summary>
internal static class ItemValues
{
    private static readonly Regex BlockGroup = Re(@"^block group used (\d+) chunk_objectid (\d+) flags (\S+)$");
    private static readonly Regex FreeSpaceInfo = Re(@"^free space info extent count (\d+) flags (\d+)$");
    private static readonly Regex DevExtent = Re(@"^dev extent chunk_tree (\d+) chunk_objectid (\d+) chunk_offset (\d+) length (\d+) chunk_tree_uuid (\S+)$");
    private static readonly Regex QgroupStatus = Re(@"^version (\d+) generation (\d+) flags (\S+) scan (\d+)(?: enable_gen (\d+))?$");
    private static readonly Regex QgroupInfo = Re(@"^generation (\d+) referenced (\d+) referenced_compressed (\d+) exclusive (\d+) exclusive_compressed (\d+)$");
    private static readonly Regex QgroupLimit = Re(@"^flags ([0-9a-f]+) max_referenced (-?\d+) max_exclusive (-?\d+) rsv_referenced (-?\d+) rsv_exclusive (-?\d+)$");
    private static readonly Regex RaidStride = Re(@"^stripe (\d+) devid (\d+) physical (\d+)$");

    private static Regex Re(string pattern) => new(pattern, RegexOptions.CultureInvariant);

    /// <summary>True for the key types compared here.</summary>
    public static bool Compared(byte type) => type is ProgsKeyFormat.BlockGroupItem or ProgsKeyFormat.FreeSpaceInfo or ProgsKeyFormat.DevExtent
        or ProgsKeyFormat.QgroupStatus or ProgsKeyFormat.QgroupInfo or ProgsKeyFormat.QgroupLimit or ProgsKeyFormat.RaidStripe;

    /// <summary>Adds a difference for every value progs printed that our body does not have.</summary>
    public static void Compare(string at, ProgsItem pi, JsonElement ours, List<string> diffs)
    {
        var text = string.Join(" ", pi.Body);
        Match m;
        switch (pi.Key.Type)
        {
            case ProgsKeyFormat.BlockGroupItem when (m = BlockGroup.Match(text)).Success:
                Eq("used", U(m, 1));
                Eq("chunk_objectid", U(m, 2));
                Names("flags", m.Groups[3].Value.Split('|').Where(n => n != "single"));
                break;
            case ProgsKeyFormat.FreeSpaceInfo when (m = FreeSpaceInfo.Match(text)).Success:
                Eq("extent_count", U(m, 1));
                Eq("flags", U(m, 2));
                break;
            case ProgsKeyFormat.DevExtent when (m = DevExtent.Match(text)).Success:
                Eq("chunk_tree", U(m, 1));
                Eq("chunk_objectid", U(m, 2));
                Eq("chunk_offset", U(m, 3));
                Eq("length", U(m, 4));
                Str("chunk_tree_uuid", m.Groups[5].Value);
                break;
            case ProgsKeyFormat.QgroupStatus when (m = QgroupStatus.Match(text)).Success:
                Eq("version", U(m, 1));
                Eq("generation", U(m, 2));
                Names("flags", m.Groups[3].Value == "0x0" ? [] : m.Groups[3].Value.Split('|'));
                Eq("rescan", U(m, 4));
                if (m.Groups[5].Success) Eq("enable_gen", U(m, 5)); // v6.19, with SIMPLE_QUOTA only
                break;
            case ProgsKeyFormat.QgroupInfo when (m = QgroupInfo.Match(text)).Success:
                Eq("generation", U(m, 1));
                Eq("rfer", U(m, 2));
                Eq("rfer_cmpr", U(m, 3));
                Eq("excl", U(m, 4));
                Eq("excl_cmpr", U(m, 5));
                break;
            case ProgsKeyFormat.QgroupLimit when (m = QgroupLimit.Match(text)).Success:
                Eq("flags", ulong.Parse(m.Groups[1].Value, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture));
                Eq("max_rfer", S(m, 2)); // progs prints these as signed (%lld)
                Eq("max_excl", S(m, 3));
                Eq("rsv_rfer", S(m, 4));
                Eq("rsv_excl", S(m, 5));
                break;
            case ProgsKeyFormat.RaidStripe:
            {
                var strides = pi.Body.Select(l => RaidStride.Match(l)).ToList();
                if (strides.Any(x => !x.Success)) { diffs.Add($"{at}: progs body not understood: {text}"); break; }
                var ourStrides = ours.TryGetProperty("strides", out var arr) ? arr.EnumerateArray().ToList() : [];
                if (ourStrides.Count != strides.Count) diffs.Add($"{at}: progs prints {strides.Count} strides, ours {ourStrides.Count}");
                for (int i = 0; i < Math.Min(strides.Count, ourStrides.Count); i++)
                {
                    ulong devid = U(strides[i], 2), physical = U(strides[i], 3);
                    if (Num(ourStrides[i], "devid") != devid || Num(ourStrides[i], "physical") != physical)
                        diffs.Add($"{at}: stride {i} progs devid {devid} physical {physical}, ours {ourStrides[i]}");
                }
                break;
            }
            default:
                diffs.Add($"{at}: progs body not understood (the test knows v6.2's and v6.19's wording): {text}");
                break;
        }

        void Eq(string name, ulong progs)
        {
            var o = Num(ours, name);
            if (o != progs) diffs.Add($"{at}: {name} progs {progs}, ours {(o?.ToString(CultureInfo.InvariantCulture) ?? "absent")}");
        }

        void Str(string name, string progs)
        {
            var o = ours.TryGetProperty(name, out var e) && e.ValueKind == JsonValueKind.String ? e.GetString() : null;
            if (o != progs) diffs.Add($"{at}: {name} progs {progs}, ours {o ?? "absent"}");
        }

        void Names(string name, IEnumerable<string> progs)
        {
            var o = ours.TryGetProperty(name, out var e) && e.ValueKind == JsonValueKind.Object && e.TryGetProperty("names", out var n)
                ? n.EnumerateArray().Select(x => x.GetString() ?? "").ToList() : null;
            var p = progs.ToList();
            if (o == null || !o.Order(StringComparer.Ordinal).SequenceEqual(p.Order(StringComparer.Ordinal)))
                diffs.Add($"{at}: {name} progs [{string.Join("|", p)}], ours [{(o == null ? "absent" : string.Join("|", o))}]");
        }
    }

    private static ulong U(Match m, int g) => ulong.Parse(m.Groups[g].Value, CultureInfo.InvariantCulture);

    private static ulong S(Match m, int g) => unchecked((ulong)long.Parse(m.Groups[g].Value, CultureInfo.InvariantCulture));

    /// <summary>A number property, or the <c>value</c> of a flags object.</summary>
    private static ulong? Num(JsonElement e, string name)
    {
        if (!e.TryGetProperty(name, out var v)) return null;
        if (v.ValueKind == JsonValueKind.Object && v.TryGetProperty("value", out var inner)) v = inner;
        return v.ValueKind == JsonValueKind.Number && v.TryGetUInt64(out var u) ? u : null;
    }
}
