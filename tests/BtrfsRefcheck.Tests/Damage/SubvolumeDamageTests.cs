using System.Buffers.Binary;
using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Forge;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Tests.Oracle;
using BtrfsRefcheck.Tests.Sources;
using Xunit.Abstractions;
using static BtrfsRefcheck.Tests.Damage.DamageSupport;

namespace BtrfsRefcheck.Tests.Damage;

/// <summary>The subvolume semantics pass (800-819) on kernel-snapshots with one thing broken in subvolume 258, a
/// one-leaf subvolume no snapshot shares: root directory 256 naming 13 files (257-269, each an INODE_ITEM, one
/// INODE_REF and one inline EXTENT_DATA). Each test asserts our exact findings and btrfs check 6.19's verdict on the
/// same image (exit code and the words of its report).</summary>
public class SubvolumeDamageTests(ITestOutputHelper output)
{
    private const string Snapshots = "kernel-snapshots";
    private const ulong Subvol = 258;
    private const int NbytesAt = 24, NlinkAt = 40, ModeAt = 52, FlagsAt = 64;

    /// <summary>Copies the image, edits subvolume 258's only leaf, and returns the leaf's address.</summary>
    private static ulong EditSubvolLeaf(ForgedImage img, Action<LeafEditor> edit)
    {
        ulong leaf = Root(img.Paths, Subvol).Bytenr;
        Edit(img.Paths, (ed, _) => edit(ed.Leaf(leaf)));
        return leaf;
    }

    private static int Slot(LeafEditor le, ulong objectid, ItemType type, ulong offset)
    {
        int s = le.Find(new BtrfsKey(objectid, (byte)type, offset));
        Assert.True(s >= 0, $"no ({objectid} {type} {offset}) in the leaf");
        return s;
    }

    /// <summary>btrfs check --readonly 6.19's problem lines on the image. (On the pristine kernel-snapshots it already
    /// exits 1 for two free-space-tree lines, "Space key logical ... has no corresponding block group"; a verdict on
    /// the fs roots is the line "errors found in fs roots".)</summary>
    private List<string> Progs619(ForgedImage img)
    {
        var (code, stdout, stderr) = Progs.V619.CheckReadonly(img.Path);
        var lines = SourceFixtureTests.ProblemLines(stdout + "\n" + stderr);
        output.WriteLine($"btrfs check 6.19: exit {code}\n  " + string.Join("\n  ", lines));
        Assert.Equal(1, code);
        return lines;
    }

    /// <summary>btrfs check 6.19 fails the fs roots and says each of <paramref name="words"/>.</summary>
    private void Progs619Fails(ForgedImage img, params string[] words) => Progs619FailsIn(img, "fs roots", words);

    private void Progs619FailsIn(ForgedImage img, string phase, params string[] words)
    {
        var lines = Progs619(img);
        Assert.Contains("ERROR: errors found in " + phase, lines);
        foreach (var w in words) Assert.Contains(lines, l => l.Contains(w, StringComparison.Ordinal));
    }

    [Progs619Fact, Covers(FindingCode.DirIndexMissing, FindingCode.DirSizeWrong)]
    public void MissingDirIndex()
    {
        using var img = Copy(Snapshots);
        ulong leaf = EditSubvolLeaf(img, le => le.DeleteItem(Slot(le, 256, ItemType.DirIndex, 5)));
        AssertExactly(output, Check(img.Paths), Want.Error(FindingCode.DirIndexMissing, leaf), Want.Error(FindingCode.DirSizeWrong, leaf));
        Progs619Fails(img, "no dir index", "dir isize wrong");
    }

    [Progs619Fact, Covers(FindingCode.InodeRefMissing)]
    public void DirIndexWithAWrongName()
    {
        using var img = Copy(Snapshots);
        ulong leaf = EditSubvolLeaf(img, le => le.Data(Slot(le, 256, ItemType.DirIndex, 6))[30] ^= 0x20); // first name byte
        // the index names the inode with a name it does not have; the name it has lacks its index
        AssertExactly(output, Check(img.Paths), Want.Error(FindingCode.InodeRefMissing, leaf), Want.Error(FindingCode.DirIndexMissing, leaf));
        Progs619Fails(img, "no inode ref", "no dir index");
    }

    [Progs619Fact, Covers(FindingCode.RootDirInvalid)]
    public void NoRootDirectoryInode()
    {
        using var img = Copy(Snapshots);
        ulong leaf = EditSubvolLeaf(img, le => le.DeleteItem(Slot(le, 256, ItemType.InodeItem, 0)));
        AssertExactly(output, Check(img.Paths), Want.Error(FindingCode.RootDirInvalid, leaf));
        Progs619Fails(img, "root 258 inode 256 errors 1, no inode item");
    }

    [Progs619Fact, Covers(FindingCode.InodeItemMissing)]
    public void MissingInodeItem()
    {
        using var img = Copy(Snapshots);
        ulong leaf = EditSubvolLeaf(img, le => le.DeleteItem(Slot(le, 260, ItemType.InodeItem, 0)));
        // and the kernel's rule that an INODE_REF follows its INODE_ITEM (the item validator's 411)
        AssertExactly(output, Check(img.Paths), Want.Error(FindingCode.InodeItemMissing, leaf), Want.Error(FindingCode.InodeRefInvalid, leaf));
        Progs619Fails(img, "root 258 inode 260 errors 2001, no inode item");
    }

    [Progs619Fact, Covers(FindingCode.InodeNbytesWrong)]
    public void WrongNbytes()
    {
        using var img = Copy(Snapshots);
        ulong leaf = EditSubvolLeaf(img, le =>
        {
            var d = le.Data(Slot(le, 262, ItemType.InodeItem, 0));
            BinaryPrimitives.WriteUInt64LittleEndian(d[NbytesAt..], BinaryPrimitives.ReadUInt64LittleEndian(d[NbytesAt..]) + 4096);
        });
        AssertExactly(output, Check(img.Paths), Want.Error(FindingCode.InodeNbytesWrong, leaf));
        Progs619Fails(img, "root 258 inode 262 errors 400, nbytes wrong");
    }

    /// <summary>The only (inline) file extent of a file gone: nbytes no longer adds up (NO_HOLES: no extent is needed for the range).</summary>
    [Progs619Fact]
    public void AllFileExtentsOfAFileMissing()
    {
        using var img = Copy(Snapshots);
        ulong leaf = EditSubvolLeaf(img, le => le.DeleteItem(Slot(le, 263, ItemType.ExtentData, 0)));
        AssertExactly(output, Check(img.Paths), Want.Error(FindingCode.InodeNbytesWrong, leaf));
        Progs619Fails(img, "root 258 inode 263 errors 400, nbytes wrong");
    }

    [Progs619Fact, Covers(FindingCode.InodeLinkCountWrong)]
    public void WrongLinkCount()
    {
        using var img = Copy(Snapshots);
        ulong leaf = EditSubvolLeaf(img, le => BinaryPrimitives.WriteUInt32LittleEndian(le.Data(Slot(le, 264, ItemType.InodeItem, 0))[NlinkAt..], 2));
        AssertExactly(output, Check(img.Paths), Want.Error(FindingCode.InodeLinkCountWrong, leaf));
        Progs619Fails(img, "root 258 inode 264 errors 2000, link count wrong");
    }

    [Progs619Fact, Covers(FindingCode.InodeRefMissing)]
    public void MissingInodeRef()
    {
        using var img = Copy(Snapshots);
        ulong leaf = EditSubvolLeaf(img, le => le.DeleteItem(Slot(le, 265, ItemType.InodeRef, 256)));
        AssertExactly(output, Check(img.Paths), Want.Error(FindingCode.InodeRefMissing, leaf));
        Progs619Fails(img, "no inode ref");
    }

    /// <summary>A DIR_ITEM holding its one entry twice: the same file name twice in a directory.</summary>
    [Progs619Fact, Covers(FindingCode.DuplicateName)]
    public void DuplicateFileName()
    {
        using var img = Copy(Snapshots);
        ulong leaf = EditSubvolLeaf(img, le =>
        {
            int s = Slot(le, 256, ItemType.DirItem, 533687887);
            var entry = le.Data(s).ToArray();
            le.InsertBytes(s, entry.Length, entry);
        });
        // the name twice in one item, and twice for its inode; two DIR_ITEM names for nlink 1; isize short of the names
        AssertExactly(output, Check(img.Paths), Want.Error(FindingCode.DuplicateName, leaf), Want.Error(FindingCode.DuplicateName, leaf),
            Want.Error(FindingCode.InodeLinkCountWrong, leaf), Want.Error(FindingCode.DirSizeWrong, leaf));
        Progs619Fails(img, "dup filename", "link count wrong");
    }

    /// <summary>Bad inode flags, bad mode, a generation beyond the superblock's: single-item rules (410, 420), as before.</summary>
    [Progs619Fact]
    public void BadInodeFlagsModeAndGenerationAreTheItemValidators()
    {
        using (var img = Copy(Snapshots))
        {
            ulong leaf = EditSubvolLeaf(img, le => le.Data(Slot(le, 266, ItemType.InodeItem, 0))[FlagsAt + 2] |= 0x10);
            AssertExactly(output, Check(img.Paths), Want.Error(FindingCode.InodeItemInvalid, leaf));
            // btrfs check 6.19 does not look at unknown inode flag bits (the kernel's tree-checker refuses them): no fs-root error
            Assert.DoesNotContain(Progs619(img), l => l.Contains("fs roots", StringComparison.Ordinal) || l.Contains("inode 266", StringComparison.Ordinal));
        }
        using (var img = Copy(Snapshots))
        {
            ulong leaf = EditSubvolLeaf(img, le => BinaryPrimitives.WriteUInt32LittleEndian(le.Data(Slot(le, 266, ItemType.InodeItem, 0))[ModeAt..], 0xF1A4));
            AssertExactly(output, Check(img.Paths), Want.Error(FindingCode.InodeItemInvalid, leaf));
            Progs619Fails(img, "invalid inode mode");
        }
        using (var img = Copy(Snapshots))
        {
            ulong leaf = EditSubvolLeaf(img, le => BinaryPrimitives.WriteUInt64LittleEndian(le.Data(Slot(le, 266, ItemType.InodeItem, 0)), 1_000_000));
            AssertExactly(output, Check(img.Paths), Want.Error(FindingCode.ItemGenerationTooNew, leaf));
            Progs619Fails(img, "invalid inode generation or transid");
        }
    }

    /// <summary>An item of a type no subvolume tree holds, in subvolume 258: 424, as btrfs check 6.19's "unknown key".</summary>
    [Progs619Fact]
    public void UnknownKeyTypeInASubvolume()
    {
        using var img = Copy(Snapshots);
        ulong leaf = EditSubvolLeaf(img, le => le.InsertSorted(new BtrfsKey(269, 230, 0), new byte[8]));
        AssertExactly(output, Check(img.Paths), Want.Error(FindingCode.ItemNotInSubvolumeTree, leaf));
        Progs619Fails(img, "unknown key");
    }

    [Progs619Fact, Covers(FindingCode.DirItemMissing)]
    public void MissingDirItem()
    {
        using var img = Copy(Snapshots);
        ulong leaf = EditSubvolLeaf(img, le => le.DeleteItem(Slot(le, 256, ItemType.DirItem, 533687887)));
        // no DIR_ITEM names the file now (nlink 1, 0 found), and the directory's names are short of its isize
        AssertExactly(output, Check(img.Paths), Want.Error(FindingCode.DirItemMissing, leaf), Want.Error(FindingCode.InodeLinkCountWrong, leaf),
            Want.Error(FindingCode.DirSizeWrong, leaf));
        Progs619Fails(img, "no dir item", "link count wrong", "dir isize wrong");
    }

    [Progs619Fact, Covers(FindingCode.NameMismatch)]
    public void DirIndexWithAnotherType()
    {
        using var img = Copy(Snapshots);
        ulong leaf = EditSubvolLeaf(img, le => le.Data(Slot(le, 256, ItemType.DirIndex, 7))[29] = 7); // FILE -> SYMLINK
        AssertExactly(output, Check(img.Paths), Want.Error(FindingCode.NameMismatch, leaf));
        Progs619Fails(img, "filetype mismatch");
    }

    [Progs619Fact, Covers(FindingCode.OrphanItemMissing)]
    public void UnlinkedInodeWithoutOrphanItem()
    {
        using var img = Copy(Snapshots);
        ulong leaf = EditSubvolLeaf(img, le => BinaryPrimitives.WriteUInt32LittleEndian(le.Data(Slot(le, 264, ItemType.InodeItem, 0))[NlinkAt..], 0));
        AssertExactly(output, Check(img.Paths), Want.Error(FindingCode.OrphanItemMissing, leaf), Want.Error(FindingCode.InodeLinkCountWrong, leaf));
        Progs619Fails(img, "no orphan item", "link count wrong");
    }

    [Progs619Fact, Covers(FindingCode.InodeContentMismatch)]
    public void FileTurnedDirectory()
    {
        using var img = Copy(Snapshots);
        ulong leaf = EditSubvolLeaf(img, le => BinaryPrimitives.WriteUInt32LittleEndian(le.Data(Slot(le, 264, ItemType.InodeItem, 0))[ModeAt..], 0x41ED));
        // a directory with a file extent, named as a FILE (its isize, 1, is its inline byte: btrfs check counts extents
        // and names in one sum, and so do we)
        AssertExactly(output, Check(img.Paths), Want.Error(FindingCode.InodeContentMismatch, leaf), Want.Error(FindingCode.NameMismatch, leaf));
        Progs619Fails(img, "odd file extent", "filetype mismatch");
    }

    /// <summary>Subvolume 258's ROOT_ITEM says refs 0 while the fs tree's ROOT_REF and DIR_ITEM still reference it.</summary>
    [Progs619Fact, Covers(FindingCode.SubvolumeRefMismatch)]
    public void SubvolumeRefsMismatch()
    {
        using var img = Copy(Snapshots);
        ulong leaf = RootItemLeaf(img);
        Edit(img.Paths, (ed, _) => { var le = ed.Leaf(leaf); BinaryPrimitives.WriteUInt32LittleEndian(le.Data(Slot(le, Subvol, ItemType.RootItem, 0))[RefsAt..], 0); });
        AssertExactly(output, Check(img.Paths), Want.Error(FindingCode.SubvolumeRefMismatch, leaf));
        Progs619FailsIn(img, "root refs", "fs tree 258 refs mismatch found 1 expect 0");
    }

    /// <summary>Subvolume 258 unreferenced (refs 0, its ROOT_REF gone) but with no ORPHAN_ITEM to have it dropped.</summary>
    [Progs619Fact, Covers(FindingCode.SubvolumeOrphanMissing)]
    public void UnreferencedSubvolumeWithoutOrphanItem()
    {
        using var img = Copy(Snapshots);
        ulong leaf = RootItemLeaf(img);
        Edit(img.Paths, (ed, _) =>
        {
            var le = ed.Leaf(leaf);
            BinaryPrimitives.WriteUInt32LittleEndian(le.Data(Slot(le, Subvol, ItemType.RootItem, 0))[RefsAt..], 0);
            le.DeleteItem(Slot(le, ObjectIds.FsTree, ItemType.RootRef, Subvol));
        });
        AssertExactly(output, Check(img.Paths), Want.Error(FindingCode.SubvolumeOrphanMissing, leaf));
        Progs619FailsIn(img, "root refs", "fs tree 258 missing orphan item");
    }

    private const int RefsAt = 160 + 8 + 8 + 8 + 8 + 8 + 8 + 8; // inode, generation, root_dirid, bytenr, byte_limit, bytes_used, last_snapshot, flags

    private static ulong RootItemLeaf(ForgedImage img) => Root(img.Paths, ObjectIds.RootTree).Bytenr;
}
