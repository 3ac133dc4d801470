using BtrfsRefcheck.Cli.Verbs;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Tests.Oracle;
using BtrfsRefcheck.Volume;

namespace BtrfsRefcheck.Tests.Differential;

/// <summary>
/// Every field <c>btrfs inspect-internal dump-super -f</c> prints, for copy 0 and copy 1 of every device of every fixture,
/// against our <see cref="Superblock"/> read by <see cref="SuperblockCopy.Read"/>. The test walks progs' fields, not
/// ours: a field progs prints that has no mapping below (and is not on the ignore-list with a reason) fails, so a new
/// field cannot be silently skipped.
/// </summary>
public class DumpSuperDifferentialTests
{
    private delegate string? FieldCheck(Superblock sb, ProgsSuper ps, string name);

    /// <summary>Fields progs prints that we deliberately do not compare, each with the reason. Keep it short.</summary>
    private static readonly Dictionary<string, string> Ignored = new(StringComparer.Ordinal)
    {
        // (none today: every field v6.2 prints for these fixtures is compared)
    };

    private static readonly Dictionary<string, FieldCheck> TopFields = new(StringComparer.Ordinal)
    {
        ["csum_type"] = Text(sb => $"{sb.CsumTypeRaw} ({Checksum.Name(sb.CsumTypeRaw)})"),
        ["csum_size"] = Num(sb => (ulong)Checksum.Length(sb.CsumType)),
        ["csum"] = Text(sb => Checksum.ToHex(sb.CsumType, sb.Csum) + (sb.ChecksumValid ? " [match]" : " [DON'T MATCH]")),
        ["bytenr"] = Num(sb => sb.Bytenr),
        ["flags"] = Flags(sb => sb.Flags, SuperblockFields.SuperFlagNames),
        ["magic"] = Text(sb => sb.MagicMatches ? "_BHRfS_M [match]" : "?"),
        ["fsid"] = Text(sb => sb.Fsid.ToString()),
        ["metadata_uuid"] = Text(sb => sb.MetadataFsid.ToString()),
        ["label"] = Text(sb => sb.Label),
        ["generation"] = Num(sb => sb.Generation),
        ["root"] = Num(sb => sb.Root),
        ["sys_array_size"] = Num(sb => sb.SysChunkArraySize),
        ["chunk_root_generation"] = Num(sb => sb.ChunkRootGeneration),
        ["root_level"] = Num(sb => sb.RootLevel),
        ["chunk_root"] = Num(sb => sb.ChunkRoot),
        ["chunk_root_level"] = Num(sb => sb.ChunkRootLevel),
        ["log_root"] = Num(sb => sb.LogRoot),
        ["log_root_transid (deprecated)"] = Num(sb => sb.LogRootTransid),
        ["log_root_level"] = Num(sb => sb.LogRootLevel),
        ["total_bytes"] = Num(sb => sb.TotalBytes),
        ["bytes_used"] = Num(sb => sb.BytesUsed),
        ["sectorsize"] = Num(sb => sb.SectorSize),
        ["nodesize"] = Num(sb => sb.NodeSize),
        ["leafsize (deprecated)"] = Num(sb => sb.LeafSize),
        ["stripesize"] = Num(sb => sb.StripeSize),
        ["root_dir"] = Num(sb => sb.RootDirObjectId),
        ["num_devices"] = Num(sb => sb.NumDevices),
        ["compat_flags"] = Flags(sb => sb.CompatFlags, Features.CompatNames),
        ["compat_ro_flags"] = Flags(sb => sb.CompatRoFlags, Features.CompatRoNames),
        ["incompat_flags"] = Flags(sb => sb.IncompatFlags, Features.IncompatNames),
        ["cache_generation"] = Num(sb => sb.CacheGeneration),
        ["uuid_tree_generation"] = Num(sb => sb.UuidTreeGeneration),
        ["nr_global_roots"] = Num(sb => sb.NrGlobalRoots), // printed by progs only with extent-tree-v2
        ["dev_item.uuid"] = Text(sb => sb.DevItem.Uuid.ToString()),
        ["dev_item.fsid"] = Text(sb => sb.DevItem.Fsid + (sb.DevItem.Fsid == sb.MetadataFsid ? " [match]" : " [DON'T MATCH]")),
        ["dev_item.type"] = Num(sb => sb.DevItem.Type),
        ["dev_item.total_bytes"] = Num(sb => sb.DevItem.TotalBytes),
        ["dev_item.bytes_used"] = Num(sb => sb.DevItem.BytesUsed),
        ["dev_item.io_align"] = Num(sb => sb.DevItem.IoAlign),
        ["dev_item.io_width"] = Num(sb => sb.DevItem.IoWidth),
        ["dev_item.sector_size"] = Num(sb => sb.DevItem.SectorSize),
        ["dev_item.devid"] = Num(sb => sb.DevItem.DevId),
        ["dev_item.dev_group"] = Num(sb => sb.DevItem.DevGroup),
        ["dev_item.seek_speed"] = Num(sb => sb.DevItem.SeekSpeed),
        ["dev_item.bandwidth"] = Num(sb => sb.DevItem.Bandwidth),
        ["dev_item.generation"] = Num(sb => sb.DevItem.Generation),
        ["dev_item.start_offset"] = Num(sb => sb.DevItem.StartOffset), // not printed by v6.2; compared when a newer progs does
    };

    /// <summary>
    /// Where v6.19 prints a field differently from v6.2, its mapping for v6.19 (v6.2's stays in <see cref="TopFields"/>).
    /// </summary>
    private static readonly Dictionary<string, FieldCheck> TopFields619 = new(StringComparer.Ordinal)
    {
        // v6.2 prints the fsid when METADATA_UUID is off (what the filesystem uses); v6.19 prints the field as stored
        // (zeros then). Our Superblock has both: MetadataFsid (the effective one) and MetadataUuidBytes (the field).
        ["metadata_uuid"] = Text(sb => Uuids.Read(sb.MetadataUuidBytes).ToString()),
        // v6.2 names checksum type 3 "blake2" (as our Checksum.Name does), v6.19 "blake2b"
        ["csum_type"] = Text(sb => $"{sb.CsumTypeRaw} ({(sb.CsumTypeRaw == 3 ? "blake2b" : Checksum.Name(sb.CsumTypeRaw))})"),
    };

    /// <summary>
    /// Superblock copies a fixture does not have where the fixed offsets say, with the reason: progs must refuse to
    /// dump them (bad magic) and our reader must find no valid copy there either.
    /// </summary>
    private static readonly Dictionary<(string Fixture, int Copy), string> AbsentCopies = new()
    {
        [("mkfs619:zoned", 1)] = "zoned: superblock mirrors live in the log zones at 512 GiB and 4 TiB, beyond this 4 GiB image; 64 MiB is ordinary space",
    };

    /// <summary>True for a superblock copy listed in <see cref="AbsentCopies"/>.</summary>
    internal static bool IsAbsentCopy(string fixture, int copy) => AbsentCopies.ContainsKey((fixture, copy));

    private static readonly Dictionary<string, Func<Superblock, int, ulong>> BackupFields = new(StringComparer.Ordinal)
    {
        ["backup_tree_root"] = (sb, i) => sb.GetBackupRoot(i).TreeRoot,
        ["backup_tree_root_gen"] = (sb, i) => sb.GetBackupRoot(i).TreeRootGen,
        ["backup_tree_root_level"] = (sb, i) => sb.GetBackupRoot(i).TreeRootLevel,
        ["backup_chunk_root"] = (sb, i) => sb.GetBackupRoot(i).ChunkRoot,
        ["backup_chunk_root_gen"] = (sb, i) => sb.GetBackupRoot(i).ChunkRootGen,
        ["backup_chunk_root_level"] = (sb, i) => sb.GetBackupRoot(i).ChunkRootLevel,
        ["backup_extent_root"] = (sb, i) => sb.GetBackupRoot(i).ExtentRoot,
        ["backup_extent_root_gen"] = (sb, i) => sb.GetBackupRoot(i).ExtentRootGen,
        ["backup_extent_root_level"] = (sb, i) => sb.GetBackupRoot(i).ExtentRootLevel,
        ["backup_fs_root"] = (sb, i) => sb.GetBackupRoot(i).FsRoot,
        ["backup_fs_root_gen"] = (sb, i) => sb.GetBackupRoot(i).FsRootGen,
        ["backup_fs_root_level"] = (sb, i) => sb.GetBackupRoot(i).FsRootLevel,
        ["backup_dev_root"] = (sb, i) => sb.GetBackupRoot(i).DevRoot,
        ["backup_dev_root_gen"] = (sb, i) => sb.GetBackupRoot(i).DevRootGen,
        ["backup_dev_root_level"] = (sb, i) => sb.GetBackupRoot(i).DevRootLevel,
        ["csum_root"] = (sb, i) => sb.GetBackupRoot(i).CsumRoot,
        ["csum_root_gen"] = (sb, i) => sb.GetBackupRoot(i).CsumRootGen,
        ["csum_root_level"] = (sb, i) => sb.GetBackupRoot(i).CsumRootLevel,
        ["backup_total_bytes"] = (sb, i) => sb.GetBackupRoot(i).TotalBytes,
        ["backup_bytes_used"] = (sb, i) => sb.GetBackupRoot(i).BytesUsed,
        ["backup_num_devices"] = (sb, i) => sb.GetBackupRoot(i).NumDevices,
    };

    public static IEnumerable<object[]> FixturesAndCopies =>
        DiffFixtures.All.SelectMany(r => new[] { new object[] { r[0], 0 }, new object[] { r[0], 1 } });

    /// <summary><see cref="FixturesAndCopies"/> for the v6.19 oracle: every fixture plus those mkfs 6.19 made.</summary>
    public static IEnumerable<object[]> FixturesAndCopies619 =>
        DiffFixtures.All619.SelectMany(r => new[] { new object[] { r[0], 0 }, new object[] { r[0], 1 } });

    [ProgsTheory]
    [MemberData(nameof(FixturesAndCopies))]
    public void EveryPrintedFieldMatches(string fixture, int copy) => FieldsMatch(fixture, copy, Progs.V62);

    /// <summary>The same against btrfs-progs v6.19 (its <see cref="TopFields619"/> mappings where it prints differently).</summary>
    [Progs619Theory]
    [MemberData(nameof(FixturesAndCopies619))]
    public void EveryPrintedFieldMatches619(string fixture, int copy) => FieldsMatch(fixture, copy, Progs.V619);

    private static void FieldsMatch(string fixture, int copy, ProgsOracle oracle)
    {
        var diffs = new List<string>();
        int compared = 0;
        if (AbsentCopies.TryGetValue((fixture, copy), out var why))
        {
            foreach (var image in DiffFixtures.Images(fixture))
            {
                var (code, stdout, stderr) = oracle.RunRaw("btrfs", "inspect-internal", "dump-super", "-f", "-s", copy.ToString(), image);
                Assert.True(code != 0 && stderr.Contains("bad magic", StringComparison.Ordinal),
                    $"{image} copy {copy} should be absent ({why}), {oracle} exited {code}: {stdout}{stderr}");
                using var dev = BlockDevice.Open(image);
                var sc = SuperblockCopy.Read(dev, copy);
                Assert.False(sc.IsValid, $"{image} copy {copy} should be absent ({why}), our reader found a valid one");
            }
            return;
        }
        foreach (var image in DiffFixtures.Images(fixture))
        {
            var text = copy == 0 ? OracleCache.DumpSuperText(oracle, image, "-f") : OracleCache.DumpSuperText(oracle, image, "-f", "-s", copy.ToString());
            var ps = DumpSuperParser.Parse(text);
            using var dev = BlockDevice.Open(image);
            var sc = SuperblockCopy.Read(dev, copy);
            Assert.True(sc.IsValid, $"{image} copy {copy}: {sc.Problem}");
            var prefix = $"{Path.GetFileName(image)} copy {copy}: ";
            compared += Compare(sc.Superblock!, ps, sc.Offset, diffs, prefix, oracle);
        }
        Assert.True(diffs.Count == 0, DiffFixtures.Report($"{fixture} copy {copy}: our superblock vs {oracle} dump-super -f", diffs));
        // every v6.2 field (46 top-level on these fixtures), the sys chunk array and at least one backup root
        Assert.True(compared >= 60, $"only {compared} values compared: did the progs output parse?");
    }

    /// <summary>The mapping must notice a wrong value, a wrong flag name and an unmapped field.</summary>
    [ProgsFact]
    public void Comparison_DetectsPlantedDifferences()
    {
        var image = DiffFixtures.Images("mkfs:crc32c")[0];
        var text = OracleCache.DumpSuperText(image, "-f");
        using var dev = BlockDevice.Open(image);
        var sb = SuperblockCopy.Read(dev, 0).Superblock!;
        var baseline = new List<string>();
        Assert.True(Compare(sb, DumpSuperParser.Parse(text), 65536, baseline, "") >= 60);
        Assert.Empty(baseline);

        var gen = sb.Generation;
        var planted = text
            .Replace($"\ngeneration\t\t{gen}\n", $"\ngeneration\t\t{gen + 1}\n")
            .Replace("SKINNY_METADATA", "SKINNY_METADADA")
            .Replace("\nroot_dir\t", "\nroot_dirt\t");
        Assert.NotEqual(text, planted);
        var diffs = new List<string>();
        Compare(sb, DumpSuperParser.Parse(planted), 65536, diffs, "");
        Assert.Contains(diffs, d => d.StartsWith("generation:"));
        Assert.Contains(diffs, d => d.StartsWith("incompat_flags") && d.Contains("SKINNY_METADADA"));
        Assert.Contains(diffs, d => d.Contains("root_dirt") && d.Contains("no mapping"));
    }

    /// <summary>Compares one superblock; returns how many values were compared.</summary>
    private static int Compare(Superblock sb, ProgsSuper ps, long offset, List<string> diffs, string prefix, ProgsOracle? oracle = null)
    {
        bool v619 = oracle?.Name == "6.19";
        int compared = 0;
        if (ps.BannerBytenr != (ulong)offset) diffs.Add($"{prefix}progs banner bytenr {ps.BannerBytenr}, expected {offset}");

        foreach (var (name, value) in ps.Fields)
        {
            // "leafsize (deprecated)" is also stored as "leafsize"; compare the printed name only
            if (ps.Fields.ContainsKey(name + " (deprecated)")) continue;
            if (Ignored.ContainsKey(name)) continue;
            if (!(v619 && TopFields619.TryGetValue(name, out var check)) && !TopFields.TryGetValue(name, out check))
            {
                diffs.Add($"{prefix}{name}: progs prints '{value}', the test has no mapping for it (map it, or add it to the ignore-list with a reason)");
                continue;
            }
            compared++;
            if (check(sb, ps, name) is { } d) diffs.Add(prefix + d);
        }
        foreach (var flagsField in ps.FlagNames.Keys.Where(k => !ps.Fields.ContainsKey(k)))
            diffs.Add($"{prefix}progs printed flag names under '{flagsField}', which is not a field");

        compared += CompareSysChunks(sb, ps, diffs, prefix);
        compared += CompareBackups(sb, ps, diffs, prefix);
        return compared;
    }

    private static int CompareSysChunks(Superblock sb, ProgsSuper ps, List<string> diffs, string prefix)
    {
        if (!ps.HasSysChunkArray) { diffs.Add($"{prefix}progs printed no sys_chunk_array (was -f passed?)"); return 0; }
        var ours = new List<(BtrfsKey Key, ulong Length, ulong Owner, ulong StripeLen, ulong Type, uint IoAlign, uint IoWidth, uint SectorSize,
            int NumStripes, int SubStripes, List<(ulong DevId, ulong Offset, Guid Uuid)> Stripes)>();
        var arr = sb.SysChunkArray;
        int pos = 0;
        while (arr.Length - pos >= BtrfsKey.Size + ChunkItem.HeaderSize)
        {
            var key = BtrfsKey.Read(arr[pos..]);
            var ci = new ChunkItem(arr[(pos + BtrfsKey.Size)..]);
            if (!ci.StripesFit) { diffs.Add($"{prefix}our sys_chunk_array entry at {pos} does not fit"); break; }
            var stripes = new List<(ulong, ulong, Guid)>();
            for (int s = 0; s < ci.NumStripes; s++) stripes.Add((ci.Stripe(s).DevId, ci.Stripe(s).Offset, ci.Stripe(s).DevUuid));
            ours.Add((key, ci.Length, ci.Owner, ci.StripeLen, (ulong)ci.Type, ci.IoAlign, ci.IoWidth, ci.SectorSize, ci.NumStripes, ci.SubStripes, stripes));
            pos += BtrfsKey.Size + (int)ci.ImpliedSize;
        }
        if (ours.Count != ps.SysChunks.Count) diffs.Add($"{prefix}sys_chunk_array: progs {ps.SysChunks.Count} chunks, ours {ours.Count}");
        int compared = 0;
        for (int i = 0; i < Math.Min(ours.Count, ps.SysChunks.Count); i++)
        {
            var p = ps.SysChunks[i];
            var o = ours[i];
            string at = $"{prefix}sys_chunk_array item {i}";
            void Eq<T>(string what, T progs, T our) where T : IEquatable<T>
            {
                compared++;
                if (!progs.Equals(our)) diffs.Add($"{at}: {what} progs {progs}, ours {our}");
            }
            Eq("key objectid", p.Key.ObjectId, o.Key.ObjectId);
            Eq("key type", p.Key.Type, o.Key.Type);
            Eq("key offset", p.Key.Offset, o.Key.Offset);
            Eq("length", p.Length, o.Length);
            Eq("owner", p.Owner, o.Owner);
            Eq("stripe_len", p.StripeLen, o.StripeLen);
            Eq("type", ChunkTypeBits(p.Type, diffs, at), o.Type);
            Eq("io_align", p.IoAlign, o.IoAlign);
            Eq("io_width", p.IoWidth, o.IoWidth);
            Eq("sector_size", p.SectorSize, o.SectorSize);
            Eq("num_stripes", p.NumStripes, o.NumStripes);
            Eq("sub_stripes", p.SubStripes, o.SubStripes);
            Eq("printed stripes", p.Stripes.Count, o.Stripes.Count);
            for (int s = 0; s < Math.Min(p.Stripes.Count, o.Stripes.Count); s++)
            {
                Eq($"stripe {s} devid", p.Stripes[s].DevId, o.Stripes[s].DevId);
                Eq($"stripe {s} offset", p.Stripes[s].Offset, o.Stripes[s].Offset);
                Eq($"stripe {s} dev_uuid", p.Stripes[s].DevUuid, o.Stripes[s].Uuid.ToString());
            }
        }
        return compared;
    }

    private static int CompareBackups(Superblock sb, ProgsSuper ps, List<string> diffs, string prefix)
    {
        if (!ps.HasBackupRoots) { diffs.Add($"{prefix}progs printed no backup_roots (was -f passed?)"); return 0; }
        int compared = 0;
        var printed = new HashSet<int>();
        foreach (var b in ps.BackupRoots)
        {
            if (b.Index is < 0 or >= Superblock.BackupRootCount || !printed.Add(b.Index))
            {
                diffs.Add($"{prefix}progs printed backup {b.Index} (out of range or twice)");
                continue;
            }
            foreach (var (name, value) in b.Fields)
            {
                if (!BackupFields.TryGetValue(name, out var get))
                {
                    diffs.Add($"{prefix}backup {b.Index} {name}: progs prints '{value}', the test has no mapping for it");
                    continue;
                }
                compared++;
                ulong p = DumpSuperParser.FirstU64(value), o = get(sb, b.Index);
                if (p != o) diffs.Add($"{prefix}backup {b.Index} {name}: progs {p}, ours {o}");
            }
            foreach (var missing in BackupFields.Keys.Where(k => !b.Fields.ContainsKey(k)))
                diffs.Add($"{prefix}backup {b.Index}: progs did not print {missing}");
        }
        // slots progs leaves out must be empty in ours
        for (int i = 0; i < Superblock.BackupRootCount; i++)
            if (!printed.Contains(i) && sb.GetBackupRoot(i).TreeRoot != 0 && sb.GetBackupRoot(i).TreeRootGen != 0)
                diffs.Add($"{prefix}backup {i}: progs does not print it, ours has tree root {sb.GetBackupRoot(i).TreeRoot} gen {sb.GetBackupRoot(i).TreeRootGen}");
        if (printed.Count == 0) diffs.Add($"{prefix}progs printed no backup root at all");
        return compared;
    }

    /// <summary>progs' chunk type text (<c>SYSTEM|DUP</c>, <c>DATA|METADATA|single</c>) as block group flag bits.</summary>
    private static ulong ChunkTypeBits(string text, List<string> diffs, string at)
    {
        ulong bits = 0;
        foreach (var part in text.Split('|', StringSplitOptions.TrimEntries))
        {
            bits |= part switch
            {
                "DATA" => (ulong)BlockGroupFlags.Data,
                "SYSTEM" => (ulong)BlockGroupFlags.System,
                "METADATA" => (ulong)BlockGroupFlags.Metadata,
                "single" => 0,
                "DUP" => (ulong)BlockGroupFlags.Dup,
                "RAID0" => (ulong)BlockGroupFlags.Raid0,
                "RAID1" => (ulong)BlockGroupFlags.Raid1,
                "RAID10" => (ulong)BlockGroupFlags.Raid10,
                "RAID5" => (ulong)BlockGroupFlags.Raid5,
                "RAID6" => (ulong)BlockGroupFlags.Raid6,
                "RAID1C3" => (ulong)BlockGroupFlags.Raid1C3,
                "RAID1C4" => (ulong)BlockGroupFlags.Raid1C4,
                _ => Unknown(part),
            };
        }
        return bits;

        ulong Unknown(string part)
        {
            diffs.Add($"{at}: progs chunk type part '{part}' is not known to the test");
            return 0;
        }
    }

    private static FieldCheck Num(Func<Superblock, ulong> ours) => (sb, ps, name) =>
    {
        ulong p = ps.U64(name), o = ours(sb);
        return p == o ? null : $"{name}: progs {p} ('{ps[name]}'), ours {o}";
    };

    private static FieldCheck Text(Func<Superblock, string> ours) => (sb, ps, name) =>
    {
        string p = ps[name], o = ours(sb);
        return p == o ? null : $"{name}: progs '{p}', ours '{o}'";
    };

    private static FieldCheck Flags(Func<Superblock, ulong> ours, Func<ulong, IReadOnlyList<string>> names) => (sb, ps, name) =>
    {
        ulong p = ps.U64(name), o = ours(sb);
        var pn = ps.FlagNames.TryGetValue(name, out var l) ? l : [];
        var on = names(o);
        var problems = new List<string>();
        if (p != o) problems.Add($"value progs 0x{p:x}, ours 0x{o:x}");
        if (!pn.Order(StringComparer.Ordinal).SequenceEqual(on.Order(StringComparer.Ordinal)))
            problems.Add($"names progs [{string.Join(", ", pn)}], ours [{string.Join(", ", on)}]");
        return problems.Count == 0 ? null : $"{name}: {string.Join("; ", problems)}";
    };
}
