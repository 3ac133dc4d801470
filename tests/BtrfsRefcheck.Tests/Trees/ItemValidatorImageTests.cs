using System.Buffers.Binary;
using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Forge;
using BtrfsRefcheck.Tests.Damage;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Format.Items;
using BtrfsRefcheck.Tests.Oracle;
using BtrfsRefcheck.Trees;
using BtrfsRefcheck.Volume;
using Xunit.Abstractions;
using ImageForge = BtrfsRefcheck.Forge.Forge;

namespace BtrfsRefcheck.Tests.TreesTests;

/// <summary>Real images. Clean ones (every mkfs fixture, every committed kernel image) give no finding at all; a copy
/// with one item changed on disk (every copy rewritten with a fresh checksum, by the forge's <see cref="BlockEdits"/>)
/// gives exactly the finding of that item: its code, at its leaf and slot.</summary>
public class ItemValidatorImageTests(ITestOutputHelper output)
{
    public static IEnumerable<object[]> MkfsImages => CleanImages.Mkfs;
    public static IEnumerable<object[]> KernelImages => CleanImages.Kernel;

    [ProgsTheory]
    [MemberData(nameof(MkfsImages))]
    public void MkfsImageIsClean(string id) => AssertClean(id);

    [Theory]
    [MemberData(nameof(KernelImages))]
    public void KernelImageIsClean(string id) => AssertClean(id);

    [Fact]
    public void KernelImagesAreCommitted() => Assert.NotEmpty(KernelImages);

    /// <summary>The whole checker reports nothing of severity Warning or above, and the item validator, run on its
    /// own over every leaf, reports nothing at all.</summary>
    private void AssertClean(string id)
    {
        var paths = CleanImages.Paths(id);
        var bad = ImageItems.Check(paths).Where(f => f.IsProblem()).ToList();
        Assert.True(bad.Count == 0, $"{id}:\n  " + string.Join("\n  ", bad.Take(20)));

        using var vol = BtrfsVolume.Open(paths, null, new FindingBag());
        var own = new FindingBag();
        var counter = new LeafValidator(vol, own);
        var walker = new TreeWalker(vol, new FindingBag());
        var visited = new HashSet<ulong>();
        foreach (var root in TreeRoots.Enumerate(vol, new FindingBag()))
            walker.Walk(root, counter, new WalkOptions { Visited = visited });
        Assert.True(own.Items.Count == 0, $"{id}:\n  " + string.Join("\n  ", own.Items.Take(20)));
        output.WriteLine($"{id}: {counter.Items} items validated: " +
            string.Join(", ", counter.Types.OrderBy(t => t.Key).Select(t => $"{ItemTypes.Name(t.Key)} {t.Value}")));
        // The validators had something to check.
        foreach (var t in new[] { ItemType.InodeItem, ItemType.InodeRef, ItemType.DirItem, ItemType.DirIndex, ItemType.ExtentData,
                     ItemType.RootItem, ItemType.MetadataItem, ItemType.BlockGroupItem, ItemType.DevItem, ItemType.DevExtent, ItemType.ChunkItem })
            if (t != ItemType.MetadataItem || vol.Super.IsSkinnyMetadata)
                Assert.True(counter.Types.GetValueOrDefault((byte)t) > 0, $"{id} has no {ItemTypes.Name((byte)t)}");
    }

    /// <summary>kernel-snapshots holds what mkfs never writes; the validators must have seen it.</summary>
    [Fact]
    public void KernelSnapshotsExercisesExtrefsCompressionXattrsAndRootRefs()
    {
        var items = ImageItems.All(CleanImages.Paths("kernel:kernel-snapshots"));
        Assert.Contains(items, i => i.Key.ItemType == ItemType.InodeExtref);
        Assert.Contains(items, i => i.Key.ItemType == ItemType.XattrItem);
        Assert.Contains(items, i => i.Key.ItemType == ItemType.RootRef);
        Assert.Contains(items, i => i.Key.ItemType == ItemType.RootBackref);
        Assert.Contains(items, i => i.Key.ItemType == ItemType.ExtentData && i.Data.Length == FileExtentItem.RegularSize && i.Data[16] != 0); // compressed
        Assert.Contains(items, i => i.Key.ItemType == ItemType.ExtentData && i.Data[20] == (byte)FileExtentType.Prealloc);
        Assert.Contains(items, i => i.Key.ItemType is ItemType.ExtentItem or ItemType.MetadataItem && (BinaryPrimitives.ReadUInt64LittleEndian(i.Data.AsSpan(16)) & (ulong)ExtentFlags.FullBackref) != 0);
    }

    // ------------------------------------------------------------------ one changed item per finding code

    [ProgsFact, Covers(FindingCode.RootItemInvalid)]
    public void RootItemWithUnknownFlag() => Forged("crc32c", FindingCode.RootItemInvalid,
        i => i.Tree.Id == ObjectIds.RootTree && i.Key.ItemType == ItemType.RootItem && i.Key.ObjectId == ObjectIds.FsTree,
        (leaf, slot) => leaf.Data(slot)[RootItemFlagsAt] |= 2);

    [ProgsFact, Covers(FindingCode.InodeItemInvalid)]
    public void InodeItemWithUnknownFlag() => Forged("crc32c", FindingCode.InodeItemInvalid,
        i => i.Tree.Id == ObjectIds.FsTree && i.Key.ItemType == ItemType.InodeItem && i.Key.ObjectId > ObjectIds.FirstFree,
        (leaf, slot) => leaf.Data(slot)[InodeFlagsAt + 2] |= 0x10); // bit 20

    [ProgsFact, Covers(FindingCode.ItemGenerationTooNew)]
    public void InodeItemGenerationNewerThanTheSuperblock()
    {
        ulong gen;
        using (var vol = BtrfsVolume.Open([MkfsFixtures.Get("crc32c")], null, new FindingBag())) gen = vol.Super.Generation;
        var (item, findings) = Forged("crc32c", FindingCode.ItemGenerationTooNew,
            i => i.Tree.Id == ObjectIds.FsTree && i.Key.ItemType == ItemType.InodeItem && i.Key.ObjectId > ObjectIds.FirstFree,
            (leaf, slot) => BinaryPrimitives.WriteUInt64LittleEndian(leaf.Data(slot), gen + 10));
        var f = Assert.Single(findings, f => f.Code == FindingCode.ItemGenerationTooNew);
        Assert.Equal(($"<= {gen}", (gen + 10).ToString()), (f.Expected, f.Found));
    }

    [ProgsFact, Covers(FindingCode.InodeRefInvalid)]
    public void InodeRefNameCrossingTheItemEnd() => Forged("crc32c", FindingCode.InodeRefInvalid,
        i => i.Tree.Id == ObjectIds.FsTree && i.Key.ItemType == ItemType.InodeRef && i.Key.ObjectId > ObjectIds.FirstFree,
        (leaf, slot) => leaf.Data(slot)[8]++); // name_len of the only entry

    /// <summary>The entry can no longer be found by its name: its inode lacks that DIR_ITEM (803) and so one link (801),
    /// as btrfs check 6.19 says too ("no dir item", "link count wrong"); the subvolume semantics pass's consequences.</summary>
    [ProgsFact, Covers(FindingCode.DirItemInvalid)]
    public void DirItemNameNotMatchingItsHash() => Forged("crc32c", FindingCode.DirItemInvalid,
        i => i.Tree.Id == ObjectIds.FsTree && i.Key.ItemType == ItemType.DirItem,
        (leaf, slot) => leaf.Data(slot)[DirItem.EntryHeaderSize] ^= 0x20, // first name byte, 'f' <-> 'F'
        FindingCode.DirItemMissing, FindingCode.InodeLinkCountWrong);

    [ProgsFact, Covers(FindingCode.FileExtentInvalid)]
    public void FileExtentEncrypted() => Forged("crc32c", FindingCode.FileExtentInvalid,
        i => i.Tree.Id == ObjectIds.FsTree && i.Key.ItemType == ItemType.ExtentData && i.Data.Length == FileExtentItem.RegularSize,
        (leaf, slot) => leaf.Data(slot)[17] = 1); // encryption

    [ProgsFact, Covers(FindingCode.CsumItemInvalid)]
    public void CsumItemSizeNotAMultipleOfTheChecksumSize() => Forged("crc32c", FindingCode.CsumItemInvalid,
        i => i.Tree.Id == ObjectIds.CsumTree && i.Key.ItemType == ItemType.ExtentCsum && i.Data.Length > 4,
        (leaf, slot) => leaf.RemoveBytes(slot, leaf.DataSize(slot) - 1, 1));

    [ProgsFact, Covers(FindingCode.BlockGroupItemInvalid)]
    public void BlockGroupItemChunkObjectid() => Forged("crc32c", FindingCode.BlockGroupItemInvalid,
        i => i.Key.ItemType == ItemType.BlockGroupItem,
        (leaf, slot) => BinaryPrimitives.WriteUInt64LittleEndian(leaf.Data(slot)[8..], ObjectIds.FirstChunkTree + 1));

    [ProgsFact, Covers(FindingCode.DevItemInvalid)]
    public void DevItemKeyObjectid() => Forged("crc32c", FindingCode.DevItemInvalid,
        i => i.Tree.Id == ObjectIds.ChunkTree && i.Key.ItemType == ItemType.DevItem,
        (leaf, slot) => leaf.SetKey(slot, leaf.Key(slot) with { ObjectId = 2 }));

    [ProgsFact, Covers(FindingCode.DevExtentInvalid)]
    public void DevExtentChunkTree() => Forged("crc32c", FindingCode.DevExtentInvalid,
        i => i.Tree.Id == ObjectIds.DevTree && i.Key.ItemType == ItemType.DevExtent,
        (leaf, slot) => BinaryPrimitives.WriteUInt64LittleEndian(leaf.Data(slot), ObjectIds.DevTree));

    [ProgsFact, Covers(FindingCode.FreeSpaceItemInvalid)]
    public void FreeSpaceInfoUnknownFlag() => Forged("crc32c", FindingCode.FreeSpaceItemInvalid,
        i => i.Tree.Id == ObjectIds.FreeSpaceTree && i.Key.ItemType == ItemType.FreeSpaceInfo,
        (leaf, slot) => leaf.Data(slot)[4] |= 2);

    [ProgsFact]
    public void ChunkItemSectorSize() => Forged("crc32c", FindingCode.ChunkItemInvalid,
        i => i.Tree.Id == ObjectIds.ChunkTree && i.Key.ItemType == ItemType.ChunkItem && (i.Data[24] & (byte)BlockGroupFlags.Data) != 0,
        (leaf, slot) => BinaryPrimitives.WriteUInt32LittleEndian(leaf.Data(slot)[40..], 8192));

    [ProgsFact, Covers(FindingCode.ExtentItemMalformed)]
    public void DataExtentWithFullBackref() => Forged("crc32c", FindingCode.ExtentItemMalformed,
        i => i.Tree.Id == ObjectIds.ExtentTree && i.Key.ItemType == ItemType.ExtentItem && (i.Data[16] & (byte)ExtentFlags.Data) != 0,
        (leaf, slot) => leaf.Data(slot)[17] |= 1); // FULL_BACKREF is bit 8

    [Fact, Covers(FindingCode.RootRefInvalid)]
    public void RootRefNameLengthNotMatchingItsSize() => Forged("kernel:kernel-snapshots", FindingCode.RootRefInvalid,
        i => i.Tree.Id == ObjectIds.RootTree && i.Key.ItemType == ItemType.RootRef,
        (leaf, slot) => leaf.Data(slot)[16]++); // name_len

    /// <summary>No fixture has keyed back-refs (every extent's refs fit inline), so the data extent's only inline
    /// EXTENT_DATA_REF is first moved into a keyed item of its own, which the whole checker accepts; then that item
    /// gets two bytes too many.</summary>
    [ProgsFact, Covers(FindingCode.KeyedBackrefInvalid)]
    public void KeyedExtentDataRefSizeNotAMultipleOf28()
    {
        using var img = ImageForge.Copy(MkfsFixtures.Get("crc32c"));
        const int InlineAt = ExtentItem.FixedSize, InlineSize = 1 + ExtentDataRefs.Size;
        var extent = ImageItems.All(img.Paths).First(i => i.Tree.Id == ObjectIds.ExtentTree && i.Key.ItemType == ItemType.ExtentItem
            && i.Data.Length == InlineAt + InlineSize && i.Data[InlineAt] == (byte)ItemType.ExtentDataRef
            && BinaryPrimitives.ReadUInt64LittleEndian(i.Data) == 1);
        var (root, ino, offset, _) = ExtentDataRefs.Read(extent.Data.AsSpan(InlineAt + 1));
        var keyed = new BtrfsKey(extent.Key.ObjectId, (byte)ItemType.ExtentDataRef, ExtentDataRefs.Hash(root, ino, offset));
        Edit(img.Paths, extent.Leaf, leaf =>
        {
            leaf.RemoveBytes(leaf.Find(extent.Key), InlineAt, InlineSize);
            leaf.InsertSorted(keyed, extent.Data.AsSpan(InlineAt + 1, ExtentDataRefs.Size));
        });
        var moved = ImageItems.Check(img.Paths).Where(f => f.IsProblem()).ToList();
        Assert.True(moved.Count == 0, "moving the ref to a keyed item left the image inconsistent:\n  " + string.Join("\n  ", moved));

        int keyedSlot = -1;
        Edit(img.Paths, extent.Leaf, leaf =>
        {
            keyedSlot = leaf.Find(keyed);
            leaf.InsertBytes(keyedSlot, ExtentDataRefs.Size, [0, 0]);
        });
        AssertOnly(ImageItems.Check(img.Paths), FindingCode.KeyedBackrefInvalid, extent.Leaf, keyedSlot);
    }

    // ------------------------------------------------------------------ helpers

    private const int RootItemFlagsAt = InodeItem.Size + 6 * 8; // generation, root_dirid, bytenr, byte_limit, bytes_used, last_snapshot
    private const int InodeFlagsAt = 64;

    /// <summary>Copies the fixture, changes the first item <paramref name="pick"/> accepts with <paramref name="edit"/>, runs
    /// the checker and asserts that <paramref name="code"/> at that leaf and slot is the only finding of severity Warning or above.</summary>
    private (LeafItem Item, List<Finding> Findings) Forged(string fixture, FindingCode code, Func<LeafItem, bool> pick, Action<LeafEditor, int> edit,
        params FindingCode[] consequences)
    {
        var paths = fixture.StartsWith("kernel:", StringComparison.Ordinal) ? CleanImages.Paths(fixture) : [MkfsFixtures.Get(fixture)];
        using var img = ImageForge.CopyAll(paths);
        var item = ImageItems.All(img.Paths).FirstOrDefault(pick) ?? throw new InvalidOperationException($"{fixture} has no item to change");
        output.WriteLine($"changing {item}");
        Edit(img.Paths, item.Leaf, leaf =>
        {
            Assert.Equal(item.Key, leaf.Key(item.Slot));
            edit(leaf, item.Slot);
        });
        var findings = ImageItems.Check(img.Paths);
        AssertOnly(findings.Where(f => !consequences.Contains(f.Code)).ToList(), code, item.Leaf, item.Slot);
        foreach (var c in consequences) Assert.Contains(findings, f => f.Code == c);
        return (item, findings);
    }

    /// <summary>One edit session on one leaf; every copy is rewritten with its checksum recomputed.</summary>
    private static void Edit(IReadOnlyList<string> paths, ulong leafBytenr, Action<LeafEditor> edit)
    {
        using var vol = BtrfsVolume.Open(paths, null, new FindingBag());
        var ed = new BlockEdits(vol);
        edit(ed.Leaf(leafBytenr));
        ed.Commit();
    }

    private void AssertOnly(List<Finding> findings, FindingCode code, ulong leaf, int slot)
    {
        foreach (var f in findings) output.WriteLine($"  {f.Severity} {f}");
        var bad = findings.Where(f => f.IsProblem()).ToList();
        Assert.Contains(bad, f => f.Code == code && f.Severity == Severity.Error && f.Bytenr == leaf && f.Slot == slot);
        var others = bad.Where(f => !(f.Code == code && f.Bytenr == leaf && f.Slot == slot)).ToList();
        Assert.True(others.Count == 0, $"expected only {(int)code} {code} at leaf {leaf} slot {slot}, also got:\n  " + string.Join("\n  ", others));
    }

    /// <summary>Validates the items of every valid leaf the walk reaches, counting them by type.</summary>
    private sealed class LeafValidator(BtrfsVolume vol, FindingBag findings) : ITreeVisitor
    {
        public long Items;
        public Dictionary<byte, long> Types { get; } = [];

        public bool OnBlock(in BlockContext ctx, TreeBlock block, bool valid)
        {
            if (!valid || !block.View.IsLeaf) return valid;
            ItemValidator.ValidateLeaf(ctx, block, vol, findings);
            var view = block.View;
            for (int i = 0; i < view.Count; i++)
            {
                Items++;
                byte t = view.ItemKey(i).Type;
                Types[t] = Types.GetValueOrDefault(t) + 1;
            }
            return true;
        }
    }
}
