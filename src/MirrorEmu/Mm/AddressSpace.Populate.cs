using MirrorEmu.Telemetry;

namespace MirrorEmu.Mm;

public sealed partial class AddressSpace
{
    /// <summary>Frames taken from the pool per lock hold when populating a run of empty entries.</summary>
    private const int PopulateBatch = PageGeometry.LevelEntries;

    /// <summary>Faults on one page that returned success without making it present, before giving up with -EAGAIN.</summary>
    private const int MaxAttemptsPerPage = 10_000;

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
    /// -EFAULT (SIGBUS/SIGSEGV), -EHWPOISON.</returns>
    /// <remarks>Call with the mmap read lock held. A userfault hook may drop it; this retakes it and looks the VMA
    /// up again (revalidation), so it returns with the lock held in every case.</remarks>
    internal int PopulateLocked(ulong start, ulong end, bool write, FaultFlags extraFlags, out long faulted)
    {
        Counters.Increment(MmEvent.PopulateCalls);
        return FaultRangeLocked(start, end, write, extraFlags, out faulted);
    }

    /// <summary>The body of <see cref="PopulateLocked"/>, for callers that are not populate (hmm_range_fault's batch fill).</summary>
    internal int FaultRangeLocked(ulong start, ulong end, bool write, FaultFlags extraFlags, out long faulted)
    {
        faulted = 0;
        ulong va = start;
        FaultFlags flags = extraFlags | (write ? FaultFlags.Write : FaultFlags.None);
        int attemptsOnPage = 0;
        while (va < end)
        {
            Vma? vma = VmaLookup(va);
            if (vma is null)
            {
                return -Errno.ENOMEM;
            }

            if ((vma.Flags & (VmFlags.Io | VmFlags.PfnMap)) != 0
                || (write && (vma.Flags & VmFlags.Write) == 0)
                || (vma.Flags & VmFlags.AccessMask) == 0)
            {
                return -Errno.EINVAL;
            }

            ulong vmaEnd = Math.Min(end, vma.End);
            while (va < vmaEnd)
            {
                ulong spanEnd = Math.Min(vmaEnd, (va | PageGeometry.PmdMask) + 1);
                if (vma.IsAnonymous && vma.Userfault is null && PageTable.FindHuge(va).IsNone
                    && (vma.Flags & VmFlags.HugePage) == 0)
                {
                    int rc = PopulateAnonSpan(va, spanEnd, write, ref faulted, out ulong stoppedAt);
                    if (rc != 0)
                    {
                        return rc;
                    }

                    va = stoppedAt;
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

                long seqBefore = MmapLock.Sequence;
                VmFault r = FaultHandler.HandleMmFault(vma, va, flags);
                if ((r & (VmFault.Retry | VmFault.Completed)) != 0 && (flags & FaultFlags.RetryNoWait) == 0)
                {
                    // The hook dropped the mmap lock: retake it and revalidate the VMA.
                    MmapLock.ReadLock();
                    if (CurrentTask.FatalSignalPending)
                    {
                        return -Errno.EINTR;
                    }

                    flags |= FaultFlags.Tried;
                    if (MmapLock.Sequence != seqBefore)
                    {
                        vma = VmaLookup(va);
                        if (vma is null)
                        {
                            return -Errno.ENOMEM;
                        }

                        vmaEnd = Math.Min(end, vma.End);
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
                    attemptsOnPage = 0;
                }
                else if (++attemptsOnPage > MaxAttemptsPerPage)
                {
                    return -Errno.EAGAIN; // a migration entry that never resolves, say
                }
            }
        }

        Counters.Add(MmEvent.PopulatedPages, faulted);
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
            if (!pte.IsPresent || (write && !pte.IsWritable))
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
        return !pte.IsPresent || (write && !pte.IsWritable);
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
                if (pte.IsPresent && (!write || pte.IsWritable))
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
                    if (PageTable.TryUpdate(ref leaf[j], Pte.None, zero))
                    {
                        faulted++;
                    }
                }

                Counters.Add(MmEvent.ZeroPageMaps, runEnd - i);
                i = runEnd;
                continue;
            }

            int got = _memory.TryAllocateBatch(frames[..(runEnd - i)]);
            for (int j = 0; j < got; j++)
            {
                ulong pfn = frames[j];
                new Span<byte>(_memory.FramePointer(pfn), PageGeometry.PageSizeInt).Clear();
                if (PageTable.TryUpdate(ref leaf[i + j], Pte.None, Pte.Present(pfn, writable: true)))
                {
                    faulted++;
                }
                else
                {
                    _memory.Put(pfn);
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
