using System.Buffers.Binary;
using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Forge;
using BtrfsRefcheck.Tests.Oracle;
using BtrfsRefcheck.Format;
using Xunit.Abstractions;
using static BtrfsRefcheck.Tests.Damage.DamageSupport;

namespace BtrfsRefcheck.Tests.Damage;

/// <summary>901 and 902, the backup-root paths, on crc32c.
/// <para>A real backup root names the trees of an earlier commit, whose blocks the allocator may have reused since: what
/// a check of that generation finds depends on how much of it survived, which is not a fixed, assertable set. So the forge
/// builds a backup that is whole: the root (or chunk) tree's root block is copied to free space of its block group (header
/// bytenr and checksum updated, every copy), its extent item moves with it, and the backup slot of the current commit is
/// pointed at the copy; then every copy of the block the superblock names gets a bad checksum. The checked generation is
/// then the current one, and the fallback itself is the only finding.</para></summary>
public class FallbackDamageTests(ITestOutputHelper output)
{
    /// <summary>Copies the block at <paramref name="from"/> into the first free range of a <paramref name="type"/> block group,
    /// moves its extent item along, and sets field <paramref name="backupFieldAt"/> of the backup slot whose tree root is
    /// the superblock's (the current commit's) to the copy. Returns (slot, copy address).</summary>
    private static (int Slot, ulong Copy) BackupCopyOf(IReadOnlyList<string> paths, ulong from, BlockGroupFlags type, int backupFieldAt)
    {
        using var vol = Open(paths);
        var scan = ImageScan.Run(vol);
        int slot = Enumerable.Range(0, Superblock.BackupRootCount).Single(i => vol.Super.GetBackupRoot(i).TreeRoot == vol.Super.Root);
        ulong copy = TreeBlockPlacement.FreeRanges(vol, scan, type).First();
        var ed = new BlockEdits(vol);
        TreeBlockPlacement.WriteAt(vol, vol.ReadTreeBlock(from).Block!.Data, copy);
        TreeBlockPlacement.MoveExtentItem(ed, scan, from, copy);
        ed.PatchSuper(s => BinaryPrimitives.WriteUInt64LittleEndian(s[(SuperblockDamage.BackupRootAt(slot) + backupFieldAt)..], copy));
        ed.Commit();
        return (slot, copy);
    }

    private static void BreakEveryCopy(ForgedImage img, ulong logical)
    {
        int copies;
        using (var vol = Open(img.Paths)) copies = vol.Chunks.Find(logical)!.Copies;
        for (int c = 0; c < copies; c++) img.CorruptBytes(logical, c, 1000, 1, fixChecksum: false);
    }

    /// <summary>901: the superblock's root tree block is unreadable; the newest backup root with another readable root tree
    /// is used, and reported at the superblock's root (expected) with the backup's (found). The trees it leads to are the
    /// current ones, so nothing else is found; the unreadable block itself is not reported again (no walk starts there).
    /// The same image checked with <c>--backup-root N</c> (that slot, asked for) uses it without a finding: exit 0.</summary>
    [ProgsFact, Covers(FindingCode.RootTreeFallback)]
    public void UnreadableRootTree_BackupRootIsUsed()
    {
        using var img = Copy("crc32c");
        ulong root;
        using (var vol = Open(img.Paths)) root = vol.Super.Root;
        var (slot, copy) = BackupCopyOf(img.Paths, root, BlockGroupFlags.Metadata, SuperblockDamage.BackupTreeRootAt);
        BreakEveryCopy(img, root);

        var findings = Check(img.Paths);
        AssertExactly(output, findings, Want.Error(FindingCode.RootTreeFallback, root));
        var f = findings.Single(x => x.Code == FindingCode.RootTreeFallback);
        Assert.Equal((root.ToString(), copy.ToString()), (f.Expected, f.Found));
        using (var vol = Open(img.Paths)) Assert.Equal((copy, (int?)slot), (vol.RootTree.Bytenr, vol.RootTree.BackupIndex));

        var (exit, stdout, _) = RunCli("check", img.Path);
        Assert.Equal(1, exit);
        Assert.Contains("[901 RootTreeFallback]", stdout);

        (exit, stdout, _) = RunCli("check", "--backup-root", slot.ToString(), img.Path);
        Assert.True(exit == 0, stdout);
        Assert.Contains($"note: using backup root {slot}: root tree {copy}", stdout);
        Assert.DoesNotContain("[901", stdout);
    }

    /// <summary>902: the superblock's chunk root is unreadable; a backup root's chunk root maps the addresses instead (the
    /// copy in free space of the SYSTEM chunk). Reported at the superblock's chunk root; the chunk tree is then walked from
    /// the copy, whose extent item moved with it, so nothing else is found.</summary>
    [ProgsFact, Covers(FindingCode.ChunkTreeFallback)]
    public void UnreadableChunkRoot_BackupChunkRootIsUsed()
    {
        using var img = Copy("crc32c");
        ulong chunkRoot;
        using (var vol = Open(img.Paths))
        {
            chunkRoot = vol.Super.ChunkRoot;
            Assert.Contains(Enumerable.Range(0, Superblock.BackupRootCount), i =>
            {
                var b = vol.Super.GetBackupRoot(i);
                return b.TreeRoot == vol.Super.Root && b.ChunkRoot == chunkRoot; // the current commit's slot names this chunk root
            });
        }
        var (slot, copy) = BackupCopyOf(img.Paths, chunkRoot, BlockGroupFlags.System, SuperblockDamage.BackupChunkRootAt);
        BreakEveryCopy(img, chunkRoot);

        var findings = Check(img.Paths);
        AssertExactly(output, findings, Want.Error(FindingCode.ChunkTreeFallback, chunkRoot));
        Assert.Equal(copy.ToString(), findings.Single(x => x.Code == FindingCode.ChunkTreeFallback).Found);
        using (var vol = Open(img.Paths)) Assert.Equal((copy, (int?)slot), (vol.ChunkTree.Bytenr, vol.ChunkTree.BackupIndex));
        AssertCliFindsErrors(img.Paths, FindingCode.ChunkTreeFallback);
    }
}
