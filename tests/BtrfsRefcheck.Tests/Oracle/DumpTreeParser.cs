using System.Globalization;
using System.Text.RegularExpressions;

namespace BtrfsRefcheck.Tests.Oracle;

/// <summary>
/// One tree block (leaf or node) as printed by <c>btrfs inspect-internal dump-tree</c>.
/// A leaf has <see cref="Items"/>, a node has <see cref="Ptrs"/>; <see cref="NrItems"/> is the header's
/// <c>items N</c> (the printer may show fewer when an item pointer is out of range).
/// </summary>
public sealed record ProgsBlock(
    ulong Bytenr, int Level, int NrItems, ulong Generation, ulong Owner,
    IReadOnlyList<ProgsItem> Items, IReadOnlyList<ProgsKeyPtr> Ptrs)
{
    /// <summary>True for level 0.</summary>
    public bool IsLeaf => Level == 0;

    /// <summary>The header's <c>free space N</c> (leaf: bytes, may be negative when corrupt; node: free key pointers).</summary>
    public long FreeSpace { get; init; }

    /// <summary>Owner exactly as printed (<c>FS_TREE</c>, <c>256</c>, ...).</summary>
    public string OwnerText { get; init; } = "";

    /// <summary>Header flags without the backref revision bits (second header line <c>flags 0x1(WRITTEN)</c>).</summary>
    public ulong Flags { get; init; }

    /// <summary>Flag names in the parentheses of the flags line, e.g. <c>WRITTEN</c>, <c>WRITTEN|RELOC</c>.</summary>
    public string FlagsText { get; init; } = "";

    /// <summary><c>backref revision N</c> (1 = mixed backrefs).</summary>
    public int BackrefRevision { get; init; }

    /// <summary>Header csum in hex (only printed by progs versions/modes that print header checksums), else null.</summary>
    public string? HeaderCsum { get; init; }

    /// <summary>v6.19's <c>checksum stored HEX</c> line (the header's checksum bytes as stored), else null.</summary>
    public string? ChecksumStored { get; init; }

    /// <summary>v6.19's <c>checksum calced HEX</c> line (the checksum progs computed over the block), else null.</summary>
    public string? ChecksumCalced { get; init; }

    /// <summary>The <c>fs uuid</c> line.</summary>
    public string? FsUuid { get; init; }

    /// <summary>The <c>chunk uuid</c> line.</summary>
    public string? ChunkUuid { get; init; }

    /// <summary>
    /// The tree header line this block appeared under (<c>root tree</c>, <c>chunk tree</c>, <c>log root tree</c>,
    /// <c>fs tree key (FS_TREE ROOT_ITEM 0)</c>, <c>file tree key (256 ROOT_ITEM 0)</c>, ...), trimmed; null when
    /// none (e.g. <c>dump-tree -b</c>).
    /// </summary>
    public string? TreeHeader { get; init; }

    /// <summary>The ROOT_ITEM key of the tree header, when the header has one.</summary>
    public ProgsKey? TreeHeaderKey { get; init; }

    /// <summary>
    /// Tree id of the header: the header key's objectid, 1 for <c>root tree</c>, 3 for <c>chunk tree</c>, TREE_LOG (-6)
    /// for <c>log root tree</c>. Note that log trees (header <c>log tree key (TREE_LOG ROOT_ITEM 5)</c>) also give -6: the
    /// subvolume they log is the header key offset.
    /// </summary>
    public ulong? TreeHeaderObjectId { get; init; }

    /// <summary>Line number (1-based) of the block's first header line in the parsed text.</summary>
    public int LineNumber { get; init; }
}

/// <summary>A key pointer line of a node: <c>\tkey (256 INODE_ITEM 0) block 30474240 gen 8</c>.</summary>
public sealed record ProgsKeyPtr(int Slot, ProgsKey Key, ulong BlockPtr, ulong Generation)
{
    /// <summary>The key exactly as printed (including parentheses).</summary>
    public string KeyText { get; init; } = "";
}

/// <summary>
/// One leaf item: the <c>\titem N key (...) itemoff O itemsize S</c> line plus its body lines (leading tabs removed).
/// <see cref="Extent"/> is filled for EXTENT_ITEM/METADATA_ITEM.
/// </summary>
public sealed record ProgsItem(int Slot, ProgsKey Key, uint ItemOff, uint ItemSize, IReadOnlyList<string> Body, ProgsExtentItem? Extent)
{
    /// <summary>The key exactly as printed (including parentheses).</summary>
    public string KeyText { get; init; } = "";

    /// <summary>For keyed EXTENT_DATA_REF / SHARED_DATA_REF items: the printed <c>count</c>; otherwise null.</summary>
    public ulong? KeyedDataRefCount { get; init; }

    /// <summary>For CHUNK_ITEM items: the parsed chunk; otherwise null.</summary>
    public ProgsChunk? Chunk { get; init; }
}

/// <summary>
/// An EXTENT_ITEM / METADATA_ITEM body. <see cref="Flags"/> are the printed names (<c>DATA</c>, <c>TREE_BLOCK</c>,
/// <c>FULL_BACKREF</c>); <see cref="TreeBlockKey"/> is set for non-skinny tree blocks (<c>tree block key (...) level N</c>),
/// <see cref="TreeBlockLevel"/> for both forms (<c>tree block skinny level N</c> for METADATA_ITEM).
/// </summary>
public sealed record ProgsExtentItem(
    ulong Refs, ulong Generation, IReadOnlyList<string> Flags, ProgsKey? TreeBlockKey, int? TreeBlockLevel,
    IReadOnlyList<ProgsInlineRef> InlineRefs)
{
    /// <summary>True if the flags contain <c>TREE_BLOCK</c>.</summary>
    public bool IsTreeBlock => Flags.Contains("TREE_BLOCK");

    /// <summary>True if the flags contain <c>DATA</c>.</summary>
    public bool IsData => Flags.Contains("DATA");

    /// <summary>True if the flags contain <c>FULL_BACKREF</c>.</summary>
    public bool IsFullBackref => Flags.Contains("FULL_BACKREF");

    /// <summary>Sum of <see cref="ProgsInlineRef.RefCount"/> over the inline refs.</summary>
    public ulong InlineRefCountSum => InlineRefs.Aggregate(0UL, (s, r) => s + r.RefCount);
}

/// <summary>
/// One inline back reference of an extent item. <see cref="Type"/> is the numeric ref type (176 TREE_BLOCK_REF,
/// 182 SHARED_BLOCK_REF, 178 EXTENT_DATA_REF, 184 SHARED_DATA_REF, 172 EXTENT_OWNER_REF). Fields that do not apply are 0:
/// TREE_BLOCK_REF: Root; SHARED_BLOCK_REF: Parent; EXTENT_DATA_REF: Root, ObjectId, Offset, Count;
/// SHARED_DATA_REF: Parent, Count; EXTENT_OWNER_REF: Root.
/// </summary>
public sealed record ProgsInlineRef(byte Type, ulong Root, ulong Parent, ulong ObjectId, ulong Offset, ulong Count)
{
    /// <summary>References this inline ref accounts for: 1 for block refs and owner refs (0), Count for data refs.</summary>
    public ulong RefCount => Type switch
    {
        ProgsKeyFormat.TreeBlockRef or ProgsKeyFormat.SharedBlockRef => 1,
        ProgsKeyFormat.ExtentDataRef or ProgsKeyFormat.SharedDataRef => Count,
        _ => 0,
    };

    /// <summary>The body line it was parsed from.</summary>
    public string Text { get; init; } = "";
}

/// <summary>A chunk item (CHUNK_ITEM body in dump-tree or one entry of dump-super's sys_chunk_array).</summary>
public sealed record ProgsChunk(
    ProgsKey Key, ulong Length, ulong Owner, ulong StripeLen, string Type,
    uint IoAlign, uint IoWidth, uint SectorSize, int NumStripes, int SubStripes, IReadOnlyList<ProgsStripe> Stripes)
{
    private static readonly Regex Line1 = new(@"^length (\d+) owner (\d+) stripe_len (\d+) type (.*)$", RegexOptions.CultureInvariant);
    private static readonly Regex Line2 = new(@"^io_align (\d+) io_width (\d+) sector_size (\d+)$", RegexOptions.CultureInvariant);
    private static readonly Regex Line3 = new(@"^num_stripes (\d+) sub_stripes (\d+)$", RegexOptions.CultureInvariant);
    private static readonly Regex StripeLine = new(@"^stripe (\d+) devid (\d+) offset (\d+)$", RegexOptions.CultureInvariant);
    private static readonly Regex UuidLine = new(@"^dev_uuid (\S+)$", RegexOptions.CultureInvariant);

    /// <summary>
    /// Parses chunk body lines (leading tabs already removed): <c>length L owner O stripe_len S type T</c>,
    /// <c>io_align ...</c>, <c>num_stripes N sub_stripes M</c>, then per stripe <c>stripe i devid D offset X</c> and
    /// <c>dev_uuid U</c>. Returns null when the lines are not a chunk (e.g. "chunk item invalid").
    /// </summary>
    public static ProgsChunk? TryParse(ProgsKey key, IReadOnlyList<string> lines)
    {
        if (lines.Count < 3)
            return null;
        var m1 = Line1.Match(lines[0]);
        var m2 = Line2.Match(lines[1]);
        var m3 = Line3.Match(lines[2]);
        if (!m1.Success || !m2.Success || !m3.Success)
            return null;
        var stripes = new List<ProgsStripe>();
        for (int i = 3; i + 1 < lines.Count; i += 2)
        {
            var ms = StripeLine.Match(lines[i]);
            var mu = UuidLine.Match(lines[i + 1]);
            if (!ms.Success || !mu.Success)
                break;
            stripes.Add(new ProgsStripe(int.Parse(ms.Groups[1].Value, CultureInfo.InvariantCulture),
                DumpTreeParser.U64(ms.Groups[2].Value), DumpTreeParser.U64(ms.Groups[3].Value), mu.Groups[1].Value));
        }
        return new ProgsChunk(key,
            DumpTreeParser.U64(m1.Groups[1].Value), DumpTreeParser.U64(m1.Groups[2].Value),
            DumpTreeParser.U64(m1.Groups[3].Value), m1.Groups[4].Value,
            uint.Parse(m2.Groups[1].Value, CultureInfo.InvariantCulture),
            uint.Parse(m2.Groups[2].Value, CultureInfo.InvariantCulture),
            uint.Parse(m2.Groups[3].Value, CultureInfo.InvariantCulture),
            int.Parse(m3.Groups[1].Value, CultureInfo.InvariantCulture),
            int.Parse(m3.Groups[2].Value, CultureInfo.InvariantCulture),
            stripes);
    }
}

/// <summary>One stripe of a chunk.</summary>
public sealed record ProgsStripe(int Index, ulong DevId, ulong Offset, string DevUuid);

/// <summary>
/// Parser for <c>btrfs inspect-internal dump-tree</c> output of btrfs-progs v6.2 (full default output, <c>-t N</c>,
/// <c>-b BYTENR</c>, <c>--bfs</c>/<c>--dfs</c>, <c>-e</c>).
/// </summary>
/// <remarks>
/// Recognised lines (everything else, e.g. <c>btrfs-progs v6.2</c>, <c>total bytes N</c>, <c>uuid ...</c>, is ignored):
/// <code>
/// leaf 30605312 items 11 free space 12709 generation 7 owner ROOT_TREE
/// node 31297536 level 1 items 6 free space 115 generation 7 owner EXTENT_TREE
/// leaf 30605312 flags 0x1(WRITTEN) backref revision 1
/// fs uuid ...            chunk uuid ...
/// \titem 0 key (EXTENT_TREE ROOT_ITEM 0) itemoff 15844 itemsize 439
/// \t\t... item body ...
/// \tkey (13631488 EXTENT_ITEM 151552) block 31289344 gen 7
/// root tree | chunk tree | log root tree | &lt;name&gt; tree key (X ROOT_ITEM off)   (tree headers)
/// </code>
/// Limitation: a file name containing a newline (DIR_ITEM/INODE_REF bodies print names raw) would corrupt the
/// structure of the text; fixtures never contain such names.
/// </remarks>
public static class DumpTreeParser
{
    private static readonly Regex LeafHeader = new(
        @"^leaf (\d+) items (\d+) free space (-?\d+) generation (\d+) owner (\S+)\s*$", RegexOptions.CultureInvariant);
    private static readonly Regex NodeHeader = new(
        @"^node (\d+) level (\d+) items (\d+) free(?: space)? (-?\d+) generation (\d+) owner (\S+)\s*$", RegexOptions.CultureInvariant);
    private static readonly Regex FlagsLine = new(
        @"^(?:leaf|node) (\d+) flags 0x([0-9a-fA-F]+)\(([^)]*)\) backref revision (\d+)(?: csum 0x([0-9a-fA-F]+))?\s*$", RegexOptions.CultureInvariant);
    private static readonly Regex ItemLine = new(
        @"^\titem (\d+) key (\(.*\)) itemoff (\d+) itemsize (\d+)\s*$", RegexOptions.CultureInvariant);
    private static readonly Regex PtrLine = new(
        @"^\tkey (\(.*\)) block (\d+) gen (\d+)\s*$", RegexOptions.CultureInvariant);
    private static readonly Regex TreeHeaderWithKey = new(
        @"^([a-z][a-z ]*) tree key (\(.*\))\s*$", RegexOptions.CultureInvariant);

    private static readonly Regex RefsLine = new(@"^refs (\d+) gen (\d+) flags ?(.*)$", RegexOptions.CultureInvariant);
    private static readonly Regex TreeBlockKeyLine = new(@"^tree block key (\(.*\)) level (\d+)$", RegexOptions.CultureInvariant);
    private static readonly Regex TreeBlockSkinnyLine = new(@"^tree block skinny level (\d+)$", RegexOptions.CultureInvariant);
    private static readonly Regex RefPrefix = new(@"^\((\d+) 0x[0-9a-fA-F]+\) ", RegexOptions.CultureInvariant);
    private static readonly Regex TreeBlockRefLine = new(@"^tree block backref root (\S+)$", RegexOptions.CultureInvariant);
    private static readonly Regex SharedBlockRefLine = new(@"^shared block backref parent (\d+)$", RegexOptions.CultureInvariant);
    private static readonly Regex ExtentDataRefLine = new(
        @"^extent data backref root (\S+) objectid (\d+) offset (\d+) count (\d+)$", RegexOptions.CultureInvariant);
    private static readonly Regex SharedDataRefLine = new(@"^shared data backref parent (\d+) count (\d+)$", RegexOptions.CultureInvariant);
    private static readonly Regex OwnerRefLine = new(@"^extent owner root (\S+)$", RegexOptions.CultureInvariant);
    private static readonly Regex KeyedSharedDataRefLine = new(@"^shared data backref count (\d+)$", RegexOptions.CultureInvariant);

    /// <summary>Parses dump-tree output into blocks in print order.</summary>
    public static IReadOnlyList<ProgsBlock> Parse(string dumpTreeOutput)
    {
        var blocks = new List<ProgsBlock>();
        BlockBuilder? cur = null;
        string? header = null;
        ProgsKey? headerKey = null;
        ulong? headerObjectId = null;

        var lines = dumpTreeOutput.Split('\n');
        for (int n = 0; n < lines.Length; n++)
        {
            var line = lines[n].TrimEnd('\r');
            if (line.Length == 0)
                continue;

            if (line[0] == '\t')
            {
                if (cur is null)
                    continue; // e.g. indented lines of -R backup root output
                Match m;
                if (line.Length > 1 && line[1] == '\t')
                {
                    cur.CurrentItem?.Body.Add(line.TrimStart('\t'));
                }
                else if ((m = ItemLine.Match(line)).Success)
                {
                    cur.FinishItem();
                    cur.CurrentItem = new ItemBuilder(
                        int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture),
                        m.Groups[2].Value,
                        ProgsKeyFormat.ParseKey(m.Groups[2].Value),
                        uint.Parse(m.Groups[3].Value, CultureInfo.InvariantCulture),
                        uint.Parse(m.Groups[4].Value, CultureInfo.InvariantCulture));
                }
                else if ((m = PtrLine.Match(line)).Success)
                {
                    cur.FinishItem();
                    cur.Ptrs.Add(new ProgsKeyPtr(cur.Ptrs.Count, ProgsKeyFormat.ParseKey(m.Groups[1].Value),
                        U64(m.Groups[2].Value), U64(m.Groups[3].Value)) { KeyText = m.Groups[1].Value });
                }
                else
                {
                    cur.CurrentItem?.Body.Add(line.TrimStart('\t'));
                }
                continue;
            }

            Match h;
            if ((h = LeafHeader.Match(line)).Success)
            {
                Flush();
                cur = new BlockBuilder
                {
                    Bytenr = U64(h.Groups[1].Value), Level = 0,
                    NrItems = int.Parse(h.Groups[2].Value, CultureInfo.InvariantCulture),
                    FreeSpace = long.Parse(h.Groups[3].Value, CultureInfo.InvariantCulture),
                    Generation = U64(h.Groups[4].Value), OwnerText = h.Groups[5].Value,
                    Owner = ProgsKeyFormat.ParseObjectId(h.Groups[5].Value), LineNumber = n + 1,
                    Header = header, HeaderKey = headerKey, HeaderObjectId = headerObjectId,
                };
            }
            else if ((h = NodeHeader.Match(line)).Success)
            {
                Flush();
                cur = new BlockBuilder
                {
                    Bytenr = U64(h.Groups[1].Value),
                    Level = int.Parse(h.Groups[2].Value, CultureInfo.InvariantCulture),
                    NrItems = int.Parse(h.Groups[3].Value, CultureInfo.InvariantCulture),
                    FreeSpace = long.Parse(h.Groups[4].Value, CultureInfo.InvariantCulture),
                    Generation = U64(h.Groups[5].Value), OwnerText = h.Groups[6].Value,
                    Owner = ProgsKeyFormat.ParseObjectId(h.Groups[6].Value), LineNumber = n + 1,
                    Header = header, HeaderKey = headerKey, HeaderObjectId = headerObjectId,
                };
            }
            else if ((h = FlagsLine.Match(line)).Success && cur is not null && U64(h.Groups[1].Value) == cur.Bytenr)
            {
                cur.Flags = ulong.Parse(h.Groups[2].Value, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture);
                cur.FlagsText = h.Groups[3].Value;
                cur.BackrefRevision = int.Parse(h.Groups[4].Value, CultureInfo.InvariantCulture);
                cur.HeaderCsum = h.Groups[5].Success ? h.Groups[5].Value : null;
            }
            else if (line.StartsWith("checksum stored ", StringComparison.Ordinal) && cur is not null && cur.Items.Count == 0 && cur.CurrentItem is null)
            {
                cur.ChecksumStored = line["checksum stored ".Length..].Trim();
            }
            else if (line.StartsWith("checksum calced ", StringComparison.Ordinal) && cur is not null && cur.Items.Count == 0 && cur.CurrentItem is null)
            {
                cur.ChecksumCalced = line["checksum calced ".Length..].Trim();
            }
            else if (line.StartsWith("fs uuid ", StringComparison.Ordinal) && cur is not null)
            {
                cur.FsUuid = line[8..].Trim();
            }
            else if (line.StartsWith("chunk uuid ", StringComparison.Ordinal) && cur is not null)
            {
                cur.ChunkUuid = line[11..].Trim();
            }
            else
            {
                // Not part of a block: a tree header or trailer/banner line.
                var t = line.Trim();
                if (t == "root tree")
                    SetHeader(t, null, ProgsKeyFormat.RootTree);
                else if (t == "chunk tree")
                    SetHeader(t, null, ProgsKeyFormat.ChunkTree);
                else if (t == "log root tree")
                    SetHeader(t, null, ProgsKeyFormat.TreeLog);
                else if ((h = TreeHeaderWithKey.Match(line)).Success &&
                         ProgsKeyFormat.TryParseKey(h.Groups[2].Value, out var hk))
                    SetHeader(t, hk, hk.ObjectId);
                // other lines (banner, totals, uuid, errors) are ignored
            }
        }
        Flush();
        return blocks;

        void SetHeader(string text, ProgsKey? key, ulong? objectId)
        {
            Flush();
            header = text;
            headerKey = key;
            headerObjectId = objectId;
        }

        void Flush()
        {
            if (cur is null)
                return;
            blocks.Add(cur.Build());
            cur = null;
        }
    }

    /// <summary>Parses the body of an EXTENT_ITEM (metadata=false) or METADATA_ITEM (metadata=true); null if malformed.</summary>
    public static ProgsExtentItem? ParseExtentItem(IReadOnlyList<string> body)
    {
        if (body.Count == 0)
            return null;
        var m = RefsLine.Match(body[0]);
        if (!m.Success)
            return null;
        var flags = m.Groups[3].Value.Trim();
        string[] flagList = flags.Length == 0 ? [] : flags.Split('|');
        ProgsKey? tbKey = null;
        int? tbLevel = null;
        int i = 1;
        if (i < body.Count)
        {
            Match t;
            if ((t = TreeBlockKeyLine.Match(body[i])).Success)
            {
                tbKey = ProgsKeyFormat.ParseKey(t.Groups[1].Value);
                tbLevel = int.Parse(t.Groups[2].Value, CultureInfo.InvariantCulture);
                i++;
            }
            else if ((t = TreeBlockSkinnyLine.Match(body[i])).Success)
            {
                tbLevel = int.Parse(t.Groups[1].Value, CultureInfo.InvariantCulture);
                i++;
            }
        }
        var refs = new List<ProgsInlineRef>();
        for (; i < body.Count; i++)
        {
            var r = ParseInlineRef(body[i]);
            if (r is null)
                break;
            refs.Add(r);
        }
        return new ProgsExtentItem(U64(m.Groups[1].Value), U64(m.Groups[2].Value), flagList, tbKey, tbLevel, refs);
    }

    /// <summary>
    /// Parses one inline ref line (<c>tree block backref root FS_TREE</c>, <c>shared block backref parent N</c>,
    /// <c>extent data backref root R objectid O offset F count C</c>, <c>shared data backref parent N count C</c>,
    /// <c>extent owner root R</c>), optionally prefixed by <c>(TYPE 0xOFFSET) </c> as newer progs print; null otherwise.
    /// </summary>
    public static ProgsInlineRef? ParseInlineRef(string line)
    {
        var s = line;
        var p = RefPrefix.Match(s);
        if (p.Success)
            s = s[p.Length..];
        Match m;
        if ((m = TreeBlockRefLine.Match(s)).Success)
            return new ProgsInlineRef(ProgsKeyFormat.TreeBlockRef, ProgsKeyFormat.ParseObjectId(m.Groups[1].Value), 0, 0, 0, 0) { Text = line };
        if ((m = SharedBlockRefLine.Match(s)).Success)
            return new ProgsInlineRef(ProgsKeyFormat.SharedBlockRef, 0, U64(m.Groups[1].Value), 0, 0, 0) { Text = line };
        if ((m = ExtentDataRefLine.Match(s)).Success)
            return new ProgsInlineRef(ProgsKeyFormat.ExtentDataRef, ProgsKeyFormat.ParseObjectId(m.Groups[1].Value), 0,
                U64(m.Groups[2].Value), U64(m.Groups[3].Value), U64(m.Groups[4].Value)) { Text = line };
        if ((m = SharedDataRefLine.Match(s)).Success)
            return new ProgsInlineRef(ProgsKeyFormat.SharedDataRef, 0, U64(m.Groups[1].Value), 0, 0, U64(m.Groups[2].Value)) { Text = line };
        if ((m = OwnerRefLine.Match(s)).Success)
            return new ProgsInlineRef(ProgsKeyFormat.ExtentOwnerRef, ProgsKeyFormat.ParseObjectId(m.Groups[1].Value), 0, 0, 0, 0) { Text = line };
        return null;
    }

    /// <summary>Parses a decimal or <c>0x</c>-hex unsigned 64-bit number.</summary>
    public static ulong U64(string s)
    {
        s = s.Trim();
        return s.StartsWith("0x", StringComparison.OrdinalIgnoreCase)
            ? ulong.Parse(s.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture)
            : ulong.Parse(s, NumberStyles.None, CultureInfo.InvariantCulture);
    }

    private static ProgsItem BuildItem(ItemBuilder b)
    {
        ProgsExtentItem? extent = null;
        ulong? keyedCount = null;
        ProgsChunk? chunk = null;
        switch (b.Key.Type)
        {
            case ProgsKeyFormat.ExtentItem:
            case ProgsKeyFormat.MetadataItem:
                extent = ParseExtentItem(b.Body);
                break;
            case ProgsKeyFormat.ExtentDataRef:
                if (b.Body.Count > 0 && ExtentDataRefLine.Match(b.Body[0]) is { Success: true } ed)
                    keyedCount = U64(ed.Groups[4].Value);
                break;
            case ProgsKeyFormat.SharedDataRef:
                if (b.Body.Count > 0 && KeyedSharedDataRefLine.Match(b.Body[0]) is { Success: true } sd)
                    keyedCount = U64(sd.Groups[1].Value);
                break;
            case ProgsKeyFormat.ChunkItem:
                chunk = ProgsChunk.TryParse(b.Key, b.Body);
                break;
        }
        return new ProgsItem(b.Slot, b.Key, b.ItemOff, b.ItemSize, b.Body, extent)
        {
            KeyText = b.KeyText,
            KeyedDataRefCount = keyedCount,
            Chunk = chunk,
        };
    }

    private sealed class ItemBuilder(int slot, string keyText, ProgsKey key, uint itemOff, uint itemSize)
    {
        public int Slot { get; } = slot;
        public string KeyText { get; } = keyText;
        public ProgsKey Key { get; } = key;
        public uint ItemOff { get; } = itemOff;
        public uint ItemSize { get; } = itemSize;
        public List<string> Body { get; } = [];
    }

    private sealed class BlockBuilder
    {
        public ulong Bytenr, Generation, Owner, Flags;
        public int Level, NrItems, BackrefRevision, LineNumber;
        public long FreeSpace;
        public string OwnerText = "", FlagsText = "";
        public string? HeaderCsum, ChecksumStored, ChecksumCalced, FsUuid, ChunkUuid, Header;
        public ProgsKey? HeaderKey;
        public ulong? HeaderObjectId;
        public ItemBuilder? CurrentItem;
        public readonly List<ProgsItem> Items = [];
        public readonly List<ProgsKeyPtr> Ptrs = [];

        public void FinishItem()
        {
            if (CurrentItem is null)
                return;
            Items.Add(BuildItem(CurrentItem));
            CurrentItem = null;
        }

        public ProgsBlock Build()
        {
            FinishItem();
            return new ProgsBlock(Bytenr, Level, NrItems, Generation, Owner, Items, Ptrs)
            {
                FreeSpace = FreeSpace, OwnerText = OwnerText, Flags = Flags, FlagsText = FlagsText,
                BackrefRevision = BackrefRevision, HeaderCsum = HeaderCsum, ChecksumStored = ChecksumStored, ChecksumCalced = ChecksumCalced, FsUuid = FsUuid, ChunkUuid = ChunkUuid,
                TreeHeader = Header, TreeHeaderKey = HeaderKey, TreeHeaderObjectId = HeaderObjectId,
                LineNumber = LineNumber,
            };
        }
    }
}
