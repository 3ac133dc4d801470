using System.Buffers.Binary;
using BtrfsRefcheck.Format;

namespace BtrfsRefcheck.Tests.Format;

/// <summary>The per-slot accessors check bounds with a multiplication instead of dividing the block by the header
/// size: they must accept exactly the slots below MaxLeafItems / MaxNodePtrs, for every block length, and the Try forms
/// must fail exactly where the throwing forms throw.</summary>
public class BlockViewTests
{
    private static readonly int[] Lengths = [Header.Size, Header.Size + 24, Header.Size + 25, Header.Size + 26, Header.Size + 33, 4096, 16384, 16384 + 7];

    private static IEnumerable<int> SlotsAround(int max) =>
        new[] { int.MinValue, -1, 0, 1, max - 1, max, max + 1, int.MaxValue / 25, int.MaxValue }.Distinct();

    [Fact]
    public void ItemSlotsInsideExactlyBelowMaxLeafItems()
    {
        foreach (int length in Lengths)
        {
            var block = new byte[length];
            int max = new BlockView(block).MaxLeafItems;
            foreach (int slot in SlotsAround(max))
            {
                bool inside = slot >= 0 && slot < max;
                Assert.Equal(inside, new BlockView(block).TryItemKey(slot, out _));
                if (inside)
                {
                    _ = new BlockView(block).ItemHeader(slot);
                    _ = new BlockView(block).ItemKey(slot);
                }
                else
                {
                    Assert.Throws<BtrfsFormatException>(() => new BlockView(block).ItemHeader(slot));
                    Assert.Throws<BtrfsFormatException>(() => new BlockView(block).ItemKey(slot));
                    Assert.Throws<BtrfsFormatException>(() => new BlockView(block).ItemData(slot));
                    Assert.False(new BlockView(block).TryGetItem(slot, out _, out _));
                }
            }
        }
    }

    [Fact]
    public void KeyPointerSlotsInsideExactlyBelowMaxNodePtrs()
    {
        foreach (int length in Lengths)
        {
            var block = new byte[length];
            int max = new BlockView(block).MaxNodePtrs;
            foreach (int slot in SlotsAround(max))
            {
                if (slot >= 0 && slot < max) _ = new BlockView(block).KeyPtr(slot);
                else Assert.Throws<BtrfsFormatException>(() => new BlockView(block).KeyPtr(slot));
            }
        }
    }

    [Theory]
    [InlineData(0u, 0u, true)]                     // empty item at the start of the data area
    [InlineData(16283u, 0u, true)]                 // empty item at the very end
    [InlineData(16000u, 283u, true)]               // ends exactly at the block end
    [InlineData(16000u, 284u, false)]              // one byte past it
    [InlineData(16283u, 1u, false)]
    [InlineData(uint.MaxValue, 1u, false)]         // offset + size would overflow 32 bits
    [InlineData(1u, uint.MaxValue, false)]
    [InlineData(uint.MaxValue, uint.MaxValue, false)]
    public void ItemDataInsideExactlyWithinTheBlock(uint offset, uint size, bool inside)
    {
        var block = new byte[16384];
        var key = new BtrfsKey(256, 1, 7);
        key.Write(block.AsSpan(Header.Size + 2 * ItemHeader.Size));
        BinaryPrimitives.WriteUInt32LittleEndian(block.AsSpan(Header.Size + 2 * ItemHeader.Size + ItemHeader.DataOffsetAt), offset);
        BinaryPrimitives.WriteUInt32LittleEndian(block.AsSpan(Header.Size + 2 * ItemHeader.Size + ItemHeader.DataSizeAt), size);

        Assert.Equal(inside, new BlockView(block).TryGetItem(2, out var k, out var data));
        Assert.True(new BlockView(block).TryItemKey(2, out var keyOnly)); // the header itself is inside either way
        Assert.Equal(key, keyOnly);
        if (inside)
        {
            Assert.Equal(key, k);
            Assert.Equal((int)size, data.Length);
            Assert.Equal((int)size, new BlockView(block).ItemData(2).Length);
            Assert.True(new BlockView(block).ItemData(2) == block.AsSpan(Header.Size + (int)offset, (int)size));
        }
        else
        {
            Assert.Equal(default, k);
            Assert.Equal(0, data.Length);
            var e = Assert.Throws<BtrfsFormatException>(() => new BlockView(block).ItemData(2));
            Assert.Contains("item 2 data", e.Message);
        }
    }

    [Fact]
    public void KeyOrderIsObjectIdThenTypeThenOffset()
    {
        ulong[] ids = [0, 1, 256, long.MaxValue, ulong.MaxValue - 1, ulong.MaxValue];
        byte[] types = [0, 1, 0x7f, 0x80, 0xff];
        var keys = (from o in ids from t in types from f in ids select new BtrfsKey(o, t, f)).ToList();
        foreach (var a in keys)
            foreach (var b in keys)
            {
                int expected = a.ObjectId != b.ObjectId ? a.ObjectId.CompareTo(b.ObjectId)
                    : a.Type != b.Type ? a.Type.CompareTo(b.Type) : a.Offset.CompareTo(b.Offset);
                Assert.Equal(Math.Sign(expected), Math.Sign(a.CompareTo(b)));
                Assert.Equal(expected < 0, a.IsBefore(b));
                Assert.Equal(expected < 0, a < b);
                Assert.Equal(expected > 0, a > b);
                Assert.Equal(expected <= 0, a <= b);
                Assert.Equal(expected >= 0, a >= b);
            }
    }
}
