using System.Globalization;

namespace BtrfsRefcheck.Tests.Oracle;

/// <summary>A btrfs key exactly as numbers (objectid, type, offset), recovered from btrfs-progs text.</summary>
public readonly record struct ProgsKey(ulong ObjectId, byte Type, ulong Offset) : IComparable<ProgsKey>
{
    /// <summary>Btrfs key order: objectid, then type, then offset.</summary>
    public int CompareTo(ProgsKey other)
    {
        int c = ObjectId.CompareTo(other.ObjectId);
        if (c != 0) return c;
        c = Type.CompareTo(other.Type);
        return c != 0 ? c : Offset.CompareTo(other.Offset);
    }

    /// <summary>Key order comparison.</summary>
    public static bool operator <(ProgsKey a, ProgsKey b) => a.CompareTo(b) < 0;

    /// <summary>Key order comparison.</summary>
    public static bool operator >(ProgsKey a, ProgsKey b) => a.CompareTo(b) > 0;

    /// <summary>Key order comparison.</summary>
    public static bool operator <=(ProgsKey a, ProgsKey b) => a.CompareTo(b) <= 0;

    /// <summary>Key order comparison.</summary>
    public static bool operator >=(ProgsKey a, ProgsKey b) => a.CompareTo(b) >= 0;

    /// <summary>Numeric form <c>(objectid type offset)</c>.</summary>
    public override string ToString() => $"({ObjectId} {Type} {Offset})";
}

/// <summary>
/// Conversion between btrfs-progs v6.2 key text (<c>btrfs_print_key</c>, <c>print_objectid</c>,
/// <c>print_key_type</c> in kernel-shared/print-tree.c) and numeric keys.
/// </summary>
/// <remarks>
/// <para>Printing rules of v6.2 (emulated by <see cref="Format"/>, inverted by <see cref="ParseKey"/>):</para>
/// <list type="bullet">
/// <item>objectid: PERSISTENT_ITEM keys print 0 as <c>DEV_STATS</c>, other values numerically; DEV_EXTENT keys always
/// numerically; QGROUP_RELATION keys as <c>level/subvolid</c>; UUID keys as <c>0x%016llx</c>; otherwise tree/special
/// objectids symbolically (1 is <c>DEV_ITEMS</c> for DEV_ITEM keys, else <c>ROOT_TREE</c>; 256 is <c>FIRST_CHUNK_TREE</c>
/// only for CHUNK_ITEM keys; -7 prints <c>LOG_FIXUP</c>; (u64)-1 prints <c>-1</c>); everything else decimal.
/// Note that 0 is printed as <c>0</c> in non-PERSISTENT_ITEM keys.</item>
/// <item>type: names from the v6.2 table, <c>UNTYPED</c> for type 0 with objectid FREE_SPACE (-11), else
/// <c>UNKNOWN.N</c> (v6.2 has no names for 172 EXTENT_OWNER_REF and 230 RAID_STRIPE; the parser accepts them anyway).</item>
/// <item>offset: QGROUP_RELATION/INFO/LIMIT as <c>level/subvolid</c>; UUID keys as <c>0x%016llx</c>; ROOT_ITEM plain
/// decimal (so (u64)-1 prints as 18446744073709551615), except for TREE_RELOC root items where the offset goes through
/// print_objectid (symbolic); all other types print (u64)-1 as <c>-1</c>, else decimal.</item>
/// </list>
/// <para>Every form is unambiguous, so parsing is context free and lossless: each printed key maps back to exactly one
/// numeric key. (Only item bodies are lossy, e.g. names containing newlines or --hide-names.)</para>
/// </remarks>
public static class ProgsKeyFormat
{
    /// <summary>Well-known objectids (two's complement for the negative ones).</summary>
    public const ulong RootTree = 1, ExtentTree = 2, ChunkTree = 3, DevTree = 4, FsTree = 5, RootTreeDir = 6,
        CsumTree = 7, QuotaTree = 8, UuidTree = 9, FreeSpaceTree = 10, BlockGroupTree = 11, RaidStripeTree = 12,
        FirstChunkTree = 256, FirstFree = 256;

    /// <summary>Negative (u64 two's complement) special objectids.</summary>
    public const ulong Balance = unchecked((ulong)-4L), Orphan = unchecked((ulong)-5L), TreeLog = unchecked((ulong)-6L),
        TreeLogFixup = unchecked((ulong)-7L), TreeReloc = unchecked((ulong)-8L), DataRelocTree = unchecked((ulong)-9L),
        ExtentCsum = unchecked((ulong)-10L), FreeSpace = unchecked((ulong)-11L), FreeIno = unchecked((ulong)-12L),
        Multiple = unchecked((ulong)-255L);

    /// <summary>Key type numbers used by the oracle tests.</summary>
    public const byte InodeItem = 1, InodeRef = 12, InodeExtref = 13, XattrItem = 24, OrphanItem = 48,
        DirItem = 84, DirIndex = 96, ExtentData = 108, ExtentCsumKey = 128, RootItem = 132, RootBackref = 144,
        RootRef = 156, ExtentItem = 168, MetadataItem = 169, ExtentOwnerRef = 172, TreeBlockRef = 176,
        ExtentDataRef = 178, SharedBlockRef = 182, SharedDataRef = 184, BlockGroupItem = 192,
        FreeSpaceInfo = 198, FreeSpaceExtent = 199, FreeSpaceBitmap = 200, DevExtent = 204, DevItem = 216,
        ChunkItem = 228, RaidStripe = 230, QgroupStatus = 240, QgroupInfo = 242, QgroupLimit = 244,
        QgroupRelation = 246, TemporaryItem = 248, PersistentItem = 249, DevReplace = 250, UuidKeySubvol = 251,
        UuidKeyReceivedSubvol = 252, StringItem = 253;

    /// <summary>Type names printed by v6.2 (print_key_type's table).</summary>
    private static readonly Dictionary<byte, string> TypeNamesV62 = new()
    {
        [1] = "INODE_ITEM", [12] = "INODE_REF", [13] = "INODE_EXTREF", [24] = "XATTR_ITEM",
        [36] = "VERITY_DESC_ITEM", [37] = "VERITY_MERKLE_ITEM", [48] = "ORPHAN_ITEM",
        [60] = "DIR_LOG_ITEM", [72] = "DIR_LOG_INDEX", [84] = "DIR_ITEM", [96] = "DIR_INDEX",
        [108] = "EXTENT_DATA", [120] = "CSUM_ITEM", [128] = "EXTENT_CSUM", [132] = "ROOT_ITEM",
        [144] = "ROOT_BACKREF", [156] = "ROOT_REF", [168] = "EXTENT_ITEM", [169] = "METADATA_ITEM",
        [176] = "TREE_BLOCK_REF", [178] = "EXTENT_DATA_REF", [180] = "EXTENT_REF_V0",
        [182] = "SHARED_BLOCK_REF", [184] = "SHARED_DATA_REF", [192] = "BLOCK_GROUP_ITEM",
        [198] = "FREE_SPACE_INFO", [199] = "FREE_SPACE_EXTENT", [200] = "FREE_SPACE_BITMAP",
        [204] = "DEV_EXTENT", [216] = "DEV_ITEM", [228] = "CHUNK_ITEM", [240] = "QGROUP_STATUS",
        [242] = "QGROUP_INFO", [244] = "QGROUP_LIMIT", [246] = "QGROUP_RELATION",
        [248] = "TEMPORARY_ITEM", [249] = "PERSISTENT_ITEM", [250] = "DEV_REPLACE",
        [251] = "UUID_KEY_SUBVOL", [252] = "UUID_KEY_RECEIVED_SUBVOL", [253] = "STRING_ITEM",
    };

    /// <summary>Type names accepted when parsing: v6.2's plus names newer progs print.</summary>
    private static readonly Dictionary<string, byte> TypeByName = BuildTypeByName();

    /// <summary>Objectid names printed by v6.2's print_objectid (context-free part).</summary>
    private static readonly Dictionary<ulong, string> ObjectIdNamesV62 = new()
    {
        [RootTree] = "ROOT_TREE", [ExtentTree] = "EXTENT_TREE", [ChunkTree] = "CHUNK_TREE",
        [DevTree] = "DEV_TREE", [FsTree] = "FS_TREE", [RootTreeDir] = "ROOT_TREE_DIR", [CsumTree] = "CSUM_TREE",
        [Balance] = "BALANCE", [Orphan] = "ORPHAN", [TreeLog] = "TREE_LOG", [TreeLogFixup] = "LOG_FIXUP",
        [TreeReloc] = "TREE_RELOC", [DataRelocTree] = "DATA_RELOC_TREE", [ExtentCsum] = "EXTENT_CSUM",
        [FreeSpace] = "FREE_SPACE", [FreeIno] = "FREE_INO", [QuotaTree] = "QUOTA_TREE", [UuidTree] = "UUID_TREE",
        [FreeSpaceTree] = "FREE_SPACE_TREE", [Multiple] = "MULTIPLE", [BlockGroupTree] = "BLOCK_GROUP_TREE",
    };

    /// <summary>Objectid names accepted when parsing (all contexts, plus aliases of other progs versions).</summary>
    private static readonly Dictionary<string, ulong> ObjectIdByName = BuildObjectIdByName();

    private static Dictionary<string, byte> BuildTypeByName()
    {
        var d = TypeNamesV62.ToDictionary(kv => kv.Value, kv => kv.Key, StringComparer.Ordinal);
        d["EXTENT_OWNER_REF"] = 172;
        d["RAID_STRIPE"] = 230;
        d["BALANCE_ITEM"] = 248;
        d["DEV_STATS_ITEM"] = 249;
        d["UNTYPED"] = 0;
        return d;
    }

    private static Dictionary<string, ulong> BuildObjectIdByName()
    {
        var d = ObjectIdNamesV62.ToDictionary(kv => kv.Value, kv => kv.Key, StringComparer.Ordinal);
        d["DEV_ITEMS"] = 1;
        d["DEV_STATS"] = 0;
        d["FIRST_CHUNK_TREE"] = FirstChunkTree;
        d["TREE_LOG_FIXUP"] = TreeLogFixup;
        d["RAID_STRIPE_TREE"] = RaidStripeTree;
        return d;
    }

    /// <summary>
    /// Parses a printed key: <c>(EXTENT_TREE ROOT_ITEM 0)</c>, optionally prefixed with <c>key </c>.
    /// Throws <see cref="FormatException"/> on malformed input.
    /// </summary>
    public static ProgsKey ParseKey(string text) =>
        TryParseKey(text, out var key) ? key : throw new FormatException($"not a btrfs-progs key: '{text}'");

    /// <summary>Non-throwing <see cref="ParseKey"/>.</summary>
    public static bool TryParseKey(string text, out ProgsKey key)
    {
        key = default;
        var s = text.Trim();
        if (s.StartsWith("key ", StringComparison.Ordinal))
            s = s[4..].TrimStart();
        if (s.Length < 2 || s[0] != '(' || s[^1] != ')')
            return false;
        var parts = s[1..^1].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length != 3)
            return false;
        if (!TryParseType(parts[1], out var type) ||
            !TryParseNumberish(parts[0], out var objectid) ||
            !TryParseNumberish(parts[2], out var offset))
            return false;
        key = new ProgsKey(objectid, type, offset);
        return true;
    }

    /// <summary>Parses a key type token (<c>INODE_ITEM</c>, <c>UNKNOWN.17</c>, <c>UNTYPED</c>, or a plain number).</summary>
    public static bool TryParseType(string token, out byte type)
    {
        if (TypeByName.TryGetValue(token, out type))
            return true;
        if (token.StartsWith("UNKNOWN.", StringComparison.Ordinal))
            return byte.TryParse(token.AsSpan(8), NumberStyles.None, CultureInfo.InvariantCulture, out type);
        return byte.TryParse(token, NumberStyles.None, CultureInfo.InvariantCulture, out type);
    }

    /// <summary>
    /// Parses an objectid/offset/root/owner token in any printed form: decimal, <c>-N</c> (two's complement,
    /// <c>-1</c> = u64 max), <c>0x</c>-hex, <c>level/subvolid</c> (qgroup: level &lt;&lt; 48 | subvolid), or a symbolic
    /// name (ROOT_TREE, DEV_ITEMS, FIRST_CHUNK_TREE, DEV_STATS, TREE_RELOC, ...).
    /// </summary>
    public static ulong ParseObjectId(string token) =>
        TryParseNumberish(token, out var v) ? v : throw new FormatException($"not a btrfs-progs objectid: '{token}'");

    /// <summary>Non-throwing <see cref="ParseObjectId"/>.</summary>
    public static bool TryParseNumberish(string token, out ulong value)
    {
        value = 0;
        if (token.Length == 0)
            return false;
        if (ObjectIdByName.TryGetValue(token, out value))
            return true;
        if (token.StartsWith("0x", StringComparison.OrdinalIgnoreCase))
            return ulong.TryParse(token.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out value);
        int slash = token.IndexOf('/');
        if (slash > 0)
        {
            if (!ulong.TryParse(token.AsSpan(0, slash), NumberStyles.None, CultureInfo.InvariantCulture, out var level) ||
                !ulong.TryParse(token.AsSpan(slash + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var id) ||
                level > 0xFFFF || id > 0xFFFF_FFFF_FFFF)
                return false;
            value = (level << 48) | id;
            return true;
        }
        if (token[0] == '-')
        {
            if (!ulong.TryParse(token.AsSpan(1), NumberStyles.None, CultureInfo.InvariantCulture, out var neg) || neg == 0)
                return false;
            value = unchecked(0UL - neg);
            return true;
        }
        return ulong.TryParse(token, NumberStyles.None, CultureInfo.InvariantCulture, out value);
    }

    /// <summary>Formats a key exactly like v6.2 <c>btrfs_print_key</c> (without the leading <c>key </c>).</summary>
    public static string Format(ProgsKey key)
    {
        var type = key.Type;
        string offset = type switch
        {
            QgroupRelation or QgroupInfo or QgroupLimit => $"{key.Offset >> 48}/{key.Offset & 0xFFFF_FFFF_FFFF}",
            UuidKeySubvol or UuidKeyReceivedSubvol => $"0x{key.Offset:x16}",
            RootItem => key.ObjectId == TreeReloc
                ? FormatObjectId(key.Offset, RootItem)
                : key.Offset.ToString(CultureInfo.InvariantCulture),
            _ => key.Offset == ulong.MaxValue ? "-1" : key.Offset.ToString(CultureInfo.InvariantCulture),
        };
        return $"({FormatObjectId(key.ObjectId, type)} {FormatType(key.ObjectId, type)} {offset})";
    }

    /// <summary>Formats an objectid like v6.2 <c>print_objectid(objectid, type)</c>; use type 0 for owners/roots.</summary>
    public static string FormatObjectId(ulong objectid, byte type)
    {
        switch (type)
        {
            case PersistentItem:
                return objectid == 0 ? "DEV_STATS" : objectid.ToString(CultureInfo.InvariantCulture);
            case DevExtent:
                return objectid.ToString(CultureInfo.InvariantCulture);
            case QgroupRelation:
                return $"{objectid >> 48}/{objectid & 0xFFFF_FFFF_FFFF}";
            case UuidKeySubvol:
            case UuidKeyReceivedSubvol:
                return $"0x{objectid:x16}";
        }
        if (objectid == RootTree)
            return type == DevItem ? "DEV_ITEMS" : "ROOT_TREE";
        if (ObjectIdNamesV62.TryGetValue(objectid, out var name))
            return name;
        if (objectid == ulong.MaxValue)
            return "-1";
        if (objectid == FirstChunkTree && type == ChunkItem)
            return "FIRST_CHUNK_TREE";
        return objectid.ToString(CultureInfo.InvariantCulture);
    }

    /// <summary>Formats a key type like v6.2 <c>print_key_type</c>.</summary>
    public static string FormatType(ulong objectid, byte type)
    {
        if (type == 0 && objectid == FreeSpace)
            return "UNTYPED";
        return TypeNamesV62.TryGetValue(type, out var name) ? name : $"UNKNOWN.{type}";
    }
}
