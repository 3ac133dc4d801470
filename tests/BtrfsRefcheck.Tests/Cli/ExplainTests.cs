using System.Text.Json;
using System.Text.RegularExpressions;
using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Forge;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Tests.Forge;
using BtrfsRefcheck.Tests.Oracle;
using BtrfsRefcheck.Tests.Sources;
using BtrfsRefcheck.Trees;
using BtrfsRefcheck.Volume;
using Xunit.Abstractions;
using ImageForge = BtrfsRefcheck.Forge.Forge;
using CliProgram = BtrfsRefcheck.Cli.Program;

namespace BtrfsRefcheck.Tests.Cli;

/// <summary><c>who-refs</c> and <c>map</c> on real images, against btrfs-progs 6.19 (dump-tree of every tree, and
/// btrfs-map-logical where it can open the image) and against the bytes on the devices (parity rows, copies).</summary>
public class ExplainTests(ITestOutputHelper output)
{
    private const string Snapshots = "kernel-snapshots";

    private (int Exit, string Out, string Err) Run(params string[] args)
    {
        var (o, e) = (new StringWriter(), new StringWriter());
        int exit = CliProgram.Run(args, o, e);
        output.WriteLine($"$ btrfs-refcheck {string.Join(' ', args)}  -> {exit}\n{o}{e}");
        return (exit, o.ToString(), e.ToString());
    }

    private JsonElement Json(int wantExit, params string[] args)
    {
        var (exit, o, e) = Run(args);
        Assert.True(exit == wantExit, $"exit {exit}, expected {wantExit}: {e}");
        return JsonDocument.Parse(o).RootElement.Clone();
    }

    private static string RefKey(JsonElement r) =>
        r.GetProperty("type").GetString() + ":" + (r.TryGetProperty("parent", out var p) ? p.GetUInt64() : r.GetProperty("root").GetUInt64()) +
        (r.TryGetProperty("objectid", out var o) ? $":{o.GetUInt64()}:{r.GetProperty("offset").GetUInt64()}" : "");

    /// <summary>The back-refs 6.19's dump-tree prints for one extent item, as "TYPE:root-or-parent[:objectid:offset]".</summary>
    private static List<string> OracleBackRefs(string extentDump, ulong bytenr, out string itemType)
    {
        var lines = extentDump.Split('\n');
        int at = Array.FindIndex(lines, l => Regex.IsMatch(l, $@"key \({bytenr} (METADATA_ITEM|EXTENT_ITEM) \d+\)"));
        Assert.True(at >= 0, $"dump-tree shows no extent item at {bytenr}");
        itemType = Regex.Match(lines[at], "(METADATA_ITEM|EXTENT_ITEM)").Value;
        var refs = new List<string>();
        for (int i = at + 1; i < lines.Length && !lines[i].TrimStart().StartsWith("item ", StringComparison.Ordinal); i++)
        {
            var l = lines[i];
            Match m;
            if ((m = Regex.Match(l, @"tree block backref root (\S+)")).Success) refs.Add("TREE_BLOCK_REF:" + Tree(m.Groups[1].Value));
            else if ((m = Regex.Match(l, @"shared block backref parent (\d+)")).Success) refs.Add("SHARED_BLOCK_REF:" + m.Groups[1].Value);
            else if ((m = Regex.Match(l, @"extent data backref root (\S+) objectid (\d+) offset (\d+)")).Success)
                refs.Add($"EXTENT_DATA_REF:{Tree(m.Groups[1].Value)}:{m.Groups[2].Value}:{m.Groups[3].Value}");
            else if ((m = Regex.Match(l, @"shared data backref parent (\d+)")).Success) refs.Add("SHARED_DATA_REF:" + m.Groups[1].Value);
        }
        return refs;
    }

    private static ulong Tree(string name) => ObjectIds.TryParseTree(name.Replace("_TREE", "").ToLowerInvariant(), out ulong id) ? id : ulong.Parse(name);

    /// <summary>A block shared by a snapshot (TREE_BLOCK_REF of its owner and SHARED_BLOCK_REF of the snapshot's
    /// FULL_BACKREF node): who-refs lists exactly dump-tree's back-refs, finds exactly the pointers to it that 6.19's
    /// dump-tree shows in any tree, justifies every back-ref, and every path is a chain from a root block to it.</summary>
    [Progs619Fact]
    public void WhoRefsOnASharedBlockOfSnapshotsAgreesWithDumpTree()
    {
        string img = KernelFixtures.Expand(Snapshots);
        string extent = OracleCache.DumpTreeText(Progs.V619, img, "-t", "extent");
        var m = Regex.Match(extent, @"key \((\d+) METADATA_ITEM \d+\)[^\n]*\n[^\n]*refs 2[^\n]*\n[^\n]*\n[^\n]*tree block backref[^\n]*\n[^\n]*shared block backref");
        Assert.True(m.Success, "the snapshots image has a block with a TREE_BLOCK_REF and a SHARED_BLOCK_REF");
        ulong target = ulong.Parse(m.Groups[1].Value);
        var want = OracleBackRefs(extent, target, out _);

        var j = Json(0, "who-refs", "--json", img, target.ToString());
        Assert.Equal("tree_block", j.GetProperty("kind").GetString());
        Assert.Equal(want.Order(), j.GetProperty("back_refs").EnumerateArray().Select(RefKey).Order());
        Assert.All(j.GetProperty("matches").EnumerateArray(), x => Assert.Equal("ok", x.GetProperty("status").GetString()));
        Assert.Equal("consistent", j.GetProperty("verdict").GetString());

        // The oracle's pointers to the block, from every tree dump-tree prints (shared nodes appear once per tree).
        var blocks = OracleCache.DumpTree(Progs.V619, img);
        var oracleParents = blocks.SelectMany(b => b.Ptrs.Where(p => p.BlockPtr == target).Select(p => (b.Bytenr, p.Slot))).Distinct().Order().ToList();
        var ours = j.GetProperty("references").EnumerateArray().Where(r => r.GetProperty("from").GetString() == "pointer")
            .Select(r => (r.GetProperty("parent").GetUInt64(), r.GetProperty("slot").GetInt32())).Order().ToList();
        Assert.Equal(oracleParents, ours);
        Assert.True(ours.Count >= 2);

        using var vol = BtrfsVolume.Open([img]);
        var roots = TreeRoots.Enumerate(vol, new FindingBag()).ToDictionary(r => (r.Id, r.Bytenr));
        var paths = j.GetProperty("paths").EnumerateArray().ToList();
        Assert.True(paths.Count >= 2, "a path from the owner and one from the snapshot");
        foreach (var p in paths)
        {
            var steps = p.GetProperty("steps").EnumerateArray().ToList();
            Assert.Contains((p.GetProperty("root").GetUInt64(), p.GetProperty("root_bytenr").GetUInt64()), roots.Keys);
            Assert.Equal(p.GetProperty("root_bytenr").GetUInt64(), steps[0].GetProperty("node").GetUInt64());
            for (int i = 0; i + 1 < steps.Count; i++) Assert.Equal(steps[i].GetProperty("child").GetUInt64(), steps[i + 1].GetProperty("node").GetUInt64());
            Assert.Equal(target, steps[^1].GetProperty("child").GetUInt64());
            // each step is a real pointer: the node's slot points at the child
            foreach (var s in steps)
            {
                var node = vol.ReadTreeBlock(s.GetProperty("node").GetUInt64()).Block!;
                Assert.Equal(s.GetProperty("child").GetUInt64(), node.View.KeyPtr(s.GetProperty("slot").GetInt32()).BlockPtr);
            }
        }
        // The snapshot's path justifies the SHARED_BLOCK_REF, the owner's the TREE_BLOCK_REF.
        var refs = j.GetProperty("references").EnumerateArray().ToList();
        Assert.Contains(refs, r => r.GetProperty("needs").GetProperty("type").GetString() == "SHARED_BLOCK_REF" && r.GetProperty("parent_full_backref").GetBoolean());
        Assert.Contains(refs, r => r.GetProperty("needs").GetProperty("type").GetString() == "TREE_BLOCK_REF");
    }

    /// <summary>The seed signature (a forged duplicate TREE_BLOCK_REF): one pointer justifies one of the two equal
    /// back-refs; who-refs says the other is unjustified and exits 1.</summary>
    [Fact]
    public void WhoRefsShowsTheUnjustifiedDuplicate()
    {
        using var img = ImageForge.CopyAll(ForgeFixtures.Images(Snapshots), ForgeFixtures.TempDir);
        var defect = Defects.Get("duplicate-tree-block-ref").Apply(img);
        var j = Json(1, "who-refs", "--json", img.Path, defect.Bytenr.ToString());
        var backRefs = j.GetProperty("back_refs").EnumerateArray().Select(RefKey).ToList();
        Assert.Equal(2, backRefs.Count);
        Assert.Single(backRefs.Distinct());
        var match = Assert.Single(j.GetProperty("matches").EnumerateArray());
        Assert.Equal("unjustified", match.GetProperty("status").GetString());
        Assert.Equal((2UL, 1UL), (match.GetProperty("found_count").GetUInt64(), match.GetProperty("expected_count").GetUInt64()));
        Assert.Equal("disagree", j.GetProperty("verdict").GetString());
        var (_, text, _) = Run("who-refs", img.Path, defect.Bytenr.ToString());
        Assert.Contains("UNJUSTIFIED", text);
        // the pristine image: the same block is consistent
        Assert.Equal(0, Run("who-refs", ForgeFixtures.Images(Snapshots)[0], defect.Bytenr.ToString()).Exit);
    }

    /// <summary>Forged back-ref damage seen from the block: a stale back-ref (a root that does not reference it) is
    /// unjustified with no reference; a removed back-ref leaves a real reference without one; a data extent whose extent
    /// item is gone still shows the file extents that use it, each missing its back-ref.</summary>
    [Theory]
    [InlineData("stale-tree-block-ref", "tree_block", "unjustified")]
    [InlineData("missing-tree-block-ref", "tree_block", "missing")]
    [InlineData("data-extent-no-extent-item", "data", "missing")]
    public void WhoRefsShowsForgedBackRefDamage(string defectName, string kind, string status)
    {
        using var img = ImageForge.CopyAll(ForgeFixtures.Images(Snapshots), ForgeFixtures.TempDir);
        var defect = Defects.Get(defectName).Apply(img);
        output.WriteLine(defect.Description);
        var j = Json(1, "who-refs", "--json", img.Path, defect.Bytenr.ToString());
        Assert.Equal(kind, j.GetProperty("kind").GetString());
        var bad = j.GetProperty("matches").EnumerateArray().Where(m => m.GetProperty("status").GetString() != "ok").ToList();
        var m = Assert.Single(bad);
        Assert.Equal(status, m.GetProperty("status").GetString());
        if (status == "unjustified") Assert.Empty(m.GetProperty("references").EnumerateArray());
        else Assert.Empty(m.GetProperty("back_refs").EnumerateArray());
        Assert.NotEmpty(j.GetProperty("references").EnumerateArray());
    }

    /// <summary>A data extent shared by snapshots and reflinks: the back-refs are dump-tree's, every one justified,
    /// and the file extents found are exactly the (inode, offset) of dump-tree's EXTENT_DATA items pointing at it.</summary>
    [Progs619Fact]
    public void WhoRefsOnASharedDataExtentAgreesWithDumpTree()
    {
        string img = KernelFixtures.Expand(Snapshots);
        string extent = OracleCache.DumpTreeText(Progs.V619, img, "-t", "extent");
        var m = Regex.Match(extent, @"key \((\d+) EXTENT_ITEM \d+\)[^\n]*\n[^\n]*refs [3-9][^\n]*DATA\n(\t\t\([^\n]*\n)*?\t\t\(184");
        Assert.True(m.Success, "the snapshots image has a data extent with several refs and a SHARED_DATA_REF");
        ulong target = ulong.Parse(m.Groups[1].Value);
        var want = OracleBackRefs(extent, target, out _);
        var j = Json(0, "who-refs", "--json", img, target.ToString());
        Assert.Equal("data", j.GetProperty("kind").GetString());
        Assert.Equal(want.Order(), j.GetProperty("back_refs").EnumerateArray().Select(RefKey).Order());
        Assert.Equal("consistent", j.GetProperty("verdict").GetString());

        var blocks = OracleCache.DumpTree(Progs.V619, img);
        var oracleFiles = blocks.Where(b => b.IsLeaf).SelectMany(b => b.Items
                .Where(i => i.Key.Type == (byte)ItemType.ExtentData && i.Body.Any(l => l.Contains($"disk byte {target} ")))
                .Select(i => (i.Key.ObjectId, i.Key.Offset))).Distinct().Order().ToList();
        var files = j.GetProperty("references").EnumerateArray().SelectMany(r => r.GetProperty("file_extents").EnumerateArray()).ToList();
        Assert.Equal(oracleFiles, files.Select(f => (f.GetProperty("inode").GetUInt64(), f.GetProperty("file_offset").GetUInt64())).Distinct().Order().ToList());
        Assert.All(files, f => Assert.StartsWith("/", f.GetProperty("path").GetString()));
    }

    /// <summary>DUP: map gives btrfs-map-logical 6.19's two mirrors (physical offset and device), both copies good with
    /// the header dump-tree -b prints; a copy overwritten on the device is reported bad, the other still good.</summary>
    [Progs619Fact]
    public void MapOfADupTreeBlockAgreesWithMapLogicalAndSeesABadCopy()
    {
        using var img = ImageForge.CopyAll(ForgeFixtures.Images(Snapshots), ForgeFixtures.TempDir);
        ulong root;
        using (var vol = BtrfsVolume.Open(img.Paths)) root = vol.Super.Root;
        var oracle = Progs.V619.Run("btrfs-map-logical", "-l", root.ToString(), img.Path);
        var mirrors = Regex.Matches(oracle, @"mirror (\d+) logical \d+ physical (\d+) device (\S+)")
            .Select(x => (Copy: int.Parse(x.Groups[1].Value) - 1, Physical: ulong.Parse(x.Groups[2].Value), Device: x.Groups[3].Value)).ToList();
        Assert.Equal(2, mirrors.Count);

        var j = Json(0, "map", "--json", img.Path, root.ToString());
        Assert.Equal("Dup", j.GetProperty("chunk").GetProperty("profile").GetString());
        var places = j.GetProperty("places").EnumerateArray().Select(p => (p.GetProperty("copy").GetInt32(), p.GetProperty("physical").GetUInt64(), p.GetProperty("device").GetString()!)).ToList();
        Assert.Equal(mirrors, places);
        var header = OracleCache.DumpTree(Progs.V619, img.Path, "-b", root.ToString()).Single();
        foreach (var c in j.GetProperty("copies").EnumerateArray())
        {
            Assert.True(c.GetProperty("csum_ok").GetBoolean());
            var h = c.GetProperty("header");
            Assert.Equal((header.Generation, header.Level, header.Owner), (h.GetProperty("generation").GetUInt64(), h.GetProperty("level").GetInt32(), h.GetProperty("owner").GetUInt64()));
        }

        using (var fs = new FileStream(img.Path, FileMode.Open, FileAccess.Write)) { fs.Position = (long)mirrors[1].Physical + 200; fs.Write(new byte[64]); }
        var bad = Json(1, "map", "--json", img.Path, root.ToString());
        var copies = bad.GetProperty("copies").EnumerateArray().ToList();
        Assert.True(copies[0].GetProperty("csum_ok").GetBoolean());
        Assert.False(copies[1].GetProperty("csum_ok").GetBoolean());
        Assert.Equal("bad", bad.GetProperty("verdict").GetString());
    }

    /// <summary>RAID1 (two devices), RAID5 and RAID6: every copy of the root tree block and of a checksummed data sector
    /// holds; each copy's place holds those bytes on its device; P (and RAID6's Q) at the places given are the parity of
    /// the row's data stripes computed here from the devices; a data sector overwritten on copy 0's device is bad there
    /// and good rebuilt (RAID5/6) or on the mirror (RAID1).</summary>
    [Theory]
    [InlineData("kernel-raid1", 2)]
    [InlineData("kernel-raid5", 3)]
    [InlineData("kernel-raid6", 4)]
    public void MapOfRaidSetsPointsAtTheRightBytes(string set, int devices)
    {
        var names = Enumerable.Range(1, devices).Select(i => $"{set}-dev{i}").ToList();
        using var img = ImageForge.CopyAll(names.Select(KernelFixtures.Expand).ToList(), ForgeFixtures.TempDir);
        ulong root, dataSector;
        uint nodesize, sectorsize;
        using (var vol = BtrfsVolume.Open(img.Paths))
        {
            root = vol.Super.Root;
            nodesize = vol.NodeSize;
            sectorsize = vol.SectorSize;
            var csumRoot = TreeRoots.Enumerate(vol, new FindingBag()).Single(r => r.Id == ObjectIds.CsumTree && r.Source == RootSource.RootItem);
            var first = TreeSearch.Range(vol, csumRoot, new BtrfsKey(ObjectIds.ExtentCsum, (byte)ItemType.ExtentCsum, 0),
                new BtrfsKey(ObjectIds.ExtentCsum, (byte)ItemType.ExtentCsum, ulong.MaxValue), 1);
            dataSector = Assert.Single(first).Key.Offset;
        }
        foreach (var (address, size) in new[] { (root, (int)nodesize), (dataSector, (int)sectorsize) })
        {
            var j = Json(0, ["map", "--json", .. img.Paths, address.ToString()]);
            var expectedBytes = ReadPlace(j.GetProperty("places").EnumerateArray().First(p => p.GetProperty("role").GetString() == "copy"), size);
            foreach (var p in j.GetProperty("places").EnumerateArray().Where(p => p.GetProperty("role").GetString() == "copy"))
                Assert.Equal(expectedBytes, ReadPlace(p, size)); // mirrors hold the same bytes
            Assert.All(j.GetProperty("copies").EnumerateArray(), c => Assert.True(c.GetProperty("csum_ok").GetBoolean()));
            if (devices > 2) AssertParity(j, size);
        }

        var data = Json(0, ["map", "--json", .. img.Paths, dataSector.ToString()]);
        var copy0 = data.GetProperty("places").EnumerateArray().First(p => p.GetProperty("role").GetString() == "copy" && p.GetProperty("copy").GetInt32() == 0);
        using (var fs = new FileStream(copy0.GetProperty("device").GetString()!, FileMode.Open, FileAccess.Write))
        { fs.Position = (long)copy0.GetProperty("physical").GetUInt64(); fs.Write(new byte[16]); }
        var bad = Json(1, ["map", "--json", .. img.Paths, dataSector.ToString()]);
        var copies = bad.GetProperty("copies").EnumerateArray().ToList();
        Assert.False(copies[0].GetProperty("csum_ok").GetBoolean());
        Assert.True(copies[1].GetProperty("csum_ok").GetBoolean());
        Assert.Equal(devices > 2, copies[1].GetProperty("rebuilt_from_parity").GetBoolean());
    }

    private static byte[] ReadPlace(JsonElement p, int size, ulong delta = 0)
    {
        var buf = new byte[size];
        using var fs = new FileStream(p.GetProperty("device").GetString()!, FileMode.Open, FileAccess.Read);
        fs.Position = (long)(p.GetProperty("physical").GetUInt64() + delta);
        fs.ReadExactly(buf);
        return buf;
    }

    /// <summary>P is the xor of the row's data stripes at the same offset in the stripe unit; Q (RAID6) their
    /// Reed-Solomon syndrome over GF(2^8) (generator 2, polynomial 0x11d), data stripes in rotation order.</summary>
    private static void AssertParity(JsonElement j, int size)
    {
        var chunk = j.GetProperty("chunk");
        var stripes = chunk.GetProperty("stripes").EnumerateArray().ToList();
        int n = stripes.Count;
        bool raid6 = chunk.GetProperty("profile").GetString() == "Raid6";
        int dataStripes = n - (raid6 ? 2 : 1);
        ulong row = j.GetProperty("row").GetUInt64(), off = j.GetProperty("offset_in_stripe").GetUInt64(), stripeLen = chunk.GetProperty("stripe_len").GetUInt64();
        int len = (int)Math.Min((ulong)size, stripeLen - off);
        byte[] Read(int index)
        {
            var s = stripes[index];
            var b = new byte[len];
            using var fs = new FileStream(s.GetProperty("device").GetString()!, FileMode.Open, FileAccess.Read);
            fs.Position = (long)(s.GetProperty("offset").GetUInt64() + row * stripeLen + off);
            fs.ReadExactly(b);
            return b;
        }
        var p = new byte[len];
        var q = new byte[len];
        for (int d = dataStripes - 1; d >= 0; d--)
        {
            var bytes = Read((int)((row + (ulong)d) % (ulong)n));
            for (int i = 0; i < len; i++) { p[i] ^= bytes[i]; q[i] = (byte)(Mul2(q[i]) ^ bytes[i]); }
        }
        var places = j.GetProperty("places").EnumerateArray().ToList();
        var pPlace = places.Single(x => x.GetProperty("role").GetString() == "P");
        Assert.Equal(p, ReadPlace(pPlace, len));
        if (raid6) Assert.Equal(q, ReadPlace(places.Single(x => x.GetProperty("role").GetString() == "Q"), len));
        else Assert.DoesNotContain(places, x => x.GetProperty("role").GetString() == "Q");
    }

    private static byte Mul2(byte b) => (byte)((b << 1) ^ ((b & 0x80) != 0 ? 0x1d : 0));

    /// <summary>Not btrfs: one line on stderr, exit 3, as every verb; nothing at an address: who-refs says so, exit 1.</summary>
    [Fact]
    public void NotBtrfsIsExit3AndAnEmptyAddressIsNothing()
    {
        string junk = Path.Combine(ForgeFixtures.TempDir, $"junk-{Guid.NewGuid():N}.img");
        File.WriteAllBytes(junk, new byte[1 << 20]);
        try
        {
            foreach (var verb in new[] { "who-refs", "map" })
            {
                var (exit, o, e) = Run(verb, junk, "65536");
                Assert.Equal(3, exit);
                Assert.Equal("", o);
                Assert.Single(e.Trim().Split('\n'));
            }
        }
        finally { File.Delete(junk); }
        var j = Json(1, "who-refs", "--json", KernelFixtures.Expand(Snapshots), "4096");
        Assert.Equal("nothing", j.GetProperty("kind").GetString());
        Assert.Equal("nothing", j.GetProperty("verdict").GetString());
    }

    [Fact]
    public void MapOfAnUnmappedAddressSaysSoAndBadArgumentsAreUsageErrors()
    {
        string img = KernelFixtures.Expand(Snapshots);
        var (exit, o, _) = Run("map", img, "1");
        Assert.Equal(1, exit);
        Assert.Contains("in no chunk", o);
        Assert.Equal(2, Run("map", img, "x12").Exit);
        Assert.Equal(2, Run("who-refs", img).Exit);
        Assert.Equal(0, Run("map", img, "0x" + 30490624.ToString("x")).Exit);
    }
}
