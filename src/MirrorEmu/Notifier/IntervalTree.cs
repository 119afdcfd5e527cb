using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace MirrorEmu.Notifier;

/// <summary>
/// An augmented red-black interval tree (include/linux/interval_tree_generic.h): nodes keyed by
/// start (ties go right), each holding the largest <c>last</c> of its subtree, so that overlap
/// queries cost O(log n + k) and allocate nothing.
/// </summary>
/// <remarks>
/// <para>Intervals inside the tree are the kernel's closed [start, last]. The public query
/// <see cref="FindOverlaps{T}"/> takes MirrorEmu's half-open [start, end): <see cref="ToLast"/> is
/// the one place where the two meet.</para>
/// <para>Not thread-safe: the owner serializes changes (the notifier subscriptions lock, and the
/// deferral of changes during invalidations, keep it stable while callbacks iterate).</para>
/// </remarks>
public sealed class IntervalTree
{
    private IntervalTreeNode? _root;
    private IntervalTreeNode? _leftmost;

    /// <summary>Number of nodes.</summary>
    public int Count { get; private set; }

    /// <summary>Converts a half-open end to the kernel's inclusive last: the single conversion point.</summary>
    /// <param name="end">Half-open end, greater than the start it goes with.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong ToLast(ulong end) => end - 1;

    /// <summary>interval_tree_insert: adds a node whose <see cref="IntervalTreeNode.Start"/> and <see cref="IntervalTreeNode.Last"/> are set.</summary>
    /// <param name="node">A node not in any tree.</param>
    public void Insert(IntervalTreeNode node)
    {
        Debug.Assert(!node.InTree, "node already in a tree");
        Debug.Assert(node.Start <= node.Last, "interval with start after last");
        node.Left = node.Right = null;
        node.Red = true;
        node.SubtreeLast = node.Last;
        node.InTree = true;

        IntervalTreeNode? parent = null;
        IntervalTreeNode? cur = _root;
        bool leftmost = true;
        while (cur is not null)
        {
            parent = cur;
            if (cur.SubtreeLast < node.Last)
            {
                cur.SubtreeLast = node.Last;
            }

            if (node.Start < cur.Start)
            {
                cur = cur.Left;
            }
            else
            {
                cur = cur.Right;
                leftmost = false;
            }
        }

        node.Parent = parent;
        if (parent is null)
        {
            _root = node;
        }
        else if (node.Start < parent.Start)
        {
            parent.Left = node;
        }
        else
        {
            parent.Right = node;
        }

        if (leftmost)
        {
            _leftmost = node;
        }

        Count++;
        InsertFixup(node);
    }

    /// <summary>interval_tree_remove.</summary>
    /// <param name="node">A node in this tree.</param>
    public void Remove(IntervalTreeNode node)
    {
        Debug.Assert(node.InTree, "node not in a tree");
        if (ReferenceEquals(node, _leftmost))
        {
            _leftmost = Next(node);
        }

        IntervalTreeNode? child;
        IntervalTreeNode? fixParent;
        bool removedRed;
        if (node.Left is null || node.Right is null)
        {
            child = node.Left ?? node.Right;
            fixParent = node.Parent;
            removedRed = node.Red;
            Transplant(node, child);
            Propagate(fixParent);
        }
        else
        {
            // The successor takes the node's place; its old position loses it.
            IntervalTreeNode succ = node.Right;
            while (succ.Left is not null)
            {
                succ = succ.Left;
            }

            removedRed = succ.Red;
            child = succ.Right;
            if (ReferenceEquals(succ.Parent, node))
            {
                fixParent = succ;
            }
            else
            {
                fixParent = succ.Parent;
                Transplant(succ, succ.Right);
                succ.Right = node.Right;
                succ.Right.Parent = succ;
            }

            Transplant(node, succ);
            succ.Left = node.Left;
            succ.Left.Parent = succ;
            succ.Red = node.Red;
            Propagate(fixParent);
        }

        node.Left = node.Right = node.Parent = null;
        node.InTree = false;
        Count--;
        if (!removedRed)
        {
            DeleteFixup(child, fixParent);
        }
    }

    /// <summary>
    /// Writes the nodes that overlap the half-open [<paramref name="start"/>, <paramref name="end"/>)
    /// into <paramref name="destination"/>, in ascending start order, and returns how many overlap
    /// (which may exceed the span's length; only that many are written). No allocation.
    /// </summary>
    /// <typeparam name="T">The node type held.</typeparam>
    /// <param name="start">First address of the query.</param>
    /// <param name="end">Half-open end of the query; an empty range matches nothing.</param>
    /// <param name="destination">Where matches go.</param>
    public int FindOverlaps<T>(ulong start, ulong end, Span<T> destination)
        where T : IntervalTreeNode
    {
        if (end <= start)
        {
            return 0;
        }

        ulong last = ToLast(end);
        int n = 0;
        for (IntervalTreeNode? node = IterFirst(start, last); node is not null; node = IterNext(node, start, last))
        {
            if (n < destination.Length)
            {
                destination[n] = Unsafe.As<T>(node);
            }

            n++;
        }

        return n;
    }

    /// <summary>interval_tree_iter_first: the overlapping node with the smallest start, for the closed query [start, last].</summary>
    /// <param name="start">First address.</param>
    /// <param name="last">Last address, inclusive.</param>
    public IntervalTreeNode? IterFirst(ulong start, ulong last)
    {
        IntervalTreeNode? root = _root;
        if (root is null || root.SubtreeLast < start || _leftmost!.Start > last)
        {
            return null;
        }

        return SubtreeSearch(root, start, last);
    }

    /// <summary>interval_tree_iter_next: the next overlapping node after <paramref name="node"/>.</summary>
    /// <param name="node">A node returned by <see cref="IterFirst"/> or this method.</param>
    /// <param name="start">First address of the query.</param>
    /// <param name="last">Last address of the query, inclusive.</param>
    public static IntervalTreeNode? IterNext(IntervalTreeNode node, ulong start, ulong last)
    {
        IntervalTreeNode? rb = node.Right;
        while (true)
        {
            // Loop invariant: start <= node.Last (node overlaps or has overlapping ancestors to the right).
            if (rb is not null && start <= rb.SubtreeLast)
            {
                return SubtreeSearch(rb, start, last);
            }

            // Climb until arriving from a left child.
            IntervalTreeNode? prev;
            do
            {
                prev = node;
                node = node.Parent!;
                if (node is null)
                {
                    return null;
                }
            }
            while (ReferenceEquals(node.Right, prev));

            if (last < node.Start)
            {
                return null;
            }

            if (start <= node.Last)
            {
                return node;
            }

            rb = node.Right;
        }
    }

    private static IntervalTreeNode? SubtreeSearch(IntervalTreeNode node, ulong start, ulong last)
    {
        while (true)
        {
            IntervalTreeNode? left = node.Left;
            if (left is not null && start <= left.SubtreeLast)
            {
                node = left;
                continue;
            }

            if (node.Start <= last)
            {
                if (start <= node.Last)
                {
                    return node;
                }

                IntervalTreeNode? right = node.Right;
                if (right is not null && start <= right.SubtreeLast)
                {
                    node = right;
                    continue;
                }
            }

            return null;
        }
    }

    private static IntervalTreeNode? Next(IntervalTreeNode node)
    {
        if (node.Right is not null)
        {
            IntervalTreeNode n = node.Right;
            while (n.Left is not null)
            {
                n = n.Left;
            }

            return n;
        }

        IntervalTreeNode cur = node;
        IntervalTreeNode? p = node.Parent;
        while (p is not null && ReferenceEquals(cur, p.Right))
        {
            cur = p;
            p = p.Parent;
        }

        return p;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong Compute(IntervalTreeNode n)
    {
        ulong max = n.Last;
        if (n.Left is not null && n.Left.SubtreeLast > max)
        {
            max = n.Left.SubtreeLast;
        }

        if (n.Right is not null && n.Right.SubtreeLast > max)
        {
            max = n.Right.SubtreeLast;
        }

        return max;
    }

    /// <summary>Recomputes the augmentation from <paramref name="node"/> up to the root.</summary>
    private static void Propagate(IntervalTreeNode? node)
    {
        while (node is not null)
        {
            node.SubtreeLast = Compute(node);
            node = node.Parent;
        }
    }

    private void Transplant(IntervalTreeNode u, IntervalTreeNode? v)
    {
        if (u.Parent is null)
        {
            _root = v;
        }
        else if (ReferenceEquals(u, u.Parent.Left))
        {
            u.Parent.Left = v;
        }
        else
        {
            u.Parent.Right = v;
        }

        if (v is not null)
        {
            v.Parent = u.Parent;
        }
    }

    private void RotateLeft(IntervalTreeNode x)
    {
        IntervalTreeNode y = x.Right!;
        x.Right = y.Left;
        if (y.Left is not null)
        {
            y.Left.Parent = x;
        }

        Transplant(x, y);
        y.Left = x;
        x.Parent = y;
        x.SubtreeLast = Compute(x);
        y.SubtreeLast = Compute(y);
    }

    private void RotateRight(IntervalTreeNode x)
    {
        IntervalTreeNode y = x.Left!;
        x.Left = y.Right;
        if (y.Right is not null)
        {
            y.Right.Parent = x;
        }

        Transplant(x, y);
        y.Right = x;
        x.Parent = y;
        x.SubtreeLast = Compute(x);
        y.SubtreeLast = Compute(y);
    }

    private void InsertFixup(IntervalTreeNode z)
    {
        while (z.Parent is { Red: true } p)
        {
            IntervalTreeNode g = p.Parent!;
            if (ReferenceEquals(p, g.Left))
            {
                IntervalTreeNode? u = g.Right;
                if (u is { Red: true })
                {
                    p.Red = false;
                    u.Red = false;
                    g.Red = true;
                    z = g;
                    continue;
                }

                if (ReferenceEquals(z, p.Right))
                {
                    z = p;
                    RotateLeft(z);
                    p = z.Parent!;
                }

                p.Red = false;
                g.Red = true;
                RotateRight(g);
            }
            else
            {
                IntervalTreeNode? u = g.Left;
                if (u is { Red: true })
                {
                    p.Red = false;
                    u.Red = false;
                    g.Red = true;
                    z = g;
                    continue;
                }

                if (ReferenceEquals(z, p.Left))
                {
                    z = p;
                    RotateRight(z);
                    p = z.Parent!;
                }

                p.Red = false;
                g.Red = true;
                RotateLeft(g);
            }
        }

        _root!.Red = false;
    }

    private static bool IsBlack(IntervalTreeNode? n) => n is null || !n.Red;

    private void DeleteFixup(IntervalTreeNode? x, IntervalTreeNode? parent)
    {
        while (!ReferenceEquals(x, _root) && IsBlack(x))
        {
            if (ReferenceEquals(x, parent!.Left))
            {
                IntervalTreeNode w = parent.Right!;
                if (w.Red)
                {
                    w.Red = false;
                    parent.Red = true;
                    RotateLeft(parent);
                    w = parent.Right!;
                }

                if (IsBlack(w.Left) && IsBlack(w.Right))
                {
                    w.Red = true;
                    x = parent;
                    parent = x.Parent;
                }
                else
                {
                    if (IsBlack(w.Right))
                    {
                        w.Left!.Red = false;
                        w.Red = true;
                        RotateRight(w);
                        w = parent.Right!;
                    }

                    w.Red = parent.Red;
                    parent.Red = false;
                    w.Right!.Red = false;
                    RotateLeft(parent);
                    x = _root;
                    parent = null;
                }
            }
            else
            {
                IntervalTreeNode w = parent.Left!;
                if (w.Red)
                {
                    w.Red = false;
                    parent.Red = true;
                    RotateRight(parent);
                    w = parent.Left!;
                }

                if (IsBlack(w.Left) && IsBlack(w.Right))
                {
                    w.Red = true;
                    x = parent;
                    parent = x.Parent;
                }
                else
                {
                    if (IsBlack(w.Left))
                    {
                        w.Right!.Red = false;
                        w.Red = true;
                        RotateLeft(w);
                        w = parent.Left!;
                    }

                    w.Red = parent.Red;
                    parent.Red = false;
                    w.Left!.Red = false;
                    RotateRight(parent);
                    x = _root;
                    parent = null;
                }
            }
        }

        if (x is not null)
        {
            x.Red = false;
        }
    }

    /// <summary>Checks the red-black and augmentation invariants; returns the black height (for tests).</summary>
    internal int Validate()
    {
        if (_root is null)
        {
            return 0;
        }

        if (_root.Red)
        {
            throw new InvalidOperationException("root is red");
        }

        return ValidateNode(_root);
    }

    private static int ValidateNode(IntervalTreeNode? n)
    {
        if (n is null)
        {
            return 1;
        }

        if (n.Red && (n.Left is { Red: true } || n.Right is { Red: true }))
        {
            throw new InvalidOperationException("red node with a red child");
        }

        if (n.Left is not null && (n.Left.Start > n.Start || !ReferenceEquals(n.Left.Parent, n)))
        {
            throw new InvalidOperationException("left child out of order or bad parent link");
        }

        if (n.Right is not null && (n.Right.Start < n.Start || !ReferenceEquals(n.Right.Parent, n)))
        {
            throw new InvalidOperationException("right child out of order or bad parent link");
        }

        if (n.SubtreeLast != Compute(n))
        {
            throw new InvalidOperationException("subtree last is stale");
        }

        int lh = ValidateNode(n.Left);
        int rh = ValidateNode(n.Right);
        if (lh != rh)
        {
            throw new InvalidOperationException("black heights differ");
        }

        return lh + (n.Red ? 0 : 1);
    }
}
