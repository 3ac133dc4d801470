namespace BtrfsRefcheck.DelayedRefs;

/// <summary>Which kernel the model behaves as.</summary>
public enum Mode
{
    /// <summary>4.2: per-head list, add-time merge with the tail only, no run-time merge.</summary>
    Regressed42,
    /// <summary>4.3 (2c3cf7d5f610): the tail merge plus <c>btrfs_merge_delayed_refs</c> before every selection.</summary>
    Fixed43,
    /// <summary>6.10 (cf4f04325b2b): per-head red-black tree whose comparator returns -1 both ways on ref_root.</summary>
    CmpBug610,
    /// <summary>Current (7d493a5ecc26): the same tree with the comparator fixed.</summary>
    Current,
}

/// <summary>What the model does where the kernel BUGs or returns -EUCLEAN/-ENOENT/-EEXIST.</summary>
public enum OnBug
{
    /// <summary>Stop, as the kernel does (BUG, or abort the transaction).</summary>
    Halt,
    /// <summary>Continue with the count updated and the back-refs not (refs += 1, inline refs unchanged).</summary>
    Count,
    /// <summary>Continue with refs += 1 and an identical inline ref added next to the existing one.</summary>
    Dup,
}

public enum RefAction { Add = 1, Drop = 2 }

/// <summary>Tree-block back-ref types (key type numbers as on disk).</summary>
public enum RefType : byte { TreeBlockRef = 176, SharedBlockRef = 182 }

/// <summary>The kind of failure point reached.</summary>
public enum BugKind { Bug, Euclean, Enoent, Eexist, Eio }

public static class ModeNames
{
    public static readonly IReadOnlyList<(string Name, Mode Mode)> Modes =
        [("regressed-4.2", Mode.Regressed42), ("fixed-4.3", Mode.Fixed43), ("cmp-bug-6.10", Mode.CmpBug610), ("current", Mode.Current)];

    public static string Name(this Mode m) => Modes.First(x => x.Mode == m).Name;
    public static string Name(this OnBug b) => b.ToString().ToLowerInvariant();
    public static bool IsRbTree(this Mode m) => m is Mode.CmpBug610 or Mode.Current;
    /// <summary>4.x kernels BUG where later ones (since the 2019 change) return -EUCLEAN.</summary>
    public static bool IsOldEra(this Mode m) => m is Mode.Regressed42 or Mode.Fixed43;
    public static bool IsFixed(this Mode m) => m is Mode.Fixed43 or Mode.Current;

    public static Mode? ParseMode(string s) => Modes.FirstOrDefault(x => x.Name == s) is { Name: not null } x ? x.Mode : null;

    public static OnBug? ParseOnBug(string s) => s switch { "halt" => OnBug.Halt, "count" => OnBug.Count, "dup" => OnBug.Dup, _ => null };

    public static string Name(this BugKind k) => k switch
    {
        BugKind.Bug => "BUG", BugKind.Euclean => "-EUCLEAN", BugKind.Enoent => "-ENOENT", BugKind.Eexist => "-EEXIST", _ => "-EIO",
    };

    public static string Short(this RefType t) => t == RefType.TreeBlockRef ? "TBR" : "SBR";
}

/// <summary>A back-ref key: TREE_BLOCK_REF root or SHARED_BLOCK_REF parent (a bytenr).</summary>
public readonly record struct RefKey(RefType Type, ulong Offset) : IComparable<RefKey>
{
    /// <summary>The kernel's inline order: type ascending, then offset descending.</summary>
    public int CompareTo(RefKey o) => Type != o.Type ? Type.CompareTo(o.Type) : o.Offset.CompareTo(Offset);
}

/// <summary>One pending delayed ref (<c>btrfs_delayed_tree_ref</c>).</summary>
public sealed class DelayedRef
{
    public required int Id { get; init; }
    public required string Block { get; init; }
    public required ulong Seq { get; init; }
    public int RefMod { get; set; } = 1;
    public RefAction Action { get; set; }
    public required RefType Type { get; init; }
    public required ulong Root { get; init; }
    /// <summary>SHARED_BLOCK_REF parent bytenr (0 for TREE_BLOCK_REF).</summary>
    public ulong Parent { get; init; }
    public string? ParentName { get; init; }
    public int Level { get; init; }

    public RefKey Key => new(Type, Type == RefType.TreeBlockRef ? Root : Parent);

    public string KeyText => Type == RefType.TreeBlockRef ? $"TBR root={Root}" : $"SBR parent={ParentName}";

    public string Short => $"R{Id} {(Action == RefAction.Add ? "ADD" : "DROP")} {KeyText} seq={Seq}{(RefMod != 1 ? $" mod={RefMod}" : "")}";

    /// <summary>Run-line form: <c>R3 A TBR root=5 lvl=0 ADD seq=2</c>.</summary>
    public string Long => $"R{Id} {Block} {KeyText} lvl={Level} {(Action == RefAction.Add ? "ADD" : "DROP")} seq={Seq}{(RefMod != 1 ? $" mod={RefMod}" : "")}";

    public int Signed => Action == RefAction.Add ? RefMod : -RefMod;
}

/// <summary>An extent item as the run leaves it: refs and the inline back-refs (the model is inline-only).</summary>
public sealed class ExtentState
{
    public ulong Refs { get; set; }
    public int Level { get; set; }
    public List<RefKey> Inline { get; } = [];

    public ExtentState Clone()
    {
        var c = new ExtentState { Refs = Refs, Level = Level };
        c.Inline.AddRange(Inline);
        return c;
    }

    /// <summary>Inserts in the kernel's order, after any equal key.</summary>
    public void InsertInline(RefKey k)
    {
        int i = 0;
        while (i < Inline.Count && Inline[i].CompareTo(k) <= 0) i++;
        Inline.Insert(i, k);
    }

    public string Describe(Func<RefKey, string> name) => $"refs={Refs} [{string.Join(", ", Inline.Select(name))}]";
}

/// <summary>Where a BUG / error was reached.</summary>
public sealed record BugPoint(int Event, int Line, BugKind Kind, string Where, string Reason, string Block)
{
    public string Text => $"{Kind.Name()} {Where}";
}

public enum SpaceState { Free, Reserved, Used, Pinned }
