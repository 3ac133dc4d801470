using System.Buffers.Binary;
using System.Text.RegularExpressions;
using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Forge;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Format.Items;
using BtrfsRefcheck.Tests.Forge;
using BtrfsRefcheck.Tests.Oracle;
using BtrfsRefcheck.Tests.Sources;
using Xunit.Abstractions;
using static BtrfsRefcheck.Tests.Damage.DamageSupport;
using ImageForge = BtrfsRefcheck.Forge.Forge;

namespace BtrfsRefcheck.Tests.Damage;

/// <summary>The quota groups pass on kernel-written quota trees (testdata/sources kernel-qgroups: levels 0-2 over
/// snapshots that share nodes; kernel-squota: simple quotas since a later generation), each damaged in one place, with
/// btrfs check 6.19's verdict on the same image: the qgroups whose counts it says differ are the ones we name.</summary>
public class QgroupDamageTests(ITestOutputHelper output)
{
    private const string Qgroups = "kernel-qgroups";
    private const string Squota = "kernel-squota";
    private const int RferAt = 8, ExclAt = 24; // btrfs_qgroup_info_item: generation, rfer, rfer_cmpr, excl, excl_cmpr
    private const int StatusFlagsAt = 16;      // btrfs_qgroup_status_item: version, generation, flags, rescan

    private static ulong Id(int level, ulong id) => ((ulong)level << 48) | id;

    private static ForgedImage CopySource(string set) => ImageForge.CopyAll(SourceFixtures.Images(set), ForgeFixtures.TempDir);

    /// <summary>The quota tree's only leaf (the fixtures' quota trees fit one 4 KiB leaf).</summary>
    private static ulong QuotaLeaf(IReadOnlyList<string> paths)
    {
        var root = Root(paths, ObjectIds.QuotaTree);
        Assert.Equal(0, root.Level);
        return root.Bytenr;
    }

    private static void EditQuota(IReadOnlyList<string> paths, Action<LeafEditor> body)
    {
        ulong leaf = QuotaLeaf(paths);
        Edit(paths, (ed, _) => body(ed.Leaf(leaf)));
    }

    private static int Slot(LeafEditor le, ItemType type, ulong objectid, ulong offset)
    {
        int slot = le.Find(new BtrfsKey(objectid, (byte)type, offset));
        Assert.True(slot >= 0, $"no ({objectid} {type} {offset}) in the quota leaf");
        return slot;
    }

    private static void AddU64(Span<byte> d, long delta) => BinaryPrimitives.WriteUInt64LittleEndian(d, (ulong)((long)BinaryPrimitives.ReadUInt64LittleEndian(d) + delta));

    /// <summary>btrfs check 6.19 on the image: its exit code, the qgroups it says are different, all its lines.</summary>
    private (int Exit, List<string> Different, string Text) Progs619(string path)
    {
        var (code, stdout, stderr) = Progs.V619.CheckReadonly(path);
        string text = stdout + "\n" + stderr;
        output.WriteLine($"btrfs check 6.19: exit {code}\n  " + string.Join("\n  ", SourceFixtureTests.ProblemLines(text)));
        var different = Regex.Matches(text, @"^Counts for qgroup id: (\S+) are different", RegexOptions.Multiline)
            .Select(m => m.Groups[1].Value).Order(StringComparer.Ordinal).ToList();
        return (code, different, text);
    }

    private static List<string> Named(IEnumerable<Finding> findings) =>
        findings.Where(f => f.Code == FindingCode.QgroupCountsMismatch)
            .Select(f => QuotaName(f.Key!.Value.Offset)).Order(StringComparer.Ordinal).ToList();

    private static string QuotaName(ulong id) => $"{id >> 48}/{id & ((1UL << 48) - 1)}";

    /// <summary>1200: 0/257's referenced and a level-2 qgroup's exclusive count changed on disk: both are named, on the
    /// quota leaf, and btrfs check 6.19 names the same two. The pristine image is silent (both).</summary>
    [Progs619Fact, Covers(FindingCode.QgroupCountsMismatch)]
    public void CorruptedQgroupCountsAreNamed()
    {
        using var img = CopySource(Qgroups);
        AssertExactly(output, Check(img.Paths));
        ulong leaf = QuotaLeaf(img.Paths);
        EditQuota(img.Paths, le =>
        {
            AddU64(le.Data(Slot(le, ItemType.QgroupInfo, 0, 257))[RferAt..], 4096);
            AddU64(le.Data(Slot(le, ItemType.QgroupInfo, 0, Id(2, 1)))[ExclAt..], -8192);
        });
        var findings = Check(img.Paths);
        AssertExactly(output, findings, Want.Error(FindingCode.QgroupCountsMismatch, leaf), Want.Error(FindingCode.QgroupCountsMismatch, leaf));
        Assert.Equal(["0/257", "2/1"], Named(findings));
        var f = findings.First(x => x.Key!.Value.Offset == 257);
        Assert.Contains("diff -4096", f.Message);
        var progs = Progs619(img.Path);
        Assert.Equal(1, progs.Exit);
        Assert.Equal(Named(findings), progs.Different);
        AssertCliFindsErrors(img.Paths, FindingCode.QgroupCountsMismatch);
    }

    /// <summary>1202 and the counts that follow: without the member's item (0/256, RELATION, 1/1) the relation is not
    /// in effect (the kernel and btrfs check build the hierarchy from it), so 1/1 and 2/1 lose 0/256's bytes; btrfs
    /// check 6.19 names the same qgroups. Without only the parent's mirror item the relation still holds: 1202 alone,
    /// which btrfs check 6.19 does not look at (exit 0).</summary>
    [Progs619Fact, Covers(FindingCode.QgroupRelationUnpaired)]
    public void MissingRelationItemIsNamed()
    {
        using var img = CopySource(Qgroups);
        ulong leaf = QuotaLeaf(img.Paths);
        EditQuota(img.Paths, le => le.DeleteItem(Slot(le, ItemType.QgroupRelation, 256, Id(1, 1))));
        var findings = Check(img.Paths);
        foreach (var x in findings) output.WriteLine($"  {x.Severity} {x}");
        var progs = Progs619(img.Path);
        Assert.Equal(1, progs.Exit);
        Assert.NotEmpty(progs.Different);
        Assert.Equal(progs.Different, Named(findings));
        AssertExactly(output, findings,
            [Want.Error(FindingCode.QgroupRelationUnpaired, leaf), .. progs.Different.Select(_ => Want.Error(FindingCode.QgroupCountsMismatch, leaf))]);
        Assert.Contains("not in effect", findings.Single(x => x.Code == FindingCode.QgroupRelationUnpaired).Message);

        using var img2 = CopySource(Qgroups);
        EditQuota(img2.Paths, le => le.DeleteItem(Slot(le, ItemType.QgroupRelation, Id(1, 1), 256)));
        AssertExactly(output, Check(img2.Paths), Want.Error(FindingCode.QgroupRelationUnpaired, leaf, slot: Slot(new LeafEditor(ReadLeaf(img2.Paths, leaf)), ItemType.QgroupRelation, 256, Id(1, 1))));
        var progs2 = Progs619(img2.Path);
        Assert.Equal(0, progs2.Exit);
    }

    private static byte[] ReadLeaf(IReadOnlyList<string> paths, ulong leaf)
    {
        using var vol = Open(paths);
        return vol.ReadTreeBlock(leaf).Block!.Data;
    }

    /// <summary>1203: a relation pair naming a qgroup that has no QGROUP_INFO (1/9): btrfs check 6.19 cannot load the
    /// quota configuration ("failed to add qgroup relation") and fails.</summary>
    [Progs619Fact, Covers(FindingCode.QgroupRelationOrphan)]
    public void RelationToAMissingQgroupIsNamed()
    {
        using var img = CopySource(Qgroups);
        ulong leaf = QuotaLeaf(img.Paths);
        EditQuota(img.Paths, le =>
        {
            le.InsertSorted(new BtrfsKey(256, (byte)ItemType.QgroupRelation, Id(1, 9)), []);
            le.InsertSorted(new BtrfsKey(Id(1, 9), (byte)ItemType.QgroupRelation, 256), []);
        });
        AssertExactly(output, Check(img.Paths), Want.Error(FindingCode.QgroupRelationOrphan, leaf));
        var progs = Progs619(img.Path);
        Assert.Equal(1, progs.Exit);
        Assert.Contains("failed to add qgroup relation", progs.Text);
    }

    /// <summary>1201: with the INCONSISTENT flag the same corrupted count is a note (differences are expected until a
    /// rescan), as btrfs check 6.19 prints it and exits 0; with RESCAN the counts are not compared at all.</summary>
    [Progs619Fact, Covers(FindingCode.QgroupStatusNotCurrent)]
    public void InconsistentOrRescanningStatusMakesDifferencesExpected()
    {
        using var img = CopySource(Qgroups);
        ulong leaf = QuotaLeaf(img.Paths);
        EditQuota(img.Paths, le =>
        {
            AddU64(le.Data(Slot(le, ItemType.QgroupInfo, 0, 256))[RferAt..], 4096);
            var flags = le.Data(Slot(le, ItemType.QgroupStatus, 0, 0))[StatusFlagsAt..];
            BinaryPrimitives.WriteUInt64LittleEndian(flags, BinaryPrimitives.ReadUInt64LittleEndian(flags) | QgroupStatus.FlagInconsistent);
        });
        var findings = Check(img.Paths);
        AssertExactly(output, findings);
        Assert.Contains(findings, f => f.Code == FindingCode.QgroupStatusNotCurrent && f.Severity == Severity.Info && f.Bytenr == leaf);
        Assert.Equal(["0/256"], Named(findings.Where(f => f.Severity == Severity.Info)));
        Assert.Equal(0, RunCli("check", "-q", img.Path).Exit);
        var progs = Progs619(img.Path);
        Assert.Equal(0, progs.Exit);
        Assert.Contains("Rescan hasn't been initialzied", progs.Text);
        Assert.Equal(["0/256"], progs.Different);

        EditQuota(img.Paths, le =>
        {
            var flags = le.Data(Slot(le, ItemType.QgroupStatus, 0, 0))[StatusFlagsAt..];
            BinaryPrimitives.WriteUInt64LittleEndian(flags, (BinaryPrimitives.ReadUInt64LittleEndian(flags) & ~QgroupStatus.FlagInconsistent) | QgroupStatus.FlagRescan);
        });
        findings = Check(img.Paths);
        AssertExactly(output, findings);
        Assert.Single(findings, f => f.Code == FindingCode.QgroupStatusNotCurrent);
        Assert.Empty(Named(findings));
        progs = Progs619(img.Path);
        Assert.Equal(0, progs.Exit);
        Assert.Contains("Qgroup rescan is running, qgroups will not be printed", progs.Text);
    }

    /// <summary>Simple quotas: each extent since enable_gen counts for its owner. A changed count is named, as btrfs
    /// check 6.19 names it; moving enable_gen back to 1 makes the extents written before quotas were enabled count
    /// too, so the top-level qgroup (which holds them) differs, for both.</summary>
    [Progs619Fact]
    public void SimpleQuotaCountsAreVerified()
    {
        using var img = CopySource(Squota);
        AssertExactly(output, Check(img.Paths));
        ulong leaf = QuotaLeaf(img.Paths);
        EditQuota(img.Paths, le => AddU64(le.Data(Slot(le, ItemType.QgroupInfo, 0, 256))[ExclAt..], 4096));
        var findings = Check(img.Paths);
        AssertExactly(output, findings, Want.Error(FindingCode.QgroupCountsMismatch, leaf));
        var progs = Progs619(img.Path);
        Assert.Equal(1, progs.Exit);
        Assert.Equal(Named(findings), progs.Different);

        using var img2 = CopySource(Squota);
        EditQuota(img2.Paths, le =>
        {
            var st = le.Data(Slot(le, ItemType.QgroupStatus, 0, 0));
            Assert.True(st.Length >= QgroupStatus.SizeWithEnableGen);
            Assert.True(BinaryPrimitives.ReadUInt64LittleEndian(st[QgroupStatus.Size..]) > 1, "enable_gen above 1");
            BinaryPrimitives.WriteUInt64LittleEndian(st[QgroupStatus.Size..], 1);
        });
        findings = Check(img2.Paths);
        Assert.Equal(["0/5"], Named(findings));
        progs = Progs619(img2.Path);
        Assert.Equal(1, progs.Exit);
        Assert.Equal(["0/5"], progs.Different);
    }
}
