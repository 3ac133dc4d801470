namespace BtrfsRefcheck.DelayedRefs;

/// <summary>A red-black tree ordered by a caller's comparison, written from the textbook algorithm (the same one
/// lib/rbtree.c implements): insert descends with the comparison (left when it says &lt; 0, right when &gt; 0, and
/// returns the node already there when it says 0, as the kernel's <c>tree_insert</c> does), then recolours and rotates;
/// erase splices and rebalances. Nothing assumes the comparison is consistent: with a broken one (the 6.10 comparator)
/// the tree's shape decides what a search meets, exactly as in the kernel.</summary>
public sealed class RbTree<T> where T : class
{
    public sealed class Node(T value)
    {
        public T Value { get; } = value;
        internal Node? Left, Right, Parent;
        internal bool Red = true;
        public Node? LeftChild => Left;
        public Node? RightChild => Right;
        public bool IsRed => Red;
    }

    private readonly Func<T, T, int> _compare;
    public RbTree(Func<T, T, int> compare) => _compare = compare;

    public Node? Root { get; private set; }
    public int Count { get; private set; }

    /// <summary>Inserts <paramref name="value"/> unless the descent meets a node the comparison calls equal, which is
    /// returned instead (nothing inserted). <paramref name="path"/> receives the nodes compared, in order.</summary>
    public Node? Insert(T value, out Node inserted, List<T>? path = null)
    {
        Node? parent = null;
        var cur = Root;
        int cmp = 0;
        while (cur != null)
        {
            path?.Add(cur.Value);
            parent = cur;
            cmp = _compare(value, cur.Value);
            if (cmp < 0) cur = cur.Left;
            else if (cmp > 0) cur = cur.Right;
            else { inserted = cur; return cur; }
        }
        var n = new Node(value) { Parent = parent };
        if (parent == null) Root = n;
        else if (cmp < 0) parent.Left = n;
        else parent.Right = n;
        Count++;
        InsertFixup(n);
        inserted = n;
        return null;
    }

    private void InsertFixup(Node z)
    {
        while (z.Parent is { Red: true } p)
        {
            var g = p.Parent!; // a red node is never the root
            if (p == g.Left)
            {
                var u = g.Right;
                if (u is { Red: true }) { p.Red = false; u.Red = false; g.Red = true; z = g; continue; }
                if (z == p.Right) { z = p; RotateLeft(z); p = z.Parent!; }
                p.Red = false; g.Red = true; RotateRight(g);
            }
            else
            {
                var u = g.Left;
                if (u is { Red: true }) { p.Red = false; u.Red = false; g.Red = true; z = g; continue; }
                if (z == p.Left) { z = p; RotateRight(z); p = z.Parent!; }
                p.Red = false; g.Red = true; RotateLeft(g);
            }
        }
        Root!.Red = false;
    }

    private void RotateLeft(Node x)
    {
        var y = x.Right!;
        x.Right = y.Left;
        if (y.Left != null) y.Left.Parent = x;
        Replace(x, y);
        y.Left = x;
        x.Parent = y;
    }

    private void RotateRight(Node x)
    {
        var y = x.Left!;
        x.Left = y.Right;
        if (y.Right != null) y.Right.Parent = x;
        Replace(x, y);
        y.Right = x;
        x.Parent = y;
    }

    /// <summary>Puts <paramref name="v"/> where <paramref name="u"/> hangs (parent link only).</summary>
    private void Replace(Node u, Node? v)
    {
        if (u.Parent == null) Root = v;
        else if (u == u.Parent.Left) u.Parent.Left = v;
        else u.Parent.Right = v;
        if (v != null) v.Parent = u.Parent;
    }

    public void Erase(Node z)
    {
        Node? x, xParent;
        bool removedRed;
        if (z.Left == null)
        {
            x = z.Right; xParent = z.Parent; removedRed = z.Red;
            Replace(z, z.Right);
        }
        else if (z.Right == null)
        {
            x = z.Left; xParent = z.Parent; removedRed = z.Red;
            Replace(z, z.Left);
        }
        else
        {
            var y = z.Right;
            while (y.Left != null) y = y.Left;
            removedRed = y.Red;
            x = y.Right;
            if (y.Parent == z) xParent = y;
            else
            {
                xParent = y.Parent;
                Replace(y, y.Right);
                y.Right = z.Right;
                y.Right.Parent = y;
            }
            Replace(z, y);
            y.Left = z.Left;
            y.Left.Parent = y;
            y.Red = z.Red;
        }
        z.Left = z.Right = z.Parent = null;
        Count--;
        if (!removedRed) EraseFixup(x, xParent);
    }

    private void EraseFixup(Node? x, Node? parent)
    {
        while (x != Root && (x == null || !x.Red))
        {
            if (parent == null) break;
            if (x == parent.Left)
            {
                var w = parent.Right!;
                if (w.Red) { w.Red = false; parent.Red = true; RotateLeft(parent); w = parent.Right!; }
                if ((w.Left == null || !w.Left.Red) && (w.Right == null || !w.Right.Red))
                {
                    w.Red = true; x = parent; parent = x.Parent;
                }
                else
                {
                    if (w.Right == null || !w.Right.Red) { w.Left!.Red = false; w.Red = true; RotateRight(w); w = parent.Right!; }
                    w.Red = parent.Red; parent.Red = false; w.Right!.Red = false; RotateLeft(parent);
                    x = Root; parent = null;
                }
            }
            else
            {
                var w = parent.Left!;
                if (w.Red) { w.Red = false; parent.Red = true; RotateRight(parent); w = parent.Left!; }
                if ((w.Left == null || !w.Left.Red) && (w.Right == null || !w.Right.Red))
                {
                    w.Red = true; x = parent; parent = x.Parent;
                }
                else
                {
                    if (w.Left == null || !w.Left.Red) { w.Right!.Red = false; w.Red = true; RotateLeft(w); w = parent.Left!; }
                    w.Red = parent.Red; parent.Red = false; w.Left!.Red = false; RotateRight(parent);
                    x = Root; parent = null;
                }
            }
        }
        if (x != null) x.Red = false;
    }

    public Node? First()
    {
        var n = Root;
        while (n?.Left != null) n = n.Left;
        return n;
    }

    public static Node? Next(Node n)
    {
        if (n.Right != null)
        {
            n = n.Right;
            while (n.Left != null) n = n.Left;
            return n;
        }
        while (n.Parent != null && n == n.Parent.Right) n = n.Parent;
        return n.Parent;
    }

    /// <summary>In-order (rb_first, rb_next ...).</summary>
    public IEnumerable<Node> InOrder()
    {
        for (var n = First(); n != null; n = Next(n)) yield return n;
    }

    /// <summary>Null when the red-black properties hold (root black, no red node with a red child, every path the same
    /// number of black nodes, parent links consistent, Count right); else what is wrong.</summary>
    public string? Validate()
    {
        if (Root == null) return Count == 0 ? null : $"empty tree with count {Count}";
        if (Root.Red) return "red root";
        if (Root.Parent != null) return "root has a parent";
        int seen = 0;
        string? problem = null;
        int Walk(Node? n)
        {
            if (n == null) return 1;
            seen++;
            if (n.Left != null && n.Left.Parent != n) problem ??= "broken parent link";
            if (n.Right != null && n.Right.Parent != n) problem ??= "broken parent link";
            if (n.Red && (n.Left is { Red: true } || n.Right is { Red: true })) problem ??= "red node with a red child";
            int l = Walk(n.Left), r = Walk(n.Right);
            if (l != r) problem ??= "unequal black heights";
            return l + (n.Red ? 0 : 1);
        }
        Walk(Root);
        if (seen != Count) problem ??= $"count {Count}, {seen} nodes";
        return problem;
    }
}
