using MirrorEmu.Telemetry;

namespace MirrorEmu.Notifier;

/// <summary>
/// The per-address-space interval-notifier state (struct mmu_notifier_subscriptions,
/// mm/mmu_notifier.c): the interval tree of subscriptions, the global
/// invalidate sequence and the deferred list.
/// </summary>
/// <remarks>
/// <para>The sequence works as a collision-retry lock that allows many writers: it starts at 2;
/// an invalidation that hits some subscription makes it odd (<c>seq |= 1</c>); the end of the last
/// active invalidation makes it even again (<c>seq++</c>), so each odd period advances it by 2 and
/// concurrent invalidations share one odd period. While it is odd the tree does not change:
/// inserts and removes are queued and applied when the period ends.</para>
/// <para>Concurrency model:</para> <see cref="_lock"/> (the kernel's spinlock) guards the tree,
/// the sequence, the active count and the deferred list; it is also the wait queue. Callbacks run
/// without it: the tree stays stable because changes are deferred during odd periods.
/// </remarks>
public sealed class MmuNotifierSubscriptions
{
    // Guards everything below and is the wait queue (Monitor.Wait / PulseAll).
    private readonly object _lock = new();
    private readonly IntervalTree _itree = new();
    private readonly List<MmuIntervalNotifier> _deferred = [];
    private ulong _invalidateSeq = 2;
    private long _activeInvalidateRanges;

    /// <summary>Counters by event: one per invalidation started.</summary>
    public CounterSet<NotifierEvent> Events { get; } = new();

    /// <summary>Other counters.</summary>
    public CounterSet<NotifierStat> Stats { get; } = new();

    /// <summary>The global sequence (odd while an invalidation that hit a subscription runs).</summary>
    public ulong InvalidateSeq
    {
        get
        {
            using (new RankedMonitor(_lock, LockRank.NotifierSubscriptions))
            {
                return _invalidateSeq;
            }
        }
    }

    /// <summary>Subscriptions in the tree now (deferred inserts not counted).</summary>
    public int Count
    {
        get
        {
            using (new RankedMonitor(_lock, LockRank.NotifierSubscriptions))
            {
                return _itree.Count;
            }
        }
    }

    /// <summary>Invalidations started and not yet ended.</summary>
    public long ActiveInvalidations
    {
        get
        {
            using (new RankedMonitor(_lock, LockRank.NotifierSubscriptions))
            {
                return _activeInvalidateRanges;
            }
        }
    }

    private bool IsInvalidating => (_invalidateSeq & 1) != 0;

    /// <summary>
    /// mmu_interval_notifier_insert: subscribes <paramref name="subscription"/> to [start, start + length).
    /// During an odd period the insert is deferred to its end, and the subscription starts with the
    /// current odd sequence so that its first <see cref="ReadBegin"/> waits; otherwise it is inserted
    /// now with a sequence of global - 1.
    /// </summary>
    /// <param name="subscription">A subscription not inserted anywhere.</param>
    /// <param name="start">First address.</param>
    /// <param name="length">Length in bytes.</param>
    /// <returns>0; -EOVERFLOW when the length is 0 or start + length - 1 overflows; -EINVAL when the subscription is
    /// already inserted somewhere.</returns>
    /// <remarks>Upon return the subscription may not be in the tree yet; use the ReadBegin / ReadRetry flow.</remarks>
    public KResult Insert(MmuIntervalNotifier subscription, ulong start, ulong length)
    {
        ArgumentNullException.ThrowIfNull(subscription);
        if (length == 0 || start + (length - 1) < start)
        {
            return KResult.Error(Errno.EOVERFLOW, $"mmu_interval_notifier_insert: start=0x{start:X16} length=0x{length:X} is empty or wraps around");
        }

        if (subscription.Subscriptions is not null)
        {
            return KResult.Error(Errno.EINVAL, $"mmu_interval_notifier_insert: the subscription is already inserted ({subscription})");
        }

        subscription.Start = start;
        subscription.Last = start + (length - 1);
        using (new RankedMonitor(_lock, LockRank.NotifierSubscriptions))
        {
            subscription.Subscriptions = this;
            if (_activeInvalidateRanges != 0)
            {
                if (IsInvalidating)
                {
                    subscription.DeferredPending = true;
                    _deferred.Add(subscription);
                    Stats.Increment(NotifierStat.DeferredInserts);
                }
                else
                {
                    // Partially excluded: insert now, but force an odd period so ReadBegin waits for it.
                    _invalidateSeq |= 1;
                    _itree.Insert(subscription);
                }

                subscription.InvalidateSeq = _invalidateSeq;
            }
            else
            {
                subscription.InvalidateSeq = _invalidateSeq - 1;
                _itree.Insert(subscription);
            }
        }

        return KResult.Ok;
    }

    /// <summary>
    /// mmu_interval_notifier_remove: unsubscribes. If an odd period is running, the removal is
    /// deferred and this waits for the period to end; after a 0 return no callback runs or will run.
    /// </summary>
    /// <param name="subscription">An inserted subscription.</param>
    /// <param name="timeoutMs">Most milliseconds to wait for a running invalidation.</param>
    /// <param name="cancellation">Ends the wait.</param>
    /// <returns>0; -EINVAL if not inserted here; -EBUSY if the time ran out or -EINTR if cancelled (the removal then still
    /// happens when the period ends, but a callback may still be running).</returns>
    /// <remarks>Must not be called from an invalidate callback, nor while holding a lock the callback takes.</remarks>
    public KResult Remove(MmuIntervalNotifier subscription, int timeoutMs = Timeout.Infinite, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(subscription);
        ulong seq = 0;
        using (new RankedMonitor(_lock, LockRank.NotifierSubscriptions))
        {
            if (!ReferenceEquals(subscription.Subscriptions, this))
            {
                return KResult.Error(Errno.EINVAL, $"mmu_interval_notifier_remove: the subscription is not inserted here ({subscription})");
            }

            if (IsInvalidating)
            {
                if (!subscription.InTree)
                {
                    // Inserted during this period and not yet applied: just forget the insert.
                    _deferred.Remove(subscription);
                    subscription.DeferredPending = false;
                    subscription.Subscriptions = null;
                    return KResult.Ok;
                }

                if (!subscription.DeferredPending)
                {
                    subscription.DeferredPending = true;
                    _deferred.Add(subscription);
                    Stats.Increment(NotifierStat.DeferredRemoves);
                }

                seq = _invalidateSeq;
            }
            else
            {
                _itree.Remove(subscription);
                subscription.Subscriptions = null;
                return KResult.Ok;
            }
        }

        int rc = WaitSeqReleased(seq, timeoutMs, cancellation);
        return rc == 0 ? KResult.Ok : KResult.Error(-rc, rc == -Errno.EINTR
            ? "mmu_interval_notifier_remove: cancelled while an invalidation of the subscription was running"
            : $"mmu_interval_notifier_remove: an invalidation of the subscription did not end within {timeoutMs} ms");
    }

    /// <summary>
    /// mmu_interval_read_begin: returns the sequence to check later with
    /// <see cref="MmuIntervalNotifier.ReadRetry"/>. If an invalidation that hit this subscription is
    /// running, it first waits for that period to end (it does not loop, so callers can impose an
    /// overall limit).
    /// </summary>
    /// <param name="subscription">An inserted subscription.</param>
    /// <param name="timeoutMs">Most milliseconds to wait.</param>
    /// <param name="cancellation">Ends the wait.</param>
    /// <returns>The sequence.</returns>
    /// <exception cref="TimeoutException">The invalidation did not end in time.</exception>
    /// <exception cref="OperationCanceledException">Cancelled while waiting.</exception>
    public ulong ReadBegin(MmuIntervalNotifier subscription, int timeoutMs = Timeout.Infinite, CancellationToken cancellation = default)
    {
        int rc = TryReadBegin(subscription, out ulong seq, timeoutMs, cancellation);
        if (rc == -Errno.EINTR)
        {
            throw new OperationCanceledException(cancellation);
        }

        if (rc != 0)
        {
            throw new TimeoutException($"mmu_interval_read_begin: invalidation of [0x{subscription.Start:X}, 0x{subscription.Last:X}] (seq {seq}) did not end within {timeoutMs} ms");
        }

        return seq;
    }

    /// <summary>Kernel-style <see cref="ReadBegin"/>.</summary>
    /// <param name="subscription">An inserted subscription.</param>
    /// <param name="seq">The sequence (valid also on failure, for messages).</param>
    /// <param name="timeoutMs">Most milliseconds to wait.</param>
    /// <param name="cancellation">Ends the wait.</param>
    /// <returns>0, -EBUSY on timeout, -EINTR on cancellation.</returns>
    public int TryReadBegin(MmuIntervalNotifier subscription, out ulong seq, int timeoutMs = Timeout.Infinite, CancellationToken cancellation = default)
    {
        bool isInvalidating;
        using (new RankedMonitor(_lock, LockRank.NotifierSubscriptions))
        {
            seq = subscription.InvalidateSeq;
            isInvalidating = seq == _invalidateSeq;
        }

        if (!isInvalidating)
        {
            return 0;
        }

        Stats.Increment(NotifierStat.ReadBeginWaits);
        return WaitSeqReleased(seq, timeoutMs, cancellation);
    }

    /// <summary>
    /// The start of an invalidation (mn_itree_invalidate): counts the event, makes the sequence odd
    /// if any subscription overlaps, and calls each overlapping subscription's callback with the
    /// period's odd sequence.
    /// </summary>
    /// <param name="range">The range and event.</param>
    /// <returns>0; or -EAGAIN when the range is not blockable and a callback refused, in which case
    /// the end was already run and the caller must not call <see cref="InvalidateRangeEnd"/>.</returns>
    /// <remarks>Call before the PTEs of the range are changed; call <see cref="InvalidateRangeEnd"/> after.</remarks>
    public int InvalidateRangeStart(in NotifierRange range)
    {
        Events.Increment(range.Event);
        if (range.End <= range.Start)
        {
            using (new RankedMonitor(_lock, LockRank.NotifierSubscriptions))
            {
                _activeInvalidateRanges++;
            }

            return 0;
        }

        ulong last = IntervalTree.ToLast(range.End);
        IntervalTreeNode? node;
        ulong curSeq;
        using (new RankedMonitor(_lock, LockRank.NotifierSubscriptions))
        {
            _activeInvalidateRanges++;
            node = _itree.IterFirst(range.Start, last);
            if (node is not null)
            {
                if (!IsInvalidating)
                {
                    Stats.Increment(NotifierStat.OddPeriods);
                }

                _invalidateSeq |= 1;
            }

            curSeq = _invalidateSeq;
        }

        for (; node is not null; node = IntervalTree.IterNext(node, range.Start, last))
        {
            var sub = (MmuIntervalNotifier)node;
            Stats.Increment(NotifierStat.Callbacks);
            if (!sub.Ops.Invalidate(sub, range, curSeq))
            {
                if (range.Blockable)
                {
                    // The kernel WARNs and carries on: a blockable callback may not refuse.
                    continue;
                }

                Stats.Increment(NotifierStat.WouldBlock);
                InvEnd();
                return -Errno.EAGAIN;
            }
        }

        return 0;
    }

    /// <summary>The end of an invalidation (mn_itree_inv_end): the last active one makes the sequence
    /// even, applies deferred inserts and removes, and wakes every waiter.</summary>
    /// <param name="range">The range given to <see cref="InvalidateRangeStart"/>.</param>
    /// <remarks>Call after the PTEs are changed; not after a start that returned -EAGAIN.</remarks>
    public void InvalidateRangeEnd(in NotifierRange range) => InvEnd();

    /// <summary>__mmu_notifier_release: calls every subscription with RELEASE over the whole space (blockable).</summary>
    public void Release()
    {
        var range = new NotifierRange(0, ulong.MaxValue, NotifierEvent.Release);
        InvalidateRangeStart(range);
        InvalidateRangeEnd(range);
    }

    private void InvEnd()
    {
        using (new RankedMonitor(_lock, LockRank.NotifierSubscriptions))
        {
            if (--_activeInvalidateRanges != 0 || !IsInvalidating)
            {
                return;
            }

            _invalidateSeq++;
            foreach (MmuIntervalNotifier sub in _deferred)
            {
                if (!sub.InTree)
                {
                    _itree.Insert(sub);
                }
                else
                {
                    _itree.Remove(sub);
                    sub.Subscriptions = null;
                }

                sub.DeferredPending = false;
            }

            _deferred.Clear();
            Monitor.PulseAll(_lock);
        }
    }

    private int WaitSeqReleased(ulong seq, int timeoutMs, CancellationToken cancellation)
    {
        long deadline = timeoutMs == Timeout.Infinite ? long.MaxValue : Environment.TickCount64 + timeoutMs;
        using CancellationTokenRegistration reg = cancellation.CanBeCanceled
            ? cancellation.UnsafeRegister(static l => { using (new RankedMonitor(l!, LockRank.NotifierSubscriptions)) { Monitor.PulseAll(l!); } }, _lock)
            : default;
        using (new RankedMonitor(_lock, LockRank.NotifierSubscriptions))
        {
            while (_invalidateSeq == seq)
            {
                if (cancellation.IsCancellationRequested)
                {
                    return -Errno.EINTR;
                }

                if (deadline == long.MaxValue)
                {
                    Monitor.Wait(_lock);
                    continue;
                }

                long left = deadline - Environment.TickCount64;
                if (left <= 0)
                {
                    return -Errno.EBUSY;
                }

                Monitor.Wait(_lock, (int)Math.Min(left, int.MaxValue));
            }
        }

        return 0;
    }

    /// <summary>Overlap query over the subscriptions in the tree (for tests and tools). Takes the lock.</summary>
    /// <param name="start">First address.</param>
    /// <param name="end">Half-open end.</param>
    /// <param name="destination">Where matches go.</param>
    /// <returns>How many overlap.</returns>
    public int FindOverlaps(ulong start, ulong end, Span<MmuIntervalNotifier> destination)
    {
        using (new RankedMonitor(_lock, LockRank.NotifierSubscriptions))
        {
            return _itree.FindOverlaps(start, end, destination);
        }
    }
}
