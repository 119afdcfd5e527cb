using System.Diagnostics;
using MirrorEmu.Mm;
using MirrorEmu.Telemetry;

namespace MirrorEmu.Uffd;

public sealed partial class Userfaultfd : IUserfaultHook
{
    /// <summary>
    /// handle_userfault (fs/userfaultfd.c): queue a page-fault message, drop the mmap lock, and sleep
    /// until a resolution covering the address wakes the thread; then VM_FAULT_RETRY.
    /// </summary>
    /// <remarks>
    /// The kernel's decisions, in its order: a context with the SIGBUS feature → VM_FAULT_SIGBUS; a
    /// released context → VM_FAULT_NOPAGE (the access retries and, the registration being gone,
    /// faults normally); no FAULT_FLAG_ALLOW_RETRY → VM_FAULT_SIGBUS (why hmm_range_fault could not
    /// fault userfaultfd pages before the 2026 patch); FAULT_FLAG_RETRY_NOWAIT → queue the message
    /// and return VM_FAULT_RETRY without sleeping or dropping the lock (the kernel does not queue
    /// here; MirrorEmu does, so a monitor can prefetch). Otherwise the lock is dropped; if the entry
    /// was filled meanwhile (userfaultfd_must_wait) the thread does not sleep. Beyond the kernel: a
    /// wait longer than <see cref="FaultTimeoutMs"/>, or a monitor that is gone, ends in
    /// VM_FAULT_SIGBUS (the lock is retaken first), so a dead monitor is an error, not a hang.
    /// A fatal signal (<see cref="CurrentTask.FatalSignal"/>, FAULT_FLAG_KILLABLE) ends the wait with
    /// VM_FAULT_RETRY; the caller checks the signal.
    /// </remarks>
    public VmFault HandleUserfault(Vma vma, ulong address, FaultFlags flags, UserfaultReason reason) =>
        HandleUserfaultRange(vma, address, 0, flags, reason);

    /// <summary>
    /// handle_userfault for a whole missing run (the RangeEvent policy's proposed extension): one
    /// message names [address, address + runPages pages), and one resolution covering the address wakes it.
    /// </summary>
    /// <param name="vma">The VMA (its context must be this one).</param>
    /// <param name="address">Page-aligned first missing address.</param>
    /// <param name="runPages">Pages in the run (0 for a plain single-page message).</param>
    /// <param name="flags">Fault flags.</param>
    /// <param name="reason">Registration mode that applies.</param>
    /// <returns>As <see cref="HandleUserfault"/>.</returns>
    public VmFault HandleUserfaultRange(Vma vma, ulong address, ulong runPages, FaultFlags flags, UserfaultReason reason)
    {
        DebugAssertMmapLockHeld();
        if (!ReferenceEquals(vma.UserfaultContext, this))
        {
            return Sigbus();
        }

        if ((_features & UffdFeatures.SigBus) != 0)
        {
            return Sigbus();
        }

        if (_released)
        {
            return VmFault.NoPage;
        }

        if (_monitorGone || (flags & FaultFlags.AllowRetry) == 0)
        {
            return Sigbus();
        }

        address = PageGeometry.PageDown(address);
        var msg = new UffdMsg(
            UffdEventType.Pagefault,
            address,
            ((flags & FaultFlags.Write) != 0 ? UffdPagefaultFlags.Write : UffdPagefaultFlags.None)
            | (reason == UserfaultReason.WriteProtect ? UffdPagefaultFlags.WriteProtect : UffdPagefaultFlags.None)
            | (reason == UserfaultReason.Minor ? UffdPagefaultFlags.Minor : UffdPagefaultFlags.None),
            (_features & UffdFeatures.ThreadId) != 0 ? Environment.CurrentManagedThreadId : 0,
            runPages);

        bool noWait = (flags & FaultFlags.RetryNoWait) != 0;
        UffdWaiter waiter;
        using (new RankedMonitor(_lock, LockRank.UserfaultfdContext))
        {
            waiter = _pool.Count > 0 ? _pool.Pop() : new UffdWaiter();
            waiter.Reset(msg, noWait);
            _pending.Add(waiter);
            WakeReadersLocked();
        }

        Stats.Increment(UffdStat.FaultsQueued);
        if (noWait)
        {
            return VmFault.Retry; // the lock stays held; nobody waits on this message
        }

        bool mustWait = MustWait(vma, address, reason);
        for (ulong i = 1; !mustWait && i < runPages; i++)
        {
            // A run is answered once all of it is filled (the monitor wakes after its last page):
            // the first page being there already is not enough.
            mustWait = MustWait(vma, address + (i << PageGeometry.PageShift), reason);
        }

        AddressSpace mm = vma.Mm;
        mm.MmapLock.ReadUnlockForRetry();
        bool woken = true;
        if (mustWait && !_released)
        {
            Stats.Increment(UffdStat.FaultsWaited);
            CancellationToken fatal = (flags & FaultFlags.Killable) != 0 ? CurrentTask.FatalSignal : CancellationToken.None;
            woken = waiter.Wait(FaultTimeoutMs, fatal);
        }

        int outcome;
        using (new RankedMonitor(_lock, LockRank.UserfaultfdContext))
        {
            outcome = waiter.Outcome;
            if (outcome == 0)
            {
                _pending.Remove(waiter);
                _waiting.Remove(waiter);
            }

            _pool.Push(waiter);
        }

        if (outcome == 2 || (!woken && outcome == 0 && mustWait && !CurrentTask.FatalSignalPending && !_released))
        {
            // The monitor is gone, or it did not answer in time: an error, with the lock held again.
            Stats.Increment(outcome == 2 ? UffdStat.FaultsSigbus : UffdStat.FaultTimeouts);
            mm.MmapLock.ReadLock();
            return VmFault.SigBus;
        }

        return VmFault.Retry;
    }

    private VmFault Sigbus()
    {
        Stats.Increment(UffdStat.FaultsSigbus);
        return VmFault.SigBus;
    }

    /// <summary>userfaultfd_must_wait: true while the entry still needs the monitor.</summary>
    private static bool MustWait(Vma vma, ulong address, UserfaultReason reason)
    {
        Pte pte = vma.Mm.PageTable.Read(address);
        return reason switch
        {
            UserfaultReason.WriteProtect => pte.IsUffdWp,
            UserfaultReason.Minor => pte.IsNoneMostly,
            _ => pte.IsNoneMostly && !(vma.File is { } f && f.TryFindPage(vma.PageIndex(address), out _) && vma.IsShared),
        };
    }

    /// <summary>Wakes the waiters whose address lies in [start, end) (__wake_userfault), with <paramref name="outcome"/> 1 (resolved) or 2 (failed).</summary>
    /// <returns>How many were woken.</returns>
    private int WakeRange(ulong start, ulong end, int outcome)
    {
        int woken = 0;
        long now = Stopwatch.GetTimestamp();
        long nanos = 0;
        using (new RankedMonitor(_lock, LockRank.UserfaultfdContext))
        {
            woken += WakeList(_pending, start, end, outcome, now, ref nanos);
            woken += WakeList(_waiting, start, end, outcome, now, ref nanos);
        }

        Stats.Add(UffdStat.Wakeups, woken);
        Stats.Add(UffdStat.FaultToWakeNanos, nanos);
        return woken;
    }

    private static int WakeList(List<UffdWaiter> list, ulong start, ulong end, int outcome, long now, ref long nanos)
    {
        int woken = 0;
        for (int i = list.Count - 1; i >= 0; i--)
        {
            UffdWaiter w = list[i];
            if (w.Address < start || w.Address >= end)
            {
                continue;
            }

            list.RemoveAt(i);
            if (w.NoWait)
            {
                continue; // an unread RETRY_NOWAIT message: nobody to wake, it is simply answered
            }

            w.Outcome = outcome;
            w.Signal();
            woken++;
            nanos += (long)Stopwatch.GetElapsedTime(w.QueuedAt, now).TotalNanoseconds;
        }

        return woken;
    }

    /// <inheritdoc/>
    public (IUserfaultHook? Hook, object? Context) OnFork(Vma vma, AddressSpace child)
    {
        if ((_features & UffdFeatures.EventFork) == 0)
        {
            return (null, null);
        }

        // dup_userfaultfd: one new context per parent context and child, announced once.
        Userfaultfd? childCtx;
        using (new RankedMonitor(_lock, LockRank.UserfaultfdContext))
        {
            if (!_forkChildren.TryGetValue(child, out childCtx))
            {
                childCtx = new Userfaultfd(child) { FaultTimeoutMs = FaultTimeoutMs };
                childCtx._features = _features;
                childCtx._apiDone = true;
                _forkChildren.Add(child, childCtx);
                QueueEventLocked(new UffdMsg(UffdEventType.Fork, 0, Child: childCtx));
            }
        }

        return (childCtx, childCtx);
    }

    /// <inheritdoc/>
    public bool OnRemap(Vma vma, ulong from, ulong to, ulong length)
    {
        if ((_features & UffdFeatures.EventRemap) == 0)
        {
            return false;
        }

        QueueEvent(new UffdMsg(UffdEventType.Remap, from, RunLength: length, Arg: to));
        return true;
    }

    /// <inheritdoc/>
    public void OnRemove(ulong start, ulong end)
    {
        if ((_features & UffdFeatures.EventRemove) != 0)
        {
            QueueEvent(new UffdMsg(UffdEventType.Remove, start, Arg: end));
        }
    }

    /// <inheritdoc/>
    public void OnUnmap(ulong start, ulong end)
    {
        if ((_features & UffdFeatures.EventUnmap) != 0)
        {
            QueueEvent(new UffdMsg(UffdEventType.Unmap, start, Arg: end));
        }
    }
}
