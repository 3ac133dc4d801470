using System.Buffers.Binary;
using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Forge;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Format.Items;
using BtrfsRefcheck.Tests.Forge;
using BtrfsRefcheck.Tests.Oracle;
using BtrfsRefcheck.Tests.Sources;
using BtrfsRefcheck.Trees;
using BtrfsRefcheck.Volume;
using Xunit.Abstractions;
using static BtrfsRefcheck.Tests.Damage.DamageSupport;
using ImageForge = BtrfsRefcheck.Forge.Forge;

namespace BtrfsRefcheck.Tests.Damage;

/// <summary>The rules issue 10 changed, each able to fail: what a valid filesystem from another source looks like is
/// accepted, and the same place damaged (or an artifact btrfs check 6.19 fails) is still found, by code and bytenr.</summary>
public class SourceDamageTests(ITestOutputHelper output)
{
    private const ulong Copy1 = 64 * 1024 * 1024;
    private const string Snapshots = "kernel-snapshots";

    /// <summary>107: a mirror that is all zeros is a note, not damage; the same mirror with magic but a bad checksum stays 101.</summary>
    [Fact, Covers(FindingCode.SuperblockCopyNeverWritten)]
    public void NeverWrittenMirrorIsANoteButABadOneIsStillAnError()
    {
        using var img = Copy(Snapshots);
        using (var fs = new FileStream(img.Path, FileMode.Open, FileAccess.Write)) { fs.Position = (long)Copy1; fs.Write(new byte[Superblock.Size]); }
        var findings = Check(img.Paths);
        AssertExactly(output, findings);
        var note = Assert.Single(findings, f => f.Code == FindingCode.SuperblockCopyNeverWritten);
        Assert.Equal((Severity.Info, Copy1, 1), (note.Severity, note.Bytenr!.Value, note.Mirror!.Value));
        Assert.Equal(0, RunCli("check", "-q", img.Path).Exit);

        using (var fs = new FileStream(img.Path, FileMode.Open, FileAccess.ReadWrite))
        {
            var sb = new byte[Superblock.Size];
            fs.Position = 64 * 1024; fs.ReadExactly(sb);
            sb[Superblock.LabelAt] ^= 1; // magic present, checksum now wrong
            fs.Position = (long)Copy1; fs.Write(sb);
        }
        AssertExactly(output, Check(img.Paths), Want.Error(FindingCode.SuperblockBadChecksum, Copy1, mirror: 1));
    }

    /// <summary>The restored metadumps in testdata/sources carry 107 for the mirror btrfs-image -r never writes.</summary>
    [Fact]
    public void RestoredMetadumpNamesItsNeverWrittenMirror()
    {
        var findings = Check(SourceFixtures.Images("kernel-snapshots.restored-62"));
        AssertExactly(output, findings);
        Assert.Contains(findings, f => f.Code == FindingCode.SuperblockCopyNeverWritten && f.Bytenr == Copy1);
        using var vol = Open(SourceFixtures.Images("kernel-snapshots.restored-62"));
        Assert.Contains(vol.Notes, n => n.Contains("btrfs-image -r", StringComparison.Ordinal));
    }

    /// <summary>424: an item of a type no subvolume tree holds, appended to the last leaf of the fs tree.</summary>
    [Fact, Covers(FindingCode.ItemNotInSubvolumeTree)]
    public void UnknownKeyTypeInFsTreeIsAnError()
    {
        using var img = Copy(Snapshots);
        ulong leaf = 0;
        Edit(img.Paths, (ed, _) =>
        {
            leaf = RightmostLeaf(ed.Volume, ObjectIds.FsTree);
            var le = ed.Leaf(leaf);
            var last = le.Key(le.NrItems - 1);
            le.InsertItem(le.NrItems, new BtrfsKey(last.ObjectId, 230, ulong.MaxValue), new byte[8]);
        });
        AssertExactly(output, Check(img.Paths), Want.Error(FindingCode.ItemNotInSubvolumeTree, leaf));
        AssertCliFindsErrors(img.Paths, FindingCode.ItemNotInSubvolumeTree);
    }

    /// <summary>425: the old free inode cache (inode FREE_INO in the fs tree), which btrfs check 6.19 fails.</summary>
    [Fact, Covers(FindingCode.DeprecatedInodeCache)]
    public void OldInodeCacheIsNamed()
    {
        using var img = Copy(Snapshots);
        ulong leaf = 0;
        Edit(img.Paths, (ed, _) =>
        {
            leaf = RightmostLeaf(ed.Volume, ObjectIds.FsTree);
            var inode = new byte[InodeItem.Size];
            BinaryPrimitives.WriteUInt64LittleEndian(inode, 1);                  // generation
            BinaryPrimitives.WriteUInt64LittleEndian(inode.AsSpan(8), 1);        // transid
            BinaryPrimitives.WriteUInt32LittleEndian(inode.AsSpan(40), 1);       // nlink
            BinaryPrimitives.WriteUInt32LittleEndian(inode.AsSpan(52), 0x81A4); // mode: regular file 0644
            ed.Leaf(leaf).InsertSorted(new BtrfsKey(ObjectIds.FreeIno, (byte)ItemType.InodeItem, 0), inode);
        });
        var findings = Check(img.Paths);
        AssertExactly(output, findings, Want.Error(FindingCode.DeprecatedInodeCache, leaf));
        Assert.Contains("clear-ino-cache", Assert.Single(findings, f => f.Code == FindingCode.DeprecatedInodeCache).Message);
    }

    /// <summary>Older mkfs wrote the root inode's ROOT_ITEM_INIT flag sign-extended (0xffffffff80000000): accepted. Other
    /// unknown high bits still are not.</summary>
    [Fact]
    public void SignExtendedRootInodeFlagsAreAcceptedOtherBitsAreNot()
    {
        using var img = Copy(Snapshots);
        var (leaf, slot) = FindRootItem(img.Paths, ObjectIds.FsTree);
        const int InodeFlagsAt = 64; // btrfs_inode_item.flags
        void SetFlags(ulong flags) => Edit(img.Paths, (ed, _) => BinaryPrimitives.WriteUInt64LittleEndian(ed.Leaf(leaf).Data(slot)[InodeFlagsAt..], flags));
        SetFlags(0xFFFF_FFFF_8000_0000UL);
        AssertExactly(output, Check(img.Paths));
        SetFlags(0xFFFF_FFFE_8000_0000UL);
        Assert.Contains(Check(img.Paths), f => f.Code == FindingCode.InodeItemInvalid && f.Bytenr == leaf && f.IsProblem());
    }

    /// <summary>Unknown incompat bits: refused in one line naming the bit, exit 3 (the kernel refuses the mount); unknown
    /// compat_ro bits: checked, with a note that says what was not understood; dump-super still shows the superblock.</summary>
    [Fact]
    public void UnknownIncompatBitIsRefusedUnknownCompatRoIsNoted()
    {
        using var img = Copy(Snapshots);
        ulong incompat, compatRo;
        using (var vol = Open(img.Paths)) (incompat, compatRo) = (vol.Super.IncompatFlags, vol.Super.CompatRoFlags);
        img.PatchSuperblockU64(Superblock.CompatRoFlagsAt, compatRo | 1UL << 20);
        var (exit, stdout, _) = RunCli("check", img.Path);
        Assert.Equal(0, exit);
        Assert.Contains("compat_ro feature unknown flag: 0x100000", stdout);

        img.PatchSuperblockU64(Superblock.IncompatFlagsAt, incompat | 1UL << 40);
        (exit, stdout, var stderr) = RunCli("check", img.Path);
        Assert.Equal(3, exit);
        Assert.Single(stderr.Trim().Split('\n'));
        Assert.Contains("unknown flag: 0x10000000000", stderr);
        Assert.Equal(0, RunCli("dump-super", img.Path).Exit);
    }

    /// <summary>The forge's duplicate tree-block owner (500) is found, exactly, on the new-era images: block-group-tree
    /// (mkfs 6.19 defaults), squota and zoned.</summary>
    [Theory]
    [InlineData("mkfs619-defaults")]
    [InlineData("mkfs619-squota")]
    [InlineData("mkfs619-zoned")]
    public void DuplicateTreeBlockRefIsFoundOnNewEraImages(string set)
    {
        using var img = ImageForge.CopyAll(SourceFixtures.Images(set), ForgeFixtures.TempDir);
        var defect = Defects.Get("duplicate-tree-block-ref").Apply(img);
        output.WriteLine($"{set}: {defect.Description}");
        AssertExactly(output, Check(img.Paths), Want.Error(FindingCode.DuplicateTreeBlockRef, defect.Bytenr));
        AssertCliFindsErrors(img.Paths, FindingCode.DuplicateTreeBlockRef);
    }

    /// <summary>A seed and its sprout assemble (two fsids); the sprout alone misses its seed device; a device of an
    /// unrelated filesystem is still refused.</summary>
    [Fact]
    public void SeedAndSproutAssembleOtherFilesystemsDoNot()
    {
        var set = SourceFixtures.Images("seed-sprout");
        AssertExactly(output, Check(set));
        Assert.Contains(Check([set[0]]), f => f.Code == FindingCode.DeviceMissing && f.Severity == Severity.Error);
        var (exit, _, stderr) = RunCli("check", set[0], KernelFixtures.Expand("kernel-logtree"));
        Assert.Equal(3, exit);
        Assert.Contains("holds another filesystem", stderr);
    }

    /// <summary>Half-dropped snapshot: what lies before drop_progress is not walked. The same ROOT_ITEM with drop_progress
    /// cleared makes the freed part count again, which the extent tree no longer backs (so the rule can fail).</summary>
    [Fact]
    public void HalfDroppedSnapshotIsWalkedOnlyWhereTheCleanerHasNotBeen()
    {
        using var img = ImageForge.CopyAll(SourceFixtures.Images("kernel-halfdropped"), ForgeFixtures.TempDir);
        AssertExactly(output, Check(img.Paths));
        TreeRoot dropping;
        using (var vol = Open(img.Paths)) dropping = TreeRoots.Enumerate(vol, new FindingBag()).Single(r => r.IsDropping);
        var (leaf, slot) = FindRootItem(img.Paths, dropping.Id);
        const int DropProgressAt = 160 + 8 * 7 + 4; // inode, 7 u64 fields, refs
        Edit(img.Paths, (ed, _) => ed.Leaf(leaf).Data(slot).Slice(DropProgressAt, BtrfsKey.Size).Clear());
        var bad = Check(img.Paths).Where(f => f.IsProblem()).ToList();
        Assert.Contains(bad, f => f.Code is FindingCode.MissingTreeBlockRef or FindingCode.TreeBlockNoExtentItem or FindingCode.TreeBlockChecksumMismatch);
    }

    /// <summary>A zoned device's superblocks live in log zones: entries appended in zone 0 (then 1), the newest valid one
    /// in use. An image copied from such a device has no superblock at 64 KiB; with --zone-size it is read from the log.</summary>
    [Fact]
    public void SuperblockIsReadFromTheLogZonesOfAZonedDeviceCopy()
    {
        using var img = ImageForge.CopyAll(SourceFixtures.Images("mkfs619-zoned"), ForgeFixtures.TempDir);
        const long Zone = 256L << 20;
        var sb = new byte[Superblock.Size];
        using (var fs = new FileStream(img.Path, FileMode.Open, FileAccess.ReadWrite))
        {
            fs.Position = 65536; fs.ReadExactly(sb);
            ulong gen = BinaryPrimitives.ReadUInt64LittleEndian(sb.AsSpan(Superblock.GenerationAt));
            var older = (byte[])sb.Clone();
            BinaryPrimitives.WriteUInt64LittleEndian(older.AsSpan(Superblock.GenerationAt), gen - 1);
            Checksum.Compute(ChecksumType.Crc32c, older.AsSpan(Checksum.FieldSize), older.AsSpan(0, Checksum.FieldSize));
            fs.Position = 0; fs.Write(older);          // log entry 0: the commit before
            fs.Position = Superblock.Size; fs.Write(sb); // log entry 1: the newest
            fs.Position = 65536; fs.Write(new byte[Superblock.Size]);
        }
        Assert.Equal(3, RunCli("check", img.Path).Exit); // no superblock at 64 KiB
        var findings = Check(img.Paths, new VolumeOptions { ZoneSize = Zone });
        AssertExactly(output, findings);
        using (var vol = BtrfsVolume.Open(img.Paths, new VolumeOptions { ZoneSize = Zone }))
            Assert.Equal((Superblock.Size, 0), (vol.ChosenCopy.Offset, vol.ChosenCopy.Mirror));
        Assert.Equal(0, RunCli("check", "--zone-size", Zone.ToString(), img.Path).Exit);
    }

    /// <summary>Kernels before 5.8 gave the data reloc tree a relocation tree too; an interrupted balance of theirs leaves a
    /// ROOT_ITEM (TREE_RELOC, ROOT_ITEM, DATA_RELOC_TREE). No current kernel makes one, so it is forged on the real
    /// interrupted balance: a relocation root that shares the data reloc tree's root block (which gains the
    /// SHARED_BLOCK_REF to itself that a relocation root's block carries, refs + 1). Accepted; the same item naming the
    /// extent tree is 402.</summary>
    [Theory]
    [InlineData(ObjectIds.DataRelocTree, false)]
    [InlineData(ObjectIds.ExtentTree, true)]
    public void RelocationTreeOfTheDataRelocTree(ulong relocOf, bool invalid)
    {
        using var img = ImageForge.CopyAll(SourceFixtures.Images("kernel-reloc"), ForgeFixtures.TempDir);
        ulong rootLeaf = 0;
        Edit(img.Paths, (ed, scan) =>
        {
            var (drLeaf, drSlot) = TreeBlockPlacement.RootItem(ed.Volume, ObjectIds.DataRelocTree);
            var rootItem = ed.Leaf(drLeaf).Data(drSlot).ToArray();
            ulong block = BinaryPrimitives.ReadUInt64LittleEndian(rootItem.AsSpan(RootItemFields.BytenrAt));
            (rootLeaf, _) = TreeBlockPlacement.RootItem(ed.Volume, ObjectIds.TreeReloc);
            ed.Leaf(rootLeaf).InsertSorted(new BtrfsKey(ObjectIds.TreeReloc, (byte)ItemType.RootItem, relocOf), rootItem);

            var x = scan.ExtentAt(block) ?? throw new InvalidOperationException("no extent item for the data reloc root");
            var tbr = x.InlineRefs.Single(r => r.Type == ItemType.TreeBlockRef && r.Root == ObjectIds.DataRelocTree);
            var el = ed.Leaf(x.Leaf);
            int slot = el.Find(x.Key);
            var reloc = new byte[9]; // a relocation root references its root block as its own parent
            reloc[0] = (byte)ItemType.SharedBlockRef;
            BinaryPrimitives.WriteUInt64LittleEndian(reloc.AsSpan(1), block);
            el.InsertBytes(slot, tbr.ItemOffset + 9, reloc); // after the TREE_BLOCK_REF: types ascend
            var data = el.Data(slot);
            BinaryPrimitives.WriteUInt64LittleEndian(data, BinaryPrimitives.ReadUInt64LittleEndian(data) + 1);
        });
        var findings = Check(img.Paths);
        if (invalid) AssertExactly(output, findings, Want.Error(FindingCode.RootItemInvalid, rootLeaf));
        else AssertExactly(output, findings);
        using var vol = Open(img.Paths);
        Assert.Contains(TreeRoots.Enumerate(vol, new FindingBag()), r => r.IsReloc && r.KeyOffset == relocOf);
    }

    private static (ulong Leaf, int Slot) FindRootItem(IReadOnlyList<string> paths, ulong id)
    {
        using var vol = Open(paths);
        return TreeBlockPlacement.RootItem(vol, id);
    }

    /// <summary>The last leaf of a tree: down the last pointer of each node.</summary>
    private static ulong RightmostLeaf(BtrfsVolume vol, ulong treeId)
    {
        var root = TreeRoots.Enumerate(vol, new FindingBag()).Single(r => r.Id == treeId && r.Source == RootSource.RootItem);
        ulong at = root.Bytenr;
        for (int i = 0; i < Header.MaxLevel; i++)
        {
            var view = vol.ReadTreeBlock(at).Block!.View;
            if (view.IsLeaf) return at;
            at = view.KeyPtr(view.Count - 1).BlockPtr;
        }
        throw new InvalidOperationException("no leaf");
    }
}
