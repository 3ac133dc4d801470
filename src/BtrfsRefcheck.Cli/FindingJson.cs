using System.Text.Json;
using BtrfsRefcheck.Diagnostics;

namespace BtrfsRefcheck.Cli;

internal static class FindingJson
{
    /// <summary>One finding as a JSON object (shape documented in docs/json.md).</summary>
    public static void Write(Utf8JsonWriter w, Finding f)
    {
        w.WriteStartObject();
        w.WriteNumber("code", (int)f.Code);
        w.WriteString("name", f.Code.ToString());
        w.WriteString("severity", f.Severity.ToString().ToLowerInvariant());
        if (f.Bytenr is { } b) w.WriteNumber("bytenr", b);
        if (f.Tree is { } t) w.WriteNumber("tree", t);
        if (f.Slot is { } s) w.WriteNumber("slot", s);
        if (f.Key is { } k)
        {
            w.WriteStartObject("key");
            w.WriteNumber("objectid", k.ObjectId);
            w.WriteNumber("type", k.Type);
            w.WriteNumber("offset", k.Offset);
            w.WriteEndObject();
        }
        if (f.Device is { } d) w.WriteString("device", d);
        if (f.Mirror is { } m) w.WriteNumber("copy", m);
        if (f.Expected is { } e) w.WriteString("expected", e);
        if (f.Found is { } fo) w.WriteString("found", fo);
        w.WriteString("message", f.Message);
        w.WriteEndObject();
    }

    public static void WriteArray(Utf8JsonWriter w, string name, IEnumerable<Finding> findings)
    {
        w.WriteStartArray(name);
        foreach (var f in findings) Write(w, f);
        w.WriteEndArray();
    }
}
