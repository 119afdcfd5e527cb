namespace MirrorEmu.Notifier;

/// <summary>
/// One interval subscription (struct mmu_interval_notifier): a range of an address space and the
/// callback that learns when it is invalidated. Create it, then
/// <see cref="MmuNotifierSubscriptions.Insert"/> it; call <see cref="MmuNotifierSubscriptions.Remove"/> when done.
/// </summary>
public sealed class MmuIntervalNotifier : IntervalTreeNode
{
    // Written by SetSeq (under the driver's lock) and by the subscriptions object (under its lock);
    // read locklessly by CheckRetry.
    private ulong _invalidateSeq;

    /// <summary>Creates a subscription that is not inserted yet.</summary>
    /// <param name="ops">The callbacks.</param>
    public MmuIntervalNotifier(IMmuIntervalNotifierOps ops) => Ops = ops;

    /// <summary>The callbacks.</summary>
    public IMmuIntervalNotifierOps Ops { get; }

    /// <summary>The subscriptions object it is inserted in, or null.</summary>
    public MmuNotifierSubscriptions? Subscriptions { get; internal set; }

    /// <summary>The subscription's half-open end (the kernel keeps the inclusive <see cref="IntervalTreeNode.Last"/>).</summary>
    public ulong End => Last + 1;

    /// <summary>The sequence last written for this subscription.</summary>
    public ulong InvalidateSeq
    {
        get => Volatile.Read(ref _invalidateSeq);
        internal set => Volatile.Write(ref _invalidateSeq, value);
    }

    /// <summary>True while a deferred insert or remove is queued.</summary>
    internal bool DeferredPending { get; set; }

    /// <summary>mmu_interval_set_seq: records the invalidation's sequence. Call only from the invalidate
    /// callback, under the driver lock that guards <see cref="ReadRetry"/>.</summary>
    /// <param name="curSeq">The odd sequence the callback was given.</param>
    public void SetSeq(ulong curSeq) => Volatile.Write(ref _invalidateSeq, curSeq);

    /// <summary>mmu_interval_read_begin (mm/mmu_notifier.c): see <see cref="MmuNotifierSubscriptions.ReadBegin"/>.</summary>
    /// <param name="timeoutMs">Most milliseconds to wait for a running invalidation; <see cref="Timeout.Infinite"/> to wait as long as it takes.</param>
    /// <param name="cancellation">Ends the wait.</param>
    /// <returns>The sequence to pass to <see cref="ReadRetry"/>.</returns>
    public ulong ReadBegin(int timeoutMs = Timeout.Infinite, CancellationToken cancellation = default) =>
        (Subscriptions ?? throw new InvalidOperationException("the interval notifier is not inserted")).ReadBegin(this, timeoutMs, cancellation);

    /// <summary>mmu_interval_read_retry: true if an invalidation hit since <paramref name="seq"/> was read.
    /// Call under the driver lock that the invalidate callback takes.</summary>
    /// <param name="seq">What <see cref="ReadBegin"/> returned.</param>
    public bool ReadRetry(ulong seq) => InvalidateSeq != seq;

    /// <summary>mmu_interval_check_retry: the lockless, advisory variant (true is reliable, false is a hint).</summary>
    /// <param name="seq">What <see cref="ReadBegin"/> returned.</param>
    public bool CheckRetry(ulong seq) => Volatile.Read(ref _invalidateSeq) != seq;

    /// <inheritdoc/>
    public override string ToString() => $"[0x{Start:x}, 0x{Last:x}] seq={InvalidateSeq}";
}
