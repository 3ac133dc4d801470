using System.Globalization;
using System.Text.Json;
using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Trees;
using BtrfsRefcheck.Volume;
using CommandLine;

namespace BtrfsRefcheck.Cli.Verbs;

[Verb("map", HelpText = "Map one logical address: chunk, profile, every copy's device and physical offset (RAID5/6: data and parity stripes), and whether each copy's checksum holds. Usage: map DEVICE... LOGICAL")]
public sealed class MapOptions : CommonOptions;

/// <summary><c>map DEV... LOGICAL</c>: where one logical address lives and whether each copy of it holds: a tree block's
/// checksum, bytenr and fsid (with its header), or a data sector's checksum from the csum tree.</summary>
public static class MapVerb
{
    public static int Run(MapOptions o, TextWriter stdout, TextWriter stderr)
    {
        var (devices, logical) = SplitAddress(o, "LOGICAL");
        o.Devices = devices;
        var findings = new FindingBag();
        using var vol = VolumeFactory.Open(o, findings);
        var probe = LogicalMapping.Map(vol, logical, 0);
        if (probe == null)
        {
            if (o.Json) WriteUnmapped(stdout, logical);
            else stdout.WriteLine($"logical {logical} is in no chunk");
            return ExitCodes.Findings;
        }
        var chunk = probe.Chunk;
        bool meta = (chunk.Type & (BlockGroupFlags.Metadata | BlockGroupFlags.System)) != 0;
        bool data = (chunk.Type & BlockGroupFlags.Data) != 0;
        var block = meta ? LogicalMapping.Map(vol, logical, (int)vol.NodeSize)! : null;
        var headers = block?.Copies.Select(c => c.Bytes == null ? null : LogicalMapping.ReadHeader(vol, logical, c.Bytes)).ToList();
        bool isTreeBlock = headers != null && headers.Any(h => h is { BytenrOk: true });
        if (meta && data && !isTreeBlock) { block = null; headers = null; meta = false; } // mixed group: not a tree block here

        DataVerdict? dataVerdict = null;
        if (!meta)
        {
            ulong sectorStart = logical - logical % vol.SectorSize;
            var sector = LogicalMapping.Map(vol, sectorStart, (int)vol.SectorSize)!;
            var csumRoot = TreeRoots.Enumerate(vol, new FindingBag()).FirstOrDefault(r => r.Id == ObjectIds.CsumTree && r.Source == RootSource.RootItem);
            byte[]? stored = csumRoot == null ? null : DataChecksums.Find(vol, csumRoot, sectorStart);
            var perCopy = new List<(int Copy, string? Computed, bool? Ok)>();
            Span<byte> sum = stackalloc byte[Checksum.FieldSize];
            foreach (var c in sector.Copies)
            {
                if (c.Bytes == null) { perCopy.Add((c.Copy, null, null)); continue; }
                Checksum.Compute(vol.CsumType, c.Bytes, sum);
                int n = Checksum.Length(vol.CsumType);
                perCopy.Add((c.Copy, Checksum.ToHex(vol.CsumType, sum), stored == null ? null : sum[..n].SequenceEqual(stored)));
            }
            dataVerdict = new DataVerdict(sectorStart, stored == null ? null : Checksum.ToHex(vol.CsumType, stored.Concat(new byte[Checksum.FieldSize]).ToArray()), perCopy, sector);
        }

        var mapping = block ?? dataVerdict?.Sector ?? probe;
        bool bad = block != null
            ? block.Copies.Any(c => c.Bytes == null) || headers!.Any(h => h == null || !h.CsumOk || !h.BytenrOk || !h.FsidOk)
            : dataVerdict!.Copies.Any(c => c.Ok == false || c.Computed == null);
        if (o.Json) WriteJson(stdout, vol, o, logical, mapping, block != null, headers, dataVerdict, bad);
        else WriteText(stdout, vol, logical, mapping, block != null, headers, dataVerdict, bad);
        return bad ? ExitCodes.Findings : ExitCodes.Ok;
    }

    internal sealed record DataVerdict(ulong SectorStart, string? Stored, List<(int Copy, string? Computed, bool? Ok)> Copies, LogicalMapping Sector);

    /// <summary>The last positional argument is the address (decimal or 0x hex); the others are the devices.</summary>
    internal static (List<string> Devices, ulong Address) SplitAddress(CommonOptions o, string name)
    {
        var args = o.Devices.ToList();
        if (args.Count < 2) throw new UsageException($"expected DEVICE... {name}");
        string s = args[^1];
        bool ok = s.StartsWith("0x", StringComparison.OrdinalIgnoreCase)
            ? ulong.TryParse(s.AsSpan(2), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out ulong v)
            : ulong.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out v);
        if (!ok) throw new UsageException($"{name} '{s}': not a number (decimal or 0x hex)");
        args.RemoveAt(args.Count - 1);
        return (args, v);
    }

    private static string Where(PhysicalPlace p) => $"devid {p.DevId} physical {p.Physical}" + (p.DevicePath is { } path ? $" ({path})" : " (device missing)");

    private static void WriteText(TextWriter o, BtrfsVolume vol, ulong logical, LogicalMapping m, bool treeBlock, List<CopyHeader?>? headers, DataVerdict? dv, bool bad)
    {
        var c = m.Chunk;
        o.WriteLine($"logical {logical}: chunk [{c.Logical}, {c.End}) {c.Type.Describe()}, profile {c.Profile}, stripe_len {c.StripeLen}, {c.Stripes.Length} stripe(s)" +
                    (c.Profile == RaidProfile.Raid10 ? $", sub_stripes {c.SubStripes}" : ""));
        for (int i = 0; i < c.Stripes.Length; i++)
        {
            var s = c.Stripes[i];
            o.WriteLine($"  stripe {i}: devid {s.DevId} offset {s.Offset} dev uuid {s.DevUuid}" + (vol.DeviceById(s.DevId) is { } d ? $" ({d.Path})" : " (device missing)"));
        }
        if (c.Profile is RaidProfile.Raid0 or RaidProfile.Raid10 or RaidProfile.Raid5 or RaidProfile.Raid6)
            o.WriteLine($"  stripe number {m.StripeNr}, row {m.Row}, offset {m.OffsetInStripe} in the stripe unit");
        foreach (var p in m.Places)
            o.WriteLine(p.Role == "copy" ? $"copy {p.Copy}: stripe {p.StripeIndex}, {Where(p)}" : $"parity {p.Role}: stripe {p.StripeIndex}, {Where(p)}");
        if (c.Profile is RaidProfile.Raid5 or RaidProfile.Raid6)
            o.WriteLine("copy 1: rebuilt from P and the row's other data stripes");
        if (treeBlock)
        {
            o.WriteLine($"tree block at {logical} (nodesize {vol.NodeSize}, {Checksum.Name((ushort)vol.CsumType)}):");
            foreach (var cv in m.Copies)
            {
                var h = headers![cv.Copy];
                if (h == null) { o.WriteLine($"  copy {cv.Copy}: unreadable: {cv.ReadProblem}"); continue; }
                string csum = h.CsumOk ? $"checksum ok ({h.StoredCsum})" : $"checksum MISMATCH (stored {h.StoredCsum}, computed {h.ComputedCsum})";
                o.WriteLine($"  copy {cv.Copy}: {csum}; bytenr {h.Bytenr}{(h.BytenrOk ? "" : " (WRONG)")}, fsid {h.Fsid}{(h.FsidOk ? "" : " (WRONG)")}, " +
                            $"generation {h.Generation}, level {h.Level}, owner {ObjectIds.TreeName(h.Owner)}, items {h.NrItems}, flags 0x{h.Flags:x}, backref rev {h.BackrefRev}");
            }
        }
        else if (dv != null)
        {
            o.WriteLine($"data sector [{dv.SectorStart}, {dv.SectorStart + vol.SectorSize}): " +
                        (dv.Stored == null ? "no checksum in the csum tree (nodatasum, or no data written there)" : $"csum tree has {dv.Stored}"));
            foreach (var (copy, computed, ok) in dv.Copies)
                o.WriteLine($"  copy {copy}: " + (computed == null ? $"unreadable: {dv.Sector.Copies[copy].ReadProblem}"
                    : ok == null ? $"computed {computed}" : ok.Value ? $"checksum ok ({computed})" : $"checksum MISMATCH (computed {computed})"));
        }
        o.WriteLine(bad ? "verdict: a copy is bad or unreadable" : "verdict: every copy holds");
    }

    private static void WriteUnmapped(TextWriter o, ulong logical)
    {
        using var j = new JsonOut(o);
        var w = j.W;
        w.WriteStartObject();
        w.WriteString("format", "btrfs-refcheck.map");
        w.WriteNumber("version", 1);
        w.WriteNumber("logical", logical);
        w.WriteNull("chunk");
        w.WriteString("verdict", "unmapped");
        w.WriteEndObject();
    }

    private static void WriteJson(TextWriter o, BtrfsVolume vol, MapOptions opts, ulong logical, LogicalMapping m, bool treeBlock,
        List<CopyHeader?>? headers, DataVerdict? dv, bool bad)
    {
        using var j = new JsonOut(o);
        var w = j.W;
        var c = m.Chunk;
        w.WriteStartObject();
        w.WriteString("format", "btrfs-refcheck.map");
        w.WriteNumber("version", 1);
        w.WriteNumber("logical", logical);
        w.WriteStartObject("chunk");
        w.WriteNumber("logical", c.Logical);
        w.WriteNumber("length", c.Length);
        w.WriteString("type", c.Type.Describe());
        w.WriteString("profile", c.Profile.ToString());
        w.WriteNumber("stripe_len", c.StripeLen);
        w.WriteNumber("sub_stripes", c.SubStripes);
        w.WriteStartArray("stripes");
        for (int i = 0; i < c.Stripes.Length; i++)
        {
            var s = c.Stripes[i];
            w.WriteStartObject();
            w.WriteNumber("index", i);
            w.WriteNumber("devid", s.DevId);
            w.WriteNumber("offset", s.Offset);
            w.WriteString("dev_uuid", s.DevUuid.ToString());
            if (vol.DeviceById(s.DevId) is { } d) w.WriteString("device", d.Path); else w.WriteNull("device");
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();
        w.WriteNumber("stripe_nr", m.StripeNr);
        w.WriteNumber("row", m.Row);
        w.WriteNumber("offset_in_stripe", m.OffsetInStripe);
        w.WriteStartArray("places");
        foreach (var p in m.Places)
        {
            w.WriteStartObject();
            w.WriteString("role", p.Role);
            if (p.Role == "copy") w.WriteNumber("copy", p.Copy);
            w.WriteNumber("stripe", p.StripeIndex);
            w.WriteNumber("devid", p.DevId);
            w.WriteNumber("physical", p.Physical);
            w.WriteNumber("contiguous", p.Contiguous);
            if (p.DevicePath != null) w.WriteString("device", p.DevicePath); else w.WriteNull("device");
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteString("kind", treeBlock ? "tree_block" : "data");
        if (dv != null)
        {
            w.WriteNumber("sector", dv.SectorStart);
            if (dv.Stored != null) w.WriteString("stored_csum", dv.Stored); else w.WriteNull("stored_csum");
        }
        w.WriteStartArray("copies");
        foreach (var cv in m.Copies)
        {
            w.WriteStartObject();
            w.WriteNumber("copy", cv.Copy);
            w.WriteBoolean("rebuilt_from_parity", cv.Rebuilt);
            if (cv.ReadProblem != null) w.WriteString("read_error", cv.ReadProblem);
            if (treeBlock && headers![cv.Copy] is { } h)
            {
                w.WriteBoolean("csum_ok", h.CsumOk);
                w.WriteStartObject("header");
                w.WriteNumber("bytenr", h.Bytenr);
                w.WriteBoolean("bytenr_ok", h.BytenrOk);
                w.WriteString("fsid", h.Fsid);
                w.WriteBoolean("fsid_ok", h.FsidOk);
                w.WriteString("chunk_tree_uuid", h.ChunkTreeUuid);
                w.WriteNumber("generation", h.Generation);
                w.WriteNumber("level", h.Level);
                w.WriteNumber("owner", h.Owner);
                w.WriteNumber("nritems", h.NrItems);
                w.WriteNumber("flags", h.Flags);
                w.WriteNumber("backref_rev", h.BackrefRev);
                w.WriteString("stored_csum", h.StoredCsum);
                w.WriteString("computed_csum", h.ComputedCsum);
                w.WriteEndObject();
            }
            else if (dv != null)
            {
                var (_, computed, ok) = dv.Copies[cv.Copy];
                if (computed != null) w.WriteString("computed_csum", computed);
                if (ok is { } b) w.WriteBoolean("csum_ok", b); else w.WriteNull("csum_ok");
            }
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteString("verdict", bad ? "bad" : "good");
        w.WriteEndObject();
    }
}
