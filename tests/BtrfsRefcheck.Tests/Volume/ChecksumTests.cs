using BtrfsRefcheck.Checks;
using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Tests.Oracle;
using BtrfsRefcheck.Trees;
using BtrfsRefcheck.Volume;

namespace BtrfsRefcheck.Tests.Volume;

/// <summary>
/// Each checksum type on a real image made by <c>mkfs.btrfs --csum X</c>: the superblock and every copy of every tree
/// block verify; and a byte flipped in copy 0 of a DUP tree block makes the reader reject that copy with
/// <see cref="FindingCode.TreeBlockChecksumMismatch"/> and use copy 1.
/// </summary>
public class ChecksumTests
{
    public static IEnumerable<object[]> CsumFixtures =>
    [
        ["crc32c", ChecksumType.Crc32c, "crc32c"],
        ["xxhash", ChecksumType.XxHash64, "xxhash64"],
        ["sha256", ChecksumType.Sha256, "sha256"],
        ["blake2", ChecksumType.Blake2b, "blake2"],
    ];

    [ProgsTheory]
    [MemberData(nameof(CsumFixtures))]
    public void SuperblockAndEveryTreeBlockCopyVerify(string fixture, ChecksumType type, string progsName)
    {
        var image = MkfsFixtures.Get(fixture);
        // the oracle agrees on the type, so we are not verifying a type mkfs did not write
        Assert.Equal($"{(int)type} ({progsName})", OracleCache.FixtureSuper(fixture)["csum_type"]);

        var findings = new FindingBag();
        using var vol = BtrfsVolume.Open([image], null, findings);
        Assert.Equal(type, vol.CsumType);
        Assert.True(vol.ChosenCopy.IsValid);
        Assert.True(vol.Super.ChecksumValid);
        Assert.All(vol.AllCopies, c => Assert.True(c.IsValid, $"superblock copy {c.Mirror}: {c.Problem}"));

        var blocks = AllTreeBlocks(vol);
        Assert.True(blocks.Count > 10, $"only {blocks.Count} tree blocks");
        var csum = new byte[Checksum.FieldSize];
        int copiesVerified = 0;
        foreach (var bytenr in blocks)
        {
            var read = vol.ReadTreeBlock(bytenr);
            Assert.True(read.Block != null && read.Failures.Count == 0, $"block {bytenr}: {read.Describe()}");
            Assert.Equal(0, read.Block!.Copy);
            var chunk = vol.Chunks.Find(bytenr)!;
            for (int copy = 0; copy < chunk.Copies; copy++)
            {
                var buf = new byte[vol.NodeSize];
                Assert.True(vol.TryReadLogical(bytenr, buf, copy, out var problem), $"block {bytenr} copy {copy}: {problem}");
                Assert.True(Checksum.Verify(type, buf, csum), $"block {bytenr} copy {copy}: {type} checksum does not verify");
                copiesVerified++;

                // the verification is not vacuous: one flipped bit in the covered range fails it
                buf[Checksum.FieldSize + 100] ^= 0x01;
                Assert.False(Checksum.Verify(type, buf, csum), $"block {bytenr}: a flipped bit still verifies");
            }
        }
        Assert.True(copiesVerified > blocks.Count, "metadata is DUP on these fixtures: every block has two copies");
    }

    [ProgsTheory]
    [MemberData(nameof(CsumFixtures))]
    public void FlippedByteInCopy0_IsRejected_AndCopy1IsUsed(string fixture, ChecksumType type, string progsName)
    {
        _ = progsName;
        var image = MkfsFixtures.CopyToTemp(fixture);
        try
        {
            ulong bytenr;
            long physical0;
            using (var vol = BtrfsVolume.Open([image]))
            {
                Assert.Equal(type, vol.CsumType);
                bytenr = vol.Super.Root; // the root tree's root block
                var chunk = vol.Chunks.Find(bytenr)!;
                Assert.Equal(RaidProfile.Dup, chunk.Profile);
                var loc0 = chunk.Map(bytenr, 0, out _);
                var loc1 = chunk.Map(bytenr, 1, out _);
                Assert.NotEqual(loc0.Offset, loc1.Offset);
                physical0 = (long)loc0.Offset;
            }

            // flip one byte in the middle of the block, in copy 0 only
            using (var fs = new FileStream(image, FileMode.Open, FileAccess.ReadWrite))
            {
                long at = physical0 + 5000;
                fs.Position = at;
                int b = fs.ReadByte();
                fs.Position = at;
                fs.WriteByte((byte)(b ^ 0x5A));
            }

            var findings = new FindingBag();
            using var vol2 = BtrfsVolume.Open([image], null, findings);
            var read = vol2.ReadTreeBlock(bytenr);
            Assert.NotNull(read.Block);
            Assert.Equal(1, read.Block!.Copy);
            Assert.Equal(bytenr, read.Block.Logical);
            var f = Assert.Single(read.Failures);
            Assert.Equal(0, f.Copy);
            Assert.Equal(FindingCode.TreeBlockChecksumMismatch, f.Code);

            // the checker reports exactly that: copy 0 of this block is bad, nothing else is wrong
            var report = Checker.Run(vol2, findings);
            var errors = findings.Items.Where(x => x.IsProblem()).ToList();
            var bad = Assert.Single(errors);
            Assert.Equal(FindingCode.TreeBlockBadCopy, bad.Code);
            Assert.Equal(bytenr, bad.Bytenr);
            Assert.Equal(0, bad.Mirror);
            Assert.Equal(1, report.Errors);
        }
        finally
        {
            File.Delete(image);
        }
    }

    private static List<ulong> AllTreeBlocks(BtrfsVolume vol)
    {
        var findings = new FindingBag();
        var visited = new HashSet<ulong>();
        var walker = new TreeWalker(vol, findings);
        foreach (var root in TreeRoots.Enumerate(vol, findings))
            walker.Walk(root, new NullVisitor(), new WalkOptions { Visited = visited });
        Assert.DoesNotContain(findings.Items, f => f.IsProblem());
        return visited.Order().ToList();
    }

    private sealed class NullVisitor : ITreeVisitor
    {
        public bool OnBlock(in BlockContext ctx, TreeBlock block, bool valid) => true;
    }
}
