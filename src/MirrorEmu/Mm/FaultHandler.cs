using System.Runtime.CompilerServices;
using MirrorEmu.Notifier;
using MirrorEmu.Telemetry;

namespace MirrorEmu.Mm;

/// <summary>
/// handle_mm_fault (mm/memory.c): makes the entry for one address allow a read or a write, and
/// says how with a <see cref="VmFault"/> code. A read fault on private anonymous memory maps the
/// shared zero page (the huge zero page in a THP-eligible VMA, see <see cref="PhysicalMemory.UseHugeZeroPage"/>);
/// a write fault allocates a zeroed frame (a huge page in a THP-eligible VMA) or breaks COW; a file or shmem fault
/// maps the page-cache page (copying it for a private write); a VMA registered with userfaultfd
/// hands missing, minor and write-protect faults to its <see cref="IUserfaultHook"/>.
/// </summary>
/// <remarks>
/// Called with the mmap read lock held. On <see cref="VmFault.Retry"/> / <see cref="VmFault.Completed"/>
/// the lock was released (only a userfault hook does that, and only with <see cref="FaultFlags.AllowRetry"/>
/// and without <see cref="FaultFlags.RetryNoWait"/>); every other result returns with it held.
/// Allocation failure returns <see cref="VmFault.Oom"/> with nothing changed.
/// </remarks>
public static class FaultHandler
{
    private const int HugePages = 1 << PageGeometry.PmdOrder;

    /// <summary>handle_mm_fault: resolves a fault at <paramref name="address"/> in <paramref name="vma"/>.</summary>
    /// <param name="vma">The VMA containing the address, looked up under the lock the caller holds.</param>
    /// <param name="address">The faulting virtual address (any offset in the page).</param>
    /// <param name="flags">FAULT_FLAG_* bits.</param>
    /// <returns>0 (<see cref="VmFault.None"/>) when the access can now proceed, else the VM_FAULT bits.</returns>
    public static VmFault HandleMmFault(Vma vma, ulong address, FaultFlags flags) => HandleMmFaultRun(vma, address, 1, flags);

    /// <summary>
    /// handle_mm_fault for the first page of a run of <paramref name="pages"/> pages the caller found missing:
    /// exactly <see cref="HandleMmFault"/> on that page, except that when userfaultfd must see a MISSING fault there
    /// the message names the whole run (the RangeEvent policy's proposed extension), so one monitor round trip
    /// can fill it. Counted as one fault either way.
    /// </summary>
    /// <param name="vma">The VMA containing the run, looked up under the lock the caller holds.</param>
    /// <param name="address">The first page of the run (any offset in the page).</param>
    /// <param name="pages">Pages in the run, at least 1, all inside <paramref name="vma"/>.</param>
    /// <param name="flags">FAULT_FLAG_* bits.</param>
    /// <returns>As <see cref="HandleMmFault"/>.</returns>
    public static VmFault HandleMmFaultRun(Vma vma, ulong address, ulong pages, FaultFlags flags)
    {
        AddressSpace mm = vma.Mm;
        CounterSet<MmEvent> counters = mm.Counters;
        counters.Increment(MmEvent.Faults);
        mm.MmapLock.DebugAssertLocked();
        if (address < vma.Start || address >= vma.End || (flags & ~FaultFlags.Known) != 0
            || pages == 0 || pages > (vma.End - PageGeometry.PageDown(address)) >> PageGeometry.PageShift)
        {
            return Fail(counters, VmFault.SigSegv);
        }

        address = PageGeometry.PageDown(address);
        bool write = (flags & FaultFlags.Write) != 0;
        if (write ? (vma.Flags & VmFlags.Write) == 0 : (vma.Flags & (VmFlags.Read | VmFlags.Write | VmFlags.Exec)) == 0)
        {
            return Fail(counters, VmFault.SigSegv); // access_error(): the arch handler's check
        }

        if ((vma.Flags & (VmFlags.Io | VmFlags.PfnMap)) != 0)
        {
            // remap_pfn_range mappings are populated up front and have no fault handler.
            return Fail(counters, VmFault.SigBus);
        }

        PageTable pt = mm.PageTable;
        PageTable.PmdTable pmd = pt.GetOrCreatePmdTable(address);
        int pmdIndex = PageGeometry.Index(address, 1);
        while (true)
        {
            ulong[]? leaf = PageTable.ReadPmd(pmd, pmdIndex, out ulong hugeWord);
            if (leaf is null && hugeWord == 0 && ThpEligible(vma, address))
            {
                VmFault r = DoHugeAnonymousPage(vma, address, write);
                if (r != VmFault.Fallback)
                {
                    return r;
                }
            }
            else if (hugeWord != 0)
            {
                VmFault r = HugePmdFault(vma, address, write, new Pte(hugeWord));
                if (r != VmFault.Fallback)
                {
                    return r;
                }

                if (pt.SplitHuge(address))
                {
                    counters.Increment(MmEvent.HugeSplits);
                }

                continue;
            }

            leaf ??= pt.GetOrCreateLeaf(address);
            if (leaf is null)
            {
                continue; // a huge leaf appeared meanwhile: handle it
            }

            return HandlePteFault(vma, address, pages, flags, ref leaf[PageGeometry.Index(address, 0)]);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static VmFault Fail(CounterSet<MmEvent> counters, VmFault fault)
    {
        counters.Increment((fault & VmFault.Oom) != 0 ? MmEvent.OomFaults : MmEvent.ErrorFaults);
        return fault;
    }

    /// <summary>handle_userfault through the VMA's hook, counted.</summary>
    private static VmFault Userfault(Vma vma, ulong address, ulong pages, FaultFlags flags, UserfaultReason reason)
    {
        vma.Mm.Counters.Increment(MmEvent.UserfaultFaults);
        return vma.Userfault!.HandleUserfault(vma, address, pages, flags, reason);
    }

    /// <summary>handle_pte_fault.</summary>
    private static VmFault HandlePteFault(Vma vma, ulong address, ulong pages, FaultFlags flags, ref ulong slot)
    {
        bool write = (flags & FaultFlags.Write) != 0;
        var pte = new Pte(Volatile.Read(ref slot));
        if (pte.IsNoneMostly)
        {
            return vma.IsAnonymous ? DoAnonymousPage(vma, address, pages, flags, ref slot, pte) : DoFault(vma, address, pages, flags, ref slot, pte);
        }

        if (!pte.IsMapped)
        {
            return DoSwapPage(vma, address, flags, ref slot, pte);
        }

        if (pte.IsProtNone)
        {
            // do_numa_page: the VMA allows access (checked above), so this is a hinting fault.
            PageTable.TryUpdate(ref slot, pte, pte.WithPresent());
            return VmFault.None;
        }

        if (write && !pte.IsWritable)
        {
            return DoWpPage(vma, address, flags, ref slot, pte);
        }

        // Only the accessed/dirty bits were missing, or another thread fixed the entry.
        Pte young = pte.WithYoung(write);
        if (young != pte)
        {
            PageTable.TryUpdate(ref slot, pte, young);
        }

        vma.Mm.Counters.Increment(MmEvent.SpuriousFaults);
        return VmFault.None;
    }

    /// <summary>do_anonymous_page.</summary>
    private static VmFault DoAnonymousPage(Vma vma, ulong address, ulong pages, FaultFlags flags, ref ulong slot, Pte old)
    {
        AddressSpace mm = vma.Mm;
        bool wpMarker = old.IsUffdWp && (vma.Flags & VmFlags.UffdWp) != 0 && vma.Userfault is not null;
        if (wpMarker && (flags & FaultFlags.Write) != 0)
        {
            // A write to an unpopulated page under UFFD_FEATURE_WP_UNPOPULATED: a write-protect fault.
            return Userfault(vma, address, 1, flags, UserfaultReason.WriteProtect);
        }

        if (!wpMarker && (vma.Flags & VmFlags.UffdMissing) != 0 && vma.Userfault is not null)
        {
            return Userfault(vma, address, pages, flags, UserfaultReason.Missing);
        }

        if ((flags & FaultFlags.Write) == 0)
        {
            if (mm.InstallPte(ref slot, old, Pte.Special(PhysicalMemory.ZeroPfn).WithUffdWp(wpMarker)))
            {
                mm.Counters.Increment(MmEvent.ZeroPageMaps);
            }

            return VmFault.None;
        }

        PhysicalMemory memory = mm.Memory;
        if (!memory.TryAllocate(out ulong pfn))
        {
            return Fail(mm.Counters, VmFault.Oom);
        }

        memory.Frame(pfn).Clear();
        if (!mm.InstallPte(ref slot, old, Pte.Present(pfn, writable: true)))
        {
            return VmFault.None; // someone else mapped it first
        }

        mm.Counters.Increment(MmEvent.FaultsAnon);
        return VmFault.None;
    }

    /// <summary>do_fault (do_read_fault / do_cow_fault / do_shared_fault) for file and shmem VMAs.</summary>
    private static VmFault DoFault(Vma vma, ulong address, ulong pages, FaultFlags flags, ref ulong slot, Pte old)
    {
        AddressSpace mm = vma.Mm;
        MemFile file = vma.File!;
        ulong index = vma.PageIndex(address);
        if (index >= file.PageCount)
        {
            return Fail(mm.Counters, VmFault.SigBus); // beyond the end of the file
        }

        bool cached = file.TryFindPage(index, out ulong pfn);
        if (vma.Userfault is not null)
        {
            // shmem_get_folio_gfp: a cached page with MINOR registration, or a missing page with MISSING registration.
            if (cached && (vma.Flags & VmFlags.UffdMinor) != 0)
            {
                return Userfault(vma, address, 1, flags, UserfaultReason.Minor);
            }

            if (!cached && (vma.Flags & VmFlags.UffdMissing) != 0)
            {
                return Userfault(vma, address, pages, flags, UserfaultReason.Missing);
            }
        }

        if (!cached && !file.TryGetOrCreatePage(index, out pfn))
        {
            return Fail(mm.Counters, VmFault.Oom);
        }

        PhysicalMemory memory = mm.Memory;
        bool write = (flags & FaultFlags.Write) != 0;

        // set_pte_range: an entry installed over a userfaultfd write-protect marker keeps the protection
        // (pte_mkuffd_wp: the uffd-wp bit, not writable), so the write that follows is a write-protect fault.
        bool wpMarker = old.IsUffdWp && (vma.Flags & VmFlags.UffdWp) != 0;
        if (write && !vma.IsShared)
        {
            // do_cow_fault: a private copy of the page-cache page.
            if (!memory.TryAllocate(out ulong copy))
            {
                return Fail(mm.Counters, VmFault.Oom);
            }

            memory.Frame(pfn).CopyTo(memory.Frame(copy));
            if (!mm.InstallPte(ref slot, old, Pte.Present(copy, writable: !wpMarker).WithUffdWp(wpMarker)))
            {
                return VmFault.None;
            }

            mm.Counters.Increment(MmEvent.CowCopies);
            mm.Counters.Increment(MmEvent.FaultsFile);
            return VmFault.None;
        }

        memory.Get(pfn);
        bool writable = vma.IsShared && (vma.Flags & VmFlags.Write) != 0 && !wpMarker;
        Pte entry = Pte.Present(pfn, writable).WithUffdWp(wpMarker);
        if (writable && !write)
        {
            entry = entry.WithClean();
        }

        if (!mm.InstallPte(ref slot, old, entry))
        {
            return VmFault.None;
        }

        mm.Counters.Increment(MmEvent.FaultsFile);
        return VmFault.None;
    }

    /// <summary>do_wp_page: a write to a present, write-protected entry.</summary>
    private static VmFault DoWpPage(Vma vma, ulong address, FaultFlags flags, ref ulong slot, Pte pte)
    {
        AddressSpace mm = vma.Mm;
        if (pte.IsUffdWp && (vma.Flags & VmFlags.UffdWp) != 0 && vma.Userfault is not null)
        {
            return Userfault(vma, address, 1, flags, UserfaultReason.WriteProtect);
        }

        if (vma.IsShared)
        {
            // wp_page_shared: the page is the file's; just allow the write.
            PageTable.TryUpdate(ref slot, pte, pte.WithWritable(true).WithYoung(true));
            return VmFault.None;
        }

        PhysicalMemory memory = mm.Memory;
        ulong oldPfn = pte.Pfn;
        bool zero = oldPfn == PhysicalMemory.ZeroPfn && pte.IsSpecial;
        if (!zero && !pte.IsSpecial && !memory.IsPageCache(oldPfn) && memory.RefCount(oldPfn) == 1)
        {
            // wp_page_reuse: an exclusive anonymous page needs no copy.
            if (PageTable.TryUpdate(ref slot, pte, pte.WithWritable(true).WithYoung(true)))
            {
                mm.Counters.Increment(MmEvent.WpReuses);
            }

            return VmFault.None;
        }

        // wp_page_copy: a private copy, installed between invalidate start and end (CLEAR over the page); the
        // old frame's reference is dropped after a TLB shootdown, so a CPU access still reading it through the
        // old entry finishes first (ptep_clear_flush, then folio_put).
        if (!memory.TryAllocate(out ulong copy))
        {
            return Fail(mm.Counters, VmFault.Oom);
        }

        if (zero)
        {
            memory.Frame(copy).Clear();
        }
        else
        {
            memory.Frame(oldPfn).CopyTo(memory.Frame(copy));
        }

        var range = new NotifierRange(address, address + PageGeometry.PageSize, NotifierEvent.Clear);
        mm.Notifiers.InvalidateRangeStart(range);
        bool swapped = mm.InstallPte(ref slot, pte, Pte.Present(copy, writable: true));
        if (swapped)
        {
            mm.Tlb.Shootdown();
        }

        mm.Notifiers.InvalidateRangeEnd(range);
        if (!swapped)
        {
            return VmFault.None;
        }

        memory.Put(oldPfn);
        mm.Counters.Increment(MmEvent.CowCopies);
        return VmFault.None;
    }

    /// <summary>do_swap_page: a non-present, non-empty entry.</summary>
    private static VmFault DoSwapPage(Vma vma, ulong address, FaultFlags flags, ref ulong slot, Pte pte)
    {
        AddressSpace mm = vma.Mm;
        PhysicalMemory memory = mm.Memory;
        bool write = (flags & FaultFlags.Write) != 0;
        switch (pte.Swap)
        {
            case SwapType.Swap:
            {
                // The entry's reference on the swap-cache frame passes to the PTE; a userfaultfd write-protect bit stays
                // (pte_swp_uffd_wp → pte_mkuffd_wp, mapped read-only).
                ulong pfn = pte.Pfn;
                bool exclusive = !vma.IsShared && memory.RefCount(pfn) == 1;
                bool writable = (vma.Flags & VmFlags.Write) != 0 && (vma.IsShared || exclusive) && !pte.IsUffdWp;
                if (PageTable.TryUpdate(ref slot, pte, Pte.Present(pfn, writable).WithYoung(write && writable).WithUffdWp(pte.IsUffdWp)))
                {
                    mm.Counters.Increment(MmEvent.SwapIns);
                }

                return VmFault.Major;
            }

            case SwapType.MigrationRead:
            case SwapType.MigrationWrite:
            {
                // migration_entry_wait: wait a little for the migration to finish, then let the access retry.
                mm.MigrationEntryWait(address, pte);
                return VmFault.None;
            }

            case SwapType.DevicePrivateRead:
            case SwapType.DevicePrivateWrite:
            {
                // The page's pagemap (page_pgmap) moves it back to system memory, with a reference held meanwhile.
                if (DevicePagemap.Of(pte.Pfn) is not { } pagemap)
                {
                    return Fail(mm.Counters, VmFault.SigBus);
                }

                if (!pagemap.TryGet(pte.Pfn))
                {
                    return VmFault.None; // freed since the entry was read: it has changed, the access retries
                }

                try
                {
                    mm.Counters.Increment(MmEvent.DevicePrivateFaults);
                    return pagemap.Ops.MigrateToRam(vma, address, pte);
                }
                finally
                {
                    pagemap.Put(pte.Pfn);
                }
            }

            case SwapType.DeviceExclusive:
            {
                // remove_device_exclusive_entry: restore the normal mapping (raising EXCLUSIVE).
                ulong pfn = pte.Pfn;
                bool writable = (vma.Flags & VmFlags.Write) != 0 && (vma.IsShared || memory.RefCount(pfn) == 1);
                var range = new NotifierRange(address, address + PageGeometry.PageSize, NotifierEvent.Exclusive);
                mm.Notifiers.InvalidateRangeStart(range);
                PageTable.TryUpdate(ref slot, pte, Pte.Present(pfn, writable));
                mm.Notifiers.InvalidateRangeEnd(range);
                return VmFault.None;
            }

            case SwapType.Poisoned:
                return Fail(mm.Counters, VmFault.HwPoison);

            case SwapType.Guard:
                return Fail(mm.Counters, VmFault.SigSegv); // a guard region (MADV_GUARD_INSTALL): handle_pte_marker answers SIGSEGV

            default:
                return Fail(mm.Counters, VmFault.SigBus);
        }
    }

    private static bool ThpEligible(Vma vma, ulong address)
    {
        ulong start = address & ~PageGeometry.PmdMask;
        return (vma.Flags & (VmFlags.HugePage | VmFlags.NoHugePage | VmFlags.UffdMask)) == VmFlags.HugePage
            && vma.IsAnonymous
            && start >= vma.Start
            && start + PageGeometry.PmdSize <= vma.End;
    }

    /// <summary>do_huge_pmd_anonymous_page: for a read fault while <see cref="PhysicalMemory.UseHugeZeroPage"/> is on (Linux's
    /// default), the huge zero page, read-only and special; otherwise a 2 MiB zeroed huge page mapped as the VMA allows. Fallback
    /// to small pages when neither can be had.</summary>
    private static VmFault DoHugeAnonymousPage(Vma vma, ulong address, bool write)
    {
        AddressSpace mm = vma.Mm;
        PhysicalMemory memory = mm.Memory;
        ulong haddr = address & ~PageGeometry.PmdMask;
        if (!write && memory.UseHugeZeroPage)
        {
            if (!memory.TryGetHugeZeroPage(out ulong zeroPfn))
            {
                return VmFault.Fallback; // THP_FAULT_FALLBACK: the read maps the small zero page
            }

            if (mm.PageTable.TryInstallHuge(haddr, Pte.Special(zeroPfn).WithHuge(true)))
            {
                mm.Counters.Increment(MmEvent.ZeroPageMaps);
            }

            return VmFault.None; // installed, or someone else populated the slot: the access retries
        }

        if (!memory.TryAllocateZeroedHuge(out ulong basePfn))
        {
            return VmFault.Fallback;
        }

        bool writable = (vma.Flags & VmFlags.Write) != 0;
        Pte entry = Pte.Present(basePfn, writable).WithHuge(true);
        if (!mm.PageTable.TryInstallHuge(haddr, entry))
        {
            PutHuge(memory, basePfn);
            return VmFault.None; // someone else populated the slot: the access retries
        }

        mm.Counters.Increment(MmEvent.HugeFaults);
        return VmFault.None;
    }

    /// <summary>Gives back the frames of a huge page no entry ever mapped (no shootdown needed).</summary>
    private static void PutHuge(PhysicalMemory memory, ulong basePfn)
    {
        for (int i = 0; i < HugePages; i++)
        {
            memory.Put(basePfn + (ulong)i);
        }
    }

    /// <summary>
    /// do_huge_zero_wp_pmd (mm/huge_memory.c): a write to the huge zero page replaces it with a fresh zeroed huge page, mapped
    /// writable, between invalidate start and end (CLEAR over the 2 MiB). The huge zero page holds no reference, so nothing
    /// is freed. Fallback when no huge page can be had: the caller splits the entry into small zero-page entries and the
    /// write copies one page (do_huge_pmd_wp_page's fallback).
    /// </summary>
    private static VmFault DoHugeZeroWpPmd(Vma vma, ulong address, Pte huge)
    {
        AddressSpace mm = vma.Mm;
        PhysicalMemory memory = mm.Memory;
        if (!memory.TryAllocateZeroedHuge(out ulong basePfn))
        {
            return VmFault.Fallback;
        }

        ulong haddr = address & ~PageGeometry.PmdMask;
        var range = new NotifierRange(haddr, haddr + PageGeometry.PmdSize, NotifierEvent.Clear);
        mm.Notifiers.InvalidateRangeStart(range);
        bool replaced = mm.PageTable.TryUpdateHuge(haddr, huge, Pte.Present(basePfn, writable: true).WithHuge(true));
        mm.Notifiers.InvalidateRangeEnd(range);
        if (!replaced)
        {
            PutHuge(memory, basePfn);
            return VmFault.None; // the entry changed meanwhile: the access retries
        }

        mm.Counters.Increment(MmEvent.HugeFaults);
        return VmFault.None;
    }

    /// <summary>A fault on a huge leaf: reuse it for a write if every frame is exclusive, replace the huge zero page by a huge
    /// page (<see cref="DoHugeZeroWpPmd"/>), else Fallback (split, then COW per page).</summary>
    private static VmFault HugePmdFault(Vma vma, ulong address, bool write, Pte huge)
    {
        AddressSpace mm = vma.Mm;
        if (!huge.IsPresent)
        {
            return VmFault.Fallback;
        }

        if (!write || huge.IsWritable)
        {
            mm.PageTable.TryUpdateHuge(address, huge, huge.WithYoung(write));
            mm.Counters.Increment(MmEvent.SpuriousFaults);
            return VmFault.None;
        }

        if (huge.IsSpecial)
        {
            return DoHugeZeroWpPmd(vma, address, huge);
        }

        PhysicalMemory memory = mm.Memory;
        for (int i = 0; i < HugePages; i++)
        {
            if (memory.RefCount(huge.Pfn + (ulong)i) != 1)
            {
                return VmFault.Fallback;
            }
        }

        if (mm.PageTable.TryUpdateHuge(address, huge, huge.WithWritable(true).WithYoung(true)))
        {
            mm.Counters.Increment(MmEvent.WpReuses);
        }

        return VmFault.None;
    }
}
