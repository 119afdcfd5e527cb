namespace MirrorEmu.Notifier;

/// <summary>struct mmu_interval_notifier_ops: what a subscriber does when its interval is invalidated.</summary>
public interface IMmuIntervalNotifierOps
{
    /// <summary>
    /// The invalidate callback. It must call <see cref="MmuIntervalNotifier.SetSeq"/> with
    /// <paramref name="curSeq"/> under the driver's own lock (the one <see cref="MmuIntervalNotifier.ReadRetry"/>
    /// is called under), and stop every use of the range's pages before it returns.
    /// </summary>
    /// <param name="subscription">The subscription hit.</param>
    /// <param name="range">The invalidation.</param>
    /// <param name="curSeq">The odd sequence of this invalidation period.</param>
    /// <returns>False only if the range is not blockable and the callback would have had to sleep.</returns>
    /// <remarks>Called after the PTEs of the range are still intact and before they are changed.</remarks>
    bool Invalidate(MmuIntervalNotifier subscription, in NotifierRange range, ulong curSeq);
}
