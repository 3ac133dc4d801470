using BtrfsRefcheck.Cli.Rendering;
using Xunit.Abstractions;
using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Format.Items;
using BtrfsRefcheck.Tests.Oracle;
using BtrfsRefcheck.Trees;
using BtrfsRefcheck.Volume;

namespace BtrfsRefcheck.Tests.Differential;

/// <summary>
/// Our tree walk against <c>btrfs inspect-internal dump-tree --dfs</c> (full output, every tree) on every fixture: the
/// same trees, the same blocks in the same order per tree, and per block the same header fields, keys, item
/// offsets/sizes, node pointers and, for every EXTENT_ITEM/METADATA_ITEM, the same refs/gen/flags/tree-block info and
/// inline refs in order.
/// </summary>
/// <remarks>
/// progs v6.2 prints the root tree, the chunk tree, the log root tree (when the superblock has one), then every tree a
/// ROOT_ITEM of the root tree points to (key order), then every log tree of the log root tree. Each tree is printed in
/// full, so a block shared by snapshots appears once per tree that reaches it; <c>--dfs</c> makes the order within a tree
/// depth-first pre-order (v6.2's default is breadth-first). Our side walks every root from
/// <see cref="TreeRoots.Enumerate"/> with its own <see cref="TreeWalker"/> and no shared Visited set, which must give
/// exactly that.
/// <para>Multi-device sets: progs cannot be given several image files (it only finds other devices among scanned
/// block devices), but with RAID1 it reads a set degraded from any one device. Each device's dump is compared with
/// our walk over the complete set.</para>
/// </remarks>
public class DumpTreeDifferentialTests(ITestOutputHelper output)
{
    private const int MaxReported = 20;

    [ProgsTheory]
    [MemberData(nameof(DiffFixtures.All), MemberType = typeof(DiffFixtures))]
    public void EveryBlockMatchesDumpTree(string fixture) => EveryBlockMatches(fixture, Progs.V62);

    /// <summary>The same against btrfs-progs v6.19, on every fixture and on those mkfs 6.19 made; v6.19 also prints each
    /// block's stored and computed checksum, which must both be ours.</summary>
    [Progs619Theory]
    [MemberData(nameof(DiffFixtures.All619), MemberType = typeof(DiffFixtures))]
    public void EveryBlockMatchesDumpTree619(string fixture)
    {
        EveryBlockMatches(fixture, Progs.V619);
        var progs = DiffFixtures.Progs(fixture, Progs.V619);
        if (progs.Mode != ProgsMode.Unavailable)
            Assert.All(progs.Dumps, d => Assert.All(d.Blocks, b => Assert.NotNull(b.ChecksumStored))); // the comparison had something to compare
    }

    private void EveryBlockMatches(string fixture, ProgsOracle oracle)
    {
        var ours = OurWalk.Of(fixture);
        var bad = ours.Values.SelectMany(l => l).Where(b => !b.Valid).Select(b => $"block {b.Bytenr} (tree {b.Tree}) invalid or unreadable").ToList();
        Assert.True(bad.Count == 0, DiffFixtures.Report($"{fixture}: our walk", bad, MaxReported));

        var progs = DiffFixtures.Progs(fixture, oracle);
        output.WriteLine($"{fixture}: {progs.How}");
        if (progs.Mode == ProgsMode.Unavailable)
            return; // nothing to compare against here; the walk above and the copy test below still run

        var diffs = new List<string>();
        foreach (var (label, blocks) in progs.Dumps)
        {
            Assert.True(blocks.Count > 0, $"dump-tree of {label} printed no block");
            var prefix = progs.Dumps.Count > 1 ? $"[progs on {label}] " : "";
            diffs.AddRange(Compare(blocks, ours).Select(d => prefix + d));
        }
        Assert.True(diffs.Count == 0, DiffFixtures.Report($"{fixture}: our walk vs dump-tree ({progs.How})", diffs, MaxReported));
    }

    /// <summary>The comparison itself must notice a difference: a test that cannot fail is not a test.</summary>
    [ProgsFact]
    public void Comparison_DetectsPlantedDifferences()
    {
        var fixture = "mkfs:noskinny";
        var progs = DiffFixtures.ProgsDump(DiffFixtures.Images(fixture)[0]);
        var ours = OurWalk.Of(fixture);
        Assert.Empty(Compare(progs, ours));

        var leaf = progs.First(b => b.IsLeaf && b.Items.Any(i => i.Extent is { InlineRefs.Count: > 0 }));
        var item = leaf.Items.First(i => i.Extent is { InlineRefs.Count: > 0 });
        var r0 = item.Extent!.InlineRefs[0];

        // one changed inline ref (leaf A), one changed itemoff (leaf B), one dropped block: each must be reported
        var changedRef = item with { Extent = item.Extent with { InlineRefs = [r0 with { Root = r0.Root + 1, Parent = r0.Parent + 1 }, .. item.Extent.InlineRefs.Skip(1)] } };
        var other = progs.First(b => b.IsLeaf && b != leaf && b.Items.Count > 0);
        var dropped = progs.Last(b => b != leaf && b != other);
        var mutated = progs.Where(b => b != dropped).Select(b =>
            b == leaf ? b with { Items = b.Items.Select(i => i == item ? changedRef : i).ToList() }
            : b == other ? b with { Items = [b.Items[0] with { ItemOff = b.Items[0].ItemOff + 1 }, .. b.Items.Skip(1)] }
            : b).ToList();
        var diffs = Compare(mutated, ours);
        Assert.Contains(diffs, d => d.Contains($"block {leaf.Bytenr}") && d.Contains("inline ref 0"));
        Assert.Contains(diffs, d => d.Contains($"block {other.Bytenr}") && d.Contains("itemoff"));
        Assert.Contains(diffs, d => d.Contains($"block {dropped.Bytenr}") && d.Contains("progs does not print"));
    }

    /// <summary>The item value comparison must notice a changed value in each kind of item it compares (on v6.19's dump of
    /// the simple-quota fixture: block group tree, quota tree with enable_gen, free space tree, dev tree).</summary>
    [Progs619Fact]
    public void ItemValues_DetectPlantedDifferences()
    {
        var fixture = "mkfs619:squota";
        var progs = DiffFixtures.ProgsDump(Progs.V619, DiffFixtures.Images(fixture)[0]);
        var ours = OurWalk.Of(fixture);
        Assert.Empty(Compare(progs, ours));
        var planted = new Dictionary<byte, (string From, string To)>
        {
            [ProgsKeyFormat.QgroupStatus] = (" enable_gen ", " enable_gen 9"),
            [ProgsKeyFormat.QgroupInfo] = ("generation ", "generation 9"),
            [ProgsKeyFormat.QgroupLimit] = ("max_referenced ", "max_referenced 9"),
            [ProgsKeyFormat.BlockGroupItem] = ("block group used ", "block group used 9"),
            [ProgsKeyFormat.FreeSpaceInfo] = ("extent count ", "extent count 9"),
            [ProgsKeyFormat.DevExtent] = ("chunk_offset ", "chunk_offset 9"),
        };
        foreach (var (type, (from, to)) in planted)
        {
            var block = progs.First(b => b.Items.Any(i => i.Key.Type == type));
            var item = block.Items.First(i => i.Key.Type == type);
            var body = item.Body.Select(l => l.Replace(from, to)).ToList();
            Assert.NotEqual(item.Body, body);
            var mutated = progs.Select(b => b != block ? b : b with { Items = b.Items.Select(i => i == item ? i with { Body = body } : i).ToList() }).ToList();
            var diffs = Compare(mutated, ours);
            Assert.Contains(diffs, d => d.Contains($"block {block.Bytenr}") && d.Contains($"item {item.Slot}"));
        }
    }

    /// <summary>
    /// Multi-device kernel sets: every copy of every tree block (per the profile: mirrors, RAID10 sub-stripes; the data
    /// stripe of RAID5/6) reads, verifies and, where there are several, is byte-identical to the others. And with any one
    /// device left out, the volume opens, reports that devid missing, and still yields every tree block when the
    /// profile survives the loss of one device (as the kernel does: mirrors, RAID10, and RAID5/6 by rebuilding from
    /// parity); for RAID0 it may instead refuse to open with a VolumeException naming the missing devid.
    /// </summary>
    [ProgsTheory]
    [MemberData(nameof(DiffFixtures.KernelMultiDevice), MemberType = typeof(DiffFixtures))]
    public void MultiDeviceSet_EveryCopyIdentical_AndOneMissingDeviceIsSurvived(string fixture)
    {
        var images = DiffFixtures.Images(fixture);
        var blocks = OurWalk.Of(fixture).Values.SelectMany(l => l).Select(b => b.Bytenr).Distinct().ToList();
        var diffs = new List<string>();
        var devids = new Dictionary<string, ulong>();
        bool survivesOneLoss;
        using (var vol = DiffFixtures.Open(fixture))
        {
            foreach (var di in vol.DevItems)
                if (vol.DeviceById(di.DevId) is { } dev) devids[dev.Path] = di.DevId;
            var csum = new byte[Checksum.FieldSize];
            var profiles = new HashSet<RaidProfile>();
            foreach (var bytenr in blocks)
            {
                var chunk = vol.Chunks.Find(bytenr)!;
                profiles.Add(chunk.Profile);
                byte[]? first = null;
                for (int copy = 0; copy < chunk.Copies; copy++)
                {
                    var buf = new byte[vol.NodeSize];
                    if (!vol.TryReadLogical(bytenr, buf, copy, out var problem)) { diffs.Add($"block {bytenr} copy {copy}: {problem}"); continue; }
                    if (!Checksum.Verify(vol.CsumType, buf, csum)) diffs.Add($"block {bytenr} copy {copy} ({chunk.Profile}): checksum mismatch");
                    if (new Header(buf).Bytenr != bytenr) diffs.Add($"block {bytenr} copy {copy} ({chunk.Profile}): header bytenr {new Header(buf).Bytenr}");
                    if (first == null) first = buf;
                    else if (!first.AsSpan().SequenceEqual(buf)) diffs.Add($"block {bytenr}: copy {copy} differs from copy 0");
                }
            }
            survivesOneLoss = !profiles.Contains(RaidProfile.Raid0) && !profiles.Contains(RaidProfile.Single);
            output.WriteLine($"{fixture}: {blocks.Count} tree blocks in {string.Join(", ", profiles)} chunks");
        }
        for (int i = 0; i < images.Count; i++)
        {
            var left = Path.GetFileName(images[i]);
            var bag = new FindingBag();
            BtrfsVolume partial;
            try
            {
                partial = BtrfsVolume.Open(images.Where((_, j) => j != i).ToList(), null, bag);
            }
            catch (VolumeException e) when (!survivesOneLoss)
            {
                // "device missing with no mirror" may be a VolumeException (STYLE.md), if it says which device
                if (!e.Message.Contains($"devid {devids[images[i]]}"))
                    diffs.Add($"without {left}: VolumeException not naming devid {devids[images[i]]}: {e.Message}");
                continue;
            }
            using var _ = partial;
            var missing = partial.MissingDevices.Select(m => m.DevId).ToList();
            if (missing.Count != 1 || missing[0] != devids[images[i]])
                diffs.Add($"without {left} (devid {devids[images[i]]}): missing devices [{string.Join(", ", missing)}]");
            if (!bag.Items.Any(f => f.Code == FindingCode.DeviceMissing && f.Message.Contains($"devid {devids[images[i]]} ")))
                diffs.Add($"without {left}: no DeviceMissing finding naming devid {devids[images[i]]}");
            if (!survivesOneLoss) continue;
            foreach (var bytenr in blocks)
            {
                var read = partial.ReadTreeBlock(bytenr);
                if (read.Block == null)
                    diffs.Add($"without {left}: block {bytenr} ({partial.Chunks.Find(bytenr)?.Profile}) unreadable: {read.Describe()}");
            }
        }
        Assert.True(diffs.Count == 0, DiffFixtures.Report($"{fixture}: device copies", diffs, MaxReported));
    }

    // ----------------------------------------------------------------------------------------------------------------

    /// <summary>Compares progs' blocks with ours; returns human-readable differences (all of them).</summary>
    internal static List<string> Compare(IReadOnlyList<ProgsBlock> progs, IReadOnlyDictionary<string, List<OurBlock>> ours)
    {
        var diffs = new List<string>();
        var progsTrees = new Dictionary<string, List<ProgsBlock>>(StringComparer.Ordinal);
        foreach (var b in progs)
        {
            var id = DiffFixtures.TreeIdentity(b);
            if (!progsTrees.TryGetValue(id, out var l)) progsTrees[id] = l = [];
            l.Add(b);
        }

        // 1. the same trees
        foreach (var id in progsTrees.Keys.Except(ours.Keys))
            diffs.Add($"tree {id}: progs prints it ({progsTrees[id].Count} blocks), our enumeration has no such root");
        foreach (var id in ours.Keys.Except(progsTrees.Keys))
            diffs.Add($"tree {id}: we walk it ({ours[id].Count} blocks), progs does not print it");

        // 2. per tree, the same blocks in the same (pre-order) sequence
        foreach (var (id, pl) in progsTrees)
        {
            if (!ours.TryGetValue(id, out var ol)) continue;
            var ps = pl.Select(b => b.Bytenr).ToList();
            var os = ol.Select(b => b.Bytenr).ToList();
            if (ps.SequenceEqual(os)) continue;
            int at = 0;
            while (at < ps.Count && at < os.Count && ps[at] == os[at]) at++;
            diffs.Add($"tree {id}: block sequence differs at position {at}: progs {(at < ps.Count ? ps[at].ToString() : "<end>")}, " +
                      $"ours {(at < os.Count ? os[at].ToString() : "<end>")} (progs {ps.Count} blocks, ours {os.Count})");
        }

        // 3. the same set of blocks overall
        var progsByBytenr = new Dictionary<ulong, ProgsBlock>();
        foreach (var b in progs) progsByBytenr.TryAdd(b.Bytenr, b);
        var oursByBytenr = new Dictionary<ulong, OurBlock>();
        foreach (var b in ours.Values.SelectMany(l => l)) oursByBytenr.TryAdd(b.Bytenr, b);
        foreach (var bytenr in progsByBytenr.Keys.Except(oursByBytenr.Keys).Order())
            diffs.Add($"block {bytenr} ({progsByBytenr[bytenr].TreeHeader}): progs prints it, we do not visit it");
        foreach (var bytenr in oursByBytenr.Keys.Except(progsByBytenr.Keys).Order())
            diffs.Add($"block {bytenr} (tree {oursByBytenr[bytenr].Tree}): we visit it, progs does not print it");

        // 4. per block, the same contents
        foreach (var (bytenr, p) in progsByBytenr)
            if (oursByBytenr.TryGetValue(bytenr, out var o))
                CompareBlock(p, o, diffs);

        // a block progs printed twice (shared by snapshots) must print the same both times
        foreach (var g in progs.GroupBy(b => b.Bytenr).Where(g => g.Count() > 1))
        {
            var first = g.First();
            foreach (var again in g.Skip(1))
                if (again.NrItems != first.NrItems || again.Generation != first.Generation || again.Level != first.Level)
                    diffs.Add($"block {g.Key}: progs printed it differently at lines {first.LineNumber} and {again.LineNumber}");
        }
        return diffs;
    }

    private static void CompareBlock(ProgsBlock p, OurBlock o, List<string> diffs)
    {
        string at = $"block {p.Bytenr} ({p.TreeHeader})";
        if (!o.Valid) diffs.Add($"{at}: our validator rejected it (progs prints it)");
        if (p.Level != o.Level) diffs.Add($"{at}: level progs {p.Level}, ours {o.Level}");
        if ((ulong)p.NrItems != o.NrItems) diffs.Add($"{at}: nritems progs {p.NrItems}, ours {o.NrItems}");
        if (p.Generation != o.Generation) diffs.Add($"{at}: generation progs {p.Generation}, ours {o.Generation}");
        if (p.Owner != o.Owner) diffs.Add($"{at}: owner progs {p.OwnerText} ({p.Owner}), ours {o.Owner}");
        if (p.ChecksumStored != null && p.ChecksumStored != o.CsumHex) diffs.Add($"{at}: checksum stored progs {p.ChecksumStored}, ours {o.CsumHex}");
        if (p.ChecksumCalced != null && p.ChecksumCalced != o.CsumHex) diffs.Add($"{at}: checksum calced progs {p.ChecksumCalced}, our stored (verified) {o.CsumHex}");
        if (p.IsLeaf)
        {
            if (p.Items.Count != o.Items.Count) diffs.Add($"{at}: progs prints {p.Items.Count} items, we decode {o.Items.Count}");
            for (int i = 0; i < Math.Min(p.Items.Count, o.Items.Count); i++)
            {
                var pi = p.Items[i];
                var oi = o.Items[i];
                string it = $"{at} item {i}";
                if (!SameKey(pi.Key, oi.Key)) { diffs.Add($"{it}: key progs {pi.KeyText} {pi.Key}, ours {oi.Key}"); continue; }
                if (pi.ItemOff != oi.ItemOff) diffs.Add($"{it} {pi.KeyText}: itemoff progs {pi.ItemOff}, ours {oi.ItemOff}");
                if (pi.ItemSize != oi.ItemSize) diffs.Add($"{it} {pi.KeyText}: itemsize progs {pi.ItemSize}, ours {oi.ItemSize}");
                if (pi.Key.Type is ProgsKeyFormat.ExtentItem or ProgsKeyFormat.MetadataItem)
                    CompareExtent($"{it} {pi.KeyText}", pi, oi, diffs);
                foreach (var problem in oi.Problems)
                    diffs.Add($"{it} {pi.KeyText}: our item decoder reports '{problem}' (progs prints: {string.Join(" / ", pi.Body.Take(3))})");
                if (oi.Body is { } body)
                    ItemValues.Compare($"{it} {pi.KeyText}", pi, body, diffs);
            }
        }
        else
        {
            if (p.Ptrs.Count != o.Ptrs.Count) diffs.Add($"{at}: progs prints {p.Ptrs.Count} pointers, we decode {o.Ptrs.Count}");
            for (int i = 0; i < Math.Min(p.Ptrs.Count, o.Ptrs.Count); i++)
            {
                var pp = p.Ptrs[i];
                var (key, ptr, gen) = o.Ptrs[i];
                if (!SameKey(pp.Key, key) || pp.BlockPtr != ptr || pp.Generation != gen)
                    diffs.Add($"{at} ptr {i}: progs key {pp.Key} block {pp.BlockPtr} gen {pp.Generation}, ours key {key} block {ptr} gen {gen}");
            }
        }
    }

    private static void CompareExtent(string at, ProgsItem pi, OurItem oi, List<string> diffs)
    {
        var pe = pi.Extent;
        var oe = oi.Extent;
        if (pe == null) { diffs.Add($"{at}: progs body could not be parsed as an extent item: {string.Join(" / ", pi.Body.Take(3))}"); return; }
        if (oe == null) { diffs.Add($"{at}: we could not decode it: {oi.Error}"); return; }
        if (pe.Refs != oe.Refs) diffs.Add($"{at}: refs progs {pe.Refs}, ours {oe.Refs}");
        if (pe.Generation != oe.Generation) diffs.Add($"{at}: gen progs {pe.Generation}, ours {oe.Generation}");
        ulong pflags = ExtentFlagBits(pe.Flags, out var unknownNames);
        if (unknownNames.Count > 0) diffs.Add($"{at}: progs printed unknown extent flag names {string.Join('|', unknownNames)}");
        const ulong printable = (ulong)(ExtentFlags.Data | ExtentFlags.TreeBlock | ExtentFlags.FullBackref);
        if (pflags != (oe.Flags & printable)) diffs.Add($"{at}: flags progs {string.Join('|', pe.Flags)} (0x{pflags:x}), ours 0x{oe.Flags:x}");
        bool pHasKey = pe.TreeBlockKey.HasValue, oHasKey = oe.TreeBlockKey.HasValue;
        if (pHasKey != oHasKey || (pHasKey && !SameKey(pe.TreeBlockKey!.Value, oe.TreeBlockKey!.Value)))
            diffs.Add($"{at}: tree block key progs {pe.TreeBlockKey?.ToString() ?? "none"}, ours {oe.TreeBlockKey?.ToString() ?? "none"}");
        if (pe.TreeBlockLevel != oe.TreeBlockLevel)
            diffs.Add($"{at}: tree block level progs {pe.TreeBlockLevel?.ToString() ?? "none"}, ours {oe.TreeBlockLevel?.ToString() ?? "none"}");
        if (oe.RefsError != null) diffs.Add($"{at}: our inline ref decoding stopped: {oe.RefsError}");
        if (pe.InlineRefs.Count != oe.InlineRefs.Count)
            diffs.Add($"{at}: progs prints {pe.InlineRefs.Count} inline refs, we decode {oe.InlineRefs.Count}");
        for (int r = 0; r < Math.Min(pe.InlineRefs.Count, oe.InlineRefs.Count); r++)
        {
            var pr = pe.InlineRefs[r];
            var or = oe.InlineRefs[r];
            if (pr.Type != (byte)or.Type || pr.Root != or.Root || pr.Parent != or.Parent || pr.ObjectId != or.ObjectId ||
                pr.Offset != or.Offset || pr.RefCount != or.RefCount)
                diffs.Add($"{at}: inline ref {r}: progs '{pr.Text}' (type {pr.Type} root {pr.Root} parent {pr.Parent} objectid {pr.ObjectId} offset {pr.Offset} count {pr.RefCount}), " +
                          $"ours type {(byte)or.Type} root {or.Root} parent {or.Parent} objectid {or.ObjectId} offset {or.Offset} count {or.RefCount}");
        }
    }

    private static ulong ExtentFlagBits(IReadOnlyList<string> names, out List<string> unknown)
    {
        ulong bits = 0;
        unknown = [];
        foreach (var n in names)
        {
            switch (n.Trim())
            {
                case "DATA": bits |= (ulong)ExtentFlags.Data; break;
                case "TREE_BLOCK": bits |= (ulong)ExtentFlags.TreeBlock; break;
                case "FULL_BACKREF": bits |= (ulong)ExtentFlags.FullBackref; break;
                case "": break;
                default: unknown.Add(n); break;
            }
        }
        return bits;
    }

    private static bool SameKey(ProgsKey p, BtrfsKey o) => p.ObjectId == o.ObjectId && p.Type == o.Type && p.Offset == o.Offset;

    // ----------------------------------------------------------------------------------------------------------------

    internal sealed record OurExtent(ulong Refs, ulong Generation, ulong Flags, BtrfsKey? TreeBlockKey, int? TreeBlockLevel,
        IReadOnlyList<InlineRef> InlineRefs, string? RefsError);

    internal sealed record OurItem(BtrfsKey Key, uint ItemOff, uint ItemSize, OurExtent? Extent, string? Error)
    {
        /// <summary>The problems our <see cref="ItemDecoder"/> noted while decoding the item (none on a valid image).</summary>
        public IReadOnlyList<string> Problems { get; init; } = [];

        /// <summary>Our decoded body as JSON, kept for the item types <see cref="ItemValues"/> compares.</summary>
        public System.Text.Json.JsonElement? Body { get; init; }
    }

    internal sealed record OurBlock(string Tree, ulong Bytenr, int Level, ulong NrItems, ulong Generation, ulong Owner, bool Valid,
        IReadOnlyList<OurItem> Items, IReadOnlyList<(BtrfsKey Key, ulong BlockPtr, ulong Generation)> Ptrs)
    {
        /// <summary>The header's checksum bytes (csum_size of them) in lower-case hex, as v6.19 prints them.</summary>
        public string CsumHex { get; init; } = "";
    }

    /// <summary>Our full walk of a fixture, per tree identity, in walk order; cached per fixture.</summary>
    internal static class OurWalk
    {
        private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, Lazy<IReadOnlyDictionary<string, List<OurBlock>>>> cache = new();

        public static IReadOnlyDictionary<string, List<OurBlock>> Of(string fixture) =>
            cache.GetOrAdd(fixture, f => new Lazy<IReadOnlyDictionary<string, List<OurBlock>>>(() => Walk(f))).Value;

        private static IReadOnlyDictionary<string, List<OurBlock>> Walk(string fixture)
        {
            var findings = new FindingBag();
            using var vol = DiffFixtures.Open(fixture, findings);
            var result = new Dictionary<string, List<OurBlock>>(StringComparer.Ordinal);
            foreach (var root in TreeRoots.Enumerate(vol, findings))
            {
                var id = DiffFixtures.TreeIdentity(root);
                if (!result.TryGetValue(id, out var list)) result[id] = list = [];
                // a fresh walker per tree and no Visited set: every tree in full, as progs prints it
                new TreeWalker(vol, findings).Walk(root, new Collector(id, list, Checksum.Length(vol.CsumType), new ItemContext(vol.CsumType, vol.SectorSize, vol.NodeSize)));
            }
            return result;
        }

        private sealed class Collector(string tree, List<OurBlock> into, int csumLength, ItemContext ctx) : ITreeVisitor
        {
            public bool OnBlock(in BlockContext ctx, TreeBlock block, bool valid)
            {
                var v = block.View;
                var h = v.Header;
                var items = new List<OurItem>();
                var ptrs = new List<(BtrfsKey, ulong, ulong)>();
                if (v.IsLeaf)
                {
                    for (int i = 0; i < v.Count; i++)
                    {
                        var ih = v.ItemHeader(i);
                        var key = ih.Key;
                        OurExtent? extent = null;
                        string? error = null;
                        if (key.ItemType is ItemType.ExtentItem or ItemType.MetadataItem)
                        {
                            try { extent = DecodeExtent(key, v.ItemData(i)); }
                            catch (BtrfsFormatException e) { error = e.Message; }
                        }
                        var (problems, body) = DecodeJson(key, v.ItemData(i));
                        items.Add(new OurItem(key, ih.DataOffset, ih.DataSize, extent, error) { Problems = problems, Body = body });
                    }
                }
                else
                {
                    for (int i = 0; i < v.Count; i++)
                    {
                        var kp = v.KeyPtr(i);
                        ptrs.Add((kp.Key, kp.BlockPtr, kp.Generation));
                    }
                }
                into.Add(new OurBlock(tree, block.Logical, h.Level, h.NrItems, h.Generation, h.Owner, valid, items, ptrs)
                {
                    CsumHex = Convert.ToHexStringLower(h.Csum[..csumLength]),
                });
                return true;
            }

            public void OnUnreadable(in BlockContext ctx, TreeBlockRead read) =>
                into.Add(new OurBlock(tree, ctx.Bytenr, -1, 0, 0, 0, false, [], []));

            /// <summary>Decodes the item as <c>dump-tree --json</c> does; returns its problems and, for the types
            /// <see cref="ItemValues"/> compares, the body.</summary>
            private (IReadOnlyList<string>, System.Text.Json.JsonElement?) DecodeJson(BtrfsKey key, ReadOnlySpan<byte> data)
            {
                buffer.SetLength(0);
                using (var json = new System.Text.Json.Utf8JsonWriter(buffer))
                    BtrfsRefcheck.Cli.Rendering.JsonItemWriter.WriteItem(json, ctx, key, data);
                using var doc = System.Text.Json.JsonDocument.Parse(buffer.ToArray());
                var root = doc.RootElement;
                IReadOnlyList<string> problems = root.TryGetProperty("problems", out var p)
                    ? p.EnumerateArray().Select(e => e.GetString() ?? "").ToList() : [];
                return (problems, ItemValues.Compared(key.Type) ? root.Clone() : null);
            }

            private readonly MemoryStream buffer = new();

            private static OurExtent DecodeExtent(BtrfsKey key, ReadOnlySpan<byte> data)
            {
                var ei = new ExtentItem(data, key.ItemType);
                BtrfsKey? tbKey = null;
                int? tbLevel = null;
                if (key.ItemType == ItemType.MetadataItem) tbLevel = (int)key.Offset;
                else if (ei.HasTreeBlockInfo) { tbKey = ei.TreeBlockKey; tbLevel = ei.TreeBlockLevel; }
                var refs = new List<InlineRef>();
                var en = ei.InlineRefs;
                while (en.MoveNext()) refs.Add(en.Current);
                return new OurExtent(ei.Refs, ei.Generation, (ulong)ei.Flags, tbKey, tbLevel, refs, en.Error);
            }
        }
    }
}
