using System.Text.Json;
using BtrfsRefcheck.Checks;

namespace BtrfsRefcheck.Cli.Verbs;

/// <summary>The "likely cause" section of <c>check</c>: known kernel bugs the findings match (text and JSON).</summary>
internal static class LikelyCauseText
{
    public static void Write(TextWriter o, LikelyCauseReport r)
    {
        if (r.Causes.Count == 0) return;
        o.WriteLine("likely cause (known kernel bugs with this on-disk signature; the superblock records no kernel version):");
        foreach (var c in r.Causes)
        {
            o.WriteLine($"  [{c.Verdict}] {string.Join("/", c.Codes)} x{c.Findings}{(c.ExampleBytenr is { } b ? $" (e.g. {b})" : "")}: {c.Title}");
            o.WriteLine($"    affected: {(c.IntroducedIn is { } i ? $"{i} to {c.LastAffected}" : $"up to {c.LastAffected}")}" +
                        (c.IntroducedBy is { } by ? $" (introduced by {by})" : "") + $"; fixed in {c.FixedIn}");
            o.WriteLine($"    fix: {c.FixCommit} \"{c.FixTitle}\"");
            o.WriteLine($"    why {c.Verdict}: {c.Why}");
            o.WriteLine($"    note: {c.Note}");
            o.WriteLine($"    source: {string.Join(" ; ", c.Sources)}");
        }
        o.WriteLine(r.Bounds.Count == 0
            ? "  features: none that needs a kernel newer than 4.4"
            : "  features: " + string.Join("; ", r.Bounds.Select(b => $"{b.Feature} (kernel >= {b.MinKernel}{(b.AddedLater == null ? ", mkfs only" : "")})")));
    }

    public static void WriteJson(Utf8JsonWriter w, LikelyCauseReport r)
    {
        w.WriteStartArray("likely_causes");
        foreach (var c in r.Causes)
        {
            w.WriteStartObject();
            w.WriteString("id", c.Id);
            w.WriteString("title", c.Title);
            w.WriteStartArray("codes");
            foreach (int code in c.Codes) w.WriteNumberValue(code);
            w.WriteEndArray();
            w.WriteNumber("findings", c.Findings);
            if (c.ExampleBytenr is { } b) w.WriteNumber("example_bytenr", b); else w.WriteNull("example_bytenr");
            w.WriteString("verdict", c.Verdict);
            w.WriteString("why", c.Why);
            if (c.IntroducedIn != null) w.WriteString("introduced_in", c.IntroducedIn); else w.WriteNull("introduced_in");
            if (c.IntroducedBy != null) w.WriteString("introduced_by", c.IntroducedBy); else w.WriteNull("introduced_by");
            w.WriteString("last_affected", c.LastAffected);
            w.WriteString("fixed_in", c.FixedIn);
            w.WriteString("fix_commit", c.FixCommit);
            w.WriteString("fix_title", c.FixTitle);
            w.WriteStringArray("sources", c.Sources);
            w.WriteString("note", c.Note);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteStartArray("kernel_bounds");
        foreach (var k in r.Bounds)
        {
            w.WriteStartObject();
            w.WriteString("feature", k.Feature);
            w.WriteString("min_kernel", k.MinKernel);
            if (k.AddedLater != null) w.WriteString("added_later", k.AddedLater); else w.WriteNull("added_later");
            w.WriteString("source", k.Source);
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }
}
