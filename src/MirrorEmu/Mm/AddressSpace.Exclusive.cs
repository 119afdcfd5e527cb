using MirrorEmu.Notifier;
using MirrorEmu.Telemetry;

namespace MirrorEmu.Mm;

public sealed partial class AddressSpace
{
    /// <summary>
    /// make_device_exclusive (mm/rmap.c, Linux 6.15+): gives a device exclusive access to the anonymous page at
    /// <paramref name="address"/> for its atomics. The page is faulted in writable first (get_user_page_vma_remote with
    /// FOLL_WRITE, which also undoes another device's exclusive entry), MMU_NOTIFY_EXCLUSIVE carrying
    /// <paramref name="owner"/> is raised over the page, and its writable entry is replaced by a device-exclusive entry
    /// that holds the page (after a TLB shootdown: no CPU access still uses the old entry). The next CPU access restores
    /// the page (do_swap_page → remove_device_exclusive_entry, raising EXCLUSIVE so the device drops its mapping); fork
    /// restores it before copying (copy_nonpresent_pte).
    /// </summary>
    /// <param name="address">Any address in the page.</param>
    /// <param name="owner">Passed with the notifier event (a caller that filters its own EXCLUSIVE events must not, or it
    /// livelocks); dmirror passes null.</param>
    /// <param name="pfn">The page's frame, which the device may now use exclusively.</param>
    /// <returns>0; -EFAULT (no VMA, no write permission, a fault that failed: SIGBUS, SIGSEGV, userfaultfd without a
    /// retry); -ENOMEM (no frame); -EOPNOTSUPP (not an anonymous page: a file or shmem page); -EBUSY (the page kept
    /// changing for <see cref="FaultRetryTimeoutMs"/>). On an error nothing changed.</returns>
    /// <remarks>Call with the mmap read lock held; it stays held (the fault is not allowed to drop it).</remarks>
    public KResult MakeDeviceExclusive(ulong address, object? owner, out ulong pfn)
    {
        MmapLock.DebugAssertLocked();
        pfn = 0;
        ulong addr = PageGeometry.PageDown(address);
        var retry = new FaultRetry(_faultRetryTimeoutMs, Counters);
        while (true)
        {
            Vma? vma = VmaLookup(addr);
            if (vma is null || (vma.Flags & VmFlags.Write) == 0)
            {
                return KResult.Error(Errno.EFAULT, $"make_device_exclusive: 0x{addr:X16} is {(vma is null ? "not mapped" : "not writable")}");
            }

            if ((vma.Flags & (VmFlags.Io | VmFlags.PfnMap)) != 0)
            {
                return KResult.Error(Errno.EFAULT, $"make_device_exclusive: 0x{addr:X16} is in a VM_IO / VM_PFNMAP mapping");
            }

            if (!PageTable.FindHuge(addr).IsNone && PageTable.SplitHuge(addr))
            {
                Counters.Increment(MmEvent.HugeSplits); // FOLL_SPLIT_PMD
            }

            ulong[]? leaf = PageTable.FindLeaf(addr);
            var pte = leaf is null ? Pte.None : new Pte(Volatile.Read(ref leaf[PageGeometry.Index(addr, 0)]));
            if (!pte.IsPresent || !pte.IsWritable || pte.IsSpecial)
            {
                if (!retry.Allow(addr))
                {
                    return KResult.Error(Errno.EBUSY, $"make_device_exclusive: {retry.Describe("write fault")}");
                }

                VmFault r = FaultHandler.HandleMmFault(vma, addr, FaultFlags.Write | FaultFlags.Remote);
                if ((r & VmFault.Oom) != 0)
                {
                    return KResult.Error(Errno.ENOMEM, $"make_device_exclusive: no frame for 0x{addr:X16}");
                }

                if ((r & VmFault.Error) != 0)
                {
                    return KResult.Error(Errno.EFAULT, $"make_device_exclusive: the write fault at 0x{addr:X16} failed ({r})");
                }

                continue;
            }

            if (vma.IsShared || _memory.IsPageCache(pte.Pfn))
            {
                return KResult.Error(Errno.EOPNOTSUPP, $"make_device_exclusive: the page at 0x{addr:X16} is not anonymous");
            }

            NotifierRange range = InvalidateRangeStart(addr, addr + PageGeometry.PageSize, NotifierEvent.Exclusive, owner);
            ref ulong slot = ref leaf![PageGeometry.Index(addr, 0)];
            bool done = PageTable.TryUpdate(ref slot, pte, Pte.SwapEntry(SwapType.DeviceExclusive, pte.Pfn));
            if (done)
            {
                Tlb.Shootdown(); // ptep_clear_flush: no CPU store lands after the device took the page
            }

            InvalidateRangeEnd(range);
            if (done)
            {
                Counters.Increment(MmEvent.DeviceExclusiveMade);
                pfn = pte.Pfn;
                return KResult.Ok;
            }

            if (!retry.Allow(addr))
            {
                return KResult.Error(Errno.EBUSY, $"make_device_exclusive: {retry.Describe("exclusive conversion")}");
            }
        }
    }
}
