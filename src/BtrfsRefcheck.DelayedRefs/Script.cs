using System.Text.RegularExpressions;

namespace BtrfsRefcheck.DelayedRefs;

public enum OpKind { Extent, Alloc, Inc, Free, Hold, Release, Bump, Run, Commit }

/// <summary>One script line. <see cref="Text"/> is the line without its comment.</summary>
public sealed record ScriptOp(int Line, OpKind Kind, string Text)
{
    public string? Block { get; init; }
    /// <summary><c>alloc!</c>: skip the allocator's free-space check.</summary>
    public bool Forced { get; init; }
    public ulong Root { get; init; }
    public string? Parent { get; init; }
    public int Level { get; init; }
    /// <summary><c>extent</c>: the committed inline refs (root, or parent name).</summary>
    public IReadOnlyList<(ulong Root, string? Parent)> Refs { get; init; } = [];
    public string? Holder { get; init; }
    /// <summary><c>run N</c>: N; <c>run all</c>: null.</summary>
    public int? Count { get; init; }
    /// <summary><c>free ... last</c>: the caller's last reference, so <c>check_ref_cleanup</c> may hand the block back.</summary>
    public bool Last { get; init; }
}

/// <summary>A script error: one line, naming the script line.</summary>
public sealed class ScriptException(int line, string message) : Exception($"line {line}: {message}")
{
    public int Line { get; } = line;
}

/// <summary>The replay script language: one operation per line, <c>#</c> starts a comment.
/// <code>
/// extent A level=0 refs=root:256,root:257,parent:P   committed extent item
/// alloc[!] A root=5 [level=0]                        ADD_DELAYED_EXTENT (! skips the free-space check)
/// inc  A root=5|parent=P [level=0]                   ADD_DELAYED_REF
/// free A root=5|parent=P [level=0] [last]            DROP_DELAYED_REF (last: check_ref_cleanup)
/// hold H | release H | bump | run N | run all | commit
/// </code></summary>
public static partial class Script
{
    [GeneratedRegex("^[A-Za-z][A-Za-z0-9_]*$")]
    private static partial Regex NameRx();

    public static List<ScriptOp> Parse(string text)
    {
        var ops = new List<ScriptOp>();
        var lines = text.Replace("\r\n", "\n").Split('\n');
        for (int i = 0; i < lines.Length; i++)
        {
            int line = i + 1;
            string s = lines[i];
            int hash = s.IndexOf('#');
            if (hash >= 0) s = s[..hash];
            s = s.Trim();
            if (s.Length == 0) continue;
            ops.Add(ParseLine(line, s));
        }
        if (ops.Count == 0) throw new ScriptException(1, "empty script");
        return ops;
    }

    private static ScriptOp ParseLine(int line, string s)
    {
        var words = s.Split((char[])[' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
        string verb = words[0];
        var args = words.Skip(1).ToList();
        ScriptException Err(string m) => new(line, m);
        switch (verb)
        {
            case "bump" or "commit":
                if (args.Count != 0) throw Err($"'{verb}' takes no arguments");
                return new ScriptOp(line, verb == "bump" ? OpKind.Bump : OpKind.Commit, s);
            case "hold" or "release":
                if (args.Count != 1 || !NameRx().IsMatch(args[0])) throw Err($"'{verb}' needs one holder name");
                return new ScriptOp(line, verb == "hold" ? OpKind.Hold : OpKind.Release, s) { Holder = args[0] };
            case "run":
                if (args.Count != 1) throw Err("'run' needs a count or 'all'");
                if (args[0] == "all") return new ScriptOp(line, OpKind.Run, s);
                if (!int.TryParse(args[0], out int n) || n < 1) throw Err($"bad run count '{args[0]}'");
                return new ScriptOp(line, OpKind.Run, s) { Count = n };
            case "extent":
            {
                string block = Block(args, line, verb);
                var kv = Pairs(args.Skip(1), line, ["level", "lvl", "refs"]);
                if (!kv.TryGetValue("refs", out var refsText)) throw Err("'extent' needs refs=root:N,...");
                var refs = new List<(ulong, string?)>();
                foreach (var r in refsText.Split(','))
                {
                    var p = r.Split(':');
                    if (p.Length == 2 && p[0] == "root" && ulong.TryParse(p[1], out ulong root) && root != 0) refs.Add((root, null));
                    else if (p.Length == 2 && p[0] == "parent" && NameRx().IsMatch(p[1])) refs.Add((0, p[1]));
                    else throw Err($"bad ref '{r}' (root:N or parent:NAME)");
                }
                return new ScriptOp(line, OpKind.Extent, s) { Block = block, Level = Level(kv, line), Refs = refs };
            }
            case "alloc" or "alloc!" or "inc" or "free":
            {
                string block = Block(args, line, verb);
                bool last = args.Count > 1 && args[^1] == "last";
                if (last && verb != "free") throw Err("'last' is for free only");
                var kv = Pairs(args.Skip(1).Take(args.Count - 1 - (last ? 1 : 0)), line, ["root", "parent", "level", "lvl"]);
                ulong root = 0;
                if (kv.TryGetValue("root", out var rt) && (!ulong.TryParse(rt, out root) || root == 0)) throw Err($"bad root '{rt}'");
                kv.TryGetValue("parent", out var parent);
                if (parent != null && !NameRx().IsMatch(parent)) throw Err($"bad parent '{parent}'");
                if (parent != null && verb.StartsWith("alloc", StringComparison.Ordinal)) throw Err("alloc takes root=, not parent=");
                if (root == 0 && parent == null) throw Err($"'{verb}' needs root=N or parent=NAME");
                if (root == 0) root = 5; // the seq of a shared ref follows its ref_root; default the fs tree
                var kind = verb switch { "inc" => OpKind.Inc, "free" => OpKind.Free, _ => OpKind.Alloc };
                return new ScriptOp(line, kind, s) { Block = block, Forced = verb == "alloc!", Root = root, Parent = parent, Level = Level(kv, line), Last = last };
            }
            default:
                throw Err($"unknown operation '{verb}'");
        }
    }

    private static string Block(List<string> args, int line, string verb)
    {
        if (args.Count == 0 || !NameRx().IsMatch(args[0]) || args[0].Contains('=')) throw new ScriptException(line, $"'{verb}' needs a block name");
        return args[0];
    }

    private static Dictionary<string, string> Pairs(IEnumerable<string> words, int line, string[] allowed)
    {
        var d = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var w in words)
        {
            int eq = w.IndexOf('=');
            if (eq <= 0 || eq == w.Length - 1) throw new ScriptException(line, $"expected key=value, got '{w}'");
            string k = w[..eq];
            if (!allowed.Contains(k)) throw new ScriptException(line, $"unknown key '{k}'");
            if (k == "lvl") k = "level";
            if (!d.TryAdd(k, w[(eq + 1)..])) throw new ScriptException(line, $"'{k}' given twice");
        }
        return d;
    }

    private static int Level(Dictionary<string, string> kv, int line)
    {
        if (!kv.TryGetValue("level", out var l)) return 0;
        if (!int.TryParse(l, out int level) || level is < 0 or > 7) throw new ScriptException(line, $"bad level '{l}' (0-7)");
        return level;
    }
}
