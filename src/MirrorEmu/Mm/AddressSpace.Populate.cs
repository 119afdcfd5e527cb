using MirrorEmu.Telemetry;

namespace MirrorEmu.Mm;

public sealed partial class AddressSpace
{
    /// <summary>Frames taken from the pool per lock hold when populating a run of empty entries.</summary>
    private const int PopulateBatch = PageGeometry.LevelEntries;

    /// <summary>
    /// Faults in every page of [start, end) that does not yet allow the access (faultin_page_range):
    /// empty entries of private anonymous VMAs are filled in batches, a leaf table at a time, with one
    /// pool lock hold per batch; any other entry that needs it goes through <see cref="FaultHandler.HandleMmFault"/>.
    /// </summary>
    /// <param name="start">Page-aligned start.</param>
    /// <param name="end">Page-aligned end.</param>
    /// <param name="write">Populate writable (break COW) rather than readable.</param>
    /// <param name="extraFlags">Added to the fault flags of per-page faults (for example <see cref="FaultFlags.AllowRetry"/>
    /// so that a userfaultfd VMA can be waited on).</param>
    /// <param name="faulted">Pages this call made present.</param>
    /// <returns>0; -ENOMEM (a hole, or out of frames), -EINVAL (VM_IO/VM_PFNMAP, or an access the VMA forbids),
    /// -EFAULT (SIGBUS/SIGSEGV), -EHWPOISON, -EINTR (a fatal signal during a lock drop), -EAGAIN (a page made no
    /// progress for <see cref="FaultRetryTimeoutMs"/>, or RETRY_NOWAIT would have had to wait).</returns>
    /// <remarks>Call with the mmap read lock held. A userfault hook may drop it; this retakes it and looks the VMA
    /// up again (revalidation), so it returns with the lock held in every case.</remarks>
    internal int PopulateLocked(ulong start, ulong end, bool write, FaultFlags extraFlags, out long faulted)
    {
        Counters.Increment(MmEvent.PopulateCalls);
        return FaultRangeLocked(start, end, write, extraFlags, _faultRetryTimeoutMs, out faulted, out _);
    }

    /// <summary>The body of <see cref="PopulateLocked"/>, for callers that are not populate (hmm_range_fault's batch fill).</summary>
    /// <param name="start">Page-aligned start.</param>
    /// <param name="end">Page-aligned end.</param>
    /// <param name="write">Fault writable.</param>
    /// <param name="extraFlags">Added to the per-page fault flags.</param>
    /// <param name="timeoutMs">How long one page may make no progress before the call gives up with -EAGAIN.</param>
    /// <param name="faulted">Pages this call made present.</param>
    /// <param name="stoppedAt">Where a failed call stopped (the page that failed).</param>
    /// <returns>As <see cref="PopulateLocked"/>.</returns>
    internal int FaultRangeLocked(ulong start, ulong end, bool write, FaultFlags extraFlags, int timeoutMs, out long faulted, out ulong stoppedAt)
    {
        faulted = 0;
        ulong va = start;
        FaultFlags flags = extraFlags | (write ? FaultFlags.Write : FaultFlags.None);
        var retry = new FaultRetry(timeoutMs, Counters);
        int rc = 0;
        while (va < end && rc == 0)
        {
            Vma? vma = VmaLookup(va);
            if (vma is null)
            {
                rc = -Errno.ENOMEM;
                break;
            }

            if ((vma.Flags & (VmFlags.Io | VmFlags.PfnMap)) != 0
                || (write && (vma.Flags & VmFlags.Write) == 0)
                || (vma.Flags & VmFlags.AccessMask) == 0)
            {
                rc = -Errno.EINVAL;
                break;
            }

            rc = FaultVmaRange(vma, ref va, Math.Min(end, vma.End), write, ref flags, ref retry, ref faulted);
        }

        stoppedAt = va;
        Counters.Add(MmEvent.PopulatedPages, faulted);
        return rc;
    }

    /// <summary>The part of <see cref="FaultRangeLocked"/> inside one VMA: from <paramref name="va"/> to <paramref name="vmaEnd"/>, or
    /// until a fault dropped the lock and the layout changed (then <paramref name="va"/> is where to look the VMA up again).</summary>
    private int FaultVmaRange(Vma vma, ref ulong va, ulong vmaEnd, bool write, ref FaultFlags flags, ref FaultRetry retry, ref long faulted)
    {
        while (va < vmaEnd)
        {
            ulong spanEnd = Math.Min(vmaEnd, (va | PageGeometry.PmdMask) + 1);
            if (vma.IsAnonymous && vma.Userfault is null && PageTable.FindHuge(va).IsNone
                && (vma.Flags & VmFlags.HugePage) == 0)
            {
                int rc = PopulateAnonSpan(va, spanEnd, write, ref faulted, out ulong stoppedAt);
                va = stoppedAt;
                if (rc != 0)
                {
                    return rc;
                }

                if (va >= spanEnd)
                {
                    continue;
                }
            }

            // Pages that already allow the access (a userfaultfd monitor's block, say) are skipped a
            // leaf table at a time; the first one that does not goes through the fault handler.
            ulong good = SkipGood(va, spanEnd, write);
            if (good > va)
            {
                va = good;
                continue;
            }

            if (!retry.Allow(va))
            {
                return -Errno.EAGAIN; // no progress: a migration entry that never resolves, a monitor that never fills
            }

            long layout = MmapLock.Sequence;
            VmFault r = FaultHandler.HandleMmFault(vma, va, flags);
            if ((r & (VmFault.Retry | VmFault.Completed)) != 0 && (flags & FaultFlags.RetryNoWait) == 0)
            {
                Vma? again = vma;
                int rc = RetakeAfterRetry(va, layout, ref again, ref flags);
                if (rc != 0)
                {
                    return rc;
                }

                if (!ReferenceEquals(again, vma))
                {
                    return 0; // the VMAs changed while the lock was out: the caller looks the VMA up again at va
                }

                continue;
            }

            if ((r & VmFault.Error) != 0)
            {
                return r.ToErrno();
            }

            if ((r & VmFault.Retry) != 0)
            {
                return -Errno.EAGAIN; // RETRY_NOWAIT: the caller asked not to wait
            }

            if (!NeedsFault(va, write))
            {
                faulted++;
                va += PageGeometry.PageSize;
            }
        }

        return 0;
    }

    /// <summary>The first address of [va, spanEnd) (one leaf table) whose entry does not allow the access; spanEnd if all do.</summary>
    private ulong SkipGood(ulong va, ulong spanEnd, bool write)
    {
        ulong[]? leaf = PageTable.FindLeaf(va);
        if (leaf is null)
        {
            return NeedsFault(va, write) ? va : va + PageGeometry.PageSize; // no table, or a huge mapping
        }

        int first = PageGeometry.Index(va, 0);
        int last = first + (int)((spanEnd - va) >> PageGeometry.PageShift);
        int i = first;
        while (i < last)
        {
            var pte = new Pte(Volatile.Read(ref leaf[i]));
            if (!pte.Allows(write))
            {
                break;
            }

            i++;
        }

        return va + ((ulong)(i - first) << PageGeometry.PageShift);
    }

    /// <summary>True unless the entry at <paramref name="va"/> already allows the access (present, and writable for a write).</summary>
    /// <param name="va">A virtual address.</param>
    /// <param name="write">Whether the access writes.</param>
    internal bool NeedsFault(ulong va, bool write)
    {
        Pte pte = PageTable.Read(va);
        return !pte.Allows(write);
    }

    /// <summary>
    /// Fills the empty entries of [va, spanEnd) (one leaf table) of a private anonymous VMA: zeroed
    /// frames taken a batch at a time for a write, the zero page for a read. Stops at the first entry
    /// that is neither empty nor already good, and returns its address in <paramref name="stoppedAt"/>.
    /// </summary>
    private unsafe int PopulateAnonSpan(ulong va, ulong spanEnd, bool write, ref long faulted, out ulong stoppedAt)
    {
        ulong[]? leaf = PageTable.GetOrCreateLeaf(va);
        if (leaf is null)
        {
            stoppedAt = va;
            return 0;
        }

        Span<ulong> frames = stackalloc ulong[PopulateBatch];
        int first = PageGeometry.Index(va, 0);
        int last = first + (int)((spanEnd - va) >> PageGeometry.PageShift);
        int i = first;
        while (i < last)
        {
            ulong word = Volatile.Read(ref leaf[i]);
            if (word != 0)
            {
                var pte = new Pte(word);
                if (pte.Allows(write))
                {
                    i++;
                    continue;
                }

                stoppedAt = va + ((ulong)(i - first) << PageGeometry.PageShift);
                return 0;
            }

            // A run of empty entries [i, runEnd).
            int runEnd = i + 1;
            while (runEnd < last && Volatile.Read(ref leaf[runEnd]) == 0)
            {
                runEnd++;
            }

            if (!write)
            {
                Pte zero = Pte.Special(PhysicalMemory.ZeroPfn);
                for (int j = i; j < runEnd; j++)
                {
                    if (InstallPte(ref leaf[j], Pte.None, zero))
                    {
                        faulted++;
                    }
                }

                Counters.Add(MmEvent.ZeroPageMaps, runEnd - i);
                i = runEnd;
                continue;
            }

            // A long run is cleared with streaming stores and one fence before the entries go in, as a userfaultfd
            // fill of as many pages copies them (Mfill): the frames are fresh, nobody reads them before the install.
            int got = _memory.TryAllocateBatch(frames[..(runEnd - i)]);
            bool streaming = got >= PageCopy.StreamingThresholdPages;
            for (int j = 0; j < got; j++)
            {
                PageCopy.ClearFrame(_memory.FramePointer(frames[j]), streaming);
            }

            if (streaming)
            {
                PageCopy.Fence();
            }

            for (int j = 0; j < got; j++)
            {
                if (InstallPte(ref leaf[i + j], Pte.None, Pte.Present(frames[j], writable: true)))
                {
                    faulted++;
                }
            }

            Counters.Add(MmEvent.FaultsAnon, got);
            if (got < runEnd - i)
            {
                stoppedAt = va + ((ulong)(i + got - first) << PageGeometry.PageShift);
                Counters.Increment(MmEvent.OomFaults);
                return -Errno.ENOMEM;
            }

            i = runEnd;
        }

        stoppedAt = spanEnd;
        return 0;
    }
}
