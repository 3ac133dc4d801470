using BtrfsRefcheck.Cli.Rendering;
using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Format.Items;
using BtrfsRefcheck.Trees;
using BtrfsRefcheck.Volume;

namespace BtrfsRefcheck.Cli.Verbs;

/// <summary><c>dump-tree</c>: every tree (or one tree, or one block) with every item decoded, like
/// <c>btrfs inspect-internal dump-tree</c>, plus the problems met on the way.</summary>
public static class DumpTreeVerb
{
    public static int Run(DumpTreeOptions o, TextWriter stdout, TextWriter stderr)
    {
        var findings = new FindingBag();
        using var vol = VolumeFactory.Open(o, findings);
        ulong? onlyTree = null;
        if (o.Tree != null)
        {
            if (!ObjectIds.TryParseTree(o.Tree, out ulong id)) throw new UsageException($"--tree '{o.Tree}': not a tree number or name");
            onlyTree = id;
        }
        if (o.Block != null && o.Tree != null) throw new UsageException("--block and --tree cannot be combined");

        // Resolve what to print before printing anything, so a usage error never leaves half a document behind.
        List<TreeRoot> roots = [];
        if (o.Block == null)
        {
            roots = TreeRoots.Enumerate(vol, findings);
            if (onlyTree is { } only)
            {
                roots = roots.Where(r => r.Id == only).ToList();
                if (roots.Count == 0) throw new UsageException($"--tree {o.Tree}: no such tree in this filesystem");
            }
        }
        var ctx = new ItemContext(vol.CsumType, vol.SectorSize, vol.NodeSize);
        var printer = o.Json ? (IBlockPrinter)new JsonBlockPrinter(stdout, ctx) : new TextBlockPrinter(stdout, ctx);
        using (printer)
        {
            if (o.Block is { } bytenr)
            {
                var read = vol.ReadTreeBlock(bytenr);
                if (read.Block == null)
                    findings.Add(new Finding(read.Failures.Count > 0 ? read.Failures[0].Code : FindingCode.TreeBlockUnreadable, Severity.Error,
                        $"block {bytenr} unreadable: {read.Describe()}", Bytenr: bytenr));
                else
                {
                    foreach (var f in read.Failures)
                        findings.Add(new Finding(FindingCode.TreeBlockBadCopy, Severity.Error,
                            $"copy {f.Copy} of block {bytenr} is bad ({f.Reason}); copy {read.Block.Copy} is good", Bytenr: bytenr, Mirror: f.Copy));
                    printer.BeginTree(null);
                    printer.Block(read.Block);
                    printer.EndTree();
                }
            }
            else
            {
                var walker = new TreeWalker(vol, findings);
                foreach (var root in roots)
                {
                    printer.BeginTree(root);
                    walker.Walk(root, new PrintVisitor(printer));
                    printer.EndTree();
                }
            }
            printer.Findings(findings.Items);
        }
        if (!o.Json)
            foreach (var f in findings.Items.Where(f => f.Severity >= Severity.Warning)) stderr.WriteLine(f);
        return findings.Count(Severity.Error) > 0 ? ExitCodes.Findings : ExitCodes.Ok;
    }

    private sealed class PrintVisitor(IBlockPrinter printer) : ITreeVisitor
    {
        public bool OnBlock(in BlockContext ctx, TreeBlock block, bool valid)
        {
            printer.Block(block);
            return true;
        }

        public void OnUnreadable(in BlockContext ctx, TreeBlockRead read) => printer.Unreadable(ctx.Bytenr, read.Describe());
    }
}

internal interface IBlockPrinter : IDisposable
{
    void BeginTree(TreeRoot? root);
    void Block(TreeBlock block);
    void Unreadable(ulong bytenr, string why);
    void EndTree();
    void Findings(IReadOnlyList<Finding> findings);
}

internal static class BlockFacts
{
    /// <summary>Free bytes as btrfs-progs reports them: leaf data area minus items and headers; node: free pointer slots.</summary>
    public static long FreeSpace(BlockView v)
    {
        if (!v.IsLeaf) return v.MaxNodePtrs - v.Count;
        long used = 0;
        for (int i = 0; i < v.Count; i++) used += v.ItemHeader(i).DataSize + ItemHeader.Size;
        return v.Length - Header.Size - used;
    }
}

internal sealed class TextBlockPrinter(TextWriter o, ItemContext ctx) : IBlockPrinter
{
    public void BeginTree(TreeRoot? root)
    {
        if (root == null) return;
        string what = root.Source == RootSource.Superblock ? $"{root.Name.ToLowerInvariant().Replace("_tree", "")} tree" : $"{root.Name} key ({ObjectIds.TreeName(root.Id)} ROOT_ITEM {root.KeyOffset})";
        o.WriteLine($"{what} bytenr {root.Bytenr} level {root.Level}");
    }

    public void Block(TreeBlock block)
    {
        var v = block.View;
        var h = v.Header;
        string owner = ObjectIds.TreeName(h.Owner);
        if (v.IsLeaf) o.WriteLine($"leaf {block.Logical} items {h.NrItems} free space {BlockFacts.FreeSpace(v)} generation {h.Generation} owner {owner}");
        else o.WriteLine($"node {block.Logical} level {h.Level} items {h.NrItems} free space {BlockFacts.FreeSpace(v)} generation {h.Generation} owner {owner}");
        o.WriteLine($"{(v.IsLeaf ? "leaf" : "node")} {block.Logical} flags 0x{h.Flags:x}({Header.FlagNames(h.Flags)}) backref revision {h.BackrefRev}");
        o.WriteLine($"checksum stored {Convert.ToHexStringLower(h.Csum[..Checksum.Length(ctx.CsumType)])} (copy {block.Copy})");
        o.WriteLine($"fs uuid {Uuids.Format(h.Fsid)}");
        o.WriteLine($"chunk uuid {Uuids.Format(h.ChunkTreeUuid)}");
        int n = v.Count;
        if (n < h.NrItems) o.WriteLine($"\t!! nritems {h.NrItems} exceeds what fits in the block; showing {n}");
        for (int i = 0; i < n; i++)
        {
            if (!v.IsLeaf)
            {
                var kp = v.KeyPtr(i);
                o.WriteLine($"\tkey {kp.Key.ToDisplayString()} block {kp.BlockPtr} gen {kp.Generation}");
                continue;
            }
            var ih = v.ItemHeader(i);
            var key = ih.Key;
            o.WriteLine($"\titem {i} key {key.ToDisplayString()} itemoff {ih.DataOffset} itemsize {ih.DataSize}");
            ReadOnlySpan<byte> data;
            try { data = v.ItemData(i); }
            catch (BtrfsFormatException e) { o.WriteLine($"\t\t!! {e.Message}"); continue; }
            var w = new TextItemWriter(o, "\t\t");
            ItemDecoder.Decode(ctx, key, data, w);
            w.Flush();
        }
    }

    public void Unreadable(ulong bytenr, string why) => o.WriteLine($"!! block {bytenr} unreadable: {why}");
    public void EndTree() { }

    public void Findings(IReadOnlyList<Finding> findings)
    {
        if (findings.Count == 0) return;
        o.WriteLine($"findings: {findings.Count}");
        foreach (var f in findings) o.WriteLine($"  {f}");
    }

    public void Dispose() => o.Flush();
}

internal sealed class JsonBlockPrinter : IBlockPrinter
{
    private readonly JsonOut _j;
    private readonly ItemContext _ctx;
    private bool _inTree;

    public JsonBlockPrinter(TextWriter o, ItemContext ctx)
    {
        _j = new JsonOut(o);
        _ctx = ctx;
        var w = _j.W;
        w.WriteStartObject();
        w.WriteString("format", "btrfs-refcheck.dump-tree");
        w.WriteNumber("version", 1);
        w.WriteStartArray("trees");
    }

    public void BeginTree(TreeRoot? root)
    {
        var w = _j.W;
        w.WriteStartObject();
        if (root != null)
        {
            w.WriteNumber("id", root.Id);
            w.WriteString("name", root.Name);
            w.WriteString("source", root.Source.ToString());
            w.WriteNumber("key_offset", root.KeyOffset);
            w.WriteNumber("bytenr", root.Bytenr);
            w.WriteNumber("level", root.Level);
            w.WriteNumber("generation", root.Generation);
        }
        w.WriteStartArray("blocks");
        _inTree = true;
    }

    public void Block(TreeBlock block)
    {
        var w = _j.W;
        var v = block.View;
        var h = v.Header;
        w.WriteStartObject();
        w.WriteNumber("bytenr", block.Logical);
        w.WriteNumber("level", h.Level);
        w.WriteNumber("nritems", h.NrItems);
        w.WriteNumber("free_space", BlockFacts.FreeSpace(v));
        w.WriteNumber("generation", h.Generation);
        w.WriteNumber("owner", h.Owner);
        w.WriteNumber("flags", h.Flags);
        w.WriteNumber("backref_rev", h.BackrefRev);
        w.WriteString("fsid", Uuids.Format(h.Fsid));
        w.WriteString("chunk_tree_uuid", Uuids.Format(h.ChunkTreeUuid));
        w.WriteNumber("copy", block.Copy);
        int n = v.Count;
        if (v.IsLeaf)
        {
            w.WriteStartArray("items");
            for (int i = 0; i < n; i++)
            {
                var ih = v.ItemHeader(i);
                w.WriteStartObject();
                w.WriteNumber("slot", i);
                WriteKey(w, ih.Key);
                w.WriteNumber("offset", ih.DataOffset);
                w.WriteNumber("size", ih.DataSize);
                try
                {
                    var data = v.ItemData(i);
                    w.WritePropertyName("body");
                    ItemDecoder.Decode(_ctx, ih.Key, data, new JsonItemWriter(w));
                }
                catch (BtrfsFormatException e) { w.WriteString("problem", e.Message); }
                w.WriteEndObject();
            }
            w.WriteEndArray();
        }
        else
        {
            w.WriteStartArray("ptrs");
            for (int i = 0; i < n; i++)
            {
                var kp = v.KeyPtr(i);
                w.WriteStartObject();
                w.WriteNumber("slot", i);
                WriteKey(w, kp.Key);
                w.WriteNumber("blockptr", kp.BlockPtr);
                w.WriteNumber("generation", kp.Generation);
                w.WriteEndObject();
            }
            w.WriteEndArray();
        }
        w.WriteEndObject();
        _j.Drain();
    }

    internal static void WriteKey(System.Text.Json.Utf8JsonWriter w, BtrfsKey k)
    {
        w.WriteStartObject("key");
        w.WriteNumber("objectid", k.ObjectId);
        w.WriteNumber("type", k.Type);
        w.WriteString("type_name", ItemTypes.Name(k.Type));
        w.WriteNumber("offset", k.Offset);
        w.WriteEndObject();
    }

    public void Unreadable(ulong bytenr, string why)
    {
        var w = _j.W;
        w.WriteStartObject();
        w.WriteNumber("bytenr", bytenr);
        w.WriteString("unreadable", why);
        w.WriteEndObject();
    }

    public void EndTree()
    {
        _j.W.WriteEndArray();
        _j.W.WriteEndObject();
        _inTree = false;
    }

    public void Findings(IReadOnlyList<Finding> findings)
    {
        if (_inTree) EndTree();
        _j.W.WriteEndArray();
        FindingJson.WriteArray(_j.W, "findings", findings);
        _j.W.WriteEndObject();
    }

    public void Dispose() => _j.Dispose();
}
