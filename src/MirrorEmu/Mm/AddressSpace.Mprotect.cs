using MirrorEmu.Notifier;

namespace MirrorEmu.Mm;

public sealed partial class AddressSpace
{
    /// <summary>
    /// mprotect(2) as Linux does it (mm/mprotect.c: do_mprotect_pkey): sets the protection of the VMAs in
    /// [addr, addr + length) one after the other, splitting and merging them, and updates their present entries
    /// (write permission removed, PROT_NONE entries made protnone), raising PROTECTION_VMA over each. A hole stops
    /// it: the VMAs before the hole keep their new protection and the call returns -ENOMEM.
    /// </summary>
    /// <param name="addr">Page-aligned start.</param>
    /// <param name="length">Length in bytes (rounded up to pages); 0 does nothing.</param>
    /// <param name="prot">PROT_* bits; PROT_SEM is accepted and ignored, PROT_GROWSDOWN asks to extend the change down to
    /// the start of a VM_GROWSDOWN mapping (the emulator has none, so it is -EINVAL over a mapping).</param>
    /// <returns>0; -EINVAL (unaligned, unknown bits, both grows bits, PROT_GROWSDOWN over a mapping); -ENOMEM (the end
    /// wraps around, nothing mapped at addr, or a hole after the VMAs that were changed).</returns>
    public KResult Mprotect(ulong addr, ulong length, Prot prot)
    {
        ThrowIfDisposed();
        Prot grows = prot & (Prot.GrowsDown | Prot.GrowsUp);
        prot &= ~(Prot.GrowsDown | Prot.GrowsUp);
        if (grows == (Prot.GrowsDown | Prot.GrowsUp))
        {
            return KResult.Error(Errno.EINVAL, $"mprotect: prot=0x{(int)(prot | grows):X} has both PROT_GROWSDOWN and PROT_GROWSUP");
        }

        if (!PageGeometry.IsPageAligned(addr))
        {
            return KResult.Error(Errno.EINVAL, $"mprotect: addr=0x{addr:X16} is not page aligned");
        }

        if (length == 0)
        {
            return KResult.Ok;
        }

        ulong end = unchecked(addr + PageGeometry.PageAlignWrapping(length));
        if (end <= addr)
        {
            return KResult.Error(Errno.ENOMEM, $"mprotect: addr=0x{addr:X16} + length=0x{length:X} wraps around");
        }

        if ((prot & ~(Prot.Read | Prot.Write | Prot.Exec | Prot.Sem)) != 0)
        {
            return KResult.Error(Errno.EINVAL, $"mprotect: prot=0x{(int)prot:X} has unknown bits");
        }

        MmapLock.WriteLock();
        try
        {
            int i = FindVmaIndex(addr);
            if (i >= _vmas.Count || _vmas[i].Start >= end)
            {
                return KResult.Error(Errno.ENOMEM, $"mprotect: nothing is mapped in [0x{addr:X16}, 0x{end:X16})");
            }

            if (grows != 0)
            {
                return KResult.Error(Errno.EINVAL, $"mprotect: PROT_GROWSDOWN over the mapping at 0x{_vmas[i].Start:X16}, which is not VM_GROWSDOWN");
            }

            if (_vmas[i].Start > addr)
            {
                return KResult.Error(Errno.ENOMEM, $"mprotect: addr=0x{addr:X16} is not mapped");
            }

            ulong at = addr;
            while (at < end)
            {
                i = FindVmaIndex(at);
                if (i >= _vmas.Count || _vmas[i].Start > at)
                {
                    return KResult.Error(Errno.ENOMEM, $"mprotect: [0x{addr:X16}, 0x{end:X16}) has a hole at 0x{at:X16}; the part before it was changed");
                }

                at = MprotectFixup(i, at, Math.Min(end, _vmas[i].End), prot);
            }

            return KResult.Ok;
        }
        finally
        {
            MmapLock.WriteUnlock();
        }
    }

    /// <summary>mprotect_fixup: gives [start, end) of VMA <paramref name="i"/> the protection, with the VM_ACCOUNT rules
    /// (a private mapping made writable is charged; an anonymous one without an anon_vma made read-only is not),
    /// splitting and merging. Call with the mmap write lock held.</summary>
    /// <returns>Where the walk goes on: the end of the VMA that now holds the range.</returns>
    private ulong MprotectFixup(int i, ulong start, ulong end, Prot prot)
    {
        Vma vma = _vmas[i];
        VmFlags old = vma.Flags;
        VmFlags flags = (old & ~VmFlags.AccessMask) | ToVmFlags(prot & (Prot.Read | Prot.Write | Prot.Exec));
        if ((flags & VmFlags.Write) != 0)
        {
            if ((old & (VmFlags.Account | VmFlags.Write | VmFlags.Shared | VmFlags.NoReserve)) == 0)
            {
                flags |= VmFlags.Account;
            }
        }
        else if ((old & VmFlags.Account) != 0 && vma.IsAnonymous)
        {
            EnsureAnonVma(i);
            if (vma.AnonVma is null)
            {
                flags &= ~VmFlags.Account;
            }
        }

        if (flags == old)
        {
            return vma.End;
        }

        int at = UpdateVmaFlags(start, end, flags);
        vma = _vmas[at];
        NotifierRange range = InvalidateRangeStart(start, end, NotifierEvent.ProtectionVma);
        ChangeProtection(vma, prot);
        InvalidateRangeEnd(range);
        return MergeAroundOne(at);
    }

    /// <summary>vma_modify_flags: splits [start, end) (inside one VMA) off and gives it <paramref name="flags"/>.
    /// Call with the mmap write lock held.</summary>
    /// <returns>The index of the VMA that is now [start, end).</returns>
    private int UpdateVmaFlags(ulong start, ulong end, VmFlags flags)
    {
        (int first, _) = SplitRange(start, end);
        Vma old = _vmas[first];
        Vma updated = old.CloneRange(old.Start, old.End);
        updated.Flags = flags;
        ReplaceVmaAt(first, updated);
        return first;
    }

    /// <summary>Merges VMA <paramref name="at"/> with its neighbours where Linux would; returns the end of the VMA that holds it then.</summary>
    private ulong MergeAroundOne(int at)
    {
        if (at + 1 < _vmas.Count)
        {
            TryMergeWithNext(at);
        }

        if (at > 0 && TryMergeWithNext(at - 1))
        {
            at--;
        }

        return _vmas[at].End;
    }

    /// <summary>change_protection: rewrites the present and protnone entries of <paramref name="vma"/> for <paramref name="prot"/>
    /// (and makes writable migration and device-private entries read-only).
    /// Private mappings keep a write bit only if they had it and still may write (a later write fault reuses or copies);
    /// shared mappings get it from the protection.</summary>
    private void ChangeProtection(Vma vma, Prot prot)
    {
        bool none = (prot & (Prot.Read | Prot.Write | Prot.Exec)) == 0;
        bool mayWrite = (prot & Prot.Write) != 0;
        for (ulong va = vma.Start; va < vma.End;)
        {
            ulong spanEnd = Math.Min(vma.End, (va | PageGeometry.PmdMask) + 1);
            Pte huge = PageTable.FindHuge(va);
            if (!huge.IsNone)
            {
                if ((va & PageGeometry.PmdMask) == 0 && spanEnd - va == PageGeometry.PmdSize)
                {
                    PageTable.TryUpdateHuge(va, huge, Reprotect(huge, none, mayWrite, vma.IsShared));
                    va = spanEnd;
                    continue;
                }

                PageTable.SplitHuge(va);
                Counters.Increment(Telemetry.MmEvent.HugeSplits);
            }

            ulong[]? leaf = PageTable.FindLeaf(va);
            if (leaf is not null)
            {
                for (ulong a = va; a < spanEnd; a += PageGeometry.PageSize)
                {
                    ref ulong slot = ref leaf[PageGeometry.Index(a, 0)];
                    while (true)
                    {
                        var pte = new Pte(Volatile.Read(ref slot));
                        if (!pte.IsMapped)
                        {
                            // change_pte_range: writable migration and device-private entries become read-only whatever
                            // the new protection ("a protection check is difficult"); a later write faults them back.
                            Pte readable = pte.WithReadableSwap();
                            if (readable == pte || PageTable.TryUpdate(ref slot, pte, readable))
                            {
                                break;
                            }

                            continue;
                        }

                        Pte updated = Reprotect(pte, none, mayWrite, vma.IsShared);
                        if (updated == pte || PageTable.TryUpdate(ref slot, pte, updated))
                        {
                            break;
                        }
                    }
                }
            }

            va = spanEnd;
        }
    }

    private static Pte Reprotect(Pte pte, bool none, bool mayWrite, bool shared)
    {
        if (none)
        {
            return pte.IsPresent ? pte.WithProtNone() : pte;
        }

        Pte present = pte.IsProtNone ? pte.WithPresent() : pte;
        if (present.IsSpecial)
        {
            return present.WithWritable(false);
        }

        return present.WithWritable(shared ? mayWrite : mayWrite && pte.IsWritable);
    }

    /// <summary>
    /// madvise(2) as Linux 6.18 does it (mm/madvise.c): every advice of include/uapi/asm-generic/mman-common.h except the
    /// KSM, MADV_COLLAPSE and memory-failure ones. The advice is applied to each VMA of [addr, addr + length) in turn;
    /// holes are skipped and reported as -ENOMEM at the end, and the first VMA that refuses the advice ends the call
    /// with its error (the VMAs before it keep theirs). The populate advices fault the range in and stop at a hole.
    /// </summary>
    /// <param name="addr">Page-aligned start.</param>
    /// <param name="length">Length in bytes (rounded up to pages); 0 does nothing.</param>
    /// <param name="advice">The advice. Flag advices (NORMAL, RANDOM, SEQUENTIAL, DONTFORK, DOFORK, DONTDUMP, DODUMP,
    /// WIPEONFORK, KEEPONFORK, HUGEPAGE, NOHUGEPAGE) split and merge VMAs; DONTNEED drops pages (keeping guard and
    /// userfaultfd markers); PAGEOUT reclaims what this VMA alone maps (splits huge pages, unmaps page-cache pages, swaps
    /// anonymous pages out when the pool has swap: <see cref="PhysicalMemory.SwapEnabled"/>); FREE, COLD and WILLNEED change
    /// nothing the emulator keeps (it has no LRU and no memory pressure); REMOVE punches a hole in the shared file;
    /// GUARD_INSTALL / GUARD_REMOVE add and remove guard regions.</param>
    /// <returns>0; -EINVAL (unaligned, the length wraps, not an advice, or an advice a VMA refuses: DONTNEED/COLD/PAGEOUT/
    /// GUARD_INSTALL/REMOVE on VM_LOCKED, FREE/WIPEONFORK on non-anonymous memory, populate without the access, VM_IO/VM_PFNMAP);
    /// -EACCES (REMOVE on a mapping that is not shared and writable); -ENOMEM (a hole); -EFAULT (populating would SIGBUS).</returns>
    public KResult Madvise(ulong addr, ulong length, Advice advice)
    {
        ThrowIfDisposed();
        if (!IsAdvice(advice))
        {
            return KResult.Error(Errno.EINVAL, $"madvise: advice={(int)advice} is not an madvise advice the emulator offers");
        }

        if (!PageGeometry.IsPageAligned(addr))
        {
            return KResult.Error(Errno.EINVAL, $"madvise: addr=0x{addr:X16} is not page aligned");
        }

        ulong len = PageGeometry.PageAlignWrapping(length);
        ulong end = unchecked(addr + len);
        if ((length != 0 && len == 0) || end < addr)
        {
            return KResult.Error(Errno.EINVAL, $"madvise: addr=0x{addr:X16} + length=0x{length:X} wraps around");
        }

        if (end == addr)
        {
            return KResult.Ok;
        }

        switch (advice)
        {
            case Advice.PopulateRead:
            case Advice.PopulateWrite:
                return MadvisePopulate(addr, end, advice == Advice.PopulateWrite);
            case Advice.Remove:
                return MadviseRemove(addr, end);
            case Advice.DontNeed or Advice.DontNeedLocked or Advice.Free or Advice.WillNeed or Advice.Cold or Advice.PageOut:
                MmapLock.ReadLock();
                try
                {
                    return MadviseWalk(addr, end, advice);
                }
                finally
                {
                    MmapLock.ReadUnlock();
                }

            default:
                MmapLock.WriteLock();
                try
                {
                    return MadviseWalk(addr, end, advice);
                }
                finally
                {
                    MmapLock.WriteUnlock();
                }
        }
    }

    private static bool IsAdvice(Advice advice) => advice is Advice.Normal or Advice.Random or Advice.Sequential or Advice.WillNeed
        or Advice.DontNeed or Advice.Free or Advice.Remove or Advice.DontFork or Advice.DoFork or Advice.HugePage or Advice.NoHugePage
        or Advice.DontDump or Advice.DoDump or Advice.WipeOnFork or Advice.KeepOnFork or Advice.Cold or Advice.PageOut
        or Advice.PopulateRead or Advice.PopulateWrite or Advice.DontNeedLocked or Advice.GuardInstall or Advice.GuardRemove;

    /// <summary>madvise_walk_vmas: the advice on each VMA in [addr, end); holes are -ENOMEM at the end, a VMA's error ends it.
    /// Call with the mmap lock held (write for the advices that change VMAs).</summary>
    private KResult MadviseWalk(ulong addr, ulong end, Advice advice)
    {
        bool hole = false;
        for (ulong at = addr; at < end;)
        {
            int i = FindVmaIndex(at);
            if (i >= _vmas.Count || _vmas[i].Start >= end)
            {
                return KResult.Error(Errno.ENOMEM, $"madvise: [0x{at:X16}, 0x{end:X16}) is not mapped");
            }

            if (_vmas[i].Start > at)
            {
                hole = true;
                at = _vmas[i].Start;
            }

            KResult r = MadviseVma(i, at, Math.Min(end, _vmas[i].End), advice, out ulong next);
            if (!r.IsOk)
            {
                return r;
            }

            at = next;
        }

        return hole ? KResult.Error(Errno.ENOMEM, $"madvise: [0x{addr:X16}, 0x{end:X16}) has holes; the advice was applied to the mapped parts") : KResult.Ok;
    }

    /// <summary>madvise_vma_behavior on [start, end) of VMA <paramref name="i"/>.</summary>
    /// <param name="i">The VMA's index.</param>
    /// <param name="start">Page-aligned start inside it.</param>
    /// <param name="end">Page-aligned end inside it.</param>
    /// <param name="advice">The advice.</param>
    /// <param name="next">Where the walk goes on (the end of the VMA that now holds the range).</param>
    private KResult MadviseVma(int i, ulong start, ulong end, Advice advice, out ulong next)
    {
        Vma vma = _vmas[i];
        next = vma.End;
        VmFlags f = vma.Flags;
        bool special = (f & VmFlags.Special) != 0;
        switch (advice)
        {
            case Advice.WillNeed:
                return KResult.Ok; // read-ahead and swap-in: nothing to read in
            case Advice.Cold:
            case Advice.PageOut:
                if ((f & (VmFlags.Locked | VmFlags.PfnMap)) != 0)
                {
                    return KResult.Error(Errno.EINVAL, $"madvise: MADV_{advice.ToString().ToUpperInvariant()} on the VM_LOCKED/VM_PFNMAP mapping at 0x{vma.Start:X16}");
                }

                if (advice == Advice.PageOut)
                {
                    PageOut(i, start, end); // MADV_COLD only ages the LRU, which the emulator has not
                }

                return KResult.Ok;
            case Advice.DontNeed:
            case Advice.DontNeedLocked:
            case Advice.Free:
                if ((f & VmFlags.PfnMap) != 0 || (advice != Advice.DontNeedLocked && (f & VmFlags.Locked) != 0))
                {
                    return KResult.Error(Errno.EINVAL, $"madvise: MADV_{advice.ToString().ToUpperInvariant()} on the VM_LOCKED/VM_PFNMAP mapping at 0x{vma.Start:X16}");
                }

                vma.Userfault?.OnRemove(start, end); // userfaultfd_remove
                if (advice == Advice.Free)
                {
                    // Lazily freed pages keep their contents until reclaim, which the emulator never does.
                    return vma.IsAnonymous ? KResult.Ok : KResult.Error(Errno.EINVAL, $"madvise: MADV_FREE on the non-anonymous mapping at 0x{vma.Start:X16}");
                }

                MadviseDontNeed(i, start, end);
                return KResult.Ok;
            case Advice.GuardInstall:
                if (special || (f & VmFlags.Locked) != 0)
                {
                    return KResult.Error(Errno.EINVAL, $"madvise: MADV_GUARD_INSTALL on the VM_LOCKED/VM_IO/VM_PFNMAP mapping at 0x{vma.Start:X16}");
                }

                GuardInstall(i, start, end);
                return KResult.Ok;
            case Advice.GuardRemove:
                if (special)
                {
                    return KResult.Error(Errno.EINVAL, $"madvise: MADV_GUARD_REMOVE on the VM_IO/VM_PFNMAP mapping at 0x{vma.Start:X16}");
                }

                GuardRemove(start, end);
                return KResult.Ok;
        }

        VmFlags flags = advice switch
        {
            Advice.Normal => f & ~(VmFlags.RandRead | VmFlags.SeqRead),
            Advice.Sequential => (f & ~VmFlags.RandRead) | VmFlags.SeqRead,
            Advice.Random => (f & ~VmFlags.SeqRead) | VmFlags.RandRead,
            Advice.DontFork => f | VmFlags.DontCopy,
            Advice.DoFork => f & ~VmFlags.DontCopy,
            Advice.DontDump => f | VmFlags.DontDump,
            Advice.DoDump => f & ~VmFlags.DontDump,
            Advice.WipeOnFork => f | VmFlags.WipeOnFork,
            Advice.KeepOnFork => f & ~VmFlags.WipeOnFork,
            Advice.HugePage => (f | VmFlags.HugePage) & ~VmFlags.NoHugePage,
            _ => (f | VmFlags.NoHugePage) & ~VmFlags.HugePage,
        };
        string? refused = advice switch
        {
            Advice.DoFork when (f & VmFlags.Io) != 0 => "VM_IO",
            Advice.WipeOnFork when vma.File is not null || vma.IsShared => "not private anonymous memory",
            Advice.KeepOnFork when (f & VmFlags.Droppable) != 0 => "MAP_DROPPABLE",
            Advice.DoDump when special || (f & VmFlags.Droppable) != 0 => "VM_SPECIAL or MAP_DROPPABLE",
            _ => null,
        };
        if (refused is not null)
        {
            return KResult.Error(Errno.EINVAL, $"madvise: MADV_{advice.ToString().ToUpperInvariant()} refused: the mapping at 0x{vma.Start:X16} is {refused}");
        }

        if (flags != f)
        {
            next = MergeAroundOne(UpdateVmaFlags(start, end, flags));
        }

        return KResult.Ok;
    }

    /// <summary>MADV_DONTNEED on [start, end) of VMA <paramref name="i"/> under the read lock: CLEAR over the range, then
    /// every entry is zapped but the guard and userfaultfd write-protect markers, which zap_page_range_single keeps.</summary>
    private void MadviseDontNeed(int i, ulong start, ulong end)
    {
        EnsureAnonVma(i); // the anon_vma outlives the pages
        Vma vma = _vmas[i];
        NotifierRange range = InvalidateRangeStart(start, end, NotifierEvent.Clear);
        ZapRange(vma, start, end, freeTables: false, dropMarkers: false);
        InvalidateRangeEnd(range);
    }

    /// <summary>MADV_GUARD_INSTALL (madvise_guard_install): the VMA gets an anon_vma (anon_vma_prepare), every entry of
    /// [start, end) that is not a guard marker is zapped, and each becomes a guard marker.</summary>
    private void GuardInstall(int i, ulong start, ulong end)
    {
        Vma vma = _vmas[i];
        vma.AnonVma ??= FindMergeableAnonVma(i);
        NotifierRange range = InvalidateRangeStart(start, end, NotifierEvent.Clear);
        ZapRange(vma, start, end, freeTables: false);
        InvalidateRangeEnd(range);
        Pte guard = Pte.SwapEntry(SwapType.Guard, 0);
        for (ulong va = start; va < end; va += PageGeometry.PageSize)
        {
            ref ulong slot = ref PageTable.GetOrCreateLeaf(va)![PageGeometry.Index(va, 0)];
            PageTable.TryUpdate(ref slot, new Pte(Volatile.Read(ref slot)), guard);
        }
    }

    /// <summary>MADV_GUARD_REMOVE: the guard markers of [start, end) become empty entries.</summary>
    private void GuardRemove(ulong start, ulong end)
    {
        for (ulong va = start; va < end; va += PageGeometry.PageSize)
        {
            ulong[]? leaf = PageTable.FindLeaf(va);
            if (leaf is not null)
            {
                ref ulong slot = ref leaf[PageGeometry.Index(va, 0)];
                var pte = new Pte(Volatile.Read(ref slot));
                if (pte.Swap == SwapType.Guard)
                {
                    PageTable.TryUpdate(ref slot, pte, Pte.None);
                }
            }
        }
    }

    /// <summary>
    /// MADV_POPULATE_READ / _WRITE (madvise_populate, faultin_page_range): faults [addr, end) in, VMA by VMA, stopping at
    /// the first hole (-ENOMEM), at a VMA whose protection does not allow the access or that is VM_IO/VM_PFNMAP (-EINVAL),
    /// or at a page that would SIGBUS (-EFAULT); the pages before stay populated.
    /// </summary>
    private KResult MadvisePopulate(ulong addr, ulong end, bool write)
    {
        string what = write ? "MADV_POPULATE_WRITE" : "MADV_POPULATE_READ";
        MmapLock.ReadLock();
        try
        {
            for (ulong at = addr; at < end;)
            {
                Vma? vma = VmaLookup(at);
                if (vma is null)
                {
                    return KResult.Error(Errno.ENOMEM, $"madvise: {what}: 0x{at:X16} is not mapped");
                }

                if ((vma.Flags & (VmFlags.Io | VmFlags.PfnMap)) != 0 || (vma.Flags & (write ? VmFlags.Write : VmFlags.Read)) == 0)
                {
                    return KResult.Error(Errno.EINVAL, $"madvise: {what}: the mapping at 0x{vma.Start:X16} ({vma.Prot}) does not allow it");
                }

                ulong to = Math.Min(end, vma.End);
                int rc = PopulateLocked(at, to, write, FaultFlags.AllowRetry | FaultFlags.Killable, out _);
                if (rc != 0)
                {
                    int code = rc is -Errno.EINVAL or -Errno.EFAULT or -Errno.EHWPOISON or -Errno.EINTR ? rc : -Errno.ENOMEM;
                    return KResult.Error(-code, $"madvise: {what} of [0x{at:X16}, 0x{to:X16}) failed with {Errno.Name(rc)}");
                }

                at = to;
            }

            return KResult.Ok;
        }
        finally
        {
            MmapLock.ReadUnlock();
        }
    }

    /// <summary>
    /// MADV_REMOVE (madvise_remove): for each VMA, which must be a shared writable mapping of a file or shmem that is not
    /// VM_LOCKED, raises REMOVE to userfaultfd, drops the mmap lock and punches the hole in the file
    /// (<see cref="MemFile.PunchHole"/>): every mapping of those pages, in every address space, sees zeros from then on.
    /// </summary>
    private KResult MadviseRemove(ulong addr, ulong end)
    {
        bool hole = false;
        for (ulong at = addr; at < end;)
        {
            MemFile file;
            ulong firstPage;
            ulong to;
            MmapLock.ReadLock();
            try
            {
                Vma? vma = FindVma(at);
                if (vma is null || vma.Start >= end)
                {
                    return KResult.Error(Errno.ENOMEM, $"madvise: MADV_REMOVE: [0x{at:X16}, 0x{end:X16}) is not mapped");
                }

                hole |= vma.Start > at;
                at = Math.Max(at, vma.Start);
                to = Math.Min(end, vma.End);
                if ((vma.Flags & VmFlags.Locked) != 0 || vma.File is null)
                {
                    return KResult.Error(Errno.EINVAL, $"madvise: MADV_REMOVE on the {(vma.File is null ? "anonymous" : "VM_LOCKED")} mapping at 0x{vma.Start:X16}");
                }

                if (!vma.IsShared)
                {
                    return KResult.Error(Errno.EACCES, $"madvise: MADV_REMOVE on the private mapping at 0x{vma.Start:X16}: it needs a shared writable one");
                }

                file = vma.File;
                firstPage = vma.PageIndex(at);
                vma.Userfault?.OnRemove(at, to);
            }
            finally
            {
                MmapLock.ReadUnlock();
            }

            file.PunchHole(firstPage, firstPage + ((to - at) >> PageGeometry.PageShift));
            at = to;
        }

        return hole ? KResult.Error(Errno.ENOMEM, $"madvise: [0x{addr:X16}, 0x{end:X16}) has holes; the advice was applied to the mapped parts") : KResult.Ok;
    }
}
