using MirrorEmu.Mm;
using MirrorEmu.Notifier;

namespace MirrorEmu.Hmm;

/// <summary>
/// The canonical driver loop around hmm_range_fault (lib/test_hmm.c's dmirror_range_fault, and
/// Documentation/mm/hmm.rst): read_begin → mmap read lock → hmm_range_fault → unlock → driver lock →
/// read_retry, again while the range moved, within an overall time budget.
/// </summary>
public static class HmmDriverLoop
{
    /// <summary>Runs the loop until hmm_range_fault succeeds with an unchanged sequence, fails, or the budget runs out.</summary>
    /// <param name="range">The range (its notifier inserted).</param>
    /// <param name="driverLock">The lock the invalidate callback takes around SetSeq.</param>
    /// <param name="timeoutMs">The budget in milliseconds (the kernel driver uses <see cref="HmmFault.DefaultTimeoutMs"/>).</param>
    /// <param name="whileLocked">Called under the driver lock once the result is known to be current (where a driver updates
    /// its device page table); may be null. It must not take the mmap lock, touch memory through the CPU (CpuRead/CpuWrite),
    /// fault, or wait for a userfaultfd monitor: the driver lock is inside the mmap lock in the lock order (see the top of
    /// Mm/AddressSpace.cs), so any of these can deadlock against an invalidation; the lock-order checker reports it.</param>
    /// <param name="cancellation">The fatal signal: -EINTR, checked between calls, while waiting for the mmap lock or the
    /// sequence, and by a userfaultfd fault waiting for its monitor.</param>
    /// <returns>0; -EBUSY when the budget ran out; -EINTR; or hmm_range_fault's error.</returns>
    public static KResult Run(HmmRange range, DriverLock driverLock, int timeoutMs, Action<HmmRange>? whileLocked = null, CancellationToken cancellation = default)
    {
        int rc = RunCore(range, driverLock, timeoutMs, whileLocked, cancellation);
        return rc == 0 ? KResult.Ok : KResult.Error(-rc, $"hmm driver loop [0x{range.Start:X16}, 0x{range.End:X16}): {range.FailReason ?? (rc == -Errno.EBUSY ? $"the range kept changing for {timeoutMs} ms" : Errno.Name(rc))}");
    }

    private static int RunCore(HmmRange range, DriverLock driverLock, int timeoutMs, Action<HmmRange>? whileLocked, CancellationToken cancellation)
    {
        AddressSpace mm = range.Mm;
        long deadline = Environment.TickCount64 + timeoutMs;
        using CurrentTask.Scope scope = CurrentTask.Enter(cancellation);
        while (true)
        {
            if (cancellation.IsCancellationRequested)
            {
                return -Errno.EINTR;
            }

            long left = deadline - Environment.TickCount64;
            if (left <= 0)
            {
                return -Errno.EBUSY;
            }

            MmuNotifierSubscriptions subs = range.Notifier.Subscriptions ?? throw new InvalidOperationException("the range's notifier is not inserted");
            int rc = subs.TryReadBegin(range.Notifier, out ulong seq, (int)Math.Min(left, int.MaxValue), cancellation);
            if (rc != 0)
            {
                return rc;
            }

            range.NotifierSeq = seq;
            if (mm.MmapLock.ReadLockKillable(cancellation) != 0)
            {
                return -Errno.EINTR;
            }

            try
            {
                rc = HmmFault.RangeFaultCore(range);
            }
            finally
            {
                mm.MmapLock.ReadUnlock();
            }

            if (rc == -Errno.EBUSY)
            {
                continue;
            }

            if (rc != 0)
            {
                return rc;
            }

            using (driverLock.Hold())
            {
                if (range.Notifier.ReadRetry(range.NotifierSeq))
                {
                    continue;
                }

                whileLocked?.Invoke(range);
                return 0;
            }
        }
    }

    /// <summary>
    /// The same loop with hmm_range_fault_unlocked (the 2026 series' call, which takes the mmap lock itself and applies
    /// the userfaultfd policy unchanged): fault → driver lock → read_retry → <paramref name="whileLocked"/>, again while the
    /// range moved, within the budget.
    /// </summary>
    /// <param name="range">The range (its notifier inserted).</param>
    /// <param name="driverLock">The lock the invalidate callback takes around SetSeq.</param>
    /// <param name="timeoutMs">The budget in milliseconds.</param>
    /// <param name="whileLocked">As for <see cref="Run"/>; may be null.</param>
    /// <param name="cancellation">The fatal signal: -EINTR.</param>
    /// <returns>0; -EBUSY when the budget ran out; -EINTR; or hmm_range_fault's error.</returns>
    /// <remarks>Call without the mmap lock.</remarks>
    public static KResult RunUnlocked(HmmRange range, DriverLock driverLock, int timeoutMs, Action<HmmRange>? whileLocked = null, CancellationToken cancellation = default)
    {
        long deadline = Environment.TickCount64 + timeoutMs;
        while (true)
        {
            int left = (int)Math.Clamp(deadline - Environment.TickCount64, 0, int.MaxValue);
            if (left <= 0)
            {
                return KResult.Error(Errno.EBUSY, $"hmm driver loop [0x{range.Start:X16}, 0x{range.End:X16}): the range kept changing for {timeoutMs} ms");
            }

            KResult r = HmmFault.RangeFaultUnlocked(range, left, cancellation);
            if (!r.IsOk)
            {
                return r;
            }

            if (!driverLock.TryEnter((int)Math.Clamp(deadline - Environment.TickCount64, 0, int.MaxValue), cancellation))
            {
                continue; // the budget check above ends it
            }

            try
            {
                if (range.Notifier.ReadRetry(range.NotifierSeq))
                {
                    continue;
                }

                whileLocked?.Invoke(range);
                return KResult.Ok;
            }
            finally
            {
                driverLock.Exit();
            }
        }
    }
}
