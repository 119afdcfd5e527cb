using MirrorEmu.Mm;
using MirrorEmu.Telemetry;
using MirrorEmu.Uffd;

namespace MirrorEmu.Hmm;

public static partial class HmmFault
{
    /// <summary>Faults on one page that did not make it present, before the call gives up with -EBUSY (a released
    /// userfaultfd whose registration is not gone yet, a migration that never ends).</summary>
    private const int MaxAttemptsPerPage = 1000;

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
                return -Errno.EPERM;
            }
        }

        AddressSpace mm = range.Mm;
        long layout = mm.MmapLock.Sequence;
        for (int i = 0; i < runs.Count; i++)
        {
            FaultRun run = runs[i];
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
        int rc = range.Mm.FaultRangeLocked(run.Start, run.End, write, FaultFlags.Remote, out long faulted);
        range.Stats.PagesFaulted += faulted;
        return rc switch
        {
            0 => 0,
            -Errno.ENOMEM => -Errno.ENOMEM,
            -Errno.EINTR => -Errno.EINTR,
            _ => -Errno.EFAULT, // vm_fault_to_errno(ret, 0): SIGBUS, SIGSEGV and poison are -EFAULT
        };
    }

    /// <summary>A VMA registered with userfaultfd (MISSING): the range's <see cref="UffdFaultPolicy"/>.</summary>
    private static int FaultUserfaultRun(HmmRange range, FaultRun run, bool write)
    {
        AddressSpace mm = range.Mm;
        HmmFaultStats stats = range.Stats;
        Vma vma = run.Vma;
        UffdFaultPolicy policy = range.UffdPolicy;
        FaultFlags flags = FaultFlags.Remote | (write ? FaultFlags.Write : FaultFlags.None);
        if (policy != UffdFaultPolicy.Unsupported)
        {
            // The patch: hmm_handle_mm_fault lets handle_mm_fault drop the lock for userfaultfd_missing VMAs.
            flags |= FaultFlags.AllowRetry | FaultFlags.User | FaultFlags.Killable;
        }

        ulong a = run.Start;
        int attempts = 0;
        while (a < run.End)
        {
            if (!mm.NeedsFault(a, write))
            {
                a += PageGeometry.PageSize;
                attempts = 0;
                continue;
            }

            if (++attempts > MaxAttemptsPerPage)
            {
                return -Errno.EBUSY;
            }

            long layout = mm.MmapLock.Sequence;
            VmFault r;
            if (policy == UffdFaultPolicy.RangeEvent && vma.Userfault is Userfaultfd ctx)
            {
                ulong runEnd = a + PageGeometry.PageSize;
                while (runEnd < run.End && mm.NeedsFault(runEnd, write))
                {
                    runEnd += PageGeometry.PageSize;
                }

                r = ctx.HandleUserfaultRange(vma, a, (runEnd - a) >> PageGeometry.PageShift, flags, UserfaultReason.Missing);
            }
            else
            {
                r = FaultHandler.HandleMmFault(vma, a, flags);
            }

            if ((r & (VmFault.Retry | VmFault.Completed)) != 0)
            {
                // The monitor round trip dropped the lock: take it again.
                stats.LockDrops++;
                mm.MmapLock.ReadLock();
                stats.LockRetakes++;
                long pages = CountPresent(mm, a, run.End, write);
                stats.CountRoundTrip(pages);
                stats.PagesFaulted += pages;
                if (CurrentTask.FatalSignalPending)
                {
                    return -Errno.EINTR;
                }

                if (policy == UffdFaultPolicy.SinglePage)
                {
                    // The RFC: "the VMA could have changed, so defer retry logic to the caller" — -EBUSY, re-walk from last.
                    stats.EbusyRestarts++;
                    return -Errno.EBUSY;
                }

                if (mm.MmapLock.Sequence != layout)
                {
                    // fixup_user_fault: the VMA is looked up again after the lock was dropped.
                    Vma? again = mm.VmaLookup(a);
                    if (again is null)
                    {
                        return -Errno.EFAULT;
                    }

                    if (!ReferenceEquals(again, vma))
                    {
                        stats.EbusyRestarts++;
                        return -Errno.EBUSY; // the layout around the run changed: re-walk
                    }
                }

                flags |= FaultFlags.Tried;
                continue;
            }

            if ((r & VmFault.Error) != 0)
            {
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
