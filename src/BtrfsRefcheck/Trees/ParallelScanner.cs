using System.Diagnostics;
using BtrfsRefcheck.Diagnostics;
using BtrfsRefcheck.Format;
using BtrfsRefcheck.Volume;

namespace BtrfsRefcheck.Trees;

/// <summary>Receives the blocks of a parallel scan. Called concurrently from several workers, each with its own
/// <typeparamref name="TState"/>; a block passed in is only valid during the call.</summary>
public interface IScanSink<TState> where TState : class
{
    TState CreateState();
    void OnBlock(in BlockContext ctx, TreeBlock block, bool valid, TState state);
    void OnUnreadable(in BlockContext ctx, TreeBlockRead read, TState state) { }
}

/// <summary>Visits every block of many trees once, level by level: all trees advance together from the highest
/// level down, each level's blocks are de-duplicated (a block shared by snapshots is visited once), sorted by
/// address, read in coalesced runs into per-worker buffers, and verified, validated and handed to the sink on
/// every core. Memory holds one level's frontier of small contexts, never the blocks. Bounded by the format:
/// levels strictly decrease, so the scan ends after at most 8 rounds whatever the pointers say.</summary>
/// <param name="checkpoint">Called on the scanning thread at points where a level's work has been released (a memory
/// trace measures there); never from a worker.</param>
/// <param name="progress">(blocks done, blocks in total) every <see cref="ProgressEveryBatches"/> batches, from the
/// workers, and at each level's end from the scanning thread. The total is the larger of <see cref="EstimatedBlocks"/>
/// and the blocks known so far (those done and the current level's), exact once the leaves' level starts.</param>
/// <param name="lowestLevel">Blocks below this level are not read (a search for pointers to a node needs no leaves).</param>
/// <param name="validateItems">False: blocks are validated (what decides the descent) but their items are not.</param>
public sealed class ParallelScanner(BtrfsVolume volume, FindingBag findings, int? degreeOfParallelism = null, Action<string, long>? checkpoint = null,
    Action<long, long>? progress = null, int lowestLevel = 0, bool validateItems = true)
{
    /// <summary>Progress is raised once per this many batches (128 blocks): a counter, not a call per block.</summary>
    public const int ProgressEveryBatches = 8;

    /// <summary>How many blocks the scan is expected to visit (e.g. the metadata block groups' used bytes over the
    /// node size); 0 when unknown. Only shapes the progress total.</summary>
    public long EstimatedBlocks { get; init; }

    private long _done;   // blocks handed to the sink or found unreadable, all levels
    private long _known;  // blocks of the levels done plus the current level's
    private bool _exact;  // the leaves' level has started: _known is the total

    private long ProgressTotal(long done) => Math.Max(done, _exact ? _known : Math.Max(EstimatedBlocks, _known));

    /// <summary>Blocks per batch handed to a worker; runs of adjacent blocks inside a batch are read with one request.
    /// 16 (256 KiB per worker at 16 KiB nodes) costs no more time than 64 and keeps 1.5 MiB less resident.</summary>
    public const int BatchBlocks = 16;

    /// <summary>How far ahead of the batches in flight the kernel is asked to read (16 batches: 4 MiB at 16 KiB nodes).
    /// Cold on the 1/2 benchmark image this machine's disk is the limit either way (1.8-1.9 s with one batch ahead,
    /// 1.6-1.9 s with sixteen; a plain sequential read of the metadata chunks takes 1.5-2.6 s cold); the deeper window
    /// is for devices with more latency per request.</summary>
    private const int ReadAheadBatches = 16;

    public WalkStats Stats { get; } = new();

    // Other pointers to a shared block that claim another generation or first key than the pointer it is validated
    // through (none on a healthy filesystem: every parent of a shared block carries its key and generation), by block.
    // Filled while a level is de-duplicated, only read by the workers that process it.
    private List<BlockContext>? _otherParents;
    private ILookup<ulong, BlockContext>? _otherParentsByBlock;

    /// <summary>Scans <paramref name="roots"/> and returns the workers' states (in worker order).</summary>
    public List<TState> Scan<TState>(IReadOnlyList<TreeRoot> roots, IScanSink<TState> sink) where TState : class
    {
        int degree = Math.Max(1, degreeOfParallelism ?? Environment.ProcessorCount);
        var workers = Enumerable.Range(0, degree).Select(_ => new Worker<TState>(sink.CreateState(), (int)volume.NodeSize)).ToArray();
        // One level's pointers at a time, in exact-size arrays (a list that doubles would hold up to twice as much).
        var frontier = new List<BlockContext>[Header.MaxLevel];
        for (int l = 0; l < frontier.Length; l++) frontier[l] = [];
        foreach (var root in roots)
        {
            if (!TreeBlockValidator.RootLevelValid(root, findings)) continue;
            frontier[root.Level].Add(new BlockContext(root, root.Bytenr, root.Level, null, -1, null, null, root.Generation));
        }

        var visitedLevel = new Dictionary<ulong, int>();
        for (int level = Header.MaxLevel - 1; level >= 0; level--)
        {
            _otherParents = null;
            var todo = Deduplicate(frontier[level], level, visitedLevel);
            _otherParentsByBlock = _otherParents?.ToLookup(c => c.Bytenr);
            frontier[level] = [];
            if (todo.Count == 0) continue;
            // The pointer lists just dropped are garbage: the caller may measure or collect before this level's records are allocated.
            checkpoint?.Invoke($"level {level} start ({todo.Count} blocks)", todo.Count);
            _known = _done + todo.Count;
            _exact = level == 0;
            InPhysicalOrder(todo);
            int batches = (todo.Count + BatchBlocks - 1) / BatchBlocks;
            var children = new List<BlockContext>[batches];
            int next = -1;
            for (int b = 0; b < Math.Min(ReadAheadBatches, batches); b++) ReadAhead(todo, b);
            void Work(Worker<TState> w)
            {
                int b;
                while ((b = Interlocked.Increment(ref next)) < batches)
                {
                    // read-ahead: while this batch is read and decoded, the kernel fetches the one ReadAheadBatches on
                    ReadAhead(todo, b + ReadAheadBatches);
                    int start = b * BatchBlocks;
                    int count = Math.Min(BatchBlocks, todo.Count - start);
                    children[b] = ProcessBatch(todo, start, count, w, sink);
                    long done = Interlocked.Add(ref _done, count);
                    if (progress != null && b % ProgressEveryBatches == ProgressEveryBatches - 1) progress(done, ProgressTotal(done));
                }
            }
            if (degree == 1 || batches == 1) Work(workers[0]);
            else Parallel.For(0, degree, new ParallelOptions { MaxDegreeOfParallelism = degree }, i => Work(workers[i]));
            if (level > 0)
            {
                var nextLevel = frontier[level - 1];
                nextLevel.Capacity = nextLevel.Count + children.Sum(c => c.Count);
                for (int b = 0; b < children.Length; b++) { nextLevel.AddRange(children[b]); children[b] = null!; }
            }
            progress?.Invoke(_done, ProgressTotal(_done));
            checkpoint?.Invoke($"level {level} done ({todo.Count} blocks)", 0);
        }
        foreach (var w in workers)
        {
            Stats.Nodes += w.Stats.Nodes;
            Stats.Leaves += w.Stats.Leaves;
            Stats.Items += w.Stats.Items;
            Stats.Unreadable += w.Stats.Unreadable;
        }
        return workers.Select(w => w.State).ToList();
    }

    /// <summary>Keeps the first pointer to each block (in a deterministic order: address, then arrival), reports a
    /// second pointer from the same tree, and a pointer to a block already visited at another level.</summary>
    private List<BlockContext> Deduplicate(List<BlockContext> list, int level, Dictionary<ulong, int> visitedLevel)
    {
        visitedLevel.EnsureCapacity(visitedLevel.Count + list.Count); // one resize per level, not a doubling series
        var order = new (ulong Bytenr, int Index)[list.Count];
        for (int i = 0; i < order.Length; i++) order[i] = (list[i].Bytenr, i);
        Array.Sort(order);
        var todo = new List<BlockContext>(list.Count);
        // (the caller drops `list` right after this returns)
        for (int i = 0; i < order.Length;)
        {
            int j = i + 1;
            while (j < order.Length && order[j].Bytenr == order[i].Bytenr) j++;
            var first = list[order[i].Index];
            // A block a dropping tree shares with a live one is walked for the live one: the cleaner has not touched it.
            if (first.Tree.IsDropping)
                for (int k = i + 1; k < j; k++)
                    if (!list[order[k].Index].Tree.IsDropping) { (order[i], order[k]) = (order[k], order[i]); first = list[order[i].Index]; break; }
            if (visitedLevel.TryGetValue(first.Bytenr, out int seenAt))
            {
                for (int k = i; k < j; k++) TreeBlockValidator.ReachedAtTwoLevels(list[order[k].Index], level, seenAt, findings);
                i = j;
                continue;
            }
            visitedLevel[first.Bytenr] = level;
            todo.Add(first);
            for (int k = i + 1; k < j; k++)
            {
                var c = list[order[k].Index];
                if (c.ExpectedGeneration != first.ExpectedGeneration || c.ExpectedFirstKey != first.ExpectedFirstKey)
                    (_otherParents ??= []).Add(c); // validated against the block with the first pointer's
                if (c.Tree.Equals(first.Tree))
                    findings.Add(new Finding(FindingCode.TreeBlockReferencedTwice, Severity.Error,
                        $"{c.Tree.Name}: block {c.Bytenr} is reached a second time, from block {c.ParentBytenr} slot {c.ParentSlot}; not descended again",
                        Bytenr: c.Bytenr, Tree: c.Tree.Id, Slot: c.ParentSlot));
                else TreeBlockValidator.CheckShared(c, first.Tree, findings);
            }
            i = j;
        }
        return todo;
    }

    /// <summary>Orders a level's blocks as they lie on disk (copy 0's physical offset), so reads go forward across
    /// each device. The list comes sorted by logical address, which is usually already that order
    /// (chunks are allocated upwards on both sides); it is only re-sorted when it is not.</summary>
    private void InPhysicalOrder(List<BlockContext> todo)
    {
        var keys = new ulong[todo.Count];
        bool sorted = true;
        for (int i = 0; i < keys.Length; i++)
        {
            keys[i] = volume.PhysicalOrder(todo[i].Bytenr);
            if (i > 0 && keys[i] < keys[i - 1]) sorted = false;
        }
        if (!sorted) keys.AsSpan().Sort(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(todo));
    }

    /// <summary>Hints the kernel to read batch <paramref name="b"/>'s runs of adjacent blocks ahead of use.</summary>
    private void ReadAhead(List<BlockContext> todo, int b)
    {
        int start = b * BatchBlocks, end = Math.Min(start + BatchBlocks, todo.Count);
        for (int i = start; i < end;)
        {
            int run = RunLength(todo, i, end, volume.NodeSize);
            volume.ReadAhead(todo[i].Bytenr, run);
            i += run;
        }
    }

    /// <summary>How many blocks from <paramref name="i"/> (before <paramref name="end"/>) lie at adjacent addresses:
    /// one read request (or read-ahead hint) covers them.</summary>
    private static int RunLength(List<BlockContext> todo, int i, int end, ulong nodeSize)
    {
        int run = 1;
        while (i + run < end && todo[i + run].Bytenr == todo[i + run - 1].Bytenr + nodeSize) run++;
        return run;
    }

    private List<BlockContext> ProcessBatch<TState>(List<BlockContext> todo, int start, int count, Worker<TState> w, IScanSink<TState> sink)
        where TState : class
    {
        var next = new List<BlockContext>(0);
        int ns = (int)volume.NodeSize;
        for (int i = 0; i < count;)
        {
            // a run of adjacent addresses: one read request
            int run = RunLength(todo, start + i, start + count, (ulong)ns);
            bool runOk = volume.TryReadRun(todo[start + i].Bytenr, run, w.Buffer);
            for (int k = 0; k < run; k++)
            {
                var ctx = todo[start + i + k];
                var block = volume.VerifiedInPlace(ctx.Bytenr, runOk, w.Buffer, k * ns);
                if (block == null)
                {
                    // slow path: every copy in turn, with the failures reported
                    var read = volume.ReadTreeBlockUncached(ctx.Bytenr);
                    BlockSteps.ReportReadProblems(ctx, read, findings);
                    if (read.Block == null)
                    {
                        w.Stats.Unreadable++;
                        sink.OnUnreadable(ctx, read, w.State);
                        continue;
                    }
                    block = read.Block;
                }
                var view = block.View;
                if (view.IsLeaf) { w.Stats.Leaves++; w.Stats.Items += view.Count; } else w.Stats.Nodes++;
                bool valid = BlockSteps.Validate(ctx, block, volume, findings, validateItems);
                if (_otherParentsByBlock != null && _otherParentsByBlock.Contains(ctx.Bytenr))
                    foreach (var other in _otherParentsByBlock[ctx.Bytenr]) TreeBlockValidator.ValidateOtherParent(other, block, findings);
                sink.OnBlock(ctx, block, valid, w.State);
                if (valid && !view.IsLeaf && view.Header.Level > lowestLevel)
                {
                    int from = ctx.Tree.IsDropping ? DropFilter.FirstLiveSlot(ctx, view) : 0; // freed by the cleaner
                    next.EnsureCapacity(next.Count + view.Count - from);
                    for (int p = from; p < view.Count; p++) next.Add(BlockSteps.Child(ctx, view, p));
                }
            }
            i += run;
        }
        return next;
    }

    private sealed class Worker<TState>(TState state, int nodeSize) where TState : class
    {
        public TState State { get; } = state;
        public byte[] Buffer { get; } = new byte[nodeSize * BatchBlocks];
        public WalkStats Stats { get; } = new();
    }
}
