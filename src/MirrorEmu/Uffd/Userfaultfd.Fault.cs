using System.Diagnostics;
using MirrorEmu.Mm;
using MirrorEmu.Telemetry;

namespace MirrorEmu.Uffd;

public sealed partial class Userfaultfd : IUserfaultHook
{
    /// <summary>
    /// handle_userfault (fs/userfaultfd.c): queue a page-fault message, drop the mmap lock, and sleep
    /// until a resolution covering the address wakes the thread; then VM_FAULT_RETRY. With
    /// <paramref name="pages"/> &gt; 1 the message names the whole missing run (the RangeEvent policy's
    /// proposed extension) and the thread waits until all of it is filled.
    /// </summary>
    /// <remarks>
    /// The kernel's decisions, in its order: a context with the SIGBUS feature → VM_FAULT_SIGBUS; a
    /// released context → VM_FAULT_NOPAGE (the access retries and, the registration being gone,
    /// faults normally); no FAULT_FLAG_ALLOW_RETRY → VM_FAULT_SIGBUS (why hmm_range_fault could not
    /// fault userfaultfd pages before the 2026 patch); FAULT_FLAG_RETRY_NOWAIT → VM_FAULT_RETRY at
    /// once, with no message and the lock still held. Otherwise the lock is dropped; if the entry was
    /// filled meanwhile (userfaultfd_must_wait) the thread does not sleep. Beyond the kernel, so that
    /// a test run cannot hang: a wait longer than <see cref="FaultTimeoutMs"/>, or a monitor that is
    /// gone or reported that it could not resolve the fault, ends in VM_FAULT_SIGBUS with the lock
    /// retaken. A fatal signal (<see cref="CurrentTask.FatalSignal"/>, FAULT_FLAG_KILLABLE) ends the
    /// wait with VM_FAULT_RETRY; the caller checks the signal.
    /// </remarks>
    public VmFault HandleUserfault(Vma vma, ulong address, ulong pages, FaultFlags flags, UserfaultReason reason)
    {
        DebugAssertMmapLockHeld();
        if (!ReferenceEquals(vma.Userfault, this) || (_features & UffdFeatures.SigBus) != 0)
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

        if ((flags & FaultFlags.RetryNoWait) != 0)
        {
            return VmFault.Retry; // the kernel's "handle nowait": no message, no sleep, the lock stays held
        }

        address = PageGeometry.PageDown(address);
        var msg = new UffdMsg(
            UffdEventType.Pagefault,
            address,
            ((flags & FaultFlags.Write) != 0 ? UffdPagefaultFlags.Write : UffdPagefaultFlags.None)
            | (reason == UserfaultReason.WriteProtect ? UffdPagefaultFlags.WriteProtect : UffdPagefaultFlags.None)
            | (reason == UserfaultReason.Minor ? UffdPagefaultFlags.Minor : UffdPagefaultFlags.None),
            (_features & UffdFeatures.ThreadId) != 0 ? Environment.CurrentManagedThreadId : 0,
            RunPages: pages > 1 ? pages : 0);

        UffdWaiter waiter;
        using (new RankedMonitor(_lock, LockRank.UserfaultfdContext))
        {
            waiter = _pool.Count > 0 ? _pool.Pop() : new UffdWaiter();
            waiter.Reset(msg);
            _pending.Add(waiter);
            _queuedCount = _pending.Count + _events.Count;
        }

        // Woken after the lock is released: a monitor woken inside it would find it held (and, on one processor,
        // preempt its holder: a convoy of two extra switches per hand-off).
        _queued.Bump();
        Stats.Increment(UffdStat.FaultsQueued);

        // userfaultfd_must_wait: a run is answered once all of it is filled (the monitor wakes after its last
        // page), so every page is looked at, not only the first.
        bool mustWait = false;
        for (ulong i = 0; !mustWait && i < pages; i++)
        {
            mustWait = MustWait(vma, address + (i << PageGeometry.PageShift), reason);
        }

        AddressSpace mm = vma.Mm;
        mm.MmapLock.ReadUnlockForRetry();
        bool woken = true;
        if (mustWait && !_released)
        {
            Stats.Increment(UffdStat.FaultsWaited);
            CancellationToken fatal = (flags & FaultFlags.Killable) != 0 ? CurrentTask.FatalSignal : CancellationToken.None;
            woken = waiter.Wait(FaultTimeoutMs, fatal, _handOff);
        }

        UffdWaitOutcome outcome;
        using (new RankedMonitor(_lock, LockRank.UserfaultfdContext))
        {
            outcome = waiter.Outcome;
            if (outcome == UffdWaitOutcome.Waiting)
            {
                _pending.Remove(waiter);
                _waiting.Remove(waiter);
            }

            // A waker that took this waiter off the lists signals it after releasing the lock: until it has, the
            // waiter is not reused (a late signal would wake the next fault that drew it from the pool).
            if (outcome == UffdWaitOutcome.Waiting || waiter.IsSignalled)
            {
                _pool.Push(waiter);
            }
        }

        if (outcome == UffdWaitOutcome.Failed || (!woken && outcome == UffdWaitOutcome.Waiting && mustWait && !CurrentTask.FatalSignalPending && !_released))
        {
            // The monitor is gone, could not resolve the fault, or did not answer in time: an error, with the lock held again.
            Stats.Increment(outcome == UffdWaitOutcome.Failed ? UffdStat.FaultsSigbus : UffdStat.FaultTimeouts);
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

    /// <summary>Wakes the waiters whose address lies in [start, end) (__wake_userfault) with <paramref name="outcome"/>.</summary>
    /// <returns>How many were woken.</returns>
    /// <remarks>The waiters are taken off the lists under the lock and signalled after it is released, so a woken
    /// thread never finds the lock held by its waker (it takes it at once to return its waiter to the pool).</remarks>
    private int WakeRange(ulong start, ulong end, UffdWaitOutcome outcome)
    {
        long now = Stopwatch.GetTimestamp();
        long nanos = 0;
        UffdWaiter? first = null;
        UffdWaiter[]? more = null;
        int woken = 0;
        using (new RankedMonitor(_lock, LockRank.UserfaultfdContext))
        {
            TakeWaiters(_pending, start, end, outcome, now, ref nanos, ref first, ref more, ref woken);
            TakeWaiters(_waiting, start, end, outcome, now, ref nanos, ref first, ref more, ref woken);
        }

        // Counted before the signals: a woken thread (and whoever it tells) must find its wakeup counted.
        Stats.Add(UffdStat.Wakeups, woken);
        Stats.Add(UffdStat.FaultToWakeNanos, nanos);
        first?.Signal();
        if (more is not null)
        {
            for (int i = 0; i < woken - 1; i++)
            {
                more[i].Signal();
            }

            System.Buffers.ArrayPool<UffdWaiter>.Shared.Return(more, clearArray: true);
        }

        return woken;
    }

    private static void TakeWaiters(List<UffdWaiter> list, ulong start, ulong end, UffdWaitOutcome outcome, long now, ref long nanos, ref UffdWaiter? first, ref UffdWaiter[]? more, ref int woken)
    {
        for (int i = list.Count - 1; i >= 0; i--)
        {
            UffdWaiter w = list[i];
            if (w.Address < start || w.Address >= end)
            {
                continue;
            }

            list.RemoveAt(i);
            w.Outcome = outcome;
            nanos += (long)Stopwatch.GetElapsedTime(w.QueuedAt, now).TotalNanoseconds;
            if (first is null)
            {
                first = w;
            }
            else
            {
                if (more is null || woken - 1 == more.Length)
                {
                    UffdWaiter[] grown = System.Buffers.ArrayPool<UffdWaiter>.Shared.Rent(Math.Max(8, (more?.Length ?? 0) * 2));
                    more?.AsSpan().CopyTo(grown);
                    if (more is not null)
                    {
                        System.Buffers.ArrayPool<UffdWaiter>.Shared.Return(more, clearArray: true);
                    }

                    more = grown;
                }

                more[woken - 1] = w;
            }

            woken++;
        }
    }

    /// <summary>Ends the waits of [start, start + length) with a failure: their faults answer SIGBUS. For a monitor
    /// that could not resolve them (its copy failed), so that the fault ends with an error instead of being
    /// retried for ever. Not a kernel call: the kernel leaves such a thread asleep.</summary>
    /// <param name="start">Page-aligned start.</param>
    /// <param name="length">Bytes.</param>
    /// <returns>How many waiters were ended.</returns>
    internal int FailRange(ulong start, ulong length)
    {
        Stats.Increment(UffdStat.ResolveFailures);
        return WakeRange(start, start + length, UffdWaitOutcome.Failed);
    }

    /// <inheritdoc/>
    public IUserfaultHook? OnFork(Vma vma, AddressSpace child)
    {
        if ((_features & UffdFeatures.EventFork) == 0)
        {
            return null;
        }

        // dup_userfaultfd: one new context per parent context and child, announced once.
        Userfaultfd? childCtx;
        bool queued = false;
        using (new RankedMonitor(_lock, LockRank.UserfaultfdContext))
        {
            if (!_forkChildren.TryGetValue(child, out childCtx))
            {
                childCtx = new Userfaultfd(child) { FaultTimeoutMs = FaultTimeoutMs };
                childCtx._features = _features;
                childCtx._apiDone = true;
                _forkChildren.Add(child, childCtx);
                QueueEventLocked(new UffdMsg(UffdEventType.Fork, 0, Child: childCtx));
                queued = true;
            }
        }

        if (queued)
        {
            _queued.Bump();
        }

        return childCtx;
    }

    /// <inheritdoc/>
    public bool OnRemap(Vma vma, ulong from, ulong to, ulong length)
    {
        if ((_features & UffdFeatures.EventRemap) == 0)
        {
            return false;
        }

        QueueEvent(new UffdMsg(UffdEventType.Remap, from, Arg: to, Length: length));
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
