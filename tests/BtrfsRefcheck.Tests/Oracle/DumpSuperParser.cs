using System.Globalization;
using System.Text.RegularExpressions;

namespace BtrfsRefcheck.Tests.Oracle;

/// <summary>
/// One superblock as printed by <c>btrfs inspect-internal dump-super [-f] [-s N | -a]</c> (btrfs-progs v6.2).
/// Values are kept as printed; use <see cref="U64"/> for numbers.
/// </summary>
public sealed class ProgsSuper
{
    /// <summary>Bytenr from the <c>superblock: bytenr=65536, device=IMG</c> banner (null if absent).</summary>
    public ulong? BannerBytenr { get; init; }

    /// <summary>Device from the banner (null if absent).</summary>
    public string? Device { get; init; }

    /// <summary>
    /// Every top-level <c>name\t\tvalue</c> line, value as printed after the tabs, e.g. <c>csum_type</c> →
    /// <c>0 (crc32c)</c>, <c>csum</c> → <c>0x771c1e42 [match]</c>, <c>magic</c> → <c>_BHRfS_M [match]</c>,
    /// <c>dev_item.fsid</c> → <c>UUID [match]</c>, <c>incompat_flags</c> → <c>0x341</c>. Fields printed with a
    /// <c> (deprecated)</c> suffix (<c>log_root_transid</c>, <c>leafsize</c>) are stored under both the printed
    /// and the bare name.
    /// </summary>
    public Dictionary<string, string> Fields { get; } = new(StringComparer.Ordinal);

    /// <summary>
    /// Names from the multi-line <c>( A |\n  B )</c> lists printed after <c>flags</c>, <c>compat_ro_flags</c> and
    /// <c>incompat_flags</c> (only present when the value is non-zero). Unknown bits appear as <c>unknown flag: 0x..</c>.
    /// </summary>
    public Dictionary<string, IReadOnlyList<string>> FlagNames { get; } = new(StringComparer.Ordinal);

    /// <summary>Chunks of the <c>sys_chunk_array[2048]:</c> section (dump-super -f only).</summary>
    public List<ProgsChunk> SysChunks { get; } = [];

    /// <summary>
    /// Backups of the <c>backup_roots[4]:</c> section (dump-super -f only). v6.2 prints only non-empty slots
    /// (tree_root and its gen both non-zero), so there may be fewer than 4.
    /// </summary>
    public List<ProgsBackupRoot> BackupRoots { get; } = [];

    /// <summary>True when the <c>sys_chunk_array</c> header was seen.</summary>
    public bool HasSysChunkArray { get; internal set; }

    /// <summary>True when the <c>backup_roots</c> header was seen.</summary>
    public bool HasBackupRoots { get; internal set; }

    /// <summary>The raw value of <paramref name="field"/>.</summary>
    public string this[string field] => Fields[field];

    /// <summary>The first token of a field parsed as decimal or 0x-hex (<c>0 (crc32c)</c> → 0, <c>0x341</c> → 0x341).</summary>
    public ulong U64(string field) =>
        Fields.TryGetValue(field, out var v)
            ? DumpSuperParser.FirstU64(v)
            : throw new KeyNotFoundException($"dump-super field '{field}' not present");

    /// <summary>True if the field's printed value ends with <c>[match]</c> (csum, magic, dev_item.fsid).</summary>
    public bool Matches(string field) => Fields.TryGetValue(field, out var v) && v.EndsWith("[match]", StringComparison.Ordinal);
}

/// <summary>
/// One <c>backup N:</c> entry. <see cref="Fields"/> keys: <c>backup_tree_root</c>, <c>backup_tree_root_gen</c>,
/// <c>backup_tree_root_level</c>, likewise for <c>backup_chunk_root</c>, <c>backup_extent_root</c> (or
/// <c>backup_block_group_root</c> with extent-tree-v2), <c>backup_fs_root</c>, <c>backup_dev_root</c>, <c>csum_root</c>;
/// and <c>backup_total_bytes</c>, <c>backup_bytes_used</c>, <c>backup_num_devices</c>.
/// </summary>
public sealed record ProgsBackupRoot(int Index, IReadOnlyDictionary<string, string> Fields)
{
    /// <summary>A field as a number.</summary>
    public ulong U64(string field) =>
        Fields.TryGetValue(field, out var v)
            ? DumpSuperParser.FirstU64(v)
            : throw new KeyNotFoundException($"backup root field '{field}' not present");
}

/// <summary>Parser for <c>btrfs inspect-internal dump-super</c> output (v6.2).</summary>
public static class DumpSuperParser
{
    private static readonly Regex Banner = new(@"^superblock: bytenr=(\d+), device=(.*)$", RegexOptions.CultureInvariant);
    private static readonly Regex SysItem = new(@"^\titem (\d+) key (\(.*\))\s*$", RegexOptions.CultureInvariant);
    private static readonly Regex BackupHeader = new(@"^\tbackup (\d+):\s*$", RegexOptions.CultureInvariant);
    private static readonly Regex GenLevel = new(@"^(gen|level):\s*(\S+)$", RegexOptions.CultureInvariant);

    /// <summary>Parses the first (usually only) superblock in the text; throws if there is none.</summary>
    public static ProgsSuper Parse(string text)
    {
        var all = ParseAll(text);
        return all.Count > 0 ? all[0] : throw new FormatException("no superblock in dump-super output");
    }

    /// <summary>Parses every superblock in the text (<c>dump-super -a</c> prints one section per valid copy).</summary>
    public static IReadOnlyList<ProgsSuper> ParseAll(string text)
    {
        var result = new List<ProgsSuper>();
        ProgsSuper? sb = null;
        var section = Section.Top;
        string? lastField = null;
        List<string>? flagText = null;
        ProgsKey chunkKey = default;
        List<string>? chunkLines = null;
        int backupIndex = -1;
        Dictionary<string, string>? backupFields = null;

        foreach (var raw in text.Split('\n'))
        {
            var line = raw.TrimEnd('\r');
            Match m;
            if ((m = Banner.Match(line)).Success)
            {
                FinishSuper();
                sb = new ProgsSuper { BannerBytenr = DumpTreeParser.U64(m.Groups[1].Value), Device = m.Groups[2].Value };
                section = Section.Top;
                continue;
            }
            if (line.Trim().Length == 0 || line.StartsWith("----", StringComparison.Ordinal))
                continue;

            if (line[0] != '\t')
            {
                FinishFlags();
                if (line.StartsWith("sys_chunk_array[", StringComparison.Ordinal))
                {
                    sb ??= new ProgsSuper();
                    sb.HasSysChunkArray = true;
                    section = Section.SysArray;
                    continue;
                }
                if (line.StartsWith("backup_roots[", StringComparison.Ordinal))
                {
                    FinishChunk();
                    sb ??= new ProgsSuper();
                    sb.HasBackupRoots = true;
                    section = Section.Backups;
                    continue;
                }
                int tab = line.IndexOf('\t');
                if (tab <= 0)
                    continue; // ERROR/warning lines etc.
                if (section != Section.Top)
                {
                    // A new top-level field after the sections means a new superblock without banner.
                    FinishSuper();
                    section = Section.Top;
                }
                sb ??= new ProgsSuper();
                var name = line[..tab];
                var value = line[(tab + 1)..].TrimStart('\t');
                sb.Fields[name] = value;
                const string deprecated = " (deprecated)";
                if (name.EndsWith(deprecated, StringComparison.Ordinal))
                    sb.Fields.TryAdd(name[..^deprecated.Length], value);
                lastField = name;
                continue;
            }

            if (sb is null)
                continue;
            switch (section)
            {
                case Section.Top:
                    if (line.StartsWith("\t\t\t", StringComparison.Ordinal) && lastField is not null)
                    {
                        var t = line.Trim();
                        if (flagText is null && t.StartsWith('('))
                            flagText = [];
                        if (flagText is not null)
                        {
                            flagText.Add(t);
                            if (t.EndsWith(')'))
                                FinishFlags();
                        }
                    }
                    break;
                case Section.SysArray:
                    if ((m = SysItem.Match(line)).Success)
                    {
                        FinishChunk();
                        chunkKey = ProgsKeyFormat.ParseKey(m.Groups[2].Value);
                        chunkLines = [];
                    }
                    else
                    {
                        chunkLines?.Add(line.TrimStart('\t'));
                    }
                    break;
                case Section.Backups:
                    if ((m = BackupHeader.Match(line)).Success)
                    {
                        FinishBackup();
                        backupIndex = int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
                        backupFields = new Dictionary<string, string>(StringComparer.Ordinal);
                    }
                    else if (backupFields is not null)
                    {
                        // "\t\tbackup_tree_root:\t30441472\tgen: 5\tlevel: 0" or "\t\tbackup_total_bytes:\t536870912"
                        var parts = line.Split('\t', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
                        if (parts.Length >= 2 && parts[0].EndsWith(':'))
                        {
                            var name = parts[0][..^1];
                            backupFields[name] = parts[1];
                            for (int i = 2; i < parts.Length; i++)
                                if (GenLevel.Match(parts[i]) is { Success: true } gl)
                                    backupFields[name + "_" + gl.Groups[1].Value] = gl.Groups[2].Value;
                        }
                    }
                    break;
            }
        }
        FinishSuper();
        return result;

        void FinishFlags()
        {
            if (flagText is null || sb is null || lastField is null)
            {
                flagText = null;
                return;
            }
            var joined = string.Join(" ", flagText).Trim();
            if (joined.StartsWith('(')) joined = joined[1..];
            if (joined.EndsWith(')')) joined = joined[..^1];
            sb.FlagNames[lastField] = joined.Split('|', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            flagText = null;
        }

        void FinishChunk()
        {
            if (chunkLines is not null && sb is not null && ProgsChunk.TryParse(chunkKey, chunkLines) is { } c)
                sb.SysChunks.Add(c);
            chunkLines = null;
        }

        void FinishBackup()
        {
            if (backupFields is not null && sb is not null)
                sb.BackupRoots.Add(new ProgsBackupRoot(backupIndex, backupFields));
            backupFields = null;
        }

        void FinishSuper()
        {
            FinishFlags();
            FinishChunk();
            FinishBackup();
            if (sb is not null && (sb.Fields.Count > 0 || sb.HasSysChunkArray))
                result.Add(sb);
            sb = null;
            lastField = null;
        }
    }

    /// <summary>Parses the first whitespace-separated token of a value as decimal or 0x-hex.</summary>
    public static ulong FirstU64(string value)
    {
        var t = value.Trim();
        int sp = t.IndexOfAny([' ', '\t']);
        if (sp >= 0) t = t[..sp];
        return DumpTreeParser.U64(t);
    }

    private enum Section { Top, SysArray, Backups }
}
