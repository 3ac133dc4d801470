using System.Runtime.CompilerServices;
using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Format.Items;
using BtrfsRefcheck.Trees.ItemValidation;

namespace BtrfsRefcheck.Checks;

/// <summary>Decodes the extent tree's EXTENT_ITEM / METADATA_ITEM and keyed back-ref items into compact records,
/// checking the inline refs' types and order and the keyed refs' hashes, and counting every back-ref type. What keeps
/// an item from being decoded is the item validator's to report (ExtentItemMalformed, during the tree scan); the
/// decoder skips by the same rules (<see cref="ExtentItemValidator.ShapeOf"/>, <see cref="KeyedRefValidator.Decodable"/>).</summary>
internal sealed class ExtentTreeDecoder(FindingBag findings, CheckStats stats, uint nodeSize, List<ExtentRec> extents, List<RefRec> found)
{
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void DecodeExtentItem(ulong leaf, int slot, BtrfsKey key, ReadOnlySpan<byte> data)
    {
        var shape = ExtentItemValidator.ShapeOf(key, data);
        if (shape == ExtentItemShape.TooShort) return;
        var ei = new ExtentItem(data, key.ItemType);
        bool meta = key.ItemType == ItemType.MetadataItem;
        ref var rec = ref ListSlots.Append(extents); // every field written below
        rec.Bytenr = key.ObjectId;
        rec.Refs = ei.Refs;
        rec.Flags = (ulong)ei.Flags;
        rec.ItemBlock = leaf;
        rec.ItemSlot = slot;
        rec.IsMetadataItem = meta;
        rec.Level = 0xff;
        rec.Length = meta ? nodeSize : key.Offset;
        if (meta) rec.Level = (byte)Math.Min(key.Offset, 0xfe);
        else if (ei.HasTreeBlockInfo)
        {
            if (shape == ExtentItemShape.NoTreeBlockInfo) return;
            rec.Level = ei.TreeBlockLevel;
        }
        if (ei.IsTreeBlock) stats.MetadataExtentItems++; else stats.DataExtentItems++;
        stats.ExtentItems++;

        byte lastType = 0;
        ulong lastSeq = ulong.MaxValue;
        // The first ref of a type cannot be out of order, so its sort key (a CRC hash for data refs) is only computed
        // when another ref of the same or a lower type follows it: most extents have one ref of each type.
        InlineRef pending = default;
        bool hasPending = false;
        var refs = ei.InlineRefs;
        while (refs.MoveNext())
        {
            ref readonly var r = ref refs.Current; // fields read one by one (see Current), never copied whole
            stats.InlineRefs++;
            CountKind((RefKind)r.Type);
            // Kernel order (tree-checker check_extent_item): types ascending; within a type, offsets (or data ref hashes) descending.
            byte t = (byte)r.Type;
            if (t > lastType)
            {
                lastSeq = ulong.MaxValue;
                pending = new InlineRef(r.Type, r.ItemOffset, r.Root, r.Parent, r.ObjectId, r.Offset, r.Count);
                hasPending = true;
            }
            else
            {
                if (hasPending) { lastSeq = Math.Min(lastSeq, pending.SortKey); hasPending = false; }
                ulong seq = r.SortKey;
                if (t < lastType || seq > lastSeq) OutOfOrder(key, slot, r.ItemOffset, t, seq, lastType, lastSeq);
                lastSeq = Math.Min(lastSeq, seq);
            }
            lastType = t;
            if (r.Type == ItemType.ExtentOwnerRef) continue;
            ref var f = ref ListSlots.Append(found); // every field written below
            f.Bytenr = key.ObjectId;
            f.Kind = (RefKind)r.Type;
            f.RootOrParent = r.Root | r.Parent;
            f.ObjectId = r.ObjectId;
            f.Offset = r.Offset;
            f.Count = (uint)Math.Min(r.RefCount, uint.MaxValue);
            f.Block = leaf;
            f.Slot = (ushort)slot;
            f.Inline = true;
            f.SizeOrItemOffset = (uint)r.ItemOffset;
        }
        // a truncated inline ref is the item validator's (ExtentItemMalformed); an unknown type is decided here
        if (refs.Error != null && InlineRefEnumerator.SizeOf((ItemType)refs.ErrorType) < 0)
            findings.Add(new Finding(FindingCode.UnknownInlineRefType, Severity.Error,
                $"extent {key.ObjectId}: {refs.Error}; the inline refs after it are not checked",
                Bytenr: key.ObjectId, Tree: ObjectIds.ExtentTree, Slot: slot, Key: key,
                Expected: "a known inline ref type (172, 176, 178, 182, 184)", Found: $"type {refs.ErrorType}"));
    }

    private void OutOfOrder(BtrfsKey key, int slot, int itemOffset, byte t, ulong seq, byte lastType, ulong lastSeq) =>
        findings.Add(new Finding(FindingCode.InlineRefsOutOfOrder, Severity.Error,
            $"extent {key.ObjectId}: inline ref at item offset {itemOffset} ({ItemTypes.Name(t)} 0x{seq:x}) is out of the kernel's order after {ItemTypes.Name(lastType)} 0x{lastSeq:x}",
            Bytenr: key.ObjectId, Tree: ObjectIds.ExtentTree, Slot: slot, Key: key,
            Expected: "types ascending, same-type offsets descending", Found: $"{ItemTypes.Name(t)} after {ItemTypes.Name(lastType)}"));

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void CountKind(RefKind k)
    {
        switch (k)
        {
            case RefKind.TreeBlock: stats.TreeBlockRefs++; break;
            case RefKind.SharedBlock: stats.SharedBlockRefs++; break;
            case RefKind.ExtentData: stats.ExtentDataRefs++; break;
            case RefKind.SharedData: stats.SharedDataRefs++; break;
            case RefKind.Owner: stats.ExtentOwnerRefs++; break;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void DecodeKeyedRef(ulong leaf, int slot, BtrfsKey key, ReadOnlySpan<byte> data)
    {
        var kind = (RefKind)key.Type;
        stats.KeyedRefs++;
        CountKind(kind);
        if (!KeyedRefValidator.Decodable(key.ItemType, data.Length)) return; // the item validator reports it
        var rec = new RefRec { Bytenr = key.ObjectId, Kind = kind, Block = leaf, Slot = (ushort)slot, Count = 1 };
        switch (kind)
        {
            case RefKind.TreeBlock or RefKind.SharedBlock:
                rec.RootOrParent = key.Offset;
                break;
            case RefKind.SharedData:
                rec.RootOrParent = key.Offset;
                rec.Count = new SharedDataRef(data).Count;
                break;
            case RefKind.ExtentData:
                var (root, objectId, offset, count) = ExtentDataRefs.Read(data);
                rec.RootOrParent = root; rec.ObjectId = objectId; rec.Offset = offset; rec.Count = count;
                ulong hash = ExtentDataRefs.Hash(root, objectId, offset);
                if (hash != key.Offset)
                    findings.Add(new Finding(FindingCode.KeyedDataRefHashMismatch, Severity.Error,
                        $"extent {key.ObjectId}: keyed EXTENT_DATA_REF root={root} objectid={objectId} offset={offset} is filed under the wrong hash",
                        Bytenr: key.ObjectId, Tree: ObjectIds.ExtentTree, Slot: slot, Key: key, Expected: $"0x{hash:x}", Found: $"0x{key.Offset:x}"));
                break;
        }
        found.Add(rec);
    }
}
