using System.Buffers.Binary;
using BtrfsRefcheck.Format;

namespace BtrfsRefcheck.Forge;

/// <summary>Edits a leaf in memory the way the kernel's ctree.c does (btrfs_extend_item, btrfs_truncate_item,
/// setup_items_for_insert, btrfs_del_items): item data is packed from the end of the block downwards, item
/// headers hold data offsets relative to the end of the 101-byte header, so growing or shrinking one item
/// shifts the data of that item and of every item after it and fixes their offsets. The checksum is not
/// touched (the <see cref="BlockEdits"/> session recomputes it when it writes).</summary>
public sealed class LeafEditor
{
    private const int KeyAt = 0;
    private const int DataOffsetAt = KeyAt + BtrfsKey.Size; // 17
    private const int DataSizeAt = DataOffsetAt + 4;        // 21

    private readonly byte[] _b;

    public LeafEditor(byte[] block)
    {
        if (block.Length < Header.Size || block[Header.LevelAt] != 0)
            throw new ForgeException("not a leaf");
        _b = block;
        CheckPacked();
    }

    public byte[] Block => _b;

    public int NrItems
    {
        get => (int)BinaryPrimitives.ReadUInt32LittleEndian(_b.AsSpan(Header.NrItemsAt));
        private set => BinaryPrimitives.WriteUInt32LittleEndian(_b.AsSpan(Header.NrItemsAt), (uint)value);
    }

    /// <summary>Size of the data area (block size minus the header).</summary>
    public int DataAreaSize => _b.Length - Header.Size;

    /// <summary>Bytes between the last item header and the lowest item data, as btrfs_leaf_free_space.</summary>
    public int FreeSpace => LowestDataOffset - NrItems * ItemHeader.Size;

    public BtrfsKey Key(int slot) => BtrfsKey.Read(HeaderSpan(slot));

    public void SetKey(int slot, BtrfsKey key) => key.Write(HeaderSpan(slot));

    public int DataOffset(int slot) => (int)BinaryPrimitives.ReadUInt32LittleEndian(HeaderSpan(slot)[DataOffsetAt..]);

    public int DataSize(int slot) => (int)BinaryPrimitives.ReadUInt32LittleEndian(HeaderSpan(slot)[DataSizeAt..]);

    public Span<byte> Data(int slot) => _b.AsSpan(Header.Size + DataOffset(slot), DataSize(slot));

    /// <summary>Slot of <paramref name="key"/>, or the bitwise complement of where it would be inserted.</summary>
    public int Find(BtrfsKey key)
    {
        int lo = 0, hi = NrItems - 1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >>> 1;
            int c = Key(mid).CompareTo(key);
            if (c == 0) return mid;
            if (c < 0) lo = mid + 1; else hi = mid - 1;
        }
        return ~lo;
    }

    /// <summary>Inserts <paramref name="bytes"/> into item <paramref name="slot"/> at byte <paramref name="at"/> of its data.</summary>
    public void InsertBytes(int slot, int at, ReadOnlySpan<byte> bytes)
    {
        CheckSlot(slot);
        int n = bytes.Length;
        if ((uint)at > (uint)DataSize(slot)) throw new ArgumentOutOfRangeException(nameof(at));
        if (n > FreeSpace) throw new ForgeException($"leaf has {FreeSpace} bytes free, item {slot} needs {n} more");
        int lowest = Header.Size + LowestDataOffset;
        int a = Header.Size + DataOffset(slot) + at;
        _b.AsSpan(lowest, a - lowest).CopyTo(_b.AsSpan(lowest - n));
        bytes.CopyTo(_b.AsSpan(a - n, n));
        for (int j = slot; j < NrItems; j++) SetDataOffset(j, DataOffset(j) - n);
        SetDataSize(slot, DataSize(slot) + n);
    }

    /// <summary>Removes <paramref name="count"/> bytes at byte <paramref name="at"/> of item <paramref name="slot"/>'s data.</summary>
    public void RemoveBytes(int slot, int at, int count)
    {
        CheckSlot(slot);
        if (at < 0 || count < 0 || at + count > DataSize(slot)) throw new ArgumentOutOfRangeException(nameof(count));
        int lowest = Header.Size + LowestDataOffset;
        int a = Header.Size + DataOffset(slot) + at;
        _b.AsSpan(lowest, a - lowest).CopyTo(_b.AsSpan(lowest + count));
        _b.AsSpan(lowest, count).Clear();
        for (int j = slot; j < NrItems; j++) SetDataOffset(j, DataOffset(j) + count);
        SetDataSize(slot, DataSize(slot) - count);
    }

    /// <summary>Inserts a new item at <paramref name="slot"/>. The caller keeps the keys in order (see <see cref="InsertSorted"/>).</summary>
    public void InsertItem(int slot, BtrfsKey key, ReadOnlySpan<byte> data)
    {
        int nr = NrItems;
        if ((uint)slot > (uint)nr) throw new ArgumentOutOfRangeException(nameof(slot));
        int d = data.Length;
        if (d + ItemHeader.Size > FreeSpace) throw new ForgeException($"leaf has {FreeSpace} bytes free, a new item needs {d + ItemHeader.Size}");
        int lowest = Header.Size + LowestDataOffset;
        int boundary = slot == 0 ? _b.Length : Header.Size + DataOffset(slot - 1);
        _b.AsSpan(lowest, boundary - lowest).CopyTo(_b.AsSpan(lowest - d));
        data.CopyTo(_b.AsSpan(boundary - d, d));
        int hdr = Header.Size + slot * ItemHeader.Size;
        _b.AsSpan(hdr, (nr - slot) * ItemHeader.Size).CopyTo(_b.AsSpan(hdr + ItemHeader.Size));
        NrItems = nr + 1;
        for (int j = slot + 1; j <= nr; j++) SetDataOffset(j, DataOffset(j) - d);
        SetKey(slot, key);
        SetDataOffset(slot, boundary - d - Header.Size);
        SetDataSize(slot, d);
    }

    /// <summary>Inserts a new item in key order; returns its slot. Throws when the key exists.</summary>
    public int InsertSorted(BtrfsKey key, ReadOnlySpan<byte> data)
    {
        int s = Find(key);
        if (s >= 0) throw new ForgeException($"key {key} already exists in slot {s}");
        InsertItem(~s, key, data);
        return ~s;
    }

    /// <summary>Deletes item <paramref name="slot"/> and its data.</summary>
    public void DeleteItem(int slot)
    {
        CheckSlot(slot);
        int nr = NrItems;
        int d = DataSize(slot);
        int lowest = Header.Size + LowestDataOffset;
        int a = Header.Size + DataOffset(slot);
        _b.AsSpan(lowest, a - lowest).CopyTo(_b.AsSpan(lowest + d));
        _b.AsSpan(lowest, d).Clear();
        for (int j = slot + 1; j < nr; j++) SetDataOffset(j, DataOffset(j) + d);
        int hdr = Header.Size + slot * ItemHeader.Size;
        _b.AsSpan(hdr + ItemHeader.Size, (nr - slot - 1) * ItemHeader.Size).CopyTo(_b.AsSpan(hdr));
        _b.AsSpan(Header.Size + (nr - 1) * ItemHeader.Size, ItemHeader.Size).Clear();
        NrItems = nr - 1;
    }

    private int LowestDataOffset => NrItems == 0 ? DataAreaSize : DataOffset(NrItems - 1);

    private Span<byte> HeaderSpan(int slot)
    {
        CheckSlot(slot);
        return _b.AsSpan(Header.Size + slot * ItemHeader.Size, ItemHeader.Size);
    }

    private void SetDataOffset(int slot, int value) => BinaryPrimitives.WriteUInt32LittleEndian(HeaderSpan(slot)[DataOffsetAt..], (uint)value);

    private void SetDataSize(int slot, int value) => BinaryPrimitives.WriteUInt32LittleEndian(HeaderSpan(slot)[DataSizeAt..], (uint)value);

    private void CheckSlot(int slot)
    {
        if ((uint)slot >= (uint)NrItems) throw new ArgumentOutOfRangeException(nameof(slot), $"slot {slot}, leaf has {NrItems} items");
    }

    /// <summary>The edits assume the kernel's layout: item i's data ends where item i-1's starts, item 0's at the block end.</summary>
    private void CheckPacked()
    {
        int nr = NrItems;
        if (nr > (DataAreaSize / ItemHeader.Size)) throw new ForgeException($"leaf claims {nr} items");
        int end = DataAreaSize;
        for (int i = 0; i < nr; i++)
        {
            if (DataOffset(i) + DataSize(i) != end || DataOffset(i) < (i + 1) * ItemHeader.Size)
                throw new ForgeException($"leaf item {i} is not packed (offset {DataOffset(i)}, size {DataSize(i)}, expected to end at {end})");
            end = DataOffset(i);
        }
    }
}

/// <summary>The forge cannot apply a defect (the image lacks what it needs, or would need more than one defect).</summary>
public class ForgeException(string message) : Exception(message);

/// <summary>The fixture has nothing this defect can be forged on (e.g. no extent with two refs of one type).</summary>
public sealed class ForgeNotApplicableException(string message) : ForgeException(message);
