using BtrfsRefcheck.Checks;
using BtrfsRefcheck.Cli.Rendering;
using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Volume;

namespace BtrfsRefcheck.Cli.Verbs;

/// <summary><c>check</c> (the default verb): phases, findings grouped by code, summary, verdict.</summary>
public static class CheckVerb
{
    public static int Run(CheckOptions o, TextWriter stdout, TextWriter stderr)
    {
        var paths = VolumeFactory.Paths(o);
        if (o.Reverify is < 0 or > 100) throw new UsageException($"--reverify {o.Reverify}: between 0 and 100");
        using var html = HtmlReport.Open(o.Report);
        var progress = o.Json || o.Quiet ? null : ProgressLine.ForStderr(stderr);
        var mounts = MountDetector.Find(paths);
        if (mounts.Count > 0)
        {
            if (o.NoLive) throw new VolumeException($"{MountedLine(mounts)}; refusing to check a mounted filesystem (--no-live)");
            if (o.CheckDataCsum) throw new UsageException($"{MountedLine(mounts)}; --check-data-csum reads data that changes while mounted: unmount it first");
            return RunLive(o, paths, mounts, stdout, stderr, progress, html);
        }
        var findings = new FindingBag();
        using var vol = BtrfsVolume.Open(paths, VolumeFactory.Options(o), findings);
        bool text = !o.Json;
        if (text && !o.Quiet)
        {
            stdout.WriteLine($"Checking filesystem on {string.Join(' ', o.Devices)}");
            stdout.WriteLine($"UUID: {vol.Super.Fsid}");
            foreach (var n in vol.Notes) stdout.WriteLine($"note: {n}");
        }
        CheckReport report;
        try { report = Checker.Run(vol, findings, new CheckObserver(stdout, stderr, phaseLines: text && !o.Quiet, progress), verifyDataChecksums: o.CheckDataCsum); }
        finally { progress?.Clear(); }
        if (o.Json) CheckJson.Write(stdout, vol, report, o);
        else CheckText.Write(stdout, report, o.Quiet);
        html?.Write(vol, report, o);
        return report.Clean ? ExitCodes.Ok : ExitCodes.Findings;
    }

    /// <summary>"/dev/loop0 is mounted at /mnt/a" (or "img backs /dev/loop0, mounted at /mnt/a").</summary>
    internal static string MountedLine(IReadOnlyList<MountedPath> mounts) => string.Join("; ", mounts.Select(m =>
    {
        string at = m.MountPoints.Count == 0 ? "mounted" : $"mounted at {string.Join(", ", m.MountPoints)}";
        return m.ViaLoop ? $"{m.Path} backs {m.Device}, {at}" : $"{m.Path} is {at}";
    }));

    /// <summary>A mounted filesystem: O_DIRECT reads, the last committed state, re-verified when a commit lands meanwhile.</summary>
    private static int RunLive(CheckOptions o, List<string> paths, IReadOnlyList<MountedPath> mounts, TextWriter stdout, TextWriter stderr,
        ProgressLine? progress, HtmlReport? html)
    {
        bool verbose = !o.Json && !o.Quiet;
        using var result = LiveCheck.Run(paths, VolumeFactory.Options(o), mounts, new LiveOptions { MaxReverifications = o.Reverify },
            new CheckObserver(stdout, stderr, phaseLines: verbose, progress) { LiveDevices = string.Join(' ', o.Devices), LiveMounted = MountedLine(mounts) });
        progress?.Clear();
        if (o.Json) CheckJson.Write(stdout, result.Volume, result.Report, o, result.Live);
        else CheckText.Write(stdout, result.Report, o.Quiet, result.Live);
        html?.Write(result.Volume, result.Report, o, result.Live);
        return result.Report.Clean ? ExitCodes.Ok : ExitCodes.Findings;
    }
}

internal static class CheckText
{
    public static void Write(TextWriter o, CheckReport r, bool quiet, LiveReport? live = null)
    {
        var items = r.Findings.Items;
        var counts = r.Findings.Counts;
        foreach (var group in items.GroupBy(f => f.Code).OrderBy(g => (int)g.Key))
        {
            long total = counts[group.Key];
            o.WriteLine($"{group.First().Severity.ToString().ToUpperInvariant()} {(int)group.Key} {group.Key}: {total} finding{(total == 1 ? "" : "s")}");
            foreach (var f in group) o.WriteLine($"  {f}");
            if (total > group.Count()) o.WriteLine($"  ... and {total - group.Count()} more not stored");
        }
        LikelyCauseText.Write(o, r.LikelyCauses);
        if (!quiet)
        {
            var s = r.Stats;
            o.WriteLine("summary:");
            o.WriteLine($"  trees {s.Trees}, tree blocks {s.TreeBlocks} (nodes {s.Nodes}, leaves {s.Leaves}), items {s.Items}, unreadable blocks {s.UnreadableBlocks}");
            o.WriteLine($"  extent items {s.ExtentItems} (metadata {s.MetadataExtentItems}, data {s.DataExtentItems}), block groups {s.BlockGroups}");
            o.WriteLine($"  back-refs: inline {s.InlineRefs}, keyed {s.KeyedRefs}; TREE_BLOCK_REF {s.TreeBlockRefs}, SHARED_BLOCK_REF {s.SharedBlockRefs}, EXTENT_DATA_REF {s.ExtentDataRefs}, SHARED_DATA_REF {s.SharedDataRefs}, EXTENT_OWNER_REF {s.ExtentOwnerRefs}");
            o.WriteLine($"  file extents referencing data {s.FileExtents}");
            if (s.SubvolumeTreesFast + s.SubvolumeTreesJoined > 0)
                o.WriteLine($"  subvolume trees: names verified by fingerprint {s.SubvolumeTreesFast}, by the exact join {s.SubvolumeTreesJoined}");
            if (s.DataBytesVerified > 0 || s.DataSectorsBad > 0)
                o.WriteLine($"  data verified {s.DataBytesVerified} bytes (every copy), bad sectors {s.DataSectorsBad}");
            o.WriteLine($"  findings: {r.Errors} errors, {r.Warnings} warnings, {r.Notes} notes");
            foreach (var p in r.Phases) o.WriteLine($"  phase '{p.Name}': {p.Elapsed.TotalMilliseconds:F0} ms");
            if (live != null)
                o.WriteLine($"  mounted: generations seen {string.Join(", ", live.Generations)}; re-verifications {live.Reverifications} (at most {live.MaxReverifications}); " +
                            $"transient findings dropped {live.TransientDropped}; O_DIRECT {(live.DirectIo ? "yes" : "no")}");
        }
        o.WriteLine(Verdict(r, live));
    }

    /// <summary>The verdict line (also the HTML report's heading).</summary>
    public static string Verdict(CheckReport r, LiveReport? live = null) =>
        live is { Settled: false }
            ? (r.Clean ? "verdict: clean (no error was seen in every state)" : $"verdict: ERRORS FOUND ({r.Errors}, seen in every state)") +
              $"; the filesystem changed too fast to be certain: a commit landed during each of the {live.Runs} runs"
            : r.Clean ? "verdict: clean (no errors found)" : $"verdict: ERRORS FOUND ({r.Errors})";
}

internal static class CheckJson
{
    public static void Write(TextWriter o, Volume.BtrfsVolume vol, CheckReport r, CheckOptions opts, LiveReport? live = null)
    {
        using var j = new JsonOut(o);
        var w = j.W;
        w.WriteStartObject();
        w.WriteString("format", "btrfs-refcheck.check");
        w.WriteNumber("version", 1);
        w.WriteStringArray("devices", opts.Devices);
        w.WriteString("fsid", vol.Super.Fsid.ToString());
        w.WriteNumber("generation", vol.Super.Generation);
        w.WriteStartObject("superblock");
        w.WriteString("device", vol.ChosenCopy.Device.Path);
        w.WriteNumber("copy", vol.ChosenCopy.Mirror);
        w.WriteEndObject();
        if (live != null) WriteLive(w, live);
        if (vol.Metadump is { } dump) WriteMetadump(w, vol, dump);
        w.WriteString("verdict", r.Clean ? "clean" : "errors");
        w.WriteStartObject("summary");
        var s = r.Stats;
        w.WriteNumber("trees", s.Trees);
        w.WriteNumber("tree_blocks", s.TreeBlocks);
        w.WriteNumber("nodes", s.Nodes);
        w.WriteNumber("leaves", s.Leaves);
        w.WriteNumber("items", s.Items);
        w.WriteNumber("unreadable_blocks", s.UnreadableBlocks);
        w.WriteNumber("extent_items", s.ExtentItems);
        w.WriteNumber("metadata_extent_items", s.MetadataExtentItems);
        w.WriteNumber("data_extent_items", s.DataExtentItems);
        w.WriteNumber("block_groups", s.BlockGroups);
        w.WriteNumber("inline_refs", s.InlineRefs);
        w.WriteNumber("keyed_refs", s.KeyedRefs);
        w.WriteNumber("tree_block_refs", s.TreeBlockRefs);
        w.WriteNumber("shared_block_refs", s.SharedBlockRefs);
        w.WriteNumber("extent_data_refs", s.ExtentDataRefs);
        w.WriteNumber("shared_data_refs", s.SharedDataRefs);
        w.WriteNumber("extent_owner_refs", s.ExtentOwnerRefs);
        w.WriteNumber("file_extents", s.FileExtents);
        w.WriteNumber("subvolume_trees_fast", s.SubvolumeTreesFast);
        w.WriteNumber("subvolume_trees_joined", s.SubvolumeTreesJoined);
        if (s.DataBytesVerified > 0 || s.DataSectorsBad > 0)
        {
            w.WriteNumber("data_bytes_verified", s.DataBytesVerified);
            w.WriteNumber("data_sectors_bad", s.DataSectorsBad);
        }
        w.WriteNumber("errors", r.Errors);
        w.WriteNumber("warnings", r.Warnings);
        w.WriteEndObject();
        w.WriteStartArray("phases");
        foreach (var p in r.Phases)
        {
            w.WriteStartObject();
            w.WriteString("name", p.Name);
            w.WriteNumber("ms", Math.Round(p.Elapsed.TotalMilliseconds, 1));
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteStartObject("counts_by_code");
        foreach (var (code, n) in r.Findings.Counts.OrderBy(kv => (int)kv.Key)) w.WriteNumber(((int)code).ToString(), n);
        w.WriteEndObject();
        FindingJson.WriteArray(w, "findings", r.Findings.Items);
        LikelyCauseText.WriteJson(w, r.LikelyCauses);
        w.WriteEndObject();
    }

    /// <summary>The volume is a btrfs-image dump: what it is, and what it cannot show (not reported as findings).</summary>
    private static void WriteMetadump(System.Text.Json.Utf8JsonWriter w, Volume.BtrfsVolume vol, Volume.MetadumpImage dump)
    {
        w.WriteStartObject("metadump");
        w.WriteString("path", dump.Path);
        w.WriteNumber("format", dump.FormatVersion);
        w.WriteNumber("clusters", dump.Clusters);
        w.WriteNumber("items", dump.Items);
        w.WriteBoolean("names_sanitized", vol.NamesSanitized);
        w.WriteStringArray("not_checkable", vol.NotCheckable);
        w.WriteEndObject();
    }

    private static void WriteLive(System.Text.Json.Utf8JsonWriter w, LiveReport live)
    {
        w.WriteStartObject("live");
        w.WriteStringArray("mounted_at", live.Mounts.SelectMany(m => m.MountPoints).Distinct());
        w.WriteStartArray("devices");
        foreach (var m in live.Mounts)
        {
            w.WriteStartObject();
            w.WriteString("path", m.Path);
            w.WriteString("mounted_device", m.Device);
            w.WriteString("dev", m.Rdev);
            w.WriteBoolean("via_loop", m.ViaLoop);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteBoolean("direct_io", live.DirectIo);
        w.WriteStringArray("direct_io_refused", live.DirectIoRefused);
        w.WriteStartArray("generations");
        foreach (var g in live.Generations) w.WriteNumberValue(g);
        w.WriteEndArray();
        w.WriteNumber("runs", live.Runs);
        w.WriteNumber("reverifications", live.Reverifications);
        w.WriteNumber("max_reverifications", live.MaxReverifications);
        w.WriteNumber("transient_findings_dropped", live.TransientDropped);
        w.WriteBoolean("settled", live.Settled);
        w.WriteEndObject();
    }
}
