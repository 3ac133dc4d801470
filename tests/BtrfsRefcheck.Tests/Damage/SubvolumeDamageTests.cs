using System.Buffers.Binary;
using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Forge;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Tests.Oracle;
using BtrfsRefcheck.Tests.Sources;
using BtrfsRefcheck.Volume;
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

    /// <summary>File 264 made an empty directory (no extent, isize 0, entries typed DIR), then given a second name
    /// "t-0007b" in the root directory (INODE_REF entry, DIR_ITEM and DIR_INDEX 15, the root's isize grown to match):
    /// a directory with two names, nlink 1.</summary>
    [Progs619Fact, Covers(FindingCode.DirectoryHardLink)]
    public void HardLinkToADirectory()
    {
        using var img = Copy(Snapshots);
        var name = "t-0007b"u8.ToArray();
        ulong leaf = EditSubvolLeaf(img, le =>
        {
            var ii = le.Data(Slot(le, 264, ItemType.InodeItem, 0));
            BinaryPrimitives.WriteUInt32LittleEndian(ii[ModeAt..], 0x41ED);
            BinaryPrimitives.WriteUInt64LittleEndian(ii[16..], 0); // isize
            BinaryPrimitives.WriteUInt64LittleEndian(ii[NbytesAt..], 0);
            le.DeleteItem(Slot(le, 264, ItemType.ExtentData, 0));
            le.Data(Slot(le, 256, ItemType.DirItem, (ulong)Trees.ItemValidation.DirItemValidator.NameHash("t-0007"u8)))[29] = 2; // now a DIR
            le.Data(Slot(le, 256, ItemType.DirIndex, 9))[29] = 2;
            var root = le.Data(Slot(le, 256, ItemType.InodeItem, 0));
            BinaryPrimitives.WriteUInt64LittleEndian(root[16..], BinaryPrimitives.ReadUInt64LittleEndian(root[16..]) + 2UL * (ulong)name.Length);
            var refEntry = new byte[10 + name.Length];
            BinaryPrimitives.WriteUInt64LittleEndian(refEntry, 15);
            BinaryPrimitives.WriteUInt16LittleEndian(refEntry.AsSpan(8), (ushort)name.Length);
            name.CopyTo(refEntry, 10);
            int r = Slot(le, 264, ItemType.InodeRef, 256);
            le.InsertBytes(r, le.DataSize(r), refEntry);
            var entry = DirEntry(264, 2, name);
            le.InsertSorted(new BtrfsKey(256, (byte)ItemType.DirItem, (ulong)Trees.ItemValidation.DirItemValidator.NameHash(name)), entry);
            le.InsertSorted(new BtrfsKey(256, (byte)ItemType.DirIndex, 15), entry);
        });
        AssertExactly(output, Check(img.Paths), Want.Error(FindingCode.DirectoryHardLink, leaf));
        Progs619Fails(img, "root 258 inode 264 errors 2000, link count wrong");
    }

    /// <summary>A dir entry (30-byte header and name) naming inode <paramref name="ino"/> with type <paramref name="type"/>.</summary>
    private static byte[] DirEntry(ulong ino, byte type, byte[] name)
    {
        var e = new byte[30 + name.Length];
        new BtrfsKey(ino, (byte)ItemType.InodeItem, 0).Write(e);
        BinaryPrimitives.WriteUInt64LittleEndian(e.AsSpan(17), 22); // transid
        BinaryPrimitives.WriteUInt16LittleEndian(e.AsSpan(25), 0); // data_len
        BinaryPrimitives.WriteUInt16LittleEndian(e.AsSpan(27), (ushort)name.Length);
        e[29] = type;
        name.CopyTo(e, 30);
        return e;
    }

    /// <summary>NO_HOLES cleared in the superblock (a filesystem made without it) and file 263's only extent gone: its
    /// extents no longer cover [0, isize), and nbytes no longer adds up.</summary>
    [Progs619Fact, Covers(FindingCode.FileExtentHole)]
    public void HoleWithoutNoHoles()
    {
        using var img = Copy(Snapshots);
        ulong leaf = Root(img.Paths, Subvol).Bytenr;
        Edit(img.Paths, (ed, _) =>
        {
            ed.PatchSuper(sb => BinaryPrimitives.WriteUInt64LittleEndian(sb[Superblock.IncompatFlagsAt..],
                BinaryPrimitives.ReadUInt64LittleEndian(sb[Superblock.IncompatFlagsAt..]) & ~Features.IncompatNoHoles));
            var le = ed.Leaf(leaf);
            le.DeleteItem(Slot(le, 263, ItemType.ExtentData, 0));
        });
        // the fixture's sparse files (written with NO_HOLES, so with implicit holes) are now holes too, in the fs tree
        // (inodes 5834, 5694) and in snapshot 259 (5834): btrfs check 6.19 names them as well
        AssertExactly(output, Check(img.Paths), Want.Error(FindingCode.FileExtentHole, leaf), Want.Error(FindingCode.InodeNbytesWrong, leaf),
            Want.Error(FindingCode.FileExtentHole, 43155456), Want.Error(FindingCode.FileExtentHole, 46350336), Want.Error(FindingCode.FileExtentHole, 47349760));
        Progs619Fails(img, "root 258 inode 263 errors 500, file extent discount, nbytes wrong", "root 5 inode 5834 errors 100, file extent discount",
            "root 5 inode 5694 errors 100, file extent discount", "root 259 inode 5834 errors 100, file extent discount");
    }

    /// <summary>File 267's regular extent marked zlib-compressed while the inode has NODATASUM.</summary>
    [Progs619Fact, Covers(FindingCode.FileExtentWrongForInode)]
    public void CompressedExtentInANodatasumInode()
    {
        using var img = Copy(Snapshots);
        ulong leaf = EditSubvolLeaf(img, le =>
        {
            le.Data(Slot(le, 267, ItemType.InodeItem, 0))[FlagsAt] |= 1; // NODATASUM
            le.Data(Slot(le, 267, ItemType.ExtentData, 0))[16] = 1; // zlib
        });
        AssertExactly(output, Check(img.Paths), Want.Error(FindingCode.FileExtentWrongForInode, leaf));
        Progs619Fails(img, "root 258 inode 267 errors", "bad file extent");
    }

    /// <summary>Subvolume 258's only leaf unreadable (a byte changed in every copy, checksum not fixed): the scan reports
    /// it; this pass says, as a note, that the tree's inodes and names were not checked.</summary>
    [Fact, Covers(FindingCode.SubvolumeNotChecked)]
    public void HiddenLeafIsNotChecked()
    {
        using var img = Copy(Snapshots);
        ulong leaf = Root(img.Paths, Subvol).Bytenr;
        int copies;
        using (var vol = Open(img.Paths)) copies = vol.Chunks.Find(leaf)!.Copies;
        for (int c = 0; c < copies; c++) img.CorruptBytes(leaf, c, 3000, 1, fixChecksum: false);
        var findings = Check(img.Paths);
        foreach (var f in findings) output.WriteLine($"{f.Severity} {f}");
        var note = Assert.Single(findings, f => f.Code == FindingCode.SubvolumeNotChecked);
        Assert.Equal((Severity.Info, leaf, Subvol), (note.Severity, note.Bytenr!.Value, note.Tree!.Value));
        Assert.Contains(findings, f => f.Code == FindingCode.TreeBlockChecksumMismatch && f.Bytenr == leaf);
        Assert.DoesNotContain(findings, f => (int)f.Code is >= 800 and < 900 && f.Code != FindingCode.SubvolumeNotChecked);
    }

    /// <summary>The name defects forged above (and a few more that only the fingerprints would have to see), each on
    /// subvolume 258's leaf: the fast path must not verify the tree (a false "consistent" would hide the damage), and the
    /// check's findings are exactly those of the exact join alone (every tree joined, no fast path).</summary>
    public static readonly Dictionary<string, Action<LeafEditor>> NameDefects = new()
    {
        ["MissingDirIndex"] = le => le.DeleteItem(Slot(le, 256, ItemType.DirIndex, 5)),
        ["DirIndexWithAWrongName"] = le => le.Data(Slot(le, 256, ItemType.DirIndex, 6))[30] ^= 0x20,
        ["NoRootDirectoryInode"] = le => le.DeleteItem(Slot(le, 256, ItemType.InodeItem, 0)),
        ["MissingInodeItem"] = le => le.DeleteItem(Slot(le, 260, ItemType.InodeItem, 0)),
        ["WrongLinkCount"] = le => BinaryPrimitives.WriteUInt32LittleEndian(le.Data(Slot(le, 264, ItemType.InodeItem, 0))[NlinkAt..], 2),
        ["MissingInodeRef"] = le => le.DeleteItem(Slot(le, 265, ItemType.InodeRef, 256)),
        ["DuplicateFileName"] = le =>
        {
            int s = Slot(le, 256, ItemType.DirItem, 533687887);
            var entry = le.Data(s).ToArray();
            le.InsertBytes(s, entry.Length, entry);
        },
        ["MissingDirItem"] = le => le.DeleteItem(Slot(le, 256, ItemType.DirItem, 533687887)),
        ["DirIndexWithAnotherType"] = le => le.Data(Slot(le, 256, ItemType.DirIndex, 7))[29] = 7,
        ["UnlinkedInodeWithoutOrphanItem"] = le => BinaryPrimitives.WriteUInt32LittleEndian(le.Data(Slot(le, 264, ItemType.InodeItem, 0))[NlinkAt..], 0),
        ["FileTurnedDirectory"] = le => BinaryPrimitives.WriteUInt32LittleEndian(le.Data(Slot(le, 264, ItemType.InodeItem, 0))[ModeAt..], 0x41ED),
        ["FileTurnedSymlink"] = le => BinaryPrimitives.WriteUInt32LittleEndian(le.Data(Slot(le, 264, ItemType.InodeItem, 0))[ModeAt..], 0xA1FF),
        // the INODE_REF's index (its first 8 bytes) no longer the DIR_INDEX's key offset
        ["InodeRefWithAnotherIndex"] = le => le.Data(Slot(le, 266, ItemType.InodeRef, 256))[0] ^= 0x40,
        // the INODE_REF's name changed (its first name byte, after index and name_len)
        ["InodeRefWithAnotherName"] = le => le.Data(Slot(le, 267, ItemType.InodeRef, 256))[10] ^= 0x01,
        // the DIR_INDEX naming inode 268 now names inode 269 (the location key's objectid)
        ["DirIndexNamingAnotherInode"] = le =>
        {
            var d = le.Data(Slot(le, 256, ItemType.DirIndex, 13));
            BinaryPrimitives.WriteUInt64LittleEndian(d, BinaryPrimitives.ReadUInt64LittleEndian(d) + 1);
        },
        // the root directory's INODE_REF ".." given index 1
        ["RootDirDotDotIndex"] = le => le.Data(Slot(le, 256, ItemType.InodeRef, 256))[0] = 1,
        ["RootDirNlink"] = le => BinaryPrimitives.WriteUInt32LittleEndian(le.Data(Slot(le, 256, ItemType.InodeItem, 0))[NlinkAt..], 2),
    };

    public static IEnumerable<object[]> NameDefectNames => NameDefects.Keys.Select(k => new object[] { k });

    [Theory]
    [MemberData(nameof(NameDefectNames))]
    public void FastPathRejectsEveryNameDefect(string defect)
    {
        using var img = Copy(Snapshots);
        ulong leaf = EditSubvolLeaf(img, NameDefects[defect]);
        var (fast, fastStats) = CheckWith(img.Paths, exactOnly: false);
        var (exact, exactStats) = CheckWith(img.Paths, exactOnly: true);
        foreach (var f in exact) output.WriteLine($"  exact: {f.Severity} {f}");
        // a defect of names: the exact join reports it, in subvolume 258's leaf
        Assert.Contains(exact, f => (int)f.Code is >= 800 and < 820 && f.Bytenr == leaf && f.Tree == Subvol);
        // the fast path verified every other tree (none shares the leaf) and sent subvolume 258 to the exact join
        Assert.Equal(1, fastStats.SubvolumeTreesJoined);
        Assert.Equal(exactStats.SubvolumeTreesJoined - 1, fastStats.SubvolumeTreesFast);
        Assert.Equal(0, exactStats.SubvolumeTreesFast);
        Assert.Equal(exact.Select(Line), fast.Select(Line));
    }

    /// <summary>A leaf the fs tree shares with its snapshots (31670272: inodes 714-716 of directory 621) given a wrong
    /// nlink for inode 715: the fast path verifies none of the trees holding it, and the exact join reports the inode once
    /// for all of them, as the exact join alone does.</summary>
    [Fact]
    public void FastPathRejectsEveryTreeSharingADamagedLeaf()
    {
        using var img = Copy(Snapshots);
        const ulong leaf = 31670272;
        Edit(img.Paths, (ed, _) =>
        {
            var le = ed.Leaf(leaf);
            BinaryPrimitives.WriteUInt32LittleEndian(le.Data(Slot(le, 715, ItemType.InodeItem, 0))[NlinkAt..], 2);
        });
        var (fast, fastStats) = CheckWith(img.Paths, exactOnly: false);
        var (exact, _) = CheckWith(img.Paths, exactOnly: true);
        foreach (var f in fast) output.WriteLine($"  {f.Severity} {f}");
        var wrong = Assert.Single(fast, f => f.Code == FindingCode.InodeLinkCountWrong);
        Assert.Equal((leaf, ObjectIds.FsTree), (wrong.Bytenr!.Value, wrong.Tree!.Value));
        Assert.Contains("snapshot(s) sharing these items", wrong.Message);
        Assert.True(fastStats.SubvolumeTreesJoined >= 2, $"{fastStats.SubvolumeTreesJoined} trees joined");
        Assert.True(fastStats.SubvolumeTreesFast >= 1);
        Assert.Equal(exact.Select(Line), fast.Select(Line));
        // a leaf per window: the shared leaf's summary serves every tree holding it before it is dropped
        Assert.Equal(fast.Select(Line), CheckWith(img.Paths, exactOnly: false, window: 1).Findings.Select(Line));
        Assert.Equal(exact.Select(Line), CheckWith(img.Paths, exactOnly: true, window: 1).Findings.Select(Line));
    }

    /// <summary>Leaf 33423360, which the fs tree shares with snapshot 259, ends with inode 1461; the two trees go on to
    /// different leaves (45711360 and 33390592, both starting with inode 1462), so in windows of one leaf they close 1461
    /// in different windows, the fs tree after the end of the window in which 259 closed it. With 1461's nbytes wrong the
    /// finding is made once for both, as in one window (a run forgotten while a tree still had it open would be closed and
    /// reported twice).</summary>
    [Fact]
    public void WindowedJoinClosesASharedInodeOnce()
    {
        using var img = Copy(Snapshots);
        const ulong leaf = 33423360;
        Edit(img.Paths, (ed, _) =>
        {
            var le = ed.Leaf(leaf);
            Assert.Equal(1461UL, le.Key(le.NrItems - 1).ObjectId);
            BinaryPrimitives.WriteUInt64LittleEndian(le.Data(Slot(le, 1461, ItemType.InodeItem, 0))[NbytesAt..], 4096 * 3);
        });
        var (whole, exact) = AssertWindowsAgree(img.Paths, (1, null), (2, null));
        foreach (var f in whole) output.WriteLine($"  {f.Severity} {f}");
        var wrong = Assert.Single(whole, f => f.Code == FindingCode.InodeNbytesWrong);
        Assert.Equal(leaf, wrong.Bytenr);
        Assert.Equal(whole.Select(Line), exact.Select(Line));
    }

    /// <summary>Snapshot 259's node 44531712 names its own leaf 30818304 and the next one, 30900224 (which the fs tree
    /// shares), by other keys, still in order in the node: (375 INODE_ITEM 0) and (378 INODE_ITEM 0) instead of
    /// (366 EXTENT_DATA 0) and (373 INODE_REF 258). The shared leaf's window follows the key the fs tree gives it, so
    /// 259's leaves go back to an earlier window after 30818304: the join keeps every closed run then, waits for the later
    /// window where a tree's next leaf is, and says the same in windows of one leaf as in one window.</summary>
    [Fact]
    public void WindowedJoinOnLeavesOutOfWindowOrder()
    {
        using var img = Copy(Snapshots);
        const ulong node = 44531712;
        Edit(img.Paths, (ed, _) =>
        {
            var b = ed.Block(node);
            void Rename(int slot, ulong child, BtrfsKey key)
            {
                int at = Header.Size + slot * KeyPtr.Size;
                Assert.Equal(child, BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan(at + 17)));
                key.Write(b.AsSpan(at));
            }
            Rename(16, 30818304, new BtrfsKey(375, (byte)ItemType.InodeItem, 0));
            Rename(17, 30900224, new BtrfsKey(378, (byte)ItemType.InodeItem, 0));
        });
        // on the fast path as many trees verified as in one window, too (a leaf joined before its window was summarised
        // would send its trees to the exact join)
        var (whole, _) = AssertWindowsAgree(img.Paths, (1, null), (2, null), (5, null));
        foreach (var f in whole) output.WriteLine($"  {f.Severity} {f}");
        // the node's keys are reported (they are not the leaves' first keys); tree 259 is still checked
        Assert.Contains(whole, f => f.Severity == Severity.Error && f.Bytenr is node or 30818304 or 30900224);
        Assert.DoesNotContain(whole, f => f.Code == FindingCode.SubvolumeNotChecked);
    }

    /// <summary>Every finding with all it says (the order is the bag's stable one).</summary>
    private static string Line(Finding f) => $"{f.Severity} {f}";

    /// <summary>The check with names decided by the fast path or the exact join alone; <paramref name="window"/>: the
    /// subvolume pass's window of distinct leaves (null: the default), <paramref name="degree"/>: its workers.</summary>
    internal static (List<Finding> Findings, BtrfsRefcheck.Checks.CheckStats Stats) CheckWith(IReadOnlyList<string> paths, bool exactOnly,
        int? window = null, int? degree = null)
    {
        var findings = new FindingBag();
        using var vol = BtrfsVolume.Open(paths, null, findings);
        var report = BtrfsRefcheck.Checks.Checker.Run(new BtrfsRefcheck.Checks.CheckContext(vol, findings)
        {
            SubvolumeNamesExactOnly = exactOnly, SubvolumeWindowLeaves = window, DegreeOfParallelism = degree,
        });
        return (findings.Items.ToList(), report.Stats);
    }

    /// <summary>The join in windows of 1 and 3 distinct leaves (every shared leaf, every inode across leaves and every
    /// run of leaves crosses a window's end; summaries dropped and runs forgotten as the trees pass them; pipelined and
    /// not) says, on each name defect, exactly what it says in one window.</summary>
    [Theory]
    [MemberData(nameof(NameDefectNames))]
    public void WindowedJoinSaysTheSameOnEveryNameDefect(string defect)
    {
        using var img = Copy(Snapshots);
        EditSubvolLeaf(img, NameDefects[defect]);
        var (fast, exact) = AssertWindowsAgree(img.Paths, (1, 2), (1, 1), (3, 2));
        Assert.Contains(fast, f => (int)f.Code is >= 800 and < 820);
        Assert.Contains(exact, f => (int)f.Code is >= 800 and < 820);
    }

    /// <summary>The check in windows of each given size (and number of workers; 1: not pipelined) says what it says in one
    /// window, with the fast path and with the exact join alone: the same findings, the same trees verified each way.
    /// Returns the findings in one window, of the fast path and of the exact join alone.</summary>
    private static (List<Finding> Fast, List<Finding> Exact) AssertWindowsAgree(IReadOnlyList<string> paths, params (int Window, int? Degree)[] runs)
    {
        var wholes = new List<Finding>[2];
        foreach (bool exactOnly in new[] { false, true })
        {
            var (whole, wholeStats) = CheckWith(paths, exactOnly, window: 1 << 20);
            wholes[exactOnly ? 1 : 0] = whole;
            foreach (var (window, degree) in runs)
            {
                var (windowed, stats) = CheckWith(paths, exactOnly, window, degree);
                Assert.Equal(whole.Select(Line), windowed.Select(Line));
                Assert.Equal((wholeStats.SubvolumeTreesFast, wholeStats.SubvolumeTreesJoined), (stats.SubvolumeTreesFast, stats.SubvolumeTreesJoined));
            }
        }
        return (wholes[0], wholes[1]);
    }

    private const int RefsAt = 160 + 8 + 8 + 8 + 8 + 8 + 8 + 8; // inode, generation, root_dirid, bytenr, byte_limit, bytes_used, last_snapshot, flags

    private static ulong RootItemLeaf(ForgedImage img) => Root(img.Paths, ObjectIds.RootTree).Bytenr;
}
