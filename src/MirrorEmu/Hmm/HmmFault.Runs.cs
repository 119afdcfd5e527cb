using MirrorEmu.Mm;

namespace MirrorEmu.Hmm;

public static partial class HmmFault
{
    /// <summary>
    /// hmm_vma_fault for every collected run: -EPERM first if any run needs a write the VMA forbids,
    /// then regular VMAs in batch and userfaultfd VMAs by the range's policy.
    /// </summary>
    /// <returns>-EBUSY to re-walk from <c>last</c> (success), or an error.</returns>
    private static int FaultRuns(HmmRange range)
    {
        List<FaultRun> runs = range.Runs;
        range.Stats.FaultRuns += runs.Count;
        foreach (FaultRun run in runs)
        {
            if ((run.Required & NeedFault.WriteFault) != 0 && (run.Vma.Flags & VmFlags.Write) == 0)
            {
                range.FailReason = $"a write fault at 0x{run.Start:X16} in a VMA without VM_WRITE";
                return -Errno.EPERM;
            }
        }

        AddressSpace mm = range.Mm;
        long layout = mm.MmapLock.Sequence;
        foreach (FaultRun run in runs)
        {
            if (mm.MmapLock.Sequence != layout)
            {
                // A fault dropped the lock and the VMAs changed meanwhile: the remaining runs are stale.
                range.Stats.EbusyRestarts++;
                return -Errno.EBUSY;
            }

            bool write = (run.Required & NeedFault.WriteFault) != 0;
            int r = (run.Vma.Flags & VmFlags.UffdMissing) != 0 && run.Vma.Userfault is not null
                ? FaultUserfaultRun(range, run, write)
                : FaultRegularRun(range, run, write);
            if (r != 0)
            {
                return r;
            }
        }

        return -Errno.EBUSY;
    }

    /// <summary>A regular VMA: the whole run under this lock hold (empty anonymous entries a leaf table per batch).</summary>
    private static int FaultRegularRun(HmmRange range, FaultRun run, bool write)
    {
        int rc = range.Mm.FaultRangeLocked(run.Start, run.End, write, FaultFlags.Remote, range.TimeoutMs, out long faulted, out ulong failedAt);
        range.Stats.PagesFaulted += faulted;
        if (rc == 0)
        {
            return 0;
        }

        range.FailReason = $"faulting [0x{run.Start:X16}, 0x{run.End:X16}) stopped at 0x{failedAt:X16} with {Errno.Name(rc)}";
        return rc switch
        {
            -Errno.ENOMEM => -Errno.ENOMEM,
            -Errno.EINTR => -Errno.EINTR,
            -Errno.EAGAIN => -Errno.EBUSY, // no progress within the range's timeout
            _ => -Errno.EFAULT, // vm_fault_to_errno(ret, 0): SIGBUS, SIGSEGV and poison are -EFAULT
        };
    }

    /// <summary>A VMA registered with userfaultfd (MISSING): the range's <see cref="UffdFaultPolicy"/>.</summary>
    /// <remarks>
    /// Every fault goes through <see cref="FaultHandler.HandleMmFaultRun"/> and, after a monitor round trip dropped
    /// the mmap lock, back through <see cref="AddressSpace.RetakeAfterRetry"/>, as every other fault path does; a page
    /// that does not become valid within <see cref="HmmRange.TimeoutMs"/> ends the call with -EBUSY naming it.
    /// </remarks>
    private static int FaultUserfaultRun(HmmRange range, FaultRun run, bool write)
    {
        AddressSpace mm = range.Mm;
        HmmFaultStats stats = range.Stats;
        Vma? vma = run.Vma;
        UffdFaultPolicy policy = range.UffdPolicy;
        FaultFlags flags = FaultFlags.Remote | (write ? FaultFlags.Write : FaultFlags.None);
        if (policy != UffdFaultPolicy.Unsupported)
        {
            // The patch: hmm_handle_mm_fault lets handle_mm_fault drop the lock for userfaultfd_missing VMAs.
            flags |= FaultFlags.AllowRetry | FaultFlags.User | FaultFlags.Killable;
        }

        var retry = new FaultRetry(range.TimeoutMs, mm.Counters);
        ulong a = run.Start;
        while (a < run.End)
        {
            if (!mm.NeedsFault(a, write))
            {
                a += PageGeometry.PageSize;
                continue;
            }

            if (!retry.Allow(a))
            {
                range.FailReason = retry.Describe("hmm_range_fault") + " (the userfaultfd monitor did not fill it)";
                return -Errno.EBUSY;
            }

            ulong pages = 1;
            if (policy == UffdFaultPolicy.RangeEvent)
            {
                while (a + (pages << PageGeometry.PageShift) < run.End && mm.NeedsFault(a + (pages << PageGeometry.PageShift), write))
                {
                    pages++;
                }
            }

            long layout = mm.MmapLock.Sequence;
            VmFault r = FaultHandler.HandleMmFaultRun(vma!, a, pages, flags);
            if ((r & (VmFault.Retry | VmFault.Completed)) != 0)
            {
                // The monitor round trip dropped the lock: take it again, the one way back.
                stats.LockDrops++;
                int rc = mm.RetakeAfterRetry(a, layout, ref vma, ref flags);
                stats.LockRetakes++;
                long resolved = CountPresent(mm, a, run.End, write);
                stats.CountRoundTrip(resolved);
                stats.PagesFaulted += resolved;
                if (rc != 0)
                {
                    return rc;
                }

                if (policy == UffdFaultPolicy.SinglePage)
                {
                    // The RFC: "the VMA could have changed, so defer retry logic to the caller" — -EBUSY, re-walk from last.
                    stats.EbusyRestarts++;
                    return -Errno.EBUSY;
                }

                if (vma is null)
                {
                    range.FailReason = $"0x{a:X16} was unmapped while the monitor filled it";
                    return -Errno.EFAULT;
                }

                if (!ReferenceEquals(vma, run.Vma))
                {
                    stats.EbusyRestarts++;
                    return -Errno.EBUSY; // the layout around the run changed: re-walk
                }

                continue;
            }

            if ((r & VmFault.Error) != 0)
            {
                range.FailReason = $"the fault at 0x{a:X16} answered {((r & VmFault.Oom) != 0 ? "VM_FAULT_OOM" : (r & VmFault.SigSegv) != 0 ? "VM_FAULT_SIGSEGV" : "VM_FAULT_SIGBUS")}"
                    + (policy == UffdFaultPolicy.Unsupported ? " (userfaultfd without FAULT_FLAG_ALLOW_RETRY: the Unsupported policy)" : string.Empty);
                return (r & VmFault.Oom) != 0 ? -Errno.ENOMEM : -Errno.EFAULT;
            }
        }

        return 0;
    }

    /// <summary>Pages from <paramref name="a"/> on that no longer need a fault: what one round trip resolved, as the walker sees it.</summary>
    private static long CountPresent(AddressSpace mm, ulong a, ulong end, bool write)
    {
        long n = 0;
        for (; a < end && !mm.NeedsFault(a, write); a += PageGeometry.PageSize)
        {
            n++;
        }

        return n;
    }
}
