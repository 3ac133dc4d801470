using BtrfsRefcheck.DelayedRefs;

namespace BtrfsRefcheck.Tests.DelayedRefs;

public class RbTreeTests
{
    private sealed class Box(int v) { public int V { get; } = v; }

    [Fact]
    public void RandomInsertsAndErasesKeepTheTreeValidAndSorted()
    {
        var rng = new Random(16);
        for (int round = 0; round < 50; round++)
        {
            var t = new RbTree<Box>((a, b) => a.V.CompareTo(b.V));
            var nodes = new Dictionary<int, RbTree<Box>.Node>();
            for (int i = 0; i < 200; i++)
            {
                int v = rng.Next(100);
                if (nodes.TryGetValue(v, out var n) && rng.Next(2) == 0) { t.Erase(n); nodes.Remove(v); }
                else if (!nodes.ContainsKey(v))
                {
                    Assert.Null(t.Insert(new Box(v), out var ins));
                    nodes[v] = ins;
                }
                else Assert.Same(nodes[v], t.Insert(new Box(v), out _)); // equal: the existing node comes back
                Assert.Null(t.Validate());
            }
            Assert.Equal(nodes.Keys.Order(), t.InOrder().Select(x => x.Value.V));
            Assert.Equal(nodes.Count, t.Count);
        }
    }

    [Fact]
    public void AscendingInsertsRotate()
    {
        var t = new RbTree<Box>((a, b) => a.V.CompareTo(b.V));
        for (int i = 1; i <= 3; i++) t.Insert(new Box(i), out _);
        Assert.Equal(2, t.Root!.Value.V); // 1, 2, 3: a left rotation at 1
        Assert.False(t.Root.IsRed);
        Assert.True(t.Root.LeftChild!.IsRed && t.Root.RightChild!.IsRed);
    }

    /// <summary>The 6.10 comparator sends every insert of another root left, so a search can pass an equal node by.</summary>
    [Fact]
    public void BuggyComparatorMissesTheEqualNode()
    {
        DelayedRef R(int id, ulong root, RefAction a) => new() { Id = id, Block = "A", Seq = 0, Type = RefType.TreeBlockRef, Root = root, Action = a };
        foreach (bool buggy in new[] { true, false })
        {
            var t = new RbTree<DelayedRef>((x, y) => Replay.CompRefs(x, y, checkSeq: true, buggy));
            t.Insert(R(1, 257, RefAction.Drop), out _);
            t.Insert(R(2, 258, RefAction.Drop), out _);
            t.Insert(R(3, 259, RefAction.Drop), out _);
            var path = new List<DelayedRef>();
            var exist = t.Insert(R(4, 257, RefAction.Add), out _, path);
            Assert.Null(t.Validate());
            if (buggy)
            {
                Assert.Null(exist);
                Assert.Equal([2, 3], path.Select(p => p.Id));
                Assert.Equal([4, 3, 2, 1], t.InOrder().Select(n => n.Value.Id));
            }
            else Assert.Equal(1, exist!.Value.Id);
        }
    }
}
