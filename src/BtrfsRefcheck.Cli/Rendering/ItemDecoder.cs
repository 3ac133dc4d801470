using BtrfsRefcheck.Format;
using BtrfsRefcheck.Format.Items;

namespace BtrfsRefcheck.Cli.Rendering;

/// <summary>Decodes one leaf item into an <see cref="IItemWriter"/>, with btrfs-progs' (snake_case) field names.
/// One <c>switch</c> on the key type dispatches to one small method per item type.
/// <para>Never throws for bad data: a decode error (<see cref="BtrfsFormatException"/>) becomes
/// <see cref="IItemWriter.Problem"/> followed by the raw bytes as hex; an unknown key type is shown raw with a
/// problem; a fixed-size item of the wrong size gets a problem saying have versus expected and is decoded as far
/// as its bytes allow. Containers opened on the writer are always closed, even when decoding stops half-way.</para>
/// <para>Field names for EXTENT_ITEM / METADATA_ITEM: refs, gen, flags, then tree_block_key and level (EXTENT_ITEM
/// of a tree block) or skinny_level (METADATA_ITEM, from the key offset), then an array inline_refs of objects
/// {type, root} (TREE_BLOCK_REF, EXTENT_OWNER_REF), {type, parent} (SHARED_BLOCK_REF), {type, root, objectid,
/// offset, count} (EXTENT_DATA_REF), {type, parent, count} (SHARED_DATA_REF).</para></summary>
public static class ItemDecoder
{
    /// <summary>At most this many bytes are dumped as hex for a raw field.</summary>
    public const int RawHexCap = 4096;

    /// <remarks>When <paramref name="w"/> is an <see cref="IItemBodyWriter"/>, the body is framed with
    /// <see cref="IItemBodyWriter.BeginItem"/> and <see cref="IItemBodyWriter.EndItem"/>.</remarks>
    public static void Decode(in ItemContext ctx, BtrfsKey key, ReadOnlySpan<byte> data, IItemWriter w)
    {
        var framed = w as IItemBodyWriter;
        framed?.BeginItem();
        var bw = new BalancedWriter(w);
        try
        {
            DecodeItem(ctx, key, data, bw);
        }
        catch (BtrfsFormatException e)
        {
            bw.CloseAll();
            bw.Problem($"{ItemTypes.Name(key.Type)}: {e.Message}");
            Raw(data, bw);
        }
        bw.CloseAll();
        framed?.EndItem();
    }

    private static void DecodeItem(in ItemContext ctx, BtrfsKey key, ReadOnlySpan<byte> data, IItemWriter w)
    {
        switch ((ItemType)key.Type)
        {
            case ItemType.InodeItem: DecodeInodeItem(data, w); break;
            case ItemType.InodeRef: DecodeInodeRef(data, w); break;
            case ItemType.InodeExtref: DecodeInodeExtref(data, w); break;
            case ItemType.XattrItem:
            case ItemType.DirItem:
            case ItemType.DirIndex: DecodeDirItem(key, data, w); break;
            case ItemType.VerityDescItem: DecodeVerityDesc(key, data, w); break;
            case ItemType.VerityMerkleItem: DecodeVerityMerkle(data, w); break;
            case ItemType.OrphanItem: DecodeEmpty(key, data, w); break;
            case ItemType.DirLogItem:
            case ItemType.DirLogIndex: DecodeDirLog(key, data, w); break;
            case ItemType.ExtentData: DecodeFileExtent(key, data, w); break;
            case ItemType.ExtentCsum: DecodeExtentCsum(ctx, key, data, w); break;
            case ItemType.RootItem: DecodeRootItem(key, data, w); break;
            case ItemType.RootRef:
            case ItemType.RootBackref: DecodeRootRef(key, data, w); break;
            case ItemType.ExtentItem:
            case ItemType.MetadataItem: DecodeExtentItem(key, data, w); break;
            case ItemType.ExtentOwnerRef: DecodeExtentOwnerRef(key, data, w); break;
            case ItemType.TreeBlockRef:
            case ItemType.SharedBlockRef: DecodeEmpty(key, data, w); break;
            case ItemType.ExtentDataRef: DecodeExtentDataRef(key, data, w); break;
            case ItemType.SharedDataRef: DecodeSharedDataRef(key, data, w); break;
            case ItemType.ExtentRefV0: DecodeExtentRefV0(data, w); break;
            case ItemType.BlockGroupItem: DecodeBlockGroup(key, data, w); break;
            case ItemType.FreeSpaceInfo: DecodeFreeSpaceInfo(key, data, w); break;
            case ItemType.FreeSpaceExtent: DecodeEmpty(key, data, w); break;
            case ItemType.FreeSpaceBitmap: DecodeFreeSpaceBitmap(ctx, key, data, w); break;
            case ItemType.DevExtent: DecodeDevExtent(key, data, w); break;
            case ItemType.DevItem: DecodeDevItem(key, data, w); break;
            case ItemType.ChunkItem: DecodeChunkItem(key, data, w); break;
            case ItemType.RaidStripe: DecodeRaidStripe(data, w); break;
            case ItemType.QgroupStatus: DecodeQgroupStatus(key, data, w); break;
            case ItemType.QgroupInfo: DecodeQgroupInfo(key, data, w); break;
            case ItemType.QgroupLimit: DecodeQgroupLimit(key, data, w); break;
            case ItemType.QgroupRelation: DecodeEmpty(key, data, w); break;
            case ItemType.TemporaryItem: DecodeTemporaryItem(key, data, w); break;
            case ItemType.PersistentItem: DecodePersistentItem(key, data, w); break;
            case ItemType.DevReplace: DecodeDevReplace(key, data, w); break;
            case ItemType.UuidKeySubvol:
            case ItemType.UuidKeyReceivedSubvol: DecodeUuidItem(key, data, w); break;
            case ItemType.StringItem: DecodeString(data, w); break;
            case (ItemType)0 when key.ObjectId == ObjectIds.FreeSpace: DecodeFreeSpaceHeader(data, w); break;
            default: DecodeUnknown(key, data, w); break;
        }
    }

    // ---- inode and directory items ----

    private static void DecodeInodeItem(ReadOnlySpan<byte> data, IItemWriter w)
    {
        if (!CheckSize(data, InodeItem.Size, "INODE_ITEM", w)) { Raw(data, w); return; }
        WriteInode(new InodeItem(data), w);
    }

    private static void WriteInode(InodeItem ii, IItemWriter w)
    {
        w.Field("generation", ii.Generation);
        w.Field("transid", ii.Transid);
        w.Field("size", ii.FileSize);
        w.Field("nbytes", ii.Nbytes);
        w.Field("block_group", ii.BlockGroup);
        w.Field("nlink", ii.Nlink);
        w.Field("uid", ii.Uid);
        w.Field("gid", ii.Gid);
        w.Field("mode", ii.Mode);
        w.Field("rdev", ii.Rdev);
        w.Flags("flags", (ulong)ii.Flags, InodeItem.FlagNames((ulong)ii.Flags));
        w.Field("sequence", ii.Sequence);
        w.Field("atime", Time(ii.Atime));
        w.Field("ctime", Time(ii.Ctime));
        w.Field("mtime", Time(ii.Mtime));
        w.Field("otime", Time(ii.Otime));
    }

    private static void DecodeInodeRef(ReadOnlySpan<byte> data, IItemWriter w)
    {
        if (data.IsEmpty) w.Problem($"INODE_REF: empty item, expected at least {InodeRef.EntryHeaderSize} bytes");
        var en = new InodeRef(data).Entries;
        w.BeginArray("entries");
        while (en.MoveNext())
        {
            var e = en.Current;
            w.BeginObject(null);
            w.Field("index", e.Index);
            w.Field("name_len", e.NameLength);
            w.Field("name", ItemText.Escape(e.Name));
            w.EndObject();
        }
        w.EndArray();
        if (en.Error != null) w.Problem($"INODE_REF: {en.Error}");
    }

    private static void DecodeInodeExtref(ReadOnlySpan<byte> data, IItemWriter w)
    {
        if (data.IsEmpty) w.Problem($"INODE_EXTREF: empty item, expected at least {InodeExtref.EntryHeaderSize} bytes");
        var en = new InodeExtref(data).Entries;
        w.BeginArray("entries");
        while (en.MoveNext())
        {
            var e = en.Current;
            w.BeginObject(null);
            w.Field("index", e.Index);
            w.Field("parent_objectid", e.ParentObjectId);
            w.Field("name_len", e.NameLength);
            w.Field("name", ItemText.Escape(e.Name));
            w.EndObject();
        }
        w.EndArray();
        if (en.Error != null) w.Problem($"INODE_EXTREF: {en.Error}");
    }

    private static void DecodeDirItem(BtrfsKey key, ReadOnlySpan<byte> data, IItemWriter w)
    {
        string type = ItemTypes.Name(key.Type);
        if (data.IsEmpty) w.Problem($"{type}: empty item, expected at least {DirItem.EntryHeaderSize} bytes");
        var en = new DirItem(data).Entries;
        w.BeginArray("entries");
        while (en.MoveNext())
        {
            var e = en.Current;
            w.BeginObject(null);
            w.Field("location", e.Location.ToDisplayString());
            w.Field("type", DirItem.TypeName(e.Type));
            w.Field("transid", e.Transid);
            w.Field("data_len", e.DataLength);
            w.Field("name_len", e.NameLength);
            w.Field("name", ItemText.Escape(e.Name));
            if (e.DataLength > 0) w.Field("data", ItemText.Escape(e.Data));
            w.EndObject();
        }
        w.EndArray();
        if (en.Error != null) w.Problem($"{type}: {en.Error}");
    }

    private static void DecodeDirLog(BtrfsKey key, ReadOnlySpan<byte> data, IItemWriter w)
    {
        if (!CheckSize(data, DirLogItem.Size, ItemTypes.Name(key.Type), w)) { Raw(data, w); return; }
        w.Field("end", new DirLogItem(data).End);
    }

    private static void DecodeVerityDesc(BtrfsKey key, ReadOnlySpan<byte> data, IItemWriter w)
    {
        if (key.Offset != 0)
        {
            // Opaque fs-verity descriptor bytes.
            w.Field("size", (ulong)data.Length);
            Raw(data, w, "data");
            return;
        }
        if (!CheckSize(data, VerityDescItem.Size, "VERITY_DESC_ITEM", w)) { Raw(data, w); return; }
        var v = new VerityDescItem(data);
        w.Field("size", v.DescriptorSize);
        w.Field("encryption", v.Encryption);
    }

    private static void DecodeVerityMerkle(ReadOnlySpan<byte> data, IItemWriter w)
    {
        var v = new VerityMerkleItem(data);
        w.Field("size", (ulong)v.Bytes.Length);
        Raw(v.Bytes, w, "data");
    }

    // ---- file extents and checksums ----

    private static void DecodeFileExtent(BtrfsKey key, ReadOnlySpan<byte> data, IItemWriter w)
    {
        if (data.Length < FileExtentItem.InlineHeaderSize)
        {
            w.Problem($"EXTENT_DATA: item size {data.Length}, expected at least {FileExtentItem.InlineHeaderSize}");
            Raw(data, w);
            return;
        }
        byte type = new FileExtentItem.Head(data).TypeByte;
        if (type != (byte)FileExtentType.Inline && data.Length < FileExtentItem.RegularSize)
        {
            w.Problem($"EXTENT_DATA: item size {data.Length}, expected {FileExtentItem.RegularSize} for a {FileExtentTypeName(type)} extent");
            Raw(data, w);
            return;
        }
        var fe = new FileExtentItem(data);
        w.Field("generation", fe.Generation);
        w.Field("type", FileExtentTypeName(type));
        w.Field("compression", FileExtentItem.CompressionName(fe.Compression));
        w.Field("encryption", fe.Encryption);
        w.Field("other_encoding", fe.OtherEncoding);
        w.Field("ram_bytes", fe.RamBytes);
        if (fe.IsInline)
        {
            w.Field("inline_size", (ulong)fe.InlineData.Length);
        }
        else
        {
            w.Field("disk_bytenr", fe.DiskBytenr);
            w.Field("disk_num_bytes", fe.DiskNumBytes);
            w.Field("offset", fe.Offset);
            w.Field("num_bytes", fe.NumBytes);
            if (data.Length != FileExtentItem.RegularSize)
                w.Problem($"EXTENT_DATA: item size {data.Length}, expected {FileExtentItem.RegularSize}");
        }
        if (type > (byte)FileExtentType.Prealloc) w.Problem($"EXTENT_DATA: unknown file extent type {type}");
    }

    private static string FileExtentTypeName(byte type) => (FileExtentType)type switch
    {
        FileExtentType.Inline => "inline",
        FileExtentType.Regular => "regular",
        FileExtentType.Prealloc => "prealloc",
        _ => $"unknown({type})",
    };

    private static void DecodeExtentCsum(in ItemContext ctx, BtrfsKey key, ReadOnlySpan<byte> data, IItemWriter w)
    {
        var ci = new CsumItem(data, ctx.CsumSize);
        w.Field("start", key.Offset);
        if (ctx.SectorSize != 0)
        {
            ulong len = ci.CoveredBytes(ctx.SectorSize);
            w.Field("end", key.Offset + len);
            w.Field("length", len);
        }
        w.Field("count", (ulong)ci.Count);
        w.BeginArray("csums");
        for (int i = 0; i < ci.Count; i++) w.Field("csum", "0x" + Convert.ToHexStringLower(ci.Csum(i)));
        w.EndArray();
        if (ci.Leftover != 0)
            w.Problem($"EXTENT_CSUM: item size {data.Length} is not a multiple of the checksum size {ci.CsumSize} ({ci.Leftover} bytes left over)");
    }

    // ---- root tree ----

    private static void DecodeRootItem(BtrfsKey key, ReadOnlySpan<byte> data, IItemWriter w)
    {
        if (data.Length != RootItem.FullSize && data.Length != RootItem.LegacySize)
            w.Problem($"ROOT_ITEM: item size {data.Length}, expected {RootItem.FullSize} (or legacy {RootItem.LegacySize})");
        if (data.Length < RootItem.LegacySize)
        {
            if (data.Length >= InodeItem.Size)
            {
                w.BeginObject("inode");
                WriteInode(new InodeItem(data), w);
                w.EndObject();
            }
            Raw(data, w);
            return;
        }
        var ri = new RootItem(data);
        w.Field("generation", ri.Generation);
        w.Field("root_dirid", ri.RootDirId);
        w.Field("bytenr", ri.Bytenr);
        w.Field("byte_limit", ri.ByteLimit);
        w.Field("bytes_used", ri.BytesUsed);
        w.Field("last_snapshot", ri.LastSnapshot);
        w.Flags("flags", ri.Flags, ItemText.FlagNames(ri.Flags, RootFlagTable));
        w.Field("refs", ri.Refs);
        w.Field("drop_progress", ri.DropProgress.ToDisplayString());
        w.Field("drop_level", ri.DropLevel);
        w.Field("level", ri.Level);
        if (ri.HasV2)
        {
            w.Field("generation_v2", ri.GenerationV2);
            w.Field("uuid", ri.Uuid.ToString("D"));
            w.Field("parent_uuid", ri.ParentUuid.ToString("D"));
            w.Field("received_uuid", ri.ReceivedUuid.ToString("D"));
            w.Field("ctransid", ri.Ctransid);
            w.Field("otransid", ri.Otransid);
            w.Field("stransid", ri.Stransid);
            w.Field("rtransid", ri.Rtransid);
            w.Field("ctime", Time(ri.Ctime));
            w.Field("otime", Time(ri.Otime));
            w.Field("stime", Time(ri.Stime));
            w.Field("rtime", Time(ri.Rtime));
        }
        w.BeginObject("inode");
        WriteInode(new InodeItem(ri.Inode), w);
        w.EndObject();
    }

    private static readonly (ulong, string)[] RootFlagTable =
        [(RootItem.FlagSubvolReadOnly, "RDONLY"), (RootItem.FlagSubvolDead, "DEAD")];

    private static void DecodeRootRef(BtrfsKey key, ReadOnlySpan<byte> data, IItemWriter w)
    {
        string type = ItemTypes.Name(key.Type);
        if (data.Length < RootRef.HeaderSize)
        {
            w.Problem($"{type}: item size {data.Length}, expected at least {RootRef.HeaderSize}");
            Raw(data, w);
            return;
        }
        var rr = new RootRef(data);
        w.Field("dirid", rr.DirId);
        w.Field("sequence", rr.Sequence);
        w.Field("name_len", rr.NameLength);
        w.Field("name", ItemText.Escape(rr.Name));
        if (data.Length != rr.ExpectedSize)
            w.Problem($"{type}: item size {data.Length}, expected {rr.ExpectedSize} for name_len {rr.NameLength}");
    }

    private static void DecodeFreeSpaceHeader(ReadOnlySpan<byte> data, IItemWriter w)
    {
        if (!CheckSize(data, FreeSpaceHeader.Size, "free space header", w)) { Raw(data, w); return; }
        var h = new FreeSpaceHeader(data);
        w.Field("location", h.Location.ToDisplayString());
        w.Field("generation", h.Generation);
        w.Field("num_entries", h.NumEntries);
        w.Field("num_bitmaps", h.NumBitmaps);
    }

    private static void DecodeTemporaryItem(BtrfsKey key, ReadOnlySpan<byte> data, IItemWriter w)
    {
        if (key.ObjectId != ObjectIds.Balance)
        {
            w.Problem($"TEMPORARY_ITEM: unknown temporary item objectid {ObjectIds.Name(key.ObjectId, key.Type)}");
            Raw(data, w);
            return;
        }
        if (!CheckSize(data, BalanceItem.Size, "balance item", w)) { Raw(data, w); return; }
        var b = new BalanceItem(data);
        w.Flags("flags", b.Flags, BalanceItem.FlagNames(b.Flags));
        WriteBalanceArgs("data", b.Data, w);
        WriteBalanceArgs("meta", b.Meta, w);
        WriteBalanceArgs("sys", b.Sys, w);
    }

    private static void WriteBalanceArgs(string name, DiskBalanceArgs a, IItemWriter w)
    {
        w.BeginObject(name);
        w.Flags("profiles", a.Profiles, ExtendedProfileNames(a.Profiles));
        if ((a.Flags & DiskBalanceArgs.FlagUsageRange) != 0)
        {
            w.Field("usage_min", a.UsageMin);
            w.Field("usage_max", a.UsageMax);
        }
        else
        {
            w.Field("usage", a.Usage);
        }
        w.Field("devid", a.DevId);
        w.Field("pstart", a.Pstart);
        w.Field("pend", a.Pend);
        w.Field("vstart", a.Vstart);
        w.Field("vend", a.Vend);
        w.Flags("target", a.Target, ExtendedProfileNames(a.Target));
        w.Flags("flags", a.Flags, DiskBalanceArgs.FlagNames(a.Flags));
        if ((a.Flags & DiskBalanceArgs.FlagLimitRange) != 0)
        {
            w.Field("limit_min", a.LimitMin);
            w.Field("limit_max", a.LimitMax);
        }
        else
        {
            w.Field("limit", a.Limit);
        }
        w.Field("stripes_min", a.StripesMin);
        w.Field("stripes_max", a.StripesMax);
        w.EndObject();
    }

    /// <summary>Balance profiles use the extended format: block group bits plus AVAIL_ALLOC_BIT_SINGLE (bit 48).</summary>
    private static string ExtendedProfileNames(ulong v)
    {
        const ulong single = 1UL << 48;
        string rest = (v & ~single) == 0 ? "" : ((BlockGroupFlags)(v & ~single)).Describe();
        if ((v & single) == 0) return rest;
        return rest.Length == 0 ? "SINGLE" : rest + "|SINGLE";
    }

    private static void DecodeUuidItem(BtrfsKey key, ReadOnlySpan<byte> data, IItemWriter w)
    {
        var u = new UuidItem(data);
        w.Field("uuid", UuidItem.KeyToUuid(key).ToString("D"));
        w.BeginArray("subvol_ids");
        for (int i = 0; i < u.Count; i++) w.Field("subvol_id", u.SubvolId(i));
        w.EndArray();
        if (data.IsEmpty) w.Problem($"{ItemTypes.Name(key.Type)}: empty item, expected at least one subvolume id");
        if (u.Leftover != 0)
            w.Problem($"{ItemTypes.Name(key.Type)}: item size {data.Length} is not a multiple of {UuidItem.EntrySize}");
    }

    private static void DecodeString(ReadOnlySpan<byte> data, IItemWriter w) =>
        w.Field("data", new StringItem(data).Text);

    // ---- extent tree ----

    private static readonly (ulong, string)[] ExtentFlagTable =
    [
        ((ulong)ExtentFlags.Data, "DATA"), ((ulong)ExtentFlags.TreeBlock, "TREE_BLOCK"),
        ((ulong)ExtentFlags.FullBackref, "FULL_BACKREF"),
    ];

    private static void DecodeExtentItem(BtrfsKey key, ReadOnlySpan<byte> data, IItemWriter w)
    {
        string type = ItemTypes.Name(key.Type);
        bool metadata = key.Type == (byte)ItemType.MetadataItem;
        if (data.Length < ExtentItem.FixedSize)
        {
            if (!metadata && data.Length == ExtentItemV0.Size)
            {
                // btrfs_extent_item_v0: refs u32 only (pre-2.6.31 kernels).
                w.Problem($"{type}: v0 extent item (4 bytes, refs only): pre-mixed-backref format");
                w.Field("refs", new ExtentItemV0(data).Refs);
                return;
            }
            w.Problem($"{type}: item size {data.Length}, expected at least {ExtentItem.FixedSize}");
            Raw(data, w);
            return;
        }
        var ei = new ExtentItem(data, (ItemType)key.Type);
        w.Field("refs", ei.Refs);
        w.Field("gen", ei.Generation);
        w.Flags("flags", (ulong)ei.Flags, ItemText.FlagNames((ulong)ei.Flags, ExtentFlagTable));
        if (metadata)
        {
            w.Field("skinny_level", key.Offset);
        }
        else if (ei.HasTreeBlockInfo)
        {
            int need = ExtentItem.FixedSize + ExtentItem.TreeBlockInfoSize;
            if (data.Length < need)
            {
                w.Problem($"{type}: tree_block_info truncated: item size {data.Length}, expected at least {need}");
                Raw(data, w);
                return;
            }
            w.Field("tree_block_key", ei.TreeBlockKey.ToDisplayString());
            w.Field("level", ei.TreeBlockLevel);
        }

        var en = ei.InlineRefs;
        w.BeginArray("inline_refs");
        while (en.MoveNext())
        {
            var r = en.Current;
            w.BeginObject(null);
            w.Field("type", ItemTypes.Name((byte)r.Type));
            switch (r.Type)
            {
                case ItemType.TreeBlockRef:
                case ItemType.ExtentOwnerRef:
                    w.Field("root", r.Root);
                    break;
                case ItemType.SharedBlockRef:
                    w.Field("parent", r.Parent);
                    break;
                case ItemType.ExtentDataRef:
                    w.Field("root", r.Root);
                    w.Field("objectid", r.ObjectId);
                    w.Field("offset", r.Offset);
                    w.Field("count", r.Count);
                    break;
                case ItemType.SharedDataRef:
                    w.Field("parent", r.Parent);
                    w.Field("count", r.Count);
                    break;
            }
            w.EndObject();
        }
        w.EndArray();
        if (en.Error != null)
            w.Problem($"{type}: {en.Error} (inline ref at item offset {en.ErrorOffset}, type byte {en.ErrorType})");
    }

    private static void DecodeExtentDataRef(BtrfsKey key, ReadOnlySpan<byte> data, IItemWriter w)
    {
        if (!CheckSize(data, ExtentDataRef.Size, "EXTENT_DATA_REF", w)) { Raw(data, w); return; }
        var r = ExtentDataRefs.Read(data);
        w.Field("root", r.Root);
        w.Field("objectid", r.ObjectId);
        w.Field("offset", r.Offset);
        w.Field("count", r.Count);
    }

    private static void DecodeSharedDataRef(BtrfsKey key, ReadOnlySpan<byte> data, IItemWriter w)
    {
        if (!CheckSize(data, SharedDataRef.Size, "SHARED_DATA_REF", w)) { Raw(data, w); return; }
        w.Field("count", new SharedDataRef(data).Count);
    }

    private static void DecodeExtentOwnerRef(BtrfsKey key, ReadOnlySpan<byte> data, IItemWriter w)
    {
        if (!CheckSize(data, ExtentOwnerRef.Size, "EXTENT_OWNER_REF", w)) { Raw(data, w); return; }
        w.Field("root", new ExtentOwnerRef(data).RootId);
    }

    private static void DecodeExtentRefV0(ReadOnlySpan<byte> data, IItemWriter w)
    {
        w.Problem($"EXTENT_REF_V0: v0 extent ref (pre-mixed-backref format, {data.Length} bytes), not decoded");
        Raw(data, w);
    }

    private static void DecodeBlockGroup(BtrfsKey key, ReadOnlySpan<byte> data, IItemWriter w)
    {
        if (!CheckSize(data, BlockGroupItem.Size, "BLOCK_GROUP_ITEM", w)) { Raw(data, w); return; }
        var bg = new BlockGroupItem(data);
        w.Field("used", bg.Used);
        w.Field("chunk_objectid", bg.ChunkObjectId);
        w.Flags("flags", (ulong)bg.Flags, BgFlagNames(bg.Flags));
    }

    // ---- free space tree ----

    private static void DecodeFreeSpaceInfo(BtrfsKey key, ReadOnlySpan<byte> data, IItemWriter w)
    {
        if (!CheckSize(data, FreeSpaceInfo.Size, "FREE_SPACE_INFO", w)) { Raw(data, w); return; }
        var fi = new FreeSpaceInfo(data);
        w.Field("extent_count", fi.ExtentCount);
        w.Flags("flags", fi.Flags, FreeSpaceInfo.FlagNames(fi.Flags));
    }

    private static void DecodeFreeSpaceBitmap(in ItemContext ctx, BtrfsKey key, ReadOnlySpan<byte> data, IItemWriter w)
    {
        var bm = new FreeSpaceBitmap(data);
        w.Field("bits", (ulong)bm.BitCount);
        w.Field("set_bits", (ulong)bm.SetBits);
        long expected = FreeSpaceBitmap.ExpectedSize(key.Offset, ctx.SectorSize);
        if (expected >= 0 && expected != data.Length)
            w.Problem($"FREE_SPACE_BITMAP: item size {data.Length}, expected {expected} for length {key.Offset} at sector size {ctx.SectorSize}");
        Raw(bm.Bits, w, "bitmap");
    }

    // ---- chunk and device trees ----

    private static void DecodeDevExtent(BtrfsKey key, ReadOnlySpan<byte> data, IItemWriter w)
    {
        if (!CheckSize(data, DevExtent.Size, "DEV_EXTENT", w)) { Raw(data, w); return; }
        var de = new DevExtent(data);
        w.Field("chunk_tree", de.ChunkTree);
        w.Field("chunk_objectid", de.ChunkObjectId);
        w.Field("chunk_offset", de.ChunkOffset);
        w.Field("length", de.Length);
        w.Field("chunk_tree_uuid", de.ChunkTreeUuid.ToString("D"));
    }

    private static void DecodeDevItem(BtrfsKey key, ReadOnlySpan<byte> data, IItemWriter w)
    {
        if (!CheckSize(data, DevItem.Size, "DEV_ITEM", w)) { Raw(data, w); return; }
        var d = new DevItem(data);
        w.Field("devid", d.DevId);
        w.Field("total_bytes", d.TotalBytes);
        w.Field("bytes_used", d.BytesUsed);
        w.Field("io_align", d.IoAlign);
        w.Field("io_width", d.IoWidth);
        w.Field("sector_size", d.SectorSize);
        w.Field("type", d.Type);
        w.Field("generation", d.Generation);
        w.Field("start_offset", d.StartOffset);
        w.Field("dev_group", d.DevGroup);
        w.Field("seek_speed", d.SeekSpeed);
        w.Field("bandwidth", d.Bandwidth);
        w.Field("uuid", d.Uuid.ToString("D"));
        w.Field("fsid", d.Fsid.ToString("D"));
    }

    private static void DecodeChunkItem(BtrfsKey key, ReadOnlySpan<byte> data, IItemWriter w)
    {
        if (data.Length < ChunkItem.HeaderSize)
        {
            w.Problem($"CHUNK_ITEM: item size {data.Length}, expected at least {ChunkItem.HeaderSize + ChunkItem.StripeSize}");
            Raw(data, w);
            return;
        }
        var c = new ChunkItem(data);
        w.Field("length", c.Length);
        w.Field("owner", c.Owner);
        w.Field("stripe_len", c.StripeLen);
        w.Flags("type", (ulong)c.Type, BgFlagNames(c.Type));
        w.Field("io_align", c.IoAlign);
        w.Field("io_width", c.IoWidth);
        w.Field("sector_size", c.SectorSize);
        w.Field("num_stripes", c.NumStripes);
        w.Field("sub_stripes", c.SubStripes);
        if (c.NumStripes == 0)
            w.Problem("CHUNK_ITEM: num_stripes 0, expected at least 1");
        else if (c.ImpliedSize != data.Length)
            w.Problem($"CHUNK_ITEM: item size {data.Length}, expected {c.ImpliedSize} for num_stripes {c.NumStripes}");
        int fit = (int)Math.Min(c.NumStripes, (data.Length - ChunkItem.HeaderSize) / ChunkItem.StripeSize);
        w.BeginArray("stripes");
        for (int i = 0; i < fit; i++)
        {
            var s = c.Stripe(i);
            w.BeginObject(null);
            w.Field("devid", s.DevId);
            w.Field("offset", s.Offset);
            w.Field("dev_uuid", s.DevUuid.ToString("D"));
            w.EndObject();
        }
        w.EndArray();
    }

    private static void DecodeRaidStripe(ReadOnlySpan<byte> data, IItemWriter w)
    {
        var rs = new RaidStripeItem(data);
        if (rs.HasLegacyEncoding)
        {
            w.Problem($"RAID_STRIPE: item size {data.Length} is 8 more than a multiple of {RaidStripeItem.StrideSize}: read as the kernel 6.7-6.10 layout with an encoding header");
            w.Field("encoding", RaidStripeItem.EncodingName(rs.LegacyEncoding));
        }
        else if (rs.Leftover != 0)
        {
            w.Problem($"RAID_STRIPE: item size {data.Length} is not a multiple of {RaidStripeItem.StrideSize}");
        }
        if (rs.Count == 0) w.Problem("RAID_STRIPE: no strides, expected at least 1");
        w.BeginArray("strides");
        for (int i = 0; i < rs.Count; i++)
        {
            w.BeginObject(null);
            w.Field("devid", rs.DevId(i));
            w.Field("physical", rs.Physical(i));
            w.EndObject();
        }
        w.EndArray();
    }

    private static void DecodePersistentItem(BtrfsKey key, ReadOnlySpan<byte> data, IItemWriter w)
    {
        if (key.ObjectId != ObjectIds.DevStats)
        {
            w.Problem($"PERSISTENT_ITEM: unknown persistent item objectid {key.ObjectId}");
            Raw(data, w);
            return;
        }
        var ds = new DevStatsItem(data);
        int known = Math.Min(ds.Count, DevStatsItem.KnownValues);
        for (int i = 0; i < known; i++) w.Field(DevStatsItem.ValueNames[i], ds.Value(i));
        if (ds.Count > DevStatsItem.KnownValues)
        {
            w.BeginArray("unknown_values");
            for (int i = DevStatsItem.KnownValues; i < ds.Count; i++) w.Field("value", ds.Value(i));
            w.EndArray();
        }
        if (ds.Leftover != 0)
            w.Problem($"PERSISTENT_ITEM: dev stats item size {data.Length} is not a multiple of 8");
    }

    private static void DecodeDevReplace(BtrfsKey key, ReadOnlySpan<byte> data, IItemWriter w)
    {
        if (!CheckSize(data, DevReplaceItem.Size, "DEV_REPLACE", w)) { Raw(data, w); return; }
        var r = new DevReplaceItem(data);
        w.Field("src_devid", r.SrcDevId);
        w.Field("cursor_left", r.CursorLeft);
        w.Field("cursor_right", r.CursorRight);
        w.Field("cont_reading_from_srcdev_mode", DevReplaceItem.ModeName(r.ContReadingFromSrcdevMode));
        w.Field("replace_state", DevReplaceItem.StateName(r.ReplaceState));
        w.Field("time_started", r.TimeStarted);
        w.Field("time_stopped", r.TimeStopped);
        w.Field("num_write_errors", r.NumWriteErrors);
        w.Field("num_uncorrectable_read_errors", r.NumUncorrectableReadErrors);
    }

    // ---- quota tree ----

    private static void DecodeQgroupStatus(BtrfsKey key, ReadOnlySpan<byte> data, IItemWriter w)
    {
        if (data.Length != QgroupStatus.Size && data.Length != QgroupStatus.SizeWithEnableGen)
            w.Problem($"QGROUP_STATUS: item size {data.Length}, expected {QgroupStatus.Size} (or {QgroupStatus.SizeWithEnableGen} with enable_gen)");
        if (data.Length < QgroupStatus.Size) { Raw(data, w); return; }
        var s = new QgroupStatus(data);
        w.Field("version", s.Version);
        w.Field("generation", s.Generation);
        w.Flags("flags", s.Flags, QgroupStatus.FlagNames(s.Flags));
        w.Field("rescan", s.Rescan);
        if (s.HasEnableGen) w.Field("enable_gen", s.EnableGen);
    }

    private static void DecodeQgroupInfo(BtrfsKey key, ReadOnlySpan<byte> data, IItemWriter w)
    {
        if (!CheckSize(data, QgroupInfo.Size, "QGROUP_INFO", w)) { Raw(data, w); return; }
        var q = new QgroupInfo(data);
        w.Field("generation", q.Generation);
        w.Field("rfer", q.Rfer);
        w.Field("rfer_cmpr", q.RferCmpr);
        w.Field("excl", q.Excl);
        w.Field("excl_cmpr", q.ExclCmpr);
    }

    private static void DecodeQgroupLimit(BtrfsKey key, ReadOnlySpan<byte> data, IItemWriter w)
    {
        if (!CheckSize(data, QgroupLimit.Size, "QGROUP_LIMIT", w)) { Raw(data, w); return; }
        var q = new QgroupLimit(data);
        w.Flags("flags", q.Flags, QgroupLimit.FlagNames(q.Flags));
        w.Field("max_rfer", q.MaxRfer);
        w.Field("max_excl", q.MaxExcl);
        w.Field("rsv_rfer", q.RsvRfer);
        w.Field("rsv_excl", q.RsvExcl);
    }

    // ---- generic ----

    /// <summary>Items whose key says everything (ORPHAN_ITEM, TREE_BLOCK_REF, SHARED_BLOCK_REF, FREE_SPACE_EXTENT,
    /// QGROUP_RELATION): any data is a problem and shown raw.</summary>
    private static void DecodeEmpty(BtrfsKey key, ReadOnlySpan<byte> data, IItemWriter w)
    {
        if (data.IsEmpty) return;
        w.Problem($"{ItemTypes.Name(key.Type)}: item size {data.Length}, expected 0");
        Raw(data, w);
    }

    private static void DecodeUnknown(BtrfsKey key, ReadOnlySpan<byte> data, IItemWriter w)
    {
        w.Problem($"unknown item type {key.Type}");
        Raw(data, w);
    }

    /// <summary>Reports a size other than <paramref name="expected"/>; true when the bytes are enough to decode
    /// the fixed part (longer items are decoded over their first <paramref name="expected"/> bytes).</summary>
    private static bool CheckSize(ReadOnlySpan<byte> data, int expected, string what, IItemWriter w)
    {
        if (data.Length == expected) return true;
        w.Problem($"{what}: item size {data.Length}, expected {expected}");
        return data.Length >= expected;
    }

    /// <summary>The bytes as hex, capped at <see cref="RawHexCap"/>; a second field says when bytes were left out.</summary>
    private static void Raw(ReadOnlySpan<byte> data, IItemWriter w, string name = "raw")
    {
        w.Field(name, ItemText.Hex(data, RawHexCap, out bool truncated));
        if (truncated) w.Field(name + "_truncated", $"showing {RawHexCap} of {data.Length} bytes");
    }

    /// <summary>Seconds and zero-padded nanoseconds ("1700000000.000000005"): unambiguous, unlike progs'
    /// "%llu.%u" which prints 5 ns as ".5".</summary>
    private static string Time(Timespec t) => $"{t.Seconds}.{t.Nanoseconds:D9}";

    /// <summary>Block group / chunk type names; empty for zero (a flags value with no names).</summary>
    private static string BgFlagNames(BlockGroupFlags f) => f == BlockGroupFlags.None ? "" : f.Describe();

    /// <summary>Forwards to the caller's writer and remembers which containers are open, so that decoding that
    /// stops half-way (an exception inside a nested object) still leaves the output balanced.</summary>
    private sealed class BalancedWriter(IItemWriter inner) : IItemWriter
    {
        private readonly Stack<bool> _open = new(); // true = array

        public void Field(string name, ulong value) => inner.Field(name, value);
        public void Field(string name, long value) => inner.Field(name, value);
        public void Field(string name, string value) => inner.Field(name, value);
        public void Flags(string name, ulong value, string names) => inner.Flags(name, value, names);
        public void BeginObject(string? name) { inner.BeginObject(name); _open.Push(false); }
        public void EndObject() { if (_open.TryPop(out _)) inner.EndObject(); }
        public void BeginArray(string name) { inner.BeginArray(name); _open.Push(true); }
        public void EndArray() { if (_open.TryPop(out _)) inner.EndArray(); }
        public void Problem(string message) => inner.Problem(message);

        public void CloseAll()
        {
            while (_open.TryPop(out bool isArray))
            {
                if (isArray) inner.EndArray();
                else inner.EndObject();
            }
        }
    }
}
