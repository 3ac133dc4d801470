using BtrfsRefcheck.Checks;
using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Trees;
using CommandLine;

namespace BtrfsRefcheck.Cli.Verbs;

[Verb("who-refs", HelpText = "Explain one address: its extent item and back-refs, every real reference and path from a root to it, which back-ref each justifies, and which no reference justifies. Usage: who-refs DEVICE... BYTENR")]
public sealed class WhoRefsOptions : CommonOptions;

/// <summary><c>who-refs DEV... BYTENR</c>: a tree block's or data extent's back-refs beside every real reference to it
/// (<see cref="BlockReferences"/>). Exit 0 when they agree, 1 when a back-ref is unjustified or a reference has none.</summary>
public static class WhoRefsVerb
{
    public static int Run(WhoRefsOptions o, TextWriter stdout, TextWriter stderr)
    {
        var (devices, bytenr) = MapVerb.SplitAddress(o, "BYTENR");
        o.Devices = devices;
        var findings = new FindingBag();
        using var vol = VolumeFactory.Open(o, findings);
        var r = BlockReferences.Explain(vol, bytenr);
        if (o.Json) WriteJson(stdout, r);
        else WriteText(stdout, r);
        return r.Kind == ExplainedKind.Nothing || !r.Consistent ? ExitCodes.Findings : ExitCodes.Ok;
    }

    private static string Tree(ulong id) => ObjectIds.TreeName(id);

    private static string Step(PointerEdge e) => $"node {e.Parent} (level {e.ParentLevel}, owner {Tree(e.ParentOwner)}) slot {e.Slot} key {e.Key}";

    internal static string Origin(RealReference rr) => rr switch
    {
        { RootTree: { } t } => t.Source == RootSource.Superblock ? $"the superblock's pointer to the {t.Name} root block" : $"root item of {t.Name} (root block)",
        { Edge: { } e } => $"{Step(e)} gen {e.Generation}" + (rr.ParentFullBackref ? " [parent is FULL_BACKREF]" : ""),
        _ => string.Join(", ", rr.Files.Select(f => $"leaf {f.Leaf} (owner {Tree(f.LeafOwner)}) slot {f.Slot} inode {f.Inode} offset {f.FileOffset}")),
    };

    private static void WriteText(TextWriter o, BlockReferences r)
    {
        string what = r.Kind switch { ExplainedKind.TreeBlock => "tree block", ExplainedKind.Data => "data extent", _ => "address" };
        o.WriteLine($"{what} {r.ExtentStart}" + (r.ExtentStart != r.Bytenr ? $" (holding {r.Bytenr})" : ""));
        foreach (var n in r.Notes) o.WriteLine($"note: {n}");
        if (r.ExtentItem != null)
            o.WriteLine($"extent item {r.ExtentItem} in extent tree leaf {r.ExtentItemAt!.Value.Leaf} slot {r.ExtentItemAt.Value.Slot}: refs {r.ExtentRefs}, generation {r.ExtentGeneration}, flags {FlagNames(r.ExtentFlags ?? 0)}" +
                        (r.ExtentLevel is { } l ? $", level {l}" : $", length {r.ExtentLength}"));
        else o.WriteLine("extent item: none");
        if (r.Header is { } h)
            o.WriteLine($"header (copy {h.Copy}): owner {Tree(h.Owner)}, generation {h.Generation}, level {h.Level}, first key {h.FirstKey?.ToString() ?? "none"}");
        else if (r.Unreadable != null) o.WriteLine($"block unreadable: {r.Unreadable}");

        o.WriteLine($"back-refs in the extent tree ({r.Found.Count}):");
        foreach (var f in r.Found)
            o.WriteLine($"  [b{f.Index}] {f.Describe()}" + (f.Kind is RefKind.ExtentData or RefKind.SharedData ? $" count={f.Count}" : "") +
                        (f.Inline ? $" (inline at offset {f.ItemOffset} of slot {f.Slot})" : $" (keyed item in leaf {f.Leaf} slot {f.Slot})"));
        o.WriteLine($"real references ({r.References.Count}; {r.BlocksScanned} tree blocks scanned):");
        foreach (var rr in r.References)
            o.WriteLine($"  [r{rr.Index}] {Origin(rr)} -> needs {rr.Describe()}");
        if (r.Kind == ExplainedKind.TreeBlock)
        {
            o.WriteLine($"paths from a root ({r.Paths.Count}{(r.PathsTruncated ? ", truncated" : "")}):");
            foreach (var p in r.Paths)
            {
                var parts = new List<string> { $"{p.Root.Name} ({(long)p.Root.Id})" };
                parts.AddRange(p.Steps.Select(s => $"node {s.Parent} L{s.ParentLevel} slot {s.Slot} key {s.Key}"));
                parts.Add($"block {r.ExtentStart}");
                o.WriteLine($"  {string.Join(" -> ", parts)}  [r{p.Reference}]");
            }
        }
        else if (r.References.Count > 0)
        {
            o.WriteLine("files:");
            foreach (var rr in r.References)
                foreach (var f in rr.Files)
                {
                    var trees = r.LeafTrees.GetValueOrDefault(f.Leaf) ?? [];
                    ulong tree = trees.Count > 0 ? trees[0] : f.LeafOwner;
                    string path = r.Names.GetValueOrDefault((tree, f.Inode))?.Path ?? "?";
                    o.WriteLine($"  [r{rr.Index}] inode {f.Inode} {path} offset {f.FileOffset} (extent offset {f.ExtentOffset}, {f.NumBytes} bytes) in trees {string.Join(", ", trees.Select(Tree))}");
                }
        }
        o.WriteLine("back-refs against references:");
        foreach (var m in r.Matches)
        {
            string f = m.Found.Count == 0 ? "no back-ref" : string.Join(", ", m.Found.Select(i => $"b{i}"));
            string e = m.References.Count == 0 ? "no reference" : string.Join(", ", m.References.Select(i => $"r{i}"));
            string status = m.Status switch
            {
                "ok" => "ok",
                "unjustified" => m.References.Count == 0 ? "UNJUSTIFIED: no reference justifies it" : $"UNJUSTIFIED: count {m.FoundCount}, only {m.ExpectedCount} justified (a duplicate)",
                _ => m.Found.Count == 0 ? "MISSING: a real reference with no back-ref" : $"MISSING: count {m.FoundCount}, {m.ExpectedCount} references",
            };
            o.WriteLine($"  {m.Describe}: {f} <- {e}: {status}");
        }
        o.WriteLine(r.Kind == ExplainedKind.Nothing ? "verdict: nothing is at this address"
            : r.Consistent ? "verdict: every back-ref is justified and every reference has its back-ref" : "verdict: back-refs and references DISAGREE");
    }

    private static string FlagNames(ulong f)
    {
        var names = new List<string>();
        if ((f & 1) != 0) names.Add("DATA");
        if ((f & 2) != 0) names.Add("TREE_BLOCK");
        if ((f & 256) != 0) names.Add("FULL_BACKREF");
        return names.Count == 0 ? $"0x{f:x}" : string.Join("|", names);
    }

    private static void WriteJson(TextWriter o, BlockReferences r)
    {
        using var j = new JsonOut(o);
        var w = j.W;
        w.WriteStartObject();
        w.WriteString("format", "btrfs-refcheck.who-refs");
        w.WriteNumber("version", 1);
        w.WriteNumber("bytenr", r.Bytenr);
        w.WriteNumber("extent_start", r.ExtentStart);
        w.WriteString("kind", r.Kind switch { ExplainedKind.TreeBlock => "tree_block", ExplainedKind.Data => "data", _ => "nothing" });
        if (r.ExtentItem != null)
        {
            w.WriteStartObject("extent_item");
            w.WriteString("key", r.ExtentItem);
            w.WriteNumber("leaf", r.ExtentItemAt!.Value.Leaf);
            w.WriteNumber("slot", r.ExtentItemAt.Value.Slot);
            w.WriteNumber("refs", r.ExtentRefs ?? 0);
            w.WriteNumber("generation", r.ExtentGeneration ?? 0);
            w.WriteNumber("flags", r.ExtentFlags ?? 0);
            w.WriteString("flag_names", FlagNames(r.ExtentFlags ?? 0));
            if (r.ExtentLevel is { } l) w.WriteNumber("level", l); else w.WriteNumber("length", r.ExtentLength);
            w.WriteEndObject();
        }
        else w.WriteNull("extent_item");
        if (r.Header is { } h)
        {
            w.WriteStartObject("header");
            w.WriteNumber("owner", h.Owner);
            w.WriteNumber("generation", h.Generation);
            w.WriteNumber("level", h.Level);
            if (h.FirstKey is { } fk) JsonBlockPrinter.WriteKey(w, fk);
            w.WriteNumber("copy", h.Copy);
            w.WriteEndObject();
        }
        if (r.Unreadable != null) w.WriteString("unreadable", r.Unreadable);
        w.WriteStartArray("back_refs");
        foreach (var f in r.Found)
        {
            w.WriteStartObject();
            w.WriteNumber("index", f.Index);
            WriteRefKey(w, f.Kind, f.RootOrParent, f.ObjectId, f.Offset);
            w.WriteNumber("count", f.Count);
            w.WriteBoolean("inline", f.Inline);
            w.WriteNumber("leaf", f.Leaf);
            w.WriteNumber("slot", f.Slot);
            if (f.Inline) w.WriteNumber("item_offset", f.ItemOffset);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteStartArray("references");
        foreach (var rr in r.References)
        {
            w.WriteStartObject();
            w.WriteNumber("index", rr.Index);
            if (rr.RootTree is { } t) { w.WriteString("from", "root_item"); w.WriteNumber("root", t.Id); w.WriteString("root_name", t.Name); }
            else if (rr.Edge is { } e)
            {
                w.WriteString("from", "pointer");
                w.WriteNumber("parent", e.Parent);
                w.WriteNumber("parent_level", e.ParentLevel);
                w.WriteNumber("parent_owner", e.ParentOwner);
                w.WriteNumber("slot", e.Slot);
                JsonBlockPrinter.WriteKey(w, e.Key);
                w.WriteNumber("generation", e.Generation);
                w.WriteBoolean("parent_full_backref", rr.ParentFullBackref);
            }
            else
            {
                w.WriteString("from", "file_extents");
                w.WriteBoolean("leaf_full_backref", rr.ParentFullBackref);
                w.WriteStartArray("file_extents");
                foreach (var f in rr.Files)
                {
                    w.WriteStartObject();
                    w.WriteNumber("leaf", f.Leaf);
                    w.WriteNumber("leaf_owner", f.LeafOwner);
                    w.WriteNumber("slot", f.Slot);
                    w.WriteNumber("inode", f.Inode);
                    w.WriteNumber("file_offset", f.FileOffset);
                    w.WriteNumber("extent_offset", f.ExtentOffset);
                    w.WriteNumber("num_bytes", f.NumBytes);
                    var trees = r.LeafTrees.GetValueOrDefault(f.Leaf) ?? [];
                    w.WriteStartArray("trees");
                    foreach (var id in trees) w.WriteNumberValue(id);
                    w.WriteEndArray();
                    ulong tree = trees.Count > 0 ? trees[0] : f.LeafOwner;
                    if (r.Names.GetValueOrDefault((tree, f.Inode))?.Path is { } p) w.WriteString("path", p); else w.WriteNull("path");
                    w.WriteEndObject();
                }
                w.WriteEndArray();
            }
            if (rr.NeedsNone) w.WriteNull("needs");
            else { w.WriteStartObject("needs"); WriteRefKey(w, rr.Kind, rr.RootOrParent, rr.ObjectId, rr.Offset); w.WriteNumber("count", rr.Count); w.WriteEndObject(); }
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteStartArray("paths");
        foreach (var p in r.Paths)
        {
            w.WriteStartObject();
            w.WriteNumber("root", p.Root.Id);
            w.WriteString("root_name", p.Root.Name);
            w.WriteNumber("root_bytenr", p.Root.Bytenr);
            w.WriteNumber("reference", p.Reference);
            w.WriteStartArray("steps");
            foreach (var s in p.Steps)
            {
                w.WriteStartObject();
                w.WriteNumber("node", s.Parent);
                w.WriteNumber("level", s.ParentLevel);
                w.WriteNumber("owner", s.ParentOwner);
                w.WriteNumber("slot", s.Slot);
                JsonBlockPrinter.WriteKey(w, s.Key);
                w.WriteNumber("child", s.Child);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteBoolean("paths_truncated", r.PathsTruncated);
        w.WriteStartArray("matches");
        foreach (var m in r.Matches)
        {
            w.WriteStartObject();
            WriteRefKey(w, m.Kind, m.RootOrParent, m.ObjectId, m.Offset);
            w.WriteNumber("found_count", m.FoundCount);
            w.WriteNumber("expected_count", m.ExpectedCount);
            w.WriteStartArray("back_refs");
            foreach (int i in m.Found) w.WriteNumberValue(i);
            w.WriteEndArray();
            w.WriteStartArray("references");
            foreach (int i in m.References) w.WriteNumberValue(i);
            w.WriteEndArray();
            w.WriteString("status", m.Status);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteStringArray("notes", r.Notes);
        w.WriteNumber("blocks_scanned", r.BlocksScanned);
        w.WriteNumber("unreadable_blocks", r.UnreadableBlocks);
        w.WriteString("verdict", r.Kind == ExplainedKind.Nothing ? "nothing" : r.Consistent ? "consistent" : "disagree");
        w.WriteEndObject();
    }

    private static void WriteRefKey(System.Text.Json.Utf8JsonWriter w, RefKind kind, ulong rootOrParent, ulong objectId, ulong offset)
    {
        w.WriteString("type", ItemTypes.Name((byte)kind));
        if (kind is RefKind.SharedBlock or RefKind.SharedData) w.WriteNumber("parent", rootOrParent);
        else w.WriteNumber("root", rootOrParent);
        if (kind == RefKind.ExtentData) { w.WriteNumber("objectid", objectId); w.WriteNumber("offset", offset); }
    }
}
