using System.Buffers.Binary;
using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Tests.Oracle;
using BtrfsRefcheck.Tests.Sources;
using BtrfsRefcheck.Tests.TreesTests;
using Xunit.Abstractions;
using static BtrfsRefcheck.Tests.Damage.DamageSupport;

namespace BtrfsRefcheck.Tests.Damage;

/// <summary>1100-1107 on copies of crc32c (mkfs 6.2: a single-leaf free-space tree with the two stale entries of its
/// temporary chunks at 1 MiB and 5 MiB), each with btrfs check 6.19's verdict on the same image.</summary>
public class FreeSpaceDamageTests(ITestOutputHelper output)
{
    private const ulong Stale1M = 1048576, Stale5M = 5242880;

    private static List<LeafItem> FreeSpaceItems(IReadOnlyList<string> paths) =>
        ImageItems.All(paths).Where(i => i.Tree.Id == ObjectIds.FreeSpaceTree).ToList();

    /// <summary>The FREE_SPACE_INFO of the first DATA block group and the items after it in its leaf.</summary>
    private static (LeafItem Info, List<LeafItem> Ranges) DataGroup(IReadOnlyList<string> paths)
    {
        var bg = Scan(paths).BlockGroups.First(g => (g.Flags & BlockGroupFlags.Data) != 0 && g.Used > 0);
        var items = FreeSpaceItems(paths);
        var info = items.Single(i => i.Key.ItemType == ItemType.FreeSpaceInfo && i.Key.ObjectId == bg.Start);
        var ranges = items.Where(i => i.Leaf == info.Leaf && i.Slot > info.Slot && i.Key.ItemType != ItemType.FreeSpaceInfo &&
                                      i.Key.ObjectId < bg.Start + bg.Length).ToList();
        Assert.NotEmpty(ranges);
        return (info, ranges);
    }

    private static string StaleLine(ulong logical, ulong length) => $"Space key logical {logical} length {length} has no corresponding block group";

    /// <summary>1102: a pristine mkfs 6.2 image. Two warnings, exit 0; btrfs check 6.19 fails it for the same two keys.</summary>
    [Progs619Fact, Covers(FindingCode.FreeSpaceStaleMkfsEntries)]
    public void Mkfs62TemporaryChunkLeftoversAreAWarning()
    {
        using var img = Copy("crc32c");
        AssertExactly(output, Check(img.Paths), Want.Warning(FindingCode.FreeSpaceStaleMkfsEntries, Stale1M), Want.Warning(FindingCode.FreeSpaceStaleMkfsEntries, Stale5M));
        var (exit, stdout, _) = RunCli(["check", .. img.Paths]);
        Assert.True(exit == 0, stdout);
        Assert.Contains("clear_cache,space_cache=v2", stdout);
        var (code, lines) = Progs619(output, img.Paths);
        Assert.Equal(1, code);
        Assert.Equal([StaleLine(Stale1M, 4194304), StaleLine(Stale5M, 8388608)], lines);
    }

    /// <summary>1101: the stale entry at 1 MiB no longer all free (its extent one sector shorter): not mkfs 6.2's pattern,
    /// an error. btrfs check 6.19 says the same line as for the pristine key.</summary>
    [Progs619Fact, Covers(FindingCode.FreeSpaceOutsideBlockGroup)]
    public void KeyOutsideEveryBlockGroup()
    {
        using var img = Copy("crc32c");
        var ext = FreeSpaceItems(img.Paths).Single(i => i.Key.ObjectId == Stale1M && i.Key.ItemType == ItemType.FreeSpaceExtent);
        Edit(img.Paths, (ed, _) => ed.Leaf(ext.Leaf).SetKey(ext.Slot, ext.Key with { Offset = ext.Key.Offset - 4096 }));
        AssertExactly(output, Check(img.Paths), Want.Error(FindingCode.FreeSpaceOutsideBlockGroup, Stale1M), Want.Warning(FindingCode.FreeSpaceStaleMkfsEntries, Stale5M));
        var (code, lines) = Progs619(output, img.Paths);
        Assert.Equal(1, code);
        Assert.Contains(StaleLine(Stale1M, 4194304), lines);
    }

    /// <summary>1104: the DATA block group's extent_count one more than its extents.</summary>
    [Progs619Fact, Covers(FindingCode.FreeSpaceExtentCountMismatch)]
    public void ExtentCountWrong()
    {
        using var img = Copy("crc32c");
        var (info, ranges) = DataGroup(img.Paths);
        Edit(img.Paths, (ed, _) =>
        {
            var d = ed.Leaf(info.Leaf).Data(info.Slot);
            BinaryPrimitives.WriteUInt32LittleEndian(d, BinaryPrimitives.ReadUInt32LittleEndian(d) + 1);
        });
        AssertExactly(output, Check(img.Paths), Want.Error(FindingCode.FreeSpaceExtentCountMismatch, info.Key.ObjectId));
        var (code, lines) = Progs619(output, img.Paths);
        Assert.Equal(1, code);
        Assert.Contains($"free space info recorded {ranges.Count + 1} extents, counted {ranges.Count}", lines);
    }

    /// <summary>1103: a free extent of the DATA block group one sector shorter: that sector is neither allocated nor free.</summary>
    [Progs619Fact, Covers(FindingCode.FreeSpaceMismatch)]
    public void FreeExtentNotTheComplement()
    {
        using var img = Copy("crc32c");
        var (info, ranges) = DataGroup(img.Paths);
        var ext = ranges.First(r => r.Key.ItemType == ItemType.FreeSpaceExtent && r.Key.Offset > 4096);
        Edit(img.Paths, (ed, _) => ed.Leaf(ext.Leaf).SetKey(ext.Slot, ext.Key with { Offset = ext.Key.Offset - 4096 }));
        AssertExactly(output, Check(img.Paths), Want.Error(FindingCode.FreeSpaceMismatch, info.Key.ObjectId));
        var (code, lines) = Progs619(output, img.Paths);
        Assert.Equal(1, code);
        Assert.Contains($"cache appears valid but isn't {info.Key.ObjectId}", lines);
    }

    /// <summary>1105: USING_BITMAPS set on a block group whose free space is extents.</summary>
    [Progs619Fact, Covers(FindingCode.FreeSpaceWrongItemType)]
    public void BitmapFlagOverExtents()
    {
        using var img = Copy("crc32c");
        var (info, _) = DataGroup(img.Paths);
        Edit(img.Paths, (ed, _) => ed.Leaf(info.Leaf).Data(info.Slot)[4] |= 1);
        AssertExactly(output, Check(img.Paths), Want.Error(FindingCode.FreeSpaceWrongItemType, info.Key.ObjectId));
        var (code, lines) = Progs619(output, img.Paths);
        Assert.Equal(1, code);
        Assert.Contains($"unexpected key of type {(int)ItemType.FreeSpaceExtent}", lines);
    }

    /// <summary>1100: the DATA block group's FREE_SPACE_INFO and its extents deleted.</summary>
    [Progs619Fact, Covers(FindingCode.FreeSpaceInfoMissing)]
    public void BlockGroupWithoutInfo()
    {
        using var img = Copy("crc32c");
        var (info, ranges) = DataGroup(img.Paths);
        Edit(img.Paths, (ed, _) =>
        {
            var leaf = ed.Leaf(info.Leaf);
            for (int s = ranges[^1].Slot; s >= info.Slot; s--) leaf.DeleteItem(s);
        });
        AssertExactly(output, Check(img.Paths), Want.Error(FindingCode.FreeSpaceInfoMissing, info.Key.ObjectId));
        var (code, lines) = Progs619(output, img.Paths);
        Assert.Equal(1, code);
        Assert.Contains("could not load free space tree: No such file or directory", lines);
    }

    /// <summary>1106: a free extent split in two adjacent ones (extent_count raised to match).</summary>
    [Progs619Fact, Covers(FindingCode.FreeSpaceExtentsUnmerged)]
    public void AdjacentFreeExtents()
    {
        using var img = Copy("crc32c");
        var (info, ranges) = DataGroup(img.Paths);
        var ext = ranges.First(r => r.Key.ItemType == ItemType.FreeSpaceExtent && r.Key.Offset >= 8192);
        Edit(img.Paths, (ed, _) =>
        {
            var leaf = ed.Leaf(info.Leaf);
            leaf.SetKey(ext.Slot, ext.Key with { Offset = 4096 });
            leaf.InsertItem(ext.Slot + 1, new BtrfsKey(ext.Key.ObjectId + 4096, (byte)ItemType.FreeSpaceExtent, ext.Key.Offset - 4096), []);
            var d = leaf.Data(info.Slot);
            BinaryPrimitives.WriteUInt32LittleEndian(d, BinaryPrimitives.ReadUInt32LittleEndian(d) + 1);
        });
        AssertExactly(output, Check(img.Paths), Want.Error(FindingCode.FreeSpaceExtentsUnmerged, info.Key.ObjectId));
        var (code, lines) = Progs619(output, img.Paths);
        Assert.Equal(1, code);
        Assert.Contains(lines, l => l.Contains("is unmerged with previous", StringComparison.Ordinal));
    }

    /// <summary>1107: compat_ro FREE_SPACE_TREE_VALID cleared: a note, the tree's contents are not held against it
    /// (the DATA group's extent count is wrong too, and not reported).</summary>
    [Progs619Fact, Covers(FindingCode.FreeSpaceTreeNotValid)]
    public void TreeNotValid()
    {
        using var img = Copy("crc32c");
        var (info, _) = DataGroup(img.Paths);
        Edit(img.Paths, (ed, _) =>
        {
            var d = ed.Leaf(info.Leaf).Data(info.Slot);
            BinaryPrimitives.WriteUInt32LittleEndian(d, BinaryPrimitives.ReadUInt32LittleEndian(d) + 1);
            ed.PatchSuper(s =>
            {
                var f = s[Superblock.CompatRoFlagsAt..];
                BinaryPrimitives.WriteUInt64LittleEndian(f, BinaryPrimitives.ReadUInt64LittleEndian(f) & ~Features.CompatRoFreeSpaceTreeValid);
            });
        });
        var findings = Check(img.Paths);
        AssertExactly(output, findings);
        Assert.Contains(findings, f => f.Code == FindingCode.FreeSpaceTreeNotValid && f.Severity == Severity.Info);
        var (code, lines) = Progs619(output, img.Paths);
        output.WriteLine($"btrfs check 6.19 still reads the tree: exit {code}");
        Assert.Equal(1, code);
        Assert.Contains(lines, l => l.Contains("free space info recorded", StringComparison.Ordinal));
    }
}
