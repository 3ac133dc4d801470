using System.Buffers.Binary;
using BtrfsRefcheck.Forge;
using BtrfsRefcheck.Format;

namespace BtrfsRefcheck.Tests.Forge;

/// <summary>The forge's leaf surgery on a synthetic 4 KiB leaf: every edit must leave the kernel's packed layout
/// (item 0's data ends at the block end, each item's data ends where the previous one's starts), keys in order,
/// the right bytes in every item, and the free space changed by exactly what was added or removed.</summary>
public class LeafEditorTests
{
    private const int BlockSize = 4096;

    private static byte[] EmptyLeaf()
    {
        var b = new byte[BlockSize];
        b[Header.LevelAt] = 0;
        return b;
    }

    private static byte[] Payload(int size, byte seed) => Enumerable.Range(0, size).Select(i => (byte)(seed + i)).ToArray();

    private static BtrfsKey K(ulong objectId) => new(objectId, (byte)ItemType.ExtentItem, 4096);

    /// <summary>A leaf holding items 10, 20, 30, 40 with payloads of 30, 45, 24 and 53 bytes.</summary>
    private static (LeafEditor Leaf, Dictionary<BtrfsKey, byte[]> Items) Sample()
    {
        var leaf = new LeafEditor(EmptyLeaf());
        var items = new Dictionary<BtrfsKey, byte[]>
        {
            [K(30)] = Payload(24, 3), [K(10)] = Payload(30, 1), [K(40)] = Payload(53, 4), [K(20)] = Payload(45, 2),
        };
        foreach (var (k, d) in items) leaf.InsertSorted(k, d);
        return (leaf, items);
    }

    /// <summary>Checks the layout through the library's own view, as the checker will read it.</summary>
    private static void AssertPackedAndHolds(LeafEditor leaf, IReadOnlyDictionary<BtrfsKey, byte[]> items)
    {
        var view = new BlockView(leaf.Block);
        Assert.Equal(items.Count, view.Count);
        int end = BlockSize - Header.Size;
        for (int i = 0; i < view.Count; i++)
        {
            var h = view.ItemHeader(i);
            Assert.Equal(end, (int)(h.DataOffset + h.DataSize));
            end = (int)h.DataOffset;
            if (i > 0) Assert.True(view.ItemKey(i - 1) < view.ItemKey(i), $"keys out of order at slot {i}");
            Assert.Equal(items[view.ItemKey(i)], view.ItemData(i).ToArray());
        }
        Assert.Equal(end - view.Count * ItemHeader.Size, leaf.FreeSpace);
        // nothing stale between the item headers and the lowest data
        Assert.DoesNotContain(leaf.Block.AsSpan(Header.Size + view.Count * ItemHeader.Size, leaf.FreeSpace).ToArray(), b => b != 0);
    }

    [Fact]
    public void InsertSortedKeepsKeyOrderAndPacking()
    {
        var (leaf, items) = Sample();
        AssertPackedAndHolds(leaf, items);
        Assert.Equal(BlockSize - Header.Size - 4 * ItemHeader.Size - (30 + 45 + 24 + 53), leaf.FreeSpace);
        Assert.Equal(1, leaf.Find(K(20)));
        Assert.Equal(~2, leaf.Find(K(25)));
        Assert.Throws<ForgeException>(() => leaf.InsertSorted(K(20), [1]));
    }

    [Theory]
    [InlineData(0, 0)]
    [InlineData(1, 10)]
    [InlineData(1, 45)]
    [InlineData(3, 53)]
    public void InsertBytesThenRemoveBytesRestoresTheBlock(int slot, int at)
    {
        var (leaf, items) = Sample();
        var before = (byte[])leaf.Block.Clone();
        int free = leaf.FreeSpace;
        var key = leaf.Key(slot);
        var extra = Payload(9, 0xb0);
        leaf.InsertBytes(slot, at, extra);
        Assert.Equal(free - 9, leaf.FreeSpace);
        items[key] = [.. items[key].AsSpan(0, at), .. extra, .. items[key].AsSpan(at)];
        AssertPackedAndHolds(leaf, items);
        leaf.RemoveBytes(slot, at, 9);
        Assert.Equal(before, leaf.Block);
    }

    [Theory]
    [InlineData(5)]
    [InlineData(25)]
    [InlineData(45)]
    public void InsertItemThenDeleteItemRestoresTheBlock(ulong objectId)
    {
        var (leaf, items) = Sample();
        var before = (byte[])leaf.Block.Clone();
        int free = leaf.FreeSpace;
        var data = Payload(33, 0x40);
        int slot = leaf.InsertSorted(K(objectId), data);
        Assert.Equal(free - 33 - ItemHeader.Size, leaf.FreeSpace);
        items[K(objectId)] = data;
        AssertPackedAndHolds(leaf, items);
        leaf.DeleteItem(slot);
        Assert.Equal(before, leaf.Block);
    }

    [Fact]
    public void EmptyItemsAreInsertedAndDeleted()
    {
        var (leaf, items) = Sample();
        int slot = leaf.InsertSorted(new BtrfsKey(20, (byte)ItemType.TreeBlockRef, 5), []);
        items[new BtrfsKey(20, (byte)ItemType.TreeBlockRef, 5)] = [];
        Assert.Equal(2, slot);
        AssertPackedAndHolds(leaf, items);
        leaf.DeleteItem(0);
        items.Remove(K(10));
        AssertPackedAndHolds(leaf, items);
    }

    [Fact]
    public void GrowingPastTheFreeSpaceIsRefused()
    {
        var (leaf, _) = Sample();
        var before = (byte[])leaf.Block.Clone();
        Assert.Throws<ForgeException>(() => leaf.InsertBytes(0, 0, new byte[leaf.FreeSpace + 1]));
        Assert.Throws<ForgeException>(() => leaf.InsertItem(0, K(1), new byte[leaf.FreeSpace - ItemHeader.Size + 1]));
        Assert.Equal(before, leaf.Block);
        leaf.InsertBytes(0, 0, new byte[leaf.FreeSpace]); // exactly full is allowed
        Assert.Equal(0, leaf.FreeSpace);
    }

    [Fact]
    public void UnpackedLeavesAreRefused()
    {
        var (leaf, _) = Sample();
        var b = leaf.Block;
        // move item 1's data offset down by one byte: a gap the kernel never leaves
        var off = b.AsSpan(Header.Size + ItemHeader.Size + BtrfsKey.Size, 4);
        BinaryPrimitives.WriteUInt32LittleEndian(off, BinaryPrimitives.ReadUInt32LittleEndian(off) - 1);
        Assert.Throws<ForgeException>(() => new LeafEditor(b));
        b[Header.LevelAt] = 1;
        Assert.Throws<ForgeException>(() => new LeafEditor(b));
    }
}
