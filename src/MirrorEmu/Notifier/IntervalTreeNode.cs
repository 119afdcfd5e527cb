namespace MirrorEmu.Notifier;

/// <summary>
/// A node of <see cref="IntervalTree"/> (struct interval_tree_node): the kernel's closed interval
/// [<see cref="Start"/>, <see cref="Last"/>] plus the augmented red-black links. Types kept in a
/// tree derive from it, as the kernel embeds the node in its owner.
/// </summary>
public class IntervalTreeNode
{
    internal IntervalTreeNode? Left;
    internal IntervalTreeNode? Right;
    internal IntervalTreeNode? Parent;
    internal bool Red;
    internal ulong SubtreeLast;

    /// <summary>First address of the interval.</summary>
    public ulong Start { get; internal set; }

    /// <summary>Last address of the interval, inclusive (the kernel's <c>last</c>).</summary>
    public ulong Last { get; internal set; }

    /// <summary>True while the node is in a tree (the kernel tests !RB_EMPTY_NODE).</summary>
    public bool InTree { get; internal set; }
}
