using System.Text.Json;
using BtrfsRefcheck.DelayedRefs;
using CommandLine;

namespace BtrfsRefcheck.Cli.Verbs;

[Verb("replay", HelpText = "Replay delayed-ref scenarios in a model of the kernel (seed-2015, seed-2015-holder, lyakas-2015, shared-2024, or a script file).")]
public sealed class ReplayOptions
{
    [Value(0, MetaName = "SCRIPT", Required = true, HelpText = "A bundled scenario name or a script file (docs/delayed-refs.md).")]
    public string Script { get; set; } = "";

    [Option("mode", Default = "regressed-4.2", HelpText = "regressed-4.2, fixed-4.3, cmp-bug-6.10 or current.")]
    public string Mode { get; set; } = "regressed-4.2";

    [Option("on-bug", Default = "halt", HelpText = "At a BUG/-EUCLEAN point: halt (the kernel), count (refs += 1 only) or dup (refs += 1 and a duplicate back-ref).")]
    public string OnBug { get; set; } = "halt";

    [Option("json", HelpText = "Write JSON to stdout (schema in docs/json.md).")]
    public bool Json { get; set; }

    [Option("forge", HelpText = "Write the end state into OUT, a copy of --base (never into --base).")]
    public string? Forge { get; set; }

    [Option("base", HelpText = "The image --forge copies.")]
    public string? Base { get; set; }

    [Option("debug", HelpText = "On an internal error, print the stack trace.")]
    public bool Debug { get; set; }
}

/// <summary><c>replay</c>: runs a scenario through the delayed-ref model and prints the trace; exit 0 without a
/// failure point, 1 with one, 2 for a bad script or option.</summary>
public static class ReplayVerb
{
    public static int Run(ReplayOptions o, TextWriter stdout, TextWriter stderr)
    {
        var mode = ModeNames.ParseMode(o.Mode) ?? throw new UsageException($"unknown mode '{o.Mode}' (regressed-4.2, fixed-4.3, cmp-bug-6.10, current)");
        var onBug = ModeNames.ParseOnBug(o.OnBug) ?? throw new UsageException($"unknown --on-bug '{o.OnBug}' (halt, count, dup)");
        if ((o.Forge == null) != (o.Base == null)) throw new UsageException("--forge OUT and --base IMG go together");
        string name, text;
        if (Scenarios.All.TryGetValue(o.Script, out var bundled)) (name, text) = (o.Script, bundled);
        else if (File.Exists(o.Script))
        {
            name = Path.GetFileName(o.Script);
            try { text = File.ReadAllText(o.Script); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new UsageException($"{o.Script}: {e.Message}"); }
        }
        else throw new UsageException($"'{o.Script}' is neither a bundled scenario ({string.Join(", ", Scenarios.All.Keys)}) nor a file");

        Replay replay;
        try { replay = Replay.Run(Script.Parse(text), mode, onBug); }
        catch (ScriptException e) { throw new UsageException($"{name}: {e.Message}"); }

        ForgeResult? forged = null;
        if (o.Forge != null)
        {
            try { forged = EndStateWriter.Forge(replay, o.Base!, o.Forge); }
            catch (ForgeStateException e) { throw new UsageException($"--forge: {e.Message}"); }
        }

        if (o.Json) WriteJson(replay, name, forged, stdout);
        else
        {
            stdout.Write(TraceText.Render(replay, name));
            if (forged != null) stdout.WriteLine($"forged {o.Forge}: {forged.Description}");
        }
        return replay.FirstBug == null ? ExitCodes.Ok : ExitCodes.Findings;
    }

    private static void WriteJson(Replay r, string name, ForgeResult? forged, TextWriter stdout)
    {
        using var j = new JsonOut(stdout);
        var w = j.W;
        w.WriteStartObject();
        w.WriteString("format", "btrfs-refcheck.replay");
        w.WriteNumber("version", 1);
        w.WriteString("scenario", name);
        w.WriteString("mode", r.Mode.Name());
        w.WriteString("on_bug", r.OnBug.Name());
        w.WriteStartArray("events");
        foreach (var e in r.Events)
        {
            w.WriteStartObject();
            w.WriteNumber("n", e.N);
            w.WriteNumber("line", e.Line);
            w.WriteString("op", e.Op);
            w.WriteString("text", e.Text + string.Concat(e.Notes.Where(n => n.StartsWith('\u0001')).Select(n => n[1..])));
            w.WriteStringArray("notes", e.Notes.Where(n => !n.StartsWith('\u0001')));
            if (e.Bug != null) { w.WritePropertyName("bug"); WriteBug(w, e.Bug); }
            w.WriteStartArray("heads");
            foreach (var h in e.Heads)
            {
                w.WriteStartObject();
                w.WriteString("block", h.Block);
                w.WriteNumber("ref_mod", h.RefMod);
                w.WriteNumber("total_ref_mod", h.TotalRefMod);
                w.WriteBoolean("must_insert_reserved", h.MustInsertReserved);
                if (h.Shape != null) w.WriteString("tree", h.Shape);
                w.WriteStartArray("refs");
                foreach (var x in h.Refs)
                {
                    w.WriteStartObject();
                    w.WriteNumber("id", x.Id);
                    w.WriteString("action", x.Action);
                    w.WriteString("type", x.Type);
                    if (x.Parent == null) w.WriteNumber("root", x.Root); else w.WriteString("parent", x.Parent);
                    w.WriteNumber("level", x.Level);
                    w.WriteNumber("seq", x.Seq);
                    w.WriteNumber("ref_mod", x.RefMod);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        w.WriteEndArray();
        if (r.FirstBug != null) { w.WritePropertyName("bug"); WriteBug(w, r.FirstBug); } else w.WriteNull("bug");
        w.WriteBoolean("halted", r.Halted);
        WriteExtents(w, "extents", r, r.Extents);
        if (r.BugExtents != null) WriteExtents(w, "extents_at_bug", r, r.BugExtents);
        w.WriteStartObject("intended");
        foreach (var b in r.BlockNames)
        {
            w.WriteStartArray(b);
            if (r.Oracle.TryGetValue(b, out var o))
                foreach (var kv in o.Where(kv => kv.Value != 0).OrderBy(kv => kv.Key)) w.WriteStringValue(r.KeyName(kv.Key));
            w.WriteEndArray();
        }
        w.WriteEndObject();
        w.WriteStringArray("invariant_violations", r.InvariantViolations);
        if (forged != null)
        {
            w.WriteStartObject("forge");
            w.WriteString("output", forged.Output);
            w.WriteString("block", forged.Block);
            w.WriteNumber("bytenr", forged.Bytenr);
            w.WriteString("description", forged.Description);
            w.WriteEndObject();
        }
        w.WriteEndObject();
    }

    private static void WriteBug(Utf8JsonWriter w, BugPoint b)
    {
        w.WriteStartObject();
        w.WriteNumber("event", b.Event);
        w.WriteNumber("line", b.Line);
        w.WriteString("kind", b.Kind.Name());
        w.WriteString("where", b.Where);
        w.WriteString("reason", b.Reason);
        w.WriteString("block", b.Block);
        w.WriteEndObject();
    }

    private static void WriteExtents(Utf8JsonWriter w, string prop, Replay r, Dictionary<string, ExtentState> ex)
    {
        w.WriteStartObject(prop);
        foreach (var b in r.BlockNames)
        {
            if (!ex.TryGetValue(b, out var e)) { w.WriteNull(b); continue; }
            w.WriteStartObject(b);
            w.WriteNumber("refs", e.Refs);
            w.WriteNumber("level", e.Level);
            w.WriteStartArray("inline");
            foreach (var k in e.Inline) w.WriteStringValue(r.KeyName(k));
            w.WriteEndArray();
            w.WriteEndObject();
        }
        w.WriteEndObject();
    }
}
