using System.Buffers.Binary;
using System.IO.Compression;
using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Tests.Forge;
using BtrfsRefcheck.Tests.Oracle;
using BtrfsRefcheck.Tests.Sources;
using Xunit.Abstractions;
using static BtrfsRefcheck.Tests.Damage.DamageSupport;

namespace BtrfsRefcheck.Tests.Damage;

/// <summary>Damaged btrfs-image dumps (130-132): copies of the committed dump of the kernel fixture
/// (testdata/sources/kernel-snapshots.metadump-619), edited in one place. btrfs check 6.19 cannot read any dump (it
/// takes the file for a device and finds no superblock): its verdict is asserted as that.</summary>
public class MetadumpDamageTests(ITestOutputHelper output)
{
    private sealed record DumpItem(int Cluster, long ClusterOffset, int Index, ulong Logical, long PayloadOffset, int Stored, byte[] Raw);

    /// <summary>A private copy of the committed dump.</summary>
    private static string CopyDump()
    {
        var path = Path.Combine(ForgeFixtures.TempDir, $"damaged-{Guid.NewGuid():N}.metadump");
        File.Copy(Path.Combine(SourceFixtures.Dir, "kernel-snapshots.metadump-619"), path);
        return path;
    }

    /// <summary>Every item of the dump, decompressed, read here with the format's view (independently of the reader).</summary>
    private static List<DumpItem> Items(string dump)
    {
        var bytes = File.ReadAllBytes(dump);
        var items = new List<DumpItem>();
        long pos = 0;
        for (int cluster = 0; pos + MetadumpCluster.Size <= bytes.Length; cluster++)
        {
            var c = new MetadumpCluster(bytes.AsSpan((int)pos, MetadumpCluster.Size));
            if (c.Magic != MetadumpCluster.MagicV0) break;
            long p = pos + MetadumpCluster.Size;
            for (int i = 0; i < (int)c.NrItems; i++)
            {
                var (logical, stored) = c.Item(i);
                using var z = new ZLibStream(new MemoryStream(bytes, (int)p, (int)stored), CompressionMode.Decompress);
                var raw = new MemoryStream();
                z.CopyTo(raw);
                items.Add(new DumpItem(cluster, pos, i, logical, p, (int)stored, raw.ToArray()));
                p += stored;
            }
            pos = (p + MetadumpCluster.Size - 1) & ~(long)(MetadumpCluster.Size - 1);
        }
        return items;
    }

    /// <summary>The item that holds exactly one block: the UUID tree's only leaf (a tree nothing else depends on).</summary>
    private static DumpItem UuidTreeLeaf(string dump) =>
        Items(dump).Single(it => it.Logical != 65536 && it.Raw.Length == 16384 &&
                                 new Header(it.Raw).Owner == ObjectIds.UuidTree && new Header(it.Raw).Level == 0);

    private void AssertProgsCannotReadIt(string dump)
    {
        var (code, stdout, stderr) = Progs.V619.CheckReadonly(dump);
        output.WriteLine($"btrfs check 6.19: exit {code}\n{stdout}{stderr}");
        Assert.Equal(1, code);
        Assert.Contains("ERROR: cannot open file system", stdout + stderr);
    }

    /// <summary>130: the second cluster's header says it was written at another file offset (its bytenr field). The items
    /// are still where the header sizes put them, so everything is read; the damage is reported once.</summary>
    [Progs619Fact, Covers(FindingCode.MetadumpClusterInvalid)]
    public void ClusterHeaderOfAnotherOffset()
    {
        var dump = CopyDump();
        try
        {
            var second = Items(dump).First(it => it.Cluster == 1);
            using (var f = File.OpenWrite(dump))
            {
                f.Position = second.ClusterOffset + MetadumpCluster.BytenrAt;
                var b = new byte[8];
                BinaryPrimitives.WriteUInt64LittleEndian(b, (ulong)second.ClusterOffset + 4096);
                f.Write(b);
            }
            var findings = Check([dump]);
            AssertExactly(output, findings, Want.Error(FindingCode.MetadumpClusterInvalid));
            Assert.Contains($"says it was written at {second.ClusterOffset + 4096}", findings.Single(x => x.Code == FindingCode.MetadumpClusterInvalid).Message);
            AssertCliFindsErrors([dump], FindingCode.MetadumpClusterInvalid);
            AssertProgsCannotReadIt(dump);
        }
        finally { File.Delete(dump); }
    }

    /// <summary>130 for a dump cut short inside the last cluster's items: what is left is read, the cut is reported,
    /// and every block lost with it is 132 (it is in no item any more), never an exception.</summary>
    [Fact]
    public void TruncatedDumpReadsWhatIsLeft()
    {
        var dump = CopyDump();
        try
        {
            var last = Items(dump)[^1];
            using (var f = new FileStream(dump, FileMode.Open, FileAccess.Write)) f.SetLength(last.PayloadOffset + last.Stored / 2);
            var findings = Check([dump]);
            foreach (var x in findings) output.WriteLine($"  {x.Severity} {x}");
            Assert.Single(findings, x => x.Code == FindingCode.MetadumpClusterInvalid && x.Message.Contains("truncated", StringComparison.Ordinal));
            var lost = Enumerable.Range(0, last.Raw.Length / 16384).Select(k => last.Logical + (ulong)k * 16384).ToHashSet();
            Assert.All(findings.Where(x => x.Code == FindingCode.TreeBlockNotInDump), x => Assert.Contains(x.Bytenr!.Value, lost));
            Assert.Equal(1, RunCli("check", "-q", dump).Exit);
        }
        finally { File.Delete(dump); }
    }

    /// <summary>131: bytes in the middle of the UUID tree leaf's compressed payload overwritten: the item no longer
    /// decompresses; its one block is reported (with what it hides), nothing else.</summary>
    [Progs619Fact, Covers(FindingCode.MetadumpItemCorrupt)]
    public void ItemThatDoesNotDecompress()
    {
        var dump = CopyDump();
        try
        {
            var leaf = UuidTreeLeaf(dump);
            using (var f = File.OpenWrite(dump))
            {
                f.Position = leaf.PayloadOffset + leaf.Stored / 2;
                f.Write(Enumerable.Repeat((byte)0xA5, 16).ToArray());
            }
            var findings = Check([dump]);
            AssertExactly(output, findings, Want.Error(FindingCode.MetadumpItemCorrupt, leaf.Logical), Want.Warning(FindingCode.SubtreeNotChecked, leaf.Logical));
            Assert.Contains("cannot be decompressed", findings.Single(x => x.Code == FindingCode.MetadumpItemCorrupt).Message);
            AssertCliFindsErrors([dump], FindingCode.MetadumpItemCorrupt);
            AssertProgsCannotReadIt(dump);
        }
        finally { File.Delete(dump); }
    }

    /// <summary>132: the UUID tree leaf's item moved to logical 4096 in its cluster header (where no block is): the tree
    /// root points at a block the dump does not hold, as when btrfs-image found no extent item for it.</summary>
    [Progs619Fact, Covers(FindingCode.TreeBlockNotInDump)]
    public void BlockTheDumpDoesNotHold()
    {
        var dump = CopyDump();
        try
        {
            var leaf = UuidTreeLeaf(dump);
            using (var f = File.OpenWrite(dump))
            {
                f.Position = leaf.ClusterOffset + MetadumpCluster.HeaderSize + leaf.Index * MetadumpCluster.ItemSize;
                var b = new byte[8];
                BinaryPrimitives.WriteUInt64LittleEndian(b, 4096);
                f.Write(b);
            }
            var findings = Check([dump]);
            AssertExactly(output, findings, Want.Error(FindingCode.TreeBlockNotInDump, leaf.Logical), Want.Warning(FindingCode.SubtreeNotChecked, leaf.Logical));
            AssertCliFindsErrors([dump], FindingCode.TreeBlockNotInDump);
            AssertProgsCannotReadIt(dump);
        }
        finally { File.Delete(dump); }
    }

    /// <summary>A file that starts with a dump's magic but holds nothing more: one line, exit 3, no stack trace.</summary>
    [Fact]
    public void DumpWithoutSuperblockCannotBeChecked()
    {
        var dump = Path.Combine(ForgeFixtures.TempDir, $"empty-{Guid.NewGuid():N}.metadump");
        var bytes = new byte[2048];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, MetadumpCluster.MagicV0);
        File.WriteAllBytes(dump, bytes);
        try
        {
            var (exit, _, stderr) = RunCli("check", dump);
            Assert.Equal(3, exit);
            Assert.Contains("metadata dump", stderr);
        }
        finally { File.Delete(dump); }
    }
}
