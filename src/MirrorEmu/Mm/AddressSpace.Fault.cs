using MirrorEmu.Telemetry;

namespace MirrorEmu.Mm;

public sealed partial class AddressSpace
{
    /// <summary>
    /// The one way back after a fault dropped the mmap lock (handle_mm_fault returned VM_FAULT_RETRY or
    /// VM_FAULT_COMPLETED): retakes the read lock, sets FAULT_FLAG_TRIED, and, when the VMA list changed
    /// while the lock was out (<see cref="MmapLock.Sequence"/> moved), looks the VMA up again — the kernel's
    /// idiom in do_user_addr_fault and fixup_user_fault. Every fault loop (CPU access, populate,
    /// hmm_range_fault) comes back through here.
    /// </summary>
    /// <param name="address">The faulting address.</param>
    /// <param name="layout"><see cref="MmapLock.Sequence"/> read before the fault.</param>
    /// <param name="vma">In: the VMA the fault used. Out: that VMA if nothing changed, else the VMA that now contains
    /// <paramref name="address"/>, or null if none does. A VMA object never changes in place (splits and merges make
    /// new ones), so an unchanged reference means an unchanged VMA.</param>
    /// <param name="flags">Gets <see cref="FaultFlags.Tried"/>.</param>
    /// <returns>0; or -EINTR when a fatal signal is pending (the lock is held again in both cases).</returns>
    internal int RetakeAfterRetry(ulong address, long layout, ref Vma? vma, ref FaultFlags flags)
    {
        MmapLock.ReadLock();
        flags |= FaultFlags.Tried;
        if (MmapLock.Sequence != layout)
        {
            vma = VmaLookup(address);
        }

        return CurrentTask.FatalSignalPending ? -Errno.EINTR : 0;
    }

    /// <summary>
    /// The one place an entry goes from what a fault (or a userfaultfd fill) read to what it installs
    /// (set_pte_at in do_anonymous_page / finish_fault / wp_page_copy; mfill_atomic_install_pte): one
    /// compare-and-exchange. If the entry changed meanwhile (another fault, a monitor's fill, a zap), the
    /// reference the new entry would have held goes back to the pool and the race is counted.
    /// </summary>
    /// <param name="slot">The entry, in a leaf table.</param>
    /// <param name="old">What the caller read.</param>
    /// <param name="entry">The new entry. A present, non-special entry carries one frame reference the caller took for
    /// it (a fresh frame, or a get on a page-cache page); a device-private entry one on its device page.</param>
    /// <returns>True if installed.</returns>
    internal bool InstallPte(ref ulong slot, Pte old, Pte entry)
    {
        if (PageTable.TryUpdate(ref slot, old, entry))
        {
            return true;
        }

        if (entry.IsPresent && !entry.IsSpecial)
        {
            _memory.Put(entry.Pfn); // never visible to anyone: no shootdown needed
        }
        else if (entry.IsDevicePrivate)
        {
            PutPage(entry.Pfn);
        }

        Counters.Increment(MmEvent.InstallRaces);
        return false;
    }

    /// <summary>migration_entry_wait (mm/migrate.c): waits a little for the migration entry at <paramref name="address"/>
    /// to be replaced, then returns so the caller retries (a fault that finds it again is bounded by <see cref="FaultRetry"/>).</summary>
    /// <param name="address">The address whose entry is a migration entry.</param>
    /// <param name="entry">The entry the caller saw.</param>
    internal void MigrationEntryWait(ulong address, Pte entry)
    {
        var spin = new SpinWait();
        for (int i = 0; i < 64 && PageTable.Read(address) == entry; i++)
        {
            spin.SpinOnce();
        }
    }
}
