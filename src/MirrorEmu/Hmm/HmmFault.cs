using System.Runtime.CompilerServices;
using MirrorEmu.Mm;

namespace MirrorEmu.Hmm;

/// <summary>
/// hmm_range_fault (mm/hmm.c: hmm_range_fault, hmm_vma_walk_pmd, hmm_vma_handle_pte) with the kernel's flag and error
/// semantics, and the fault policies for userfaultfd VMAs (<see cref="UffdFaultPolicy"/>).
/// </summary>
/// <remarks>
/// <para>A walk writes the output of every page it passes until the first page that needs a fault
/// (that address becomes <c>last</c>); from there on it only looks, and collects every run of pages
/// to fault up to the end of the range (or to a page that needs the walk to stop: a migration entry,
/// an access that can only fail). The runs are then faulted (regular VMAs in batch, a leaf table of
/// empty entries per pool lock hold; userfaultfd VMAs by the policy), and the walk restarts from
/// <c>last</c> after the notifier check, as the kernel's -EBUSY loop does. Entries below <c>last</c>
/// are outputs and the rest are untouched inputs at every return (the contract of hmm_range_fault's comment in mm/hmm.c).</para>
/// <para>Split by concern: <c>Hmm.Walk.cs</c> (the page-table walk) and <c>Hmm.Fault.cs</c> (faulting the runs).</para>
/// </remarks>
public static partial class HmmFault
{
    /// <summary>HMM_RANGE_DEFAULT_TIMEOUT, in milliseconds.</summary>
    public const int DefaultTimeoutMs = 1000;

    /// <summary>The walk collected runs to fault (the 2026 series' HMM_FAULT_PENDING).</summary>
    private const int FaultPending = 1;

    /// <summary>
    /// hmm_range_fault: fills <see cref="HmmRange.HmmPfns"/> with the CPU page table's view of the range,
    /// faulting pages the requests need.
    /// </summary>
    /// <param name="range">The range; <see cref="HmmRange.NotifierSeq"/> must come from ReadBegin.</param>
    /// <returns>0; -EBUSY (the notifier sequence moved: take a new one and call again); -EFAULT (a page that had to
    /// become valid could not: no VMA, VM_IO/VM_PFNMAP, no VM_READ, a special page, a failed fault — userfaultfd
    /// VMAs under <see cref="UffdFaultPolicy.Unsupported"/>); -EPERM (a write fault on a VMA without VM_WRITE, checked
    /// before any fault); -ENOMEM; -EINTR (a fatal signal during a lock-dropping fault).</returns>
    /// <remarks>Call with the mmap read lock held. The SinglePage, Batched and RangeEvent policies let a
    /// userfaultfd fault drop it; they retake it before going on, so it is held again at return.</remarks>
    public static KResult RangeFault(HmmRange range)
    {
        int rc = RangeFaultCore(range);
        return rc == 0 ? KResult.Ok : Failure(range, "hmm_range_fault", rc);
    }

    /// <summary>The error result of a call on <paramref name="range"/>: the code, the range and where and why it stopped.</summary>
    private static KResult Failure(HmmRange range, string call, int rc) =>
        KResult.Error(-rc, $"{call} [0x{range.Start:X16}, 0x{range.End:X16}): {range.FailReason ?? DefaultReason(rc)}");

    private static string DefaultReason(int rc) => rc switch
    {
        -Errno.EBUSY => "the notifier sequence moved (an invalidation hit the range)",
        -Errno.EINTR => "a fatal signal ended the call",
        _ => Errno.Name(rc),
    };

    /// <summary>hmm_range_fault with the kernel's int result; <see cref="HmmRange.FailReason"/> says why on failure.</summary>
    internal static int RangeFaultCore(HmmRange range)
    {
        range.FailReason = null;
        AddressSpace mm = range.Mm;
        mm.MmapLock.DebugAssertLocked();
        range.Stats.Calls++;
        ulong last = range.Start;
        int ret;
        do
        {
            if (range.Notifier.CheckRetry(range.NotifierSeq))
            {
                range.Stats.EbusyReturns++;
                return -Errno.EBUSY;
            }

            range.Stats.Walks++;
            ret = Walk(range, ref last);
            if (ret == FaultPending)
            {
                ret = FaultRuns(range);
            }
        }
        while (ret == -Errno.EBUSY);

        return ret;
    }

    /// <summary>
    /// hmm_range_fault_unlocked_timeout (the 2026 "mm/hmm: Add userfaultfd support" series, v7/v8): takes the mmap lock
    /// itself, re-reads the notifier sequence before every pass, and retries -EBUSY until the timeout.
    /// </summary>
    /// <param name="range">The range.</param>
    /// <param name="timeoutMs">The retry budget in milliseconds; 0 for none. It restarts after a pass in which a fault dropped the lock.</param>
    /// <param name="cancellation">The fatal signal: -EINTR.</param>
    /// <returns>0; -EBUSY (the budget ran out); -EINTR; or RangeFault's errors.</returns>
    /// <remarks>Call without the mmap lock.</remarks>
    public static KResult RangeFaultUnlocked(HmmRange range, int timeoutMs, CancellationToken cancellation = default)
    {
        int rc = RangeFaultUnlockedCore(range, timeoutMs, cancellation);
        return rc == 0 ? KResult.Ok : Failure(range, "hmm_range_fault_unlocked", rc);
    }

    private static int RangeFaultUnlockedCore(HmmRange range, int timeoutMs, CancellationToken cancellation)
    {
        AddressSpace mm = range.Mm;
        long budget = timeoutMs;
        long deadline = timeoutMs == 0 ? long.MaxValue : Environment.TickCount64 + budget;
        using CurrentTask.Scope scope = CurrentTask.Enter(cancellation);
        while (true)
        {
            if (cancellation.IsCancellationRequested)
            {
                return -Errno.EINTR;
            }

            int left = deadline == long.MaxValue ? Timeout.Infinite : (int)Math.Max(0, Math.Min(int.MaxValue, deadline - Environment.TickCount64));
            MirrorEmu.Notifier.MmuNotifierSubscriptions subs = range.Notifier.Subscriptions
                ?? throw new InvalidOperationException("the range's notifier is not inserted");
            int rc = subs.TryReadBegin(range.Notifier, out ulong seq, left, cancellation);
            if (rc != 0)
            {
                return rc;
            }

            range.NotifierSeq = seq;
            if (mm.MmapLock.ReadLockKillable(cancellation) != 0)
            {
                return -Errno.EINTR;
            }

            long drops = range.Stats.LockDrops;
            int ret;
            try
            {
                ret = RangeFaultCore(range);
            }
            finally
            {
                mm.MmapLock.ReadUnlock();
            }

            if (ret != -Errno.EBUSY)
            {
                return ret;
            }

            if (cancellation.IsCancellationRequested)
            {
                return -Errno.EINTR;
            }

            if (range.Stats.LockDrops != drops && timeoutMs != 0)
            {
                deadline = Environment.TickCount64 + budget; // a lock-dropping fault restarts the budget
            }

            if (Environment.TickCount64 >= deadline)
            {
                return -Errno.EBUSY;
            }
        }
    }

    /// <summary>hmm_pte_need_fault.</summary>
    /// <param name="input">The page's input word.</param>
    /// <param name="cpuFlags">VALID / WRITE of the CPU mapping (0 for none).</param>
    /// <param name="defaultFlags">range.default_flags.</param>
    /// <param name="mask">range.pfn_flags_mask.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static NeedFault PteNeedFault(ulong input, ulong cpuFlags, ulong defaultFlags, ulong mask)
    {
        ulong req = (input & mask) | defaultFlags;
        if ((req & HmmPfn.ReqFault) == 0)
        {
            return NeedFault.None;
        }

        if ((req & HmmPfn.ReqWrite) != 0 && (cpuFlags & HmmPfn.Write) == 0)
        {
            return NeedFault.Fault | NeedFault.WriteFault;
        }

        return (cpuFlags & HmmPfn.Valid) == 0 ? NeedFault.Fault : NeedFault.None;
    }
}
