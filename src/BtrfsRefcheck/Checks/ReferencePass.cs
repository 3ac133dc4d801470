using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Format.Items;
using BtrfsRefcheck.Trees;
using BtrfsRefcheck.Volume;

namespace BtrfsRefcheck.Checks;

/// <summary>Walks every tree once (blocks shared by snapshots are descended once, as btrfs check does) and
/// records, as compact structs: every block, every parent pointer, every file extent's data reference, and
/// from the extent tree every extent item with its inline and keyed back-refs and every block group.
/// <see cref="RefAnalysis"/> then sorts and merges the two sides.</summary>
internal sealed class ReferencePass(CheckContext ctx) : IScanSink<ScanState>
{
    internal BlockRec[] Blocks = [];
    internal PtrRec[] Ptrs = [];
    internal DataRec[] Data = [];
    internal ExtentRec[] Extents = [];
    internal RefRec[] Found = [];
    internal BlockGroupRec[] BlockGroups = [];
    internal DevExtentRec[] DevExtents = [];
    internal readonly List<(ulong Bytenr, ulong Tree, bool SharedSelf)> RootRefs = [];

    /// <summary>Chunks and devices as the walked chunk tree lists them (the generation being checked).</summary>
    internal readonly ChunkMap Chunks = new();
    internal readonly List<DevItemInfo> DevItems = [];

    /// <summary>Blocks whose subtree could not be read: references under them are unknown.</summary>
    internal readonly List<(ulong Bytenr, ulong Tree)> Unreadable = [];

    public void Run()
    {
        foreach (var root in ctx.Roots)
        {
            ctx.Stats.Trees++;
            if (!root.IsLog) RootRefs.Add((root.Bytenr, root.Id, root.IsReloc));
        }
        var scanner = new ParallelScanner(ctx.Volume, ctx.Findings, ctx.DegreeOfParallelism);
        var states = scanner.Scan(ctx.Roots, this);
        Merge(states);
        ctx.Stats.Nodes = scanner.Stats.Nodes;
        ctx.Stats.Leaves = scanner.Stats.Leaves;
        ctx.Stats.TreeBlocks = scanner.Stats.Nodes + scanner.Stats.Leaves;
        ctx.Stats.Items = scanner.Stats.Items;
        ctx.Stats.UnreadableBlocks = scanner.Stats.Unreadable;
        new RefAnalysis(ctx, this).Run();
        new DeviceAccounting(ctx, this).Run();
    }

    /// <summary>Concatenates the workers' lists into flat arrays, releasing each list as it goes.</summary>
    private void Merge(List<ScanState> states)
    {
        static T[] Concat<T>(List<ScanState> states, Func<ScanState, List<T>> pick)
        {
            var arr = new T[states.Sum(s => pick(s).Count)];
            int at = 0;
            foreach (var s in states)
            {
                var l = pick(s);
                l.CopyTo(arr, at);
                at += l.Count;
                l.Clear();
                l.TrimExcess();
            }
            return arr;
        }
        Blocks = Concat(states, s => s.Blocks);
        Ptrs = Concat(states, s => s.Ptrs);
        Data = Concat(states, s => s.Data);
        Extents = Concat(states, s => s.Extents);
        Found = Concat(states, s => s.Found);
        BlockGroups = Concat(states, s => s.BlockGroups);
        DevExtents = Concat(states, s => s.DevExtents);
        foreach (var s in states)
        {
            ctx.Stats.Add(s.Stats);
            Unreadable.AddRange(s.Unreadable);
            DevItems.AddRange(s.DevItems);
            foreach (var c in s.Chunks) Chunks.TryAdd(c);
        }
    }

    public ScanState CreateState() => new();

    public void OnUnreadable(in BlockContext bc, TreeBlockRead read, ScanState st) => st.Unreadable.Add((bc.Bytenr, bc.Tree.Id));

    public void OnBlock(in BlockContext bc, TreeBlock block, bool valid, ScanState st)
    {
        var view = block.View;
        var h = view.Header;
        bool log = bc.Tree.IsLog; // log tree blocks have no extent items and add no references
        if (!log)
            st.Blocks.Add(new BlockRec { Bytenr = block.Logical, Owner = h.Owner, Tree = bc.Tree.Id, Level = h.Level, BackrefRev = (byte)h.BackrefRev });
        if (!valid) return;
        if (!view.IsLeaf)
        {
            if (!log)
                for (int i = 0; i < view.Count; i++)
                    st.Ptrs.Add(new PtrRec { Child = view.KeyPtr(i).BlockPtr, Parent = block.Logical, ParentOwner = h.Owner, Tree = bc.Tree.Id, Slot = i });
            return;
        }
        ulong tree = bc.Tree.Id;
        for (int i = 0; i < view.Count; i++)
        {
            BtrfsKey key;
            ReadOnlySpan<byte> data;
            try
            {
                key = view.ItemKey(i);
                data = view.ItemData(i);
            }
            catch (BtrfsFormatException) { continue; } // reported by the block validator
            switch (key.ItemType)
            {
                case ItemType.ExtentData when !log:
                    FileExtent(st, block, h.Owner, tree, i, key, data);
                    break;
                case ItemType.ExtentItem or ItemType.MetadataItem when tree == ObjectIds.ExtentTree:
                    ExtentItemFound(st, block.Logical, i, key, data);
                    break;
                case ItemType.TreeBlockRef or ItemType.SharedBlockRef or ItemType.ExtentDataRef or ItemType.SharedDataRef
                    when tree == ObjectIds.ExtentTree:
                    KeyedRef(st, block.Logical, i, key, data);
                    break;
                case ItemType.BlockGroupItem when tree is ObjectIds.ExtentTree or ObjectIds.BlockGroupTree:
                    BlockGroup(st, block.Logical, i, key, data);
                    break;
                case ItemType.DevExtent when tree == ObjectIds.DevTree && data.Length >= DevExtent.Size:
                    st.DevExtents.Add(new DevExtentRec
                    {
                        DevId = key.ObjectId, Physical = key.Offset, ChunkOffset = Le.U64(data, 16), Length = Le.U64(data, 24),
                        ItemBlock = block.Logical, Slot = i,
                    });
                    break;
                case ItemType.ChunkItem when tree == ObjectIds.ChunkTree:
                    if (ChunkMap.Decode(key, data, out _) is { } chunk) st.Chunks.Add(chunk);
                    break;
                case ItemType.DevItem when tree == ObjectIds.ChunkTree && data.Length >= DevItem.Size:
                    var di = new DevItem(data);
                    st.DevItems.Add(new DevItemInfo(di.DevId, di.Uuid, di.Fsid, di.TotalBytes, di.BytesUsed));
                    break;
            }
        }
    }

    private void FileExtent(ScanState st, TreeBlock leaf, ulong owner, ulong tree, int slot, BtrfsKey key, ReadOnlySpan<byte> data)
    {
        if (data.Length < FileExtentItem.InlineHeaderSize) return;
        var type = (FileExtentType)data[FileExtentItem.InlineHeaderSize - 1];
        if (type == FileExtentType.Inline) return;
        if (data.Length < FileExtentItem.RegularSize)
        {
            ctx.Findings.Add(new Finding(FindingCode.ItemUndecodable, Severity.Error,
                $"{ObjectIds.TreeName(tree)}: file extent item of {data.Length} bytes, a {type} extent needs {FileExtentItem.RegularSize}; its data reference is not checked",
                Bytenr: leaf.Logical, Tree: tree, Slot: slot, Key: key));
            return;
        }
        var fe = new FileExtentItem(data);
        if (fe.DiskBytenr == 0) return; // a hole
        st.Stats.FileExtents++;
        st.Data.Add(new DataRec
        {
            Disk = fe.DiskBytenr, DiskLen = fe.DiskNumBytes, Leaf = leaf.Logical, LeafOwner = owner,
            Inode = key.ObjectId, Offset = unchecked(key.Offset - fe.Offset), Tree = tree, Slot = slot,
        });
    }

    private void ExtentItemFound(ScanState st, ulong leaf, int slot, BtrfsKey key, ReadOnlySpan<byte> data)
    {
        Finding Malformed(string msg) => new(FindingCode.ExtentItemMalformed, Severity.Error, msg, Bytenr: key.ObjectId,
            Tree: ObjectIds.ExtentTree, Slot: slot, Key: key);
        if (data.Length < ExtentItem.FixedSize)
        {
            ctx.Findings.Add(Malformed($"extent tree leaf {leaf}: {ItemTypes.Name(key.Type)} of {data.Length} bytes, need at least {ExtentItem.FixedSize} (v0 extent items are not supported)"));
            return;
        }
        var ei = new ExtentItem(data, key.ItemType);
        bool meta = key.ItemType == ItemType.MetadataItem;
        var rec = new ExtentRec
        {
            Bytenr = key.ObjectId, Refs = ei.Refs, Flags = (ulong)ei.Flags, Generation = ei.Generation,
            ItemBlock = leaf, ItemSlot = slot, IsMetadataItem = meta, Level = 0xff,
            Length = meta ? ctx.Volume.NodeSize : key.Offset,
        };
        if (meta) rec.Level = (byte)Math.Min(key.Offset, 0xfe);
        else if (ei.HasTreeBlockInfo)
        {
            if (data.Length < ExtentItem.FixedSize + ExtentItem.TreeBlockInfoSize)
            {
                ctx.Findings.Add(Malformed($"extent tree leaf {leaf}: EXTENT_ITEM of a tree block has {data.Length} bytes, too short for tree_block_info"));
                st.Extents.Add(rec);
                return;
            }
            rec.Level = ei.TreeBlockLevel;
        }
        if (meta && !ei.IsTreeBlock)
            ctx.Findings.Add(Malformed($"extent tree leaf {leaf}: METADATA_ITEM without the TREE_BLOCK flag (flags 0x{rec.Flags:x})"));
        if (ei.IsTreeBlock == ei.IsData)
            ctx.Findings.Add(Malformed($"extent tree leaf {leaf}: extent flags 0x{rec.Flags:x} must have exactly one of DATA and TREE_BLOCK"));
        st.Extents.Add(rec);
        if (ei.IsTreeBlock) st.Stats.MetadataExtentItems++; else st.Stats.DataExtentItems++;
        st.Stats.ExtentItems++;

        byte lastType = 0;
        ulong lastSeq = ulong.MaxValue;
        var refs = ei.InlineRefs;
        while (refs.MoveNext())
        {
            var r = refs.Current;
            st.Stats.InlineRefs++;
            CountKind(st, (RefKind)r.Type);
            // Kernel order (tree-checker check_extent_item): types ascending; within a type, offsets (or data ref hashes) descending.
            byte t = (byte)r.Type;
            ulong seq = r.SortKey;
            if (t < lastType || (t == lastType && seq > lastSeq))
                ctx.Findings.Add(new Finding(FindingCode.InlineRefsOutOfOrder, Severity.Error,
                    $"extent {key.ObjectId}: inline ref at item offset {r.ItemOffset} ({ItemTypes.Name(t)} 0x{seq:x}) is out of the kernel's order after {ItemTypes.Name(lastType)} 0x{lastSeq:x}",
                    Bytenr: key.ObjectId, Tree: ObjectIds.ExtentTree, Slot: slot, Key: key,
                    Expected: "types ascending, same-type offsets descending", Found: $"{ItemTypes.Name(t)} after {ItemTypes.Name(lastType)}"));
            if (t > lastType) lastSeq = ulong.MaxValue;
            lastType = t;
            lastSeq = Math.Min(lastSeq, seq);
            if (r.Type == ItemType.ExtentOwnerRef) continue;
            st.Found.Add(new RefRec
            {
                Bytenr = key.ObjectId, Kind = (RefKind)r.Type, A = r.Root | r.Parent, ObjectId = r.ObjectId, Offset = r.Offset,
                Count = r.RefCount, Where = leaf, Slot = slot, Inline = true,
            });
        }
        if (refs.Error != null)
        {
            bool unknown = InlineRefEnumerator.SizeOf((ItemType)refs.ErrorType) < 0;
            ctx.Findings.Add(new Finding(unknown ? FindingCode.UnknownInlineRefType : FindingCode.ExtentItemMalformed, Severity.Error,
                $"extent {key.ObjectId}: {refs.Error}; the inline refs after it are not checked",
                Bytenr: key.ObjectId, Tree: ObjectIds.ExtentTree, Slot: slot, Key: key,
                Found: unknown ? $"type {refs.ErrorType}" : null));
        }
    }

    private static void CountKind(ScanState st, RefKind k)
    {
        switch (k)
        {
            case RefKind.TreeBlock: st.Stats.TreeBlockRefs++; break;
            case RefKind.SharedBlock: st.Stats.SharedBlockRefs++; break;
            case RefKind.ExtentData: st.Stats.ExtentDataRefs++; break;
            case RefKind.SharedData: st.Stats.SharedDataRefs++; break;
            case RefKind.Owner: st.Stats.ExtentOwnerRefs++; break;
        }
    }

    private void KeyedRef(ScanState st, ulong leaf, int slot, BtrfsKey key, ReadOnlySpan<byte> data)
    {
        var kind = (RefKind)key.Type;
        st.Stats.KeyedRefs++;
        CountKind(st, kind);
        var rec = new RefRec { Bytenr = key.ObjectId, Kind = kind, Where = leaf, Slot = slot, Count = 1 };
        Finding Bad(string msg) => new(FindingCode.ExtentItemMalformed, Severity.Error, $"extent {key.ObjectId}: {msg}",
            Bytenr: key.ObjectId, Tree: ObjectIds.ExtentTree, Slot: slot, Key: key);
        switch (kind)
        {
            case RefKind.TreeBlock or RefKind.SharedBlock:
                if (data.Length != 0) ctx.Findings.Add(Bad($"keyed {ItemTypes.Name(key.Type)} has {data.Length} bytes of data, expected 0"));
                rec.A = key.Offset;
                break;
            case RefKind.SharedData:
                if (data.Length < 4) { ctx.Findings.Add(Bad($"keyed SHARED_DATA_REF has {data.Length} bytes, expected 4")); return; }
                rec.A = key.Offset;
                rec.Count = Le.U32(data, 0);
                break;
            case RefKind.ExtentData:
                if (data.Length < ExtentDataRefs.Size) { ctx.Findings.Add(Bad($"keyed EXTENT_DATA_REF has {data.Length} bytes, expected {ExtentDataRefs.Size}")); return; }
                var (root, objectId, offset, count) = ExtentDataRefs.Read(data);
                rec.A = root; rec.ObjectId = objectId; rec.Offset = offset; rec.Count = count;
                ulong hash = ExtentDataRefs.Hash(root, objectId, offset);
                if (hash != key.Offset)
                    ctx.Findings.Add(new Finding(FindingCode.KeyedDataRefHashMismatch, Severity.Error,
                        $"extent {key.ObjectId}: keyed EXTENT_DATA_REF root={root} objectid={objectId} offset={offset} is filed under the wrong hash",
                        Bytenr: key.ObjectId, Tree: ObjectIds.ExtentTree, Slot: slot, Key: key, Expected: $"0x{hash:x}", Found: $"0x{key.Offset:x}"));
                break;
        }
        st.Found.Add(rec);
    }

    private void BlockGroup(ScanState st, ulong leaf, int slot, BtrfsKey key, ReadOnlySpan<byte> data)
    {
        if (data.Length < 24)
        {
            ctx.Findings.Add(new Finding(FindingCode.ItemUndecodable, Severity.Error, $"BLOCK_GROUP_ITEM of {data.Length} bytes, expected 24",
                Bytenr: leaf, Slot: slot, Key: key));
            return;
        }
        st.Stats.BlockGroups++;
        st.BlockGroups.Add(new BlockGroupRec
        {
            Start = key.ObjectId, Length = key.Offset, Used = Le.U64(data, 0), Flags = Le.U64(data, 16), ItemBlock = leaf, Slot = slot,
        });
    }
}

/// <summary>One worker's records; merged after the scan.</summary>
internal sealed class ScanState
{
    public readonly List<BlockRec> Blocks = [];
    public readonly List<PtrRec> Ptrs = [];
    public readonly List<DataRec> Data = [];
    public readonly List<ExtentRec> Extents = [];
    public readonly List<RefRec> Found = [];
    public readonly List<BlockGroupRec> BlockGroups = [];
    public readonly List<DevExtentRec> DevExtents = [];
    public readonly List<Chunk> Chunks = [];
    public readonly List<DevItemInfo> DevItems = [];
    public readonly List<(ulong Bytenr, ulong Tree)> Unreadable = [];
    public readonly CheckStats Stats = new();
}
