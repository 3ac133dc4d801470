using System.Text.Json;
using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Volume;

namespace BtrfsRefcheck.Cli.Verbs;

/// <summary><c>dump-super</c>: every field of the superblock in use (or of every copy with --all).</summary>
public static class DumpSuperVerb
{
    public static int Run(DumpSuperOptions o, TextWriter stdout, TextWriter stderr)
    {
        var findings = new FindingBag();
        using var vol = VolumeFactory.Open(o, findings, acceptUnknownIncompat: true);
        var copies = o.All ? vol.AllCopies.ToList() : [vol.ChosenCopy];
        if (o.Json)
        {
            using var j = new JsonOut(stdout);
            var w = j.W;
            w.WriteStartObject();
            w.WriteString("format", "btrfs-refcheck.dump-super");
            w.WriteNumber("version", 1);
            w.WriteString("chosen_device", vol.ChosenCopy.Device.Path);
            w.WriteNumber("chosen_copy", vol.ChosenCopy.Mirror);
            w.WriteStartArray("superblocks");
            foreach (var c in copies)
            {
                w.WriteStartObject();
                w.WriteString("device", c.Device.Path);
                w.WriteNumber("copy", c.Mirror);
                w.WriteNumber("offset", c.Offset);
                w.WriteBoolean("valid", c.IsValid);
                if (c.Problem != null) w.WriteString("problem", c.Problem);
                if (c.Superblock != null)
                {
                    w.WriteStartObject("fields");
                    foreach (var f in SuperblockFields.Top(c.Superblock)) WriteField(w, f);
                    w.WriteEndObject();
                    w.WriteStartArray("backup_roots");
                    for (int i = 0; i < Superblock.BackupRootCount; i++)
                    {
                        w.WriteStartObject();
                        foreach (var f in SuperblockFields.Backup(c.Superblock, i)) WriteField(w, f);
                        w.WriteEndObject();
                    }
                    w.WriteEndArray();
                    w.WriteStartArray("sys_chunk_array");
                    foreach (var ch in SuperblockFields.SysChunks(c.Superblock))
                    {
                        w.WriteStartObject();
                        foreach (var f in ch) WriteField(w, f);
                        w.WriteEndObject();
                    }
                    w.WriteEndArray();
                }
                w.WriteEndObject();
            }
            w.WriteEndArray();
            FindingJson.WriteArray(w, "findings", findings.Items);
            w.WriteEndObject();
        }
        else
        {
            foreach (var n in vol.Notes) stdout.WriteLine($"# {n}");
            foreach (var c in copies)
            {
                stdout.WriteLine($"superblock: bytenr={c.Offset}, device={c.Device.Path}, copy {c.Mirror}{(c.IsValid ? "" : $" INVALID: {c.Problem}")}");
                stdout.WriteLine("---------------------------------------------------------");
                if (c.Superblock == null) continue;
                foreach (var f in SuperblockFields.Top(c.Superblock)) stdout.WriteLine($"{f.Name,-32}{f.Text}");
                stdout.WriteLine("sys_chunk_array:");
                int idx = 0;
                foreach (var ch in SuperblockFields.SysChunks(c.Superblock))
                    stdout.WriteLine($"\titem {idx++} " + string.Join(' ', ch.Select(f => $"{f.Name} {f.Text}")));
                stdout.WriteLine("backup_roots[4]:");
                for (int i = 0; i < Superblock.BackupRootCount; i++)
                    stdout.WriteLine($"\tbackup {i}: " + string.Join(' ', SuperblockFields.Backup(c.Superblock, i).Select(f => $"{f.Name} {f.Text}")));
                stdout.WriteLine();
            }
            foreach (var f in findings.Items) stderr.WriteLine(f);
        }
        return findings.Count(Severity.Error) > 0 ? ExitCodes.Findings : ExitCodes.Ok;
    }

    private static void WriteField(Utf8JsonWriter w, SuperblockFields.Field f)
    {
        if (f.Number is { } n && f.Names == null) w.WriteNumber(f.Name, n);
        else if (f.Number is { } v)
        {
            w.WriteStartObject(f.Name);
            w.WriteNumber("value", v);
            w.WriteStringArray("names", f.Names!);
            w.WriteEndObject();
        }
        else w.WriteString(f.Name, f.Text);
    }
}

/// <summary>The superblock as (name, value) fields named as btrfs-progs' dump-super names them.</summary>
public static class SuperblockFields
{
    public sealed record Field(string Name, string Text, ulong? Number = null, IReadOnlyList<string>? Names = null);

    private static Field N(string name, ulong v) => new(name, v.ToString(), v);
    private static Field S(string name, string v) => new(name, v);
    private static Field F(string name, ulong v, IReadOnlyList<string> names) =>
        new(name, names.Count == 0 ? $"0x{v:x}" : $"0x{v:x} ( {string.Join(" | ", names)} )", v, names);

    public static List<Field> Top(Superblock sb)
    {
        var l = new List<Field>();
        l.Add(new Field("csum_type", $"{sb.CsumTypeRaw} ({Checksum.Name(sb.CsumTypeRaw)})", sb.CsumTypeRaw));
        if (Checksum.IsKnown(sb.CsumTypeRaw))
        {
            l.Add(N("csum_size", (ulong)Checksum.Length(sb.CsumType)));
            l.Add(S("csum", Checksum.ToHex(sb.CsumType, sb.Csum) + (sb.ChecksumValid ? " [match]" : " [DON'T MATCH]")));
        }
        l.Add(N("bytenr", sb.Bytenr));
        l.Add(F("flags", sb.Flags, SuperFlagNames(sb.Flags)));
        l.Add(S("magic", sb.MagicMatches ? "_BHRfS_M [match]" : $"0x{sb.Magic:x16} [DON'T MATCH]"));
        l.Add(S("fsid", sb.Fsid.ToString()));
        // the field as stored, as btrfs-progs 6.19 prints it (zeros without METADATA_UUID); v6.2 printed the fsid then
        l.Add(S("metadata_uuid", Uuids.Read(sb.MetadataUuidBytes).ToString()));
        l.Add(S("label", sb.Label));
        l.Add(N("generation", sb.Generation));
        l.Add(N("root", sb.Root));
        l.Add(N("sys_array_size", sb.SysChunkArraySize));
        l.Add(N("chunk_root_generation", sb.ChunkRootGeneration));
        l.Add(N("root_level", sb.RootLevel));
        l.Add(N("chunk_root", sb.ChunkRoot));
        l.Add(N("chunk_root_level", sb.ChunkRootLevel));
        l.Add(N("log_root", sb.LogRoot));
        l.Add(N("log_root_transid", sb.LogRootTransid));
        l.Add(N("log_root_level", sb.LogRootLevel));
        l.Add(N("total_bytes", sb.TotalBytes));
        l.Add(N("bytes_used", sb.BytesUsed));
        l.Add(N("sectorsize", sb.SectorSize));
        l.Add(N("nodesize", sb.NodeSize));
        l.Add(N("leafsize", sb.LeafSize));
        l.Add(N("stripesize", sb.StripeSize));
        l.Add(N("root_dir", sb.RootDirObjectId));
        l.Add(N("num_devices", sb.NumDevices));
        l.Add(F("compat_flags", sb.CompatFlags, Features.CompatNames(sb.CompatFlags)));
        l.Add(F("compat_ro_flags", sb.CompatRoFlags, Features.CompatRoNames(sb.CompatRoFlags)));
        l.Add(F("incompat_flags", sb.IncompatFlags, Features.IncompatNames(sb.IncompatFlags)));
        l.Add(N("cache_generation", sb.CacheGeneration));
        l.Add(N("uuid_tree_generation", sb.UuidTreeGeneration));
        l.Add(N("nr_global_roots", sb.NrGlobalRoots));
        var d = sb.DevItem;
        l.Add(S("dev_item.uuid", d.Uuid.ToString()));
        l.Add(S("dev_item.fsid", d.Fsid.ToString() + (d.Fsid == sb.MetadataFsid || d.Fsid == sb.Fsid ? " [match]" : " [DON'T MATCH]")));
        l.Add(N("dev_item.type", d.Type));
        l.Add(N("dev_item.total_bytes", d.TotalBytes));
        l.Add(N("dev_item.bytes_used", d.BytesUsed));
        l.Add(N("dev_item.io_align", d.IoAlign));
        l.Add(N("dev_item.io_width", d.IoWidth));
        l.Add(N("dev_item.sector_size", d.SectorSize));
        l.Add(N("dev_item.devid", d.DevId));
        l.Add(N("dev_item.dev_group", d.DevGroup));
        l.Add(N("dev_item.seek_speed", d.SeekSpeed));
        l.Add(N("dev_item.bandwidth", d.Bandwidth));
        l.Add(N("dev_item.generation", d.Generation));
        l.Add(N("dev_item.start_offset", d.StartOffset));
        return l;
    }

    public static IReadOnlyList<string> SuperFlagNames(ulong flags)
    {
        var names = new List<string>();
        if ((flags & Header.FlagWritten) != 0) names.Add("WRITTEN");
        if ((flags & Header.FlagReloc) != 0) names.Add("RELOC");
        if ((flags & Superblock.FlagError) != 0) names.Add("ERROR");
        if ((flags & Superblock.FlagSeeding) != 0) names.Add("SEEDING");
        if ((flags & Superblock.FlagMetadump) != 0) names.Add("METADUMP");
        if ((flags & Superblock.FlagMetadumpV2) != 0) names.Add("METADUMP_V2");
        if ((flags & Superblock.FlagChangingFsid) != 0) names.Add("CHANGING_FSID");
        if ((flags & Superblock.FlagChangingFsidV2) != 0) names.Add("CHANGING_FSID_V2");
        return names;
    }

    public static IEnumerable<Field> Backup(Superblock sb, int i)
    {
        var b = sb.GetBackupRoot(i);
        return
        [
            N("backup_tree_root", b.TreeRoot), N("backup_tree_root_gen", b.TreeRootGen), N("backup_tree_root_level", b.TreeRootLevel),
            N("backup_chunk_root", b.ChunkRoot), N("backup_chunk_root_gen", b.ChunkRootGen), N("backup_chunk_root_level", b.ChunkRootLevel),
            N("backup_extent_root", b.ExtentRoot), N("backup_extent_root_gen", b.ExtentRootGen), N("backup_extent_root_level", b.ExtentRootLevel),
            N("backup_fs_root", b.FsRoot), N("backup_fs_root_gen", b.FsRootGen), N("backup_fs_root_level", b.FsRootLevel),
            N("backup_dev_root", b.DevRoot), N("backup_dev_root_gen", b.DevRootGen), N("backup_dev_root_level", b.DevRootLevel),
            N("backup_csum_root", b.CsumRoot), N("backup_csum_root_gen", b.CsumRootGen), N("backup_csum_root_level", b.CsumRootLevel),
            N("backup_total_bytes", b.TotalBytes), N("backup_bytes_used", b.BytesUsed), N("backup_num_devices", b.NumDevices),
        ];
    }

    /// <summary>Chunks of the sys_chunk_array, decoded as far as they go (a damaged array ends the list).</summary>
    public static List<List<Field>> SysChunks(Superblock sb)
    {
        var list = new List<List<Field>>();
        var arr = sb.SysChunkArray;
        int pos = 0;
        while (arr.Length - pos >= BtrfsKey.Size + ChunkItem.HeaderSize)
        {
            var key = BtrfsKey.Read(arr[pos..]);
            var ci = new ChunkItem(arr[(pos + BtrfsKey.Size)..]);
            if (key.ItemType != ItemType.ChunkItem || !ci.StripesFit) break;
            var fields = new List<Field>
            {
                S("key", key.ToDisplayString()), N("logical", key.Offset), N("length", ci.Length), N("owner", ci.Owner),
                N("stripe_len", ci.StripeLen), new("type", ci.Type.Describe(), (ulong)ci.Type), N("io_align", ci.IoAlign),
                N("io_width", ci.IoWidth), N("sector_size", ci.SectorSize), N("num_stripes", ci.NumStripes), N("sub_stripes", ci.SubStripes),
            };
            for (int s = 0; s < ci.NumStripes; s++)
            {
                var st = ci.Stripe(s);
                fields.Add(N($"stripe{s}.devid", st.DevId));
                fields.Add(N($"stripe{s}.offset", st.Offset));
                fields.Add(S($"stripe{s}.dev_uuid", st.DevUuid.ToString()));
            }
            list.Add(fields);
            pos += BtrfsKey.Size + (int)ci.ImpliedSize;
        }
        return list;
    }
}
