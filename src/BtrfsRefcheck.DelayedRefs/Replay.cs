namespace BtrfsRefcheck.DelayedRefs;

/// <summary>One trace event: a script operation or one step of a run (a ref run, a head finished). Notes are what
/// happened after it (selections, merges, parking, the heads and extent items it changed).</summary>
public sealed class TraceEvent(int n, int line, string op, string text)
{
    public int N { get; } = n;
    public int Line { get; } = line;
    public string Op { get; } = op;
    public string Text { get; } = text;
    public List<string> Notes { get; } = [];
    public BugPoint? Bug { get; set; }
    /// <summary>Every head after the event.</summary>
    public IReadOnlyList<HeadView> Heads { get => _heads ?? []; set => _heads = value; }
    private IReadOnlyList<HeadView>? _heads;
    internal bool HeadsSet => _heads != null;
}

public sealed record HeadView(string Block, int RefMod, int TotalRefMod, bool MustInsertReserved, IReadOnlyList<RefView> Refs, string? Shape);

public sealed record RefView(int Id, string Action, string Type, ulong Root, string? Parent, int Level, ulong Seq, int RefMod);

/// <summary>The delayed-ref model: feed it script operations with <see cref="Apply"/> (or use <see cref="Run"/>);
/// it keeps the trace, the extent items, the intended counts (the oracle) and every invariant violation seen.</summary>
public sealed class Replay
{
    private const ulong FirstBytenr = 30408704, NodeSize = 16384;

    public Mode Mode { get; }
    public OnBug OnBug { get; }
    public ulong TreeModSeq { get; private set; }
    public List<(string Name, ulong Seq)> Holders { get; } = [];
    public SortedDictionary<ulong, Head> Heads { get; } = [];
    public Dictionary<string, ExtentState> Extents { get; } = new(StringComparer.Ordinal);
    public Dictionary<string, SpaceState> Space { get; } = new(StringComparer.Ordinal);
    /// <summary>The intended back-refs per block (what every issued operation means), independent of the mode.</summary>
    public Dictionary<string, Dictionary<RefKey, int>> Oracle { get; } = new(StringComparer.Ordinal);
    public List<TraceEvent> Events { get; } = [];
    public BugPoint? FirstBug { get; private set; }
    public List<BugPoint> Bugs { get; } = [];
    public bool Halted { get; private set; }
    public List<string> InvariantViolations { get; } = [];
    /// <summary>Extent items right after the first failure point (with Count/Dup: after its continuation), every other
    /// pending ref applied (see <see cref="SnapshotAtBug"/>).</summary>
    public Dictionary<string, ExtentState>? BugExtents { get; private set; }
    public Dictionary<string, Dictionary<RefKey, int>>? BugOracle { get; private set; }

    private readonly Dictionary<string, ulong> _bytenrs = new(StringComparer.Ordinal);
    private readonly List<string> _names = [];
    private ulong _runStart;
    private int _nextRef = 1;
    private int _line;
    private TraceEvent? _cur;
    private bool _bugThisStep;

    public Replay(Mode mode, OnBug onBug = OnBug.Halt)
    {
        Mode = mode;
        OnBug = onBug;
    }

    public static Replay Run(IEnumerable<ScriptOp> ops, Mode mode, OnBug onBug = OnBug.Halt)
    {
        var r = new Replay(mode, onBug);
        foreach (var op in ops)
        {
            if (r.Halted) break;
            r.Apply(op);
        }
        return r;
    }

    /// <summary>The extent state to forge: right after the first failure point, or the final state if none.</summary>
    public Dictionary<string, ExtentState> EndExtents => BugExtents ?? Extents;
    public Dictionary<string, Dictionary<RefKey, int>> EndOracle => BugOracle ?? Oracle;

    public ulong BytenrOf(string name)
    {
        if (_bytenrs.TryGetValue(name, out ulong b)) return b;
        b = FirstBytenr + NodeSize * (ulong)_names.Count;
        _bytenrs[name] = b;
        _names.Add(name);
        return b;
    }

    public string NameOf(ulong bytenr) => _names.FirstOrDefault(n => _bytenrs[n] == bytenr) ?? bytenr.ToString();

    public string KeyName(RefKey k) => k.Type == RefType.TreeBlockRef ? $"TBR {k.Offset}" : $"SBR {NameOf(k.Offset)}";

    // ------------------------------------------------------------------ operations

    public void Apply(ScriptOp op)
    {
        if (Halted) throw new InvalidOperationException("the replay halted");
        _line = op.Line;
        switch (op.Kind)
        {
            case OpKind.Extent: DeclareExtent(op); break;
            case OpKind.Alloc:
                if (!op.Forced && SpaceOf(op.Block!) != SpaceState.Free)
                    throw new ScriptException(op.Line, $"alloc {op.Block}: the block is not free ({SpaceOf(op.Block!).ToString().ToLowerInvariant()}); alloc! forces it");
                Event("alloc", op.Text);
                AddRef(op, RefAction.Add, alloc: true);
                Space[op.Block!] = SpaceState.Reserved;
                break;
            case OpKind.Inc: Event("inc", op.Text); AddRef(op, RefAction.Add, alloc: false); break;
            case OpKind.Free:
                Event("free", op.Text);
                AddRef(op, RefAction.Drop, alloc: false);
                if (op.Last) CheckRefCleanup(op.Block!);
                break;
            case OpKind.Hold:
                if (Holders.Any(h => h.Name == op.Holder)) throw new ScriptException(op.Line, $"holder {op.Holder} is already held");
                TreeModSeq++;
                Holders.Add((op.Holder!, TreeModSeq));
                Event("hold", $"{op.Text} -> seq={TreeModSeq} holders=[{HolderText()}]");
                break;
            case OpKind.Release:
                int i = Holders.FindIndex(h => h.Name == op.Holder);
                if (i < 0) throw new ScriptException(op.Line, $"holder {op.Holder} is not held");
                Holders.RemoveAt(i);
                Event("release", $"{op.Text} -> holders=[{HolderText()}]");
                break;
            case OpKind.Bump:
                TreeModSeq++;
                Event("bump", $"bump -> tree_mod_seq={TreeModSeq}");
                break;
            case OpKind.Run:
                Event("run", op.Text);
                RunHeads(op.Count);
                break;
            case OpKind.Commit:
                Event("commit", "commit (run all, then unpin)");
                RunHeads(null);
                if (!Halted)
                {
                    foreach (var b in Space.Where(kv => kv.Value == SpaceState.Pinned).Select(kv => kv.Key).ToList()) Space[b] = SpaceState.Free;
                    if (Heads.Count > 0) Note($"{Heads.Count} head(s) still pending (held by a seq holder)");
                }
                break;
        }
        if (!_cur!.HeadsSet) _cur.Heads = HeadViews();
        CheckInvariants();
    }

    private string HolderText() => string.Join(", ", Holders.Select(h => $"{h.Name}:{h.Seq}"));

    private SpaceState SpaceOf(string block) => Space.TryGetValue(block, out var s) ? s : SpaceState.Free;

    private void DeclareExtent(ScriptOp op)
    {
        string b = op.Block!;
        BytenrOf(b);
        if (Extents.ContainsKey(b) || Heads.ContainsKey(BytenrOf(b)) || SpaceOf(b) != SpaceState.Free)
            throw new ScriptException(op.Line, $"extent {b}: the block is already in use");
        var e = new ExtentState { Level = op.Level, Refs = (ulong)op.Refs.Count };
        var oracle = OracleOf(b);
        foreach (var (root, parent) in op.Refs)
        {
            var k = parent == null ? new RefKey(RefType.TreeBlockRef, root) : new RefKey(RefType.SharedBlockRef, BytenrOf(parent));
            if (e.Inline.Contains(k)) throw new ScriptException(op.Line, $"extent {b}: {KeyName(k)} listed twice");
            e.InsertInline(k);
            oracle[k] = 1;
        }
        Extents[b] = e;
        Space[b] = SpaceState.Used;
        Event("extent", $"{op.Text} -> {b} {e.Describe(KeyName)}");
    }

    private Dictionary<RefKey, int> OracleOf(string b)
    {
        if (!Oracle.TryGetValue(b, out var d)) Oracle[b] = d = [];
        return d;
    }

    private static bool IsFsTree(ulong root) => root == 5 || (root >= 256 && (long)root > 0);

    private void AddRef(ScriptOp op, RefAction action, bool alloc)
    {
        string b = op.Block!;
        ulong bytenr = BytenrOf(b);
        var type = op.Parent == null ? RefType.TreeBlockRef : RefType.SharedBlockRef;
        var r = new DelayedRef
        {
            Id = _nextRef++, Block = b, Seq = IsFsTree(op.Root) ? TreeModSeq : 0, Action = action, Type = type,
            Root = op.Root, Parent = op.Parent == null ? 0 : BytenrOf(op.Parent), ParentName = op.Parent, Level = op.Level,
        };
        int countMod = action == RefAction.Add ? 1 : -1;
        var oracle = OracleOf(b);
        oracle[r.Key] = oracle.GetValueOrDefault(r.Key) + countMod;
        if (oracle[r.Key] == 0) oracle.Remove(r.Key);

        bool created = !Heads.TryGetValue(bytenr, out var head);
        if (head == null)
        {
            head = Mode.IsRbTree()
                ? new Head { Block = b, Bytenr = bytenr, Tree = new RbTree<DelayedRef>((x, y) => CompRefs(x, y, checkSeq: true, Mode == Mode.CmpBug610)) }
                : new Head { Block = b, Bytenr = bytenr, List = [] };
            Heads[bytenr] = head;
        }
        head.RefMod += countMod;
        head.TotalRefMod += countMod;
        head.IssuedForCheck += countMod;
        if (alloc) { head.MustInsertReserved = true; head.HasExtentOp = true; }
        string merged = Mode.IsRbTree() ? InsertRb(head, r) : TailMerge(head, r);
        Append($" -> {r.Short}{(created ? ", new head" : "")}{merged}");
        NoteHead(head);
    }

    /// <summary>4.2/4.3 <c>add_delayed_ref_tail_merge</c>: only the list's tail is compared.</summary>
    private string TailMerge(Head head, DelayedRef r)
    {
        var list = head.List!;
        if (list.Count == 0) { list.Add(r); return ""; }
        var tail = list[^1];
        string why = tail.Type != r.Type ? "type" : tail.Seq != r.Seq ? $"seq {tail.Seq} != {r.Seq}" : tail.Key != r.Key ? "key" : "";
        if (why != "") { list.Add(r); return $"; tail R{tail.Id} differs ({why}): no merge"; }
        string before = tail.Short;
        MergeInto(tail, r);
        if (tail.RefMod == 0) { list.Remove(tail); return $"; tail merge {before} + R{r.Id} -> both cancelled"; }
        return $"; tail merge into {tail.Short}";
    }

    /// <summary><c>insert_delayed_ref</c>: <c>tree_insert</c> by <c>comp_refs</c> (seq included); an equal node met on
    /// the way down absorbs the new ref.</summary>
    private string InsertRb(Head head, DelayedRef r)
    {
        var path = new List<DelayedRef>();
        var exist = head.Tree!.Insert(r, out var node, path);
        string walk = path.Count == 0 ? "" : $"; search {string.Join(" ", path.Select(p => $"R{p.Id}"))}";
        if (exist == null)
        {
            head.Nodes[r] = node;
            if (r.Action == RefAction.Add) head.AddList.Add(r);
            return $"{walk}, inserted; tree {head.Shape()}";
        }
        var e = exist.Value;
        string before = e.Short;
        var oldAction = e.Action;
        MergeInto(e, r);
        if (e.Action != oldAction)
        {
            if (e.Action == RefAction.Add) head.AddList.Add(e); else head.AddList.Remove(e);
        }
        if (e.RefMod == 0) { head.Remove(e); return $"{walk}, meets equal {before} -> both cancelled; tree {head.Shape()}"; }
        return $"{walk}, merged into {e.Short}";
    }

    /// <summary>The shared add-time merge arithmetic (same action adds; opposite: the larger survives).</summary>
    private static void MergeInto(DelayedRef exist, DelayedRef r)
    {
        int mod;
        if (exist.Action == r.Action) mod = r.RefMod;
        else if (exist.RefMod < r.RefMod)
        {
            exist.Action = r.Action;
            mod = -exist.RefMod;
            exist.RefMod = r.RefMod;
        }
        else mod = -r.RefMod;
        exist.RefMod += mod;
    }

    /// <summary><c>comp_refs</c>: type, then root (TREE_BLOCK_REF) or parent, then seq. <paramref name="buggy"/>: the 6.10
    /// version, whose root branch returns -1 both ways.</summary>
    public static int CompRefs(DelayedRef a, DelayedRef b, bool checkSeq, bool buggy)
    {
        if (a.Type != b.Type) return a.Type < b.Type ? -1 : 1;
        if (a.Type == RefType.TreeBlockRef)
        {
            if (a.Root < b.Root) return -1;
            if (a.Root > b.Root) return buggy ? -1 : 1;
        }
        else
        {
            if (a.Parent < b.Parent) return -1;
            if (a.Parent > b.Parent) return 1;
        }
        if (checkSeq)
        {
            if (a.Seq < b.Seq) return -1;
            if (a.Seq > b.Seq) return 1;
        }
        return 0;
    }

    /// <summary><c>check_ref_cleanup</c> after the caller's last DROP: an empty head without a pending extent op (or
    /// with must_insert_reserved) is removed, and a block never written goes back to the free-space cache.</summary>
    private void CheckRefCleanup(string b)
    {
        if (!Heads.TryGetValue(BytenrOf(b), out var head)) { Note("check_ref_cleanup: no head"); return; }
        if (head.PendingCount != 0) { Note($"check_ref_cleanup: {head.PendingCount} ref(s) pending: block not freed"); return; }
        if (head.HasExtentOp && !head.MustInsertReserved) { Note("check_ref_cleanup: extent op pending: block not freed"); return; }
        Heads.Remove(head.Bytenr);
        if (head.MustInsertReserved)
        {
            Space[b] = SpaceState.Free;
            Note($"check_ref_cleanup: head {b} removed, block back in the free-space cache");
        }
        else Note($"check_ref_cleanup: head {b} removed");
    }

    // ------------------------------------------------------------------ the run loop

    private ulong LowestHolder => Holders.Count == 0 ? 0 : Holders.Min(h => h.Seq);

    /// <summary><c>btrfs_check_delayed_seq</c>: held iff a holder exists and seq &gt;= the lowest holder's.</summary>
    private bool Held(ulong seq) => Holders.Count > 0 && seq >= LowestHolder;

    private void RunHeads(int? limit)
    {
        var parked = new HashSet<ulong>();
        int count = 0;
        Head? locked = null;
        while (!Halted)
        {
            if (locked == null)
            {
                if (limit != null && count >= limit) break;
                locked = SelectHead(parked);
                if (locked == null) break;
                locked.Processing = true;
                _runStart = locked.Bytenr + NodeSize;
                Note($"select head {locked.Block} (ref_mod={locked.RefMod} mir={(locked.MustInsertReserved ? 1 : 0)})");
                if (Mode.IsRbTree()) MergeRuntime(locked);
            }
            if (Mode == Mode.Fixed43) MergeRuntime(locked);
            var r = SelectRef(locked, out string how);
            if (r != null && r.Seq != 0 && Held(r.Seq))
            {
                Note($"select {r.Short} ({how}): seq {r.Seq} >= lowest holder seq {LowestHolder}: head {locked.Block} parked");
                locked.Processing = false;
                parked.Add(locked.Bytenr);
                locked = null;
                count++;
                continue;
            }
            bool mir = locked.MustInsertReserved;
            locked.MustInsertReserved = false;
            locked.HasExtentOp = false;
            if (r == null)
            {
                Heads.Remove(locked.Bytenr);
                Event("head", $"head {locked.Block} done{(mir ? ": must_insert_reserved with no ref left -> pin" : "")}");
                _cur!.Heads = HeadViews();
                if (mir && SpaceOf(locked.Block) == SpaceState.Reserved) Space[locked.Block] = SpaceState.Pinned;
                locked = null;
                continue;
            }
            Note($"select {r.Short} ({how})");
            if (Holders.Count > 0 && r.Seq != 0 && r.Seq >= LowestHolder) Violation(3, $"R{r.Id} seq {r.Seq} run while holder seq {LowestHolder} exists");
            locked.Remove(r);
            locked.RefMod -= r.Signed;
            RunOne(locked, r, mir);
            count++;
            if (Halted) break;
            if (Mode.IsRbTree() && Heads.ContainsKey(locked.Bytenr)) MergeRuntime(locked);
        }
        if (locked != null) locked.Processing = false;
        var waiting = Heads.Values.Where(h => h.PendingCount > 0).Select(h => h.Block).ToList();
        if (!Halted && limit == null && waiting.Count > 0) Note($"run ends with head(s) {string.Join(", ", waiting)} held back by seq");
    }

    /// <summary><c>btrfs_select_ref_head</c>: the first head not being processed at or after run_delayed_start,
    /// wrapping once.</summary>
    private Head? SelectHead(HashSet<ulong> parked)
    {
        bool Ok(Head h) => !h.Processing && !parked.Contains(h.Bytenr);
        return Heads.Values.FirstOrDefault(h => h.Bytenr >= _runStart && Ok(h)) ?? Heads.Values.FirstOrDefault(Ok);
    }

    /// <summary><c>select_delayed_ref</c>: 4.x the first ADD in the list, else the list's head; rbtree modes the first
    /// of ref_add_list, else rb_first.</summary>
    private static DelayedRef? SelectRef(Head head, out string how)
    {
        if (head.List != null)
        {
            how = "first ADD";
            var add = head.List.FirstOrDefault(x => x.Action == RefAction.Add);
            if (add != null) return add;
            how = "list head";
            return head.List.FirstOrDefault();
        }
        how = "ref_add_list";
        if (head.AddList.Count > 0) return head.AddList[0];
        how = "rb_first";
        return head.Tree!.First()?.Value;
    }

    /// <summary><c>btrfs_merge_delayed_refs</c>: cut-off = lowest holder seq; refs at or above it neither merge nor
    /// are merged. 4.3: <c>merge_ref</c> scans the whole list for the same key. Rbtree modes: it walks rb_next and
    /// stops at the first node <c>comp_refs</c> (seq ignored) calls different.</summary>
    private void MergeRuntime(Head head)
    {
        ulong seq = LowestHolder;
        bool again = true;
        while (again)
        {
            again = false;
            foreach (var r in head.Pending.ToList())
            {
                if (seq != 0 && r.Seq >= seq) continue;
                if (MergeRef(head, r, seq)) { again = true; break; }
            }
        }
    }

    private bool MergeRef(Head head, DelayedRef r, ulong seq)
    {
        bool done = false;
        var order = head.Pending.ToList();
        int at = order.IndexOf(r);
        var candidates = head.List != null ? order.Where(x => x != r) : order.Skip(at + 1);
        foreach (var n0 in candidates)
        {
            if (done) break;
            var next = n0;
            if (seq != 0 && next.Seq >= seq)
            {
                if (head.List != null) continue;
                break;
            }
            bool differs = head.List != null ? next.Type != r.Type || next.Key != r.Key : CompRefs(r, next, checkSeq: false, Mode == Mode.CmpBug610) != 0;
            if (differs)
            {
                if (head.List != null) continue;
                break;
            }
            if (next.Key != r.Key) Violation(4, $"merge of R{r.Id} and R{next.Id}: keys differ");
            if (seq != 0 && (r.Seq >= seq || next.Seq >= seq)) Violation(3, $"merge of R{r.Id}/R{next.Id} at or above holder seq {seq}");
            var keep = r;
            string text = $"merge {r.Short} + {next.Short}";
            int mod;
            if (keep.Action == next.Action) mod = next.RefMod;
            else
            {
                if (keep.RefMod < next.RefMod) { (keep, next) = (next, keep); done = true; }
                mod = -next.RefMod;
            }
            head.Remove(next);
            keep.RefMod += mod;
            if (keep.RefMod == 0)
            {
                head.Remove(keep);
                done = true;
                Note($"{text} -> both dropped (cut-off {seq})");
            }
            else Note($"{text} -> {keep.Short} (cut-off {seq}){(keep.RefMod > 1 ? " WARN: tree ref with ref_mod > 1" : "")}");
            r = keep;
        }
        return done;
    }

    private void RunOne(Head head, DelayedRef r, bool mir)
    {
        string b = r.Block;
        string prefix = $"run {r.Long} mir={(mir ? 1 : 0)} -> ";
        if (r.RefMod != 1)
        {
            Event("run", prefix + $"ref_mod {r.RefMod} != 1");
            Bug(Mode.IsOldEra() ? BugKind.Bug : BugKind.Eio, "run_delayed_tree_ref", $"tree block ref with ref_mod {r.RefMod}", b);
            if (Halted) return;
        }
        else Event("run", prefix.TrimEnd(' ', '-', '>'));
        for (int i = 0; i < r.RefMod && !Halted; i++)
        {
            Extents.TryGetValue(b, out var e);
            if (r.Action == RefAction.Add && mir && i == 0)
            {
                if (e != null)
                {
                    Append(" -> alloc_reserved_tree_block: item exists");
                    Bug(BugKind.Eexist, "alloc_reserved_tree_block", "extent item already exists", b);
                    if (!Halted) { e.Refs++; if (OnBug == OnBug.Dup) e.InsertInline(r.Key); }
                }
                else
                {
                    e = new ExtentState { Refs = 1, Level = r.Level };
                    e.InsertInline(r.Key);
                    Extents[b] = e;
                    Space[b] = SpaceState.Used;
                    Append(" -> alloc_reserved_tree_block");
                }
            }
            else if (r.Action == RefAction.Add)
            {
                if (e == null)
                {
                    Append(" -> lookup: no extent item");
                    Bug(BugKind.Enoent, "lookup_inline_extent_backref", "extent item not found", b);
                }
                else if (e.Inline.Contains(r.Key))
                {
                    string who = r.Type == RefType.TreeBlockRef ? $"root {r.Root}" : $"parent {r.ParentName}";
                    Append($" -> lookup hit {who}, owner {r.Level}");
                    if (Mode.IsOldEra()) Bug(BugKind.Bug, "insert_inline_extent_backref", $"BUG_ON(owner < BTRFS_FIRST_FREE_OBJECTID): {who} already has a back-ref", b);
                    else Bug(BugKind.Euclean, "insert_inline_extent_backref", $"adding refs to an existing tree ref, bytenr {BytenrOf(b)} root_objectid {r.Root}", b);
                    if (!Halted) { e.Refs++; if (OnBug == OnBug.Dup) e.InsertInline(r.Key); }
                }
                else
                {
                    e.InsertInline(r.Key);
                    e.Refs++;
                    Append(" -> lookup -ENOENT -> setup_inline_extent_backref");
                }
            }
            else
            {
                if (e == null)
                {
                    Append(" -> __btrfs_free_extent: no extent item");
                    Bug(BugKind.Enoent, "__btrfs_free_extent", "extent item not found", b);
                }
                else if (!e.Inline.Contains(r.Key))
                {
                    Append($" -> __btrfs_free_extent: no back-ref {KeyName(r.Key)}");
                    Bug(BugKind.Enoent, "__btrfs_free_extent", $"back-ref {KeyName(r.Key)} not found", b);
                }
                else
                {
                    e.Refs--;
                    e.Inline.Remove(r.Key);
                    if (e.Refs == 0)
                    {
                        Extents.Remove(b);
                        Space[b] = SpaceState.Pinned;
                        Append(" -> __btrfs_free_extent: last ref, item deleted, block pinned");
                    }
                    else Append(" -> __btrfs_free_extent: back-ref removed");
                }
            }
        }
        if (!Halted || _bugThisStep) Note(Extents.TryGetValue(b, out var after) ? $"extent {b} {after.Describe(KeyName)}" : $"extent {b}: no item");
        NoteHead(head);
        _cur!.Heads = HeadViews();
        if (_bugThisStep && BugExtents == null) SnapshotAtBug(r);
        _bugThisStep = false;
    }

    /// <summary>The end state to forge: the extent items right after the first failure point, with every other
    /// pending ref applied as a correct kernel would (an ADD adds its back-ref, a DROP removes it), except the failing
    /// ref's own key on its block: its pending partners are what a correct merge would have cancelled it with. So the
    /// state carries the failure's damage alone.</summary>
    private void SnapshotAtBug(DelayedRef failing)
    {
        var ex = Extents.ToDictionary(kv => kv.Key, kv => kv.Value.Clone(), StringComparer.Ordinal);
        foreach (var h in Heads.Values)
            foreach (var p in h.Pending)
            {
                if (p.Block == failing.Block && p.Key == failing.Key) continue;
                for (int i = 0; i < p.RefMod; i++)
                {
                    ex.TryGetValue(p.Block, out var e);
                    if (p.Action == RefAction.Add)
                    {
                        if (e == null) ex[p.Block] = e = new ExtentState { Level = p.Level };
                        if (!e.Inline.Contains(p.Key)) e.InsertInline(p.Key);
                        e.Refs++;
                    }
                    else if (e != null)
                    {
                        e.Inline.Remove(p.Key);
                        if (--e.Refs == 0) ex.Remove(p.Block);
                    }
                }
            }
        BugExtents = ex;
        BugOracle = Oracle.ToDictionary(kv => kv.Key, kv => new Dictionary<RefKey, int>(kv.Value), StringComparer.Ordinal);
    }

    private void Bug(BugKind kind, string where, string reason, string block)
    {
        var bp = new BugPoint(_cur!.N, _line, kind, where, reason, block);
        Bugs.Add(bp);
        FirstBug ??= bp;
        _cur.Bug ??= bp;
        _bugThisStep = true;
        if (OnBug == OnBug.Halt)
        {
            Append($" -> {kind.Name()} {where}");
            Note($"{kind.Name()} in {where}: {reason}; halted");
            Halted = true;
        }
        else Append($" -> {kind.Name()} {where} (on-bug {OnBug.Name()}: continue)");
    }

    // ------------------------------------------------------------------ trace

    private void Event(string op, string text)
    {
        if (_cur is { HeadsSet: false }) _cur.Heads = HeadViews(); // the state after the previous event
        _cur = new TraceEvent(Events.Count + 1, _line, op, text);
        Events.Add(_cur);
        if (op is "run" && !text.StartsWith("run R", StringComparison.Ordinal) || op is "commit") _cur.Heads = HeadViews();
    }

    private void Append(string s) => _cur!.Notes.Add("\u0001" + s); // joined onto the event line when rendered

    private void Note(string s) => _cur!.Notes.Add(s);

    private void NoteHead(Head head)
    {
        if (!Heads.ContainsKey(head.Bytenr)) { Note($"head {head.Block}: gone"); return; }
        string refs = string.Join(", ", head.Pending.Select(x => x.Short));
        string extra = head.Tree != null ? $" add_list=[{string.Join(",", head.AddList.Select(x => $"R{x.Id}"))}] tree={head.Shape()}" : "";
        Note($"head {head.Block} ref_mod={head.RefMod} total={head.TotalRefMod} mir={(head.MustInsertReserved ? 1 : 0)}: [{refs}]{extra}");
    }

    private List<HeadView> HeadViews() => Heads.Values.Select(h => new HeadView(h.Block, h.RefMod, h.TotalRefMod, h.MustInsertReserved,
        h.Pending.Select(r => new RefView(r.Id, r.Action == RefAction.Add ? "ADD" : "DROP", r.Type.Short(), r.Root, r.ParentName, r.Level, r.Seq, r.RefMod)).ToList(),
        h.Tree != null ? h.Shape() : null)).ToList();

    // ------------------------------------------------------------------ invariants (design notes 1-7)

    private void Violation(int n, string what) => InvariantViolations.Add($"event {Events.Count} (line {_line}): invariant {n}: {what}");

    private void CheckInvariants()
    {
        foreach (var h in Heads.Values)
        {
            int sum = h.Pending.Sum(r => r.Signed);
            if (h.RefMod != sum) Violation(1, $"head {h.Block} ref_mod {h.RefMod} != pending sum {sum}");
            if (h.TotalRefMod != h.IssuedForCheck) Violation(1, $"head {h.Block} total_ref_mod {h.TotalRefMod} != issued {h.IssuedForCheck}");
            if (h.Tree != null)
            {
                if (h.Tree.Validate() is { } p) Violation(5, $"head {h.Block} rbtree: {p}");
                if (Mode == Mode.Current)
                {
                    var order = h.Pending.ToList();
                    for (int i = 1; i < order.Count; i++)
                        if (CompRefs(order[i - 1], order[i], checkSeq: true, buggy: false) >= 0) Violation(5, $"head {h.Block}: R{order[i - 1].Id} not before R{order[i].Id}");
                }
            }
        }
        if (FirstBug != null) return; // invariants 2 and 6 describe a run that has not failed
        foreach (var b in _names)
        {
            long committed = Extents.TryGetValue(b, out var e) ? (long)e.Refs : 0;
            long pending = Heads.Values.Where(h => h.Block == b).Sum(h => (long)h.RefMod);
            long intended = Oracle.TryGetValue(b, out var o) ? o.Values.Sum() : 0;
            if (committed + pending != intended) Violation(2, $"{b}: committed {committed} + pending {pending} != intended {intended}");
            if (e != null)
            {
                if (e.Refs != (ulong)e.Inline.Count) Violation(6, $"{b}: refs {e.Refs} != {e.Inline.Count} inline refs");
                if (e.Inline.Distinct().Count() != e.Inline.Count) Violation(6, $"{b}: a back-ref listed twice");
            }
        }
    }

    /// <summary>Invariant 7: with no holder and no head left, every extent item equals the intended back-refs.</summary>
    public IReadOnlyList<string> CheckFinal()
    {
        var bad = new List<string>();
        if (Heads.Count > 0) bad.Add($"heads left: {string.Join(", ", Heads.Values.Select(h => h.Block))}");
        foreach (var b in _names)
        {
            var want = Oracle.TryGetValue(b, out var o) ? o.Where(kv => kv.Value != 0).OrderBy(kv => kv.Key).ToList() : [];
            if (want.Any(kv => kv.Value != 1)) bad.Add($"{b}: intended count not 0/1: {string.Join(",", want)}");
            var have = Extents.TryGetValue(b, out var e) ? e.Inline.OrderBy(k => k).ToList() : [];
            if (!have.SequenceEqual(want.Select(kv => kv.Key)) || (e?.Refs ?? 0) != (ulong)want.Count)
                bad.Add($"{b}: have {(e == null ? "no item" : e.Describe(KeyName))}, intended [{string.Join(", ", want.Select(kv => KeyName(kv.Key)))}]");
        }
        return bad;
    }

    public IReadOnlyList<string> BlockNames => _names;
}
