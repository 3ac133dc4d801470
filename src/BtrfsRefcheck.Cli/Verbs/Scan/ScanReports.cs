using System.Globalization;
using System.Text;
using System.Xml;

namespace BtrfsRefcheck.Cli.Verbs.Scan;

/// <summary>The scan's machine-readable reports: one JSON array (docs/json.md) and JUnit XML.</summary>
internal static class ScanReports
{
    public static string VerdictName(ScanVerdict v) => v switch
    {
        ScanVerdict.Clean => "clean",
        ScanVerdict.Errors => "errors",
        ScanVerdict.NotChecked => "not_checked",
        _ => "internal_error",
    };

    /// <summary>One array: an object per filesystem (in the order of their first device), then one per skipped path.</summary>
    public static void WriteJson(TextWriter o, IReadOnlyList<FsResult> results, IReadOnlyList<SkippedPath> skipped)
    {
        using var j = new JsonOut(o);
        var w = j.W;
        w.WriteStartArray();
        foreach (var r in results)
        {
            w.WriteStartObject();
            w.WriteString("format", "btrfs-refcheck.scan");
            w.WriteNumber("version", 1);
            w.WriteString("type", "filesystem");
            if (r.Fsid is { } fsid) w.WriteString("fsid", fsid.ToString());
            else w.WriteNull("fsid");
            w.WriteStringArray("devices", r.Group.Devices);
            w.WriteStringArray("seed_devices", r.Group.SeedDevices);
            w.WriteBoolean("dump", r.Group.IsDump);
            w.WriteString("verdict", VerdictName(r.Verdict));
            if (r.Reason != null) w.WriteString("reason", r.Reason);
            w.WriteNumber("errors", r.Errors);
            w.WriteNumber("warnings", r.Warnings);
            w.WriteNumber("notes", r.Notes);
            w.WriteNumber("seconds", Math.Round(r.Elapsed.TotalSeconds, 3));
            w.WriteNumber("estimated_memory_mib", r.EstimatedMiB);
            w.WriteStringArray("mounted_at", r.MountedAt);
            w.WriteStringArray("volume_notes", r.VolumeNotes);
            w.WriteStartObject("counts_by_code");
            foreach (var (code, n) in r.CountsByCode.OrderBy(kv => (int)kv.Key)) w.WriteNumber(((int)code).ToString(CultureInfo.InvariantCulture), n);
            w.WriteEndObject();
            FindingJson.WriteArray(w, "findings", r.Findings);
            w.WriteEndObject();
            j.Drain();
        }
        foreach (var s in skipped)
        {
            w.WriteStartObject();
            w.WriteString("format", "btrfs-refcheck.scan");
            w.WriteNumber("version", 1);
            w.WriteString("type", "skipped");
            w.WriteString("path", s.Path);
            w.WriteString("reason", s.Reason);
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }

    /// <summary>JUnit XML as CI systems read it (the Ant/Surefire shape that GitLab, Jenkins, GitHub test reporters and
    /// Azure Pipelines accept): one <c>testsuite</c>; a <c>testcase</c> per filesystem, a <c>failure</c> holding its
    /// findings when it has errors, an <c>error</c> with the reason when it could not be checked, warnings and notes in
    /// <c>system-out</c>; a skipped <c>testcase</c> per skipped path, so that what was not checked shows.</summary>
    public static void WriteJUnit(string file, IReadOnlyList<FsResult> results, IReadOnlyList<SkippedPath> skipped, TimeSpan elapsed)
    {
        int failures = results.Count(r => r.Verdict == ScanVerdict.Errors);
        int errors = results.Count(r => r.Verdict is ScanVerdict.NotChecked or ScanVerdict.InternalError);
        string Secs(TimeSpan t) => t.TotalSeconds.ToString("F3", CultureInfo.InvariantCulture);
        var settings = new XmlWriterSettings { Indent = true, Encoding = new UTF8Encoding(false) };
        using var x = XmlWriter.Create(file, settings);
        x.WriteStartDocument();
        x.WriteStartElement("testsuites");
        x.WriteAttributeString("name", "btrfs-refcheck scan");
        x.WriteAttributeString("tests", (results.Count + skipped.Count).ToString(CultureInfo.InvariantCulture));
        x.WriteAttributeString("failures", failures.ToString(CultureInfo.InvariantCulture));
        x.WriteAttributeString("errors", errors.ToString(CultureInfo.InvariantCulture));
        x.WriteAttributeString("skipped", skipped.Count.ToString(CultureInfo.InvariantCulture));
        x.WriteAttributeString("time", Secs(elapsed));
        x.WriteStartElement("testsuite");
        x.WriteAttributeString("name", "btrfs-refcheck scan");
        x.WriteAttributeString("tests", (results.Count + skipped.Count).ToString(CultureInfo.InvariantCulture));
        x.WriteAttributeString("failures", failures.ToString(CultureInfo.InvariantCulture));
        x.WriteAttributeString("errors", errors.ToString(CultureInfo.InvariantCulture));
        x.WriteAttributeString("skipped", skipped.Count.ToString(CultureInfo.InvariantCulture));
        x.WriteAttributeString("time", Secs(elapsed));
        x.WriteAttributeString("timestamp", DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ss", CultureInfo.InvariantCulture));
        foreach (var r in results)
        {
            x.WriteStartElement("testcase");
            x.WriteAttributeString("classname", "btrfs-refcheck.scan");
            x.WriteAttributeString("name", CaseName(r));
            x.WriteAttributeString("time", Secs(r.Elapsed));
            switch (r.Verdict)
            {
                case ScanVerdict.Errors:
                    x.WriteStartElement("failure");
                    x.WriteAttributeString("message", $"{r.Errors} error{(r.Errors == 1 ? "" : "s")}, {r.Warnings} warning{(r.Warnings == 1 ? "" : "s")}");
                    x.WriteAttributeString("type", "errors");
                    x.WriteString(Xml(r.FindingsText));
                    x.WriteEndElement();
                    break;
                case ScanVerdict.NotChecked or ScanVerdict.InternalError:
                    x.WriteStartElement("error");
                    x.WriteAttributeString("message", Xml(r.Reason ?? ""));
                    x.WriteAttributeString("type", VerdictName(r.Verdict));
                    x.WriteEndElement();
                    break;
            }
            var output = new StringBuilder();
            foreach (var n in r.VolumeNotes) output.Append("note: ").AppendLine(n);
            if (r.Verdict == ScanVerdict.Clean && (r.Warnings > 0 || r.Notes > 0)) output.Append(r.FindingsText);
            if (output.Length > 0) x.WriteElementString("system-out", Xml(output.ToString()));
            x.WriteEndElement();
        }
        foreach (var s in skipped)
        {
            x.WriteStartElement("testcase");
            x.WriteAttributeString("classname", "btrfs-refcheck.scan.skipped");
            x.WriteAttributeString("name", Xml(s.Path));
            x.WriteAttributeString("time", "0");
            x.WriteStartElement("skipped");
            x.WriteAttributeString("message", Xml(s.Reason));
            x.WriteEndElement();
            x.WriteEndElement();
        }
        x.WriteEndElement();
        x.WriteEndElement();
        x.WriteEndDocument();
    }

    /// <summary>"FSID: dev1 dev2 + seed s": stable from run to run, so CI can follow one filesystem's history.</summary>
    private static string CaseName(FsResult r) =>
        Xml($"{r.Fsid?.ToString() ?? "unknown fsid"}: {string.Join(' ', r.Group.Devices)}" +
            (r.Group.SeedDevices.Count > 0 ? $" + seed {string.Join(' ', r.Group.SeedDevices)}" : ""));

    /// <summary>Characters XML 1.0 cannot hold (a path may contain control bytes) as U+FFFD.</summary>
    private static string Xml(string s)
    {
        if (s.All(XmlConvert.IsXmlChar)) return s;
        var b = new StringBuilder(s.Length);
        for (int i = 0; i < s.Length; i++)
        {
            if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && XmlConvert.IsXmlSurrogatePair(s[i + 1], s[i])) { b.Append(s, i, 2); i++; }
            else b.Append(XmlConvert.IsXmlChar(s[i]) ? s[i] : '\uFFFD');
        }
        return b.ToString();
    }
}
