using MirrorEmu.Notifier;
using MirrorEmu.Telemetry;

namespace MirrorEmu.Mm;

public sealed partial class AddressSpace
{
    /// <summary>
    /// migrate_vma_setup (mm/migrate_device.c): checks the arguments, then collects the range's pages (migrate_vma_collect:
    /// one MMU_NOTIFY_MIGRATE over the range carrying <see cref="MigrateVma.PgmapOwner"/>, each page the flags select taken
    /// with a reference and its entry replaced by a migration entry, one TLB shootdown for the present ones) and unmaps
    /// them (migrate_vma_unmap: a page held by anyone beyond its mapping and the migration is restored and left out,
    /// counted in <see cref="MigrateVma.Busy"/>). Afterwards the pages with MIGRATE in <see cref="MigrateVma.Src"/> have
    /// stable contents: the caller allocates destinations, copies, fills <see cref="MigrateVma.Dst"/>, then calls
    /// <see cref="MigrateVmaPages"/> and <see cref="MigrateVmaFinalize"/>.
    /// </summary>
    /// <param name="args">The migration: VMA, range, owner, flags (fault page optional).</param>
    /// <returns>0 (whether or not any page can move: see <see cref="MigrateVma.Cpages"/>); -EINVAL (no VMA or one of another
    /// address space, VM_IO / VM_PFNMAP / VM_MIXEDMAP, an empty range or one outside the VMA, arrays too short, a fault page
    /// that is not device-private), with nothing changed.</returns>
    /// <remarks>
    /// Call with the mmap read lock held, and keep it until <see cref="MigrateVmaFinalize"/>. Collected pages are held by
    /// migration entries: an access waits (migration_entry_wait), hmm_range_fault returns -EBUSY. A caller whose interval
    /// notifier ignores its own MIGRATE events (dmirror, nouveau) must stop its own device's access to the pages with MIGRATE
    /// before it copies them. A present page mapped by another address space too (after fork) counts as busy: the emulator
    /// keeps no reverse map to unmap it there (README, deliberate differences).
    /// </remarks>
    public KResult MigrateVmaSetup(MigrateVma args)
    {
        ArgumentNullException.ThrowIfNull(args);
        MmapLock.DebugAssertLocked();
        Vma? vma = args.Vma;
        if (vma is null || !ReferenceEquals(vma.Mm, this))
        {
            return KResult.Error(Errno.EINVAL, $"migrate_vma_setup: vma={vma?.ToString() ?? "null"} is not a VMA of this address space");
        }

        if ((vma.Flags & VmFlags.Special) != 0)
        {
            return KResult.Error(Errno.EINVAL, $"migrate_vma_setup: vma {vma} is VM_IO, VM_PFNMAP or VM_MIXEDMAP");
        }

        if (args.End <= args.Start || ((args.End - args.Start) >> PageGeometry.PageShift) == 0)
        {
            return KResult.Error(Errno.EINVAL, $"migrate_vma_setup: [0x{args.Start:X16}, 0x{args.End:X16}) holds no page");
        }

        ulong start = PageGeometry.PageDown(args.Start);
        ulong end = PageGeometry.PageDown(args.End);
        if (start < vma.Start || start >= vma.End || end <= vma.Start || end > vma.End)
        {
            return KResult.Error(Errno.EINVAL, $"migrate_vma_setup: [0x{start:X16}, 0x{end:X16}) is not inside vma {vma}");
        }

        if ((end - start) >> PageGeometry.PageShift > (ulong)Math.Min(args.Src.Length, args.Dst.Length))
        {
            return KResult.Error(Errno.EINVAL, $"migrate_vma_setup: {(end - start) >> PageGeometry.PageShift} pages do not fit src/dst arrays of {args.Src.Length}");
        }

        if (args.FaultPage != 0 && !DevicePagemap.IsDevicePfn(args.FaultPage))
        {
            return KResult.Error(Errno.EINVAL, $"migrate_vma_setup: fault_page=0x{args.FaultPage:X} is not a device-private page");
        }

        args.Start = start;
        args.End = end;
        int pages = (int)((end - start) >> PageGeometry.PageShift);
        Array.Clear(args.Src, 0, pages);
        Array.Clear(args.Dst, 0, pages);
        args.Cpages = 0;
        args.Npages = 0;
        args.Busy = 0;
        MigrateVmaCollect(args);
        if (args.Cpages > 0)
        {
            MigrateVmaUnmap(args);
        }

        return KResult.Ok;
    }

    /// <summary>
    /// migrate_vma_pages: for each source still marked MIGRATE that has a destination, checks the move is possible (a
    /// page-cache page never goes to device-private memory), and populates empty slots (a hole, the zero page) with the
    /// destination directly (migrate_vma_insert_page: anonymous VMAs only, not under userfaultfd MISSING, raising MIGRATE
    /// over the rest of the range first). A source left without MIGRATE stays where it is.
    /// </summary>
    /// <param name="args">The migration, after <see cref="MigrateVmaSetup"/> and the caller's copy.</param>
    /// <remarks>Call with the mmap read lock still held.</remarks>
    public void MigrateVmaPages(MigrateVma args)
    {
        ArgumentNullException.ThrowIfNull(args);
        MmapLock.DebugAssertLocked();
        bool notified = false;
        NotifierRange range = default;
        for (int i = 0; i < args.Npages; i++)
        {
            var src = new MigratePfn(args.Src[i]);
            var dst = new MigratePfn(args.Dst[i]);
            if (!dst.IsValid)
            {
                args.Src[i] = src.WithoutMigrate().Value;
                continue;
            }

            if (!src.IsValid)
            {
                if (!src.IsMigrating)
                {
                    continue;
                }

                ulong addr = args.Start + ((ulong)i << PageGeometry.PageShift);
                if (!notified)
                {
                    notified = true;
                    range = InvalidateRangeStart(addr, args.End, NotifierEvent.Migrate, args.PgmapOwner);
                }

                args.Src[i] = MigrateInsertPage(args.Vma!, addr, dst.Pfn) ? MigratePfn.Empty.Value : 0;
                continue;
            }

            if (DevicePagemap.IsDevicePfn(dst.Pfn) && !DevicePagemap.IsDevicePfn(src.Pfn) && _memory.IsPageCache(src.Pfn))
            {
                // Only anonymous memory moves to device-private memory: a file's page stays in its page cache.
                args.Src[i] = src.WithoutMigrate().Value;
            }
        }

        if (notified)
        {
            InvalidateRangeEnd(range);
        }
    }

    /// <summary>
    /// migrate_vma_finalize: replaces each migration entry with the destination (a device-private entry for a device page, a
    /// present entry for a system page; writable if the entry it replaced was) where the page moved, or with the original
    /// page where it did not; then drops the migration's reference on each source and the caller's on each destination. A
    /// source that moved is freed here when that was its last reference: it has been unmapped, and shot down, since setup.
    /// </summary>
    /// <param name="args">The migration, after <see cref="MigrateVmaPages"/> (or straight after setup to abandon it).</param>
    /// <remarks>Call with the mmap read lock still held.</remarks>
    public void MigrateVmaFinalize(MigrateVma args)
    {
        ArgumentNullException.ThrowIfNull(args);
        MmapLock.DebugAssertLocked();
        long moved = 0;
        for (int i = 0; i < args.Npages; i++)
        {
            var src = new MigratePfn(args.Src[i]);
            var dst = new MigratePfn(args.Dst[i]);
            if (!src.IsValid)
            {
                if (dst.IsValid)
                {
                    PutPage(dst.Pfn); // the caller's reference; a populated slot's entry holds its own
                    moved += src.IsMigrating ? 1 : 0;
                }

                continue;
            }

            bool move = src.IsMigrating && dst.IsValid;
            ulong addr = args.Start + ((ulong)i << PageGeometry.PageShift);
            RemoveMigrationPte(addr, src.Pfn, move ? dst.Pfn : src.Pfn);
            PutPage(src.Pfn); // collect's reference
            if (dst.IsValid)
            {
                PutPage(dst.Pfn); // the caller's reference
            }

            moved += move ? 1 : 0;
        }

        Counters.Add(MmEvent.PagesMigrated, moved);
    }

    /// <summary>migrate_vma_collect: the walk, under one MIGRATE notifier range.</summary>
    private void MigrateVmaCollect(MigrateVma args)
    {
        NotifierRange range = InvalidateRangeStart(args.Start, args.End, NotifierEvent.Migrate, args.PgmapOwner);
        bool anonymous = args.Vma!.IsAnonymous;
        bool unmapped = false;
        int n = 0;
        int cpages = 0;
        for (ulong va = args.Start; va < args.End;)
        {
            ulong spanEnd = Math.Min(args.End, (va | PageGeometry.PmdMask) + 1);
            if (!PageTable.FindHuge(va).IsNone && PageTable.SplitHuge(va))
            {
                Counters.Increment(MmEvent.HugeSplits); // migrate_vma_split_folio: pages move one by one
            }

            ulong[]? leaf = PageTable.FindLeaf(va);
            for (ulong a = va; a < spanEnd; a += PageGeometry.PageSize, n++)
            {
                args.Dst[n] = 0;
                if (leaf is null)
                {
                    // migrate_vma_collect_hole: only anonymous memory may be populated.
                    args.Src[n] = anonymous ? MigratePfn.Empty.Value : 0;
                    cpages += anonymous ? 1 : 0;
                    continue;
                }

                args.Src[n] = CollectPte(args, anonymous, ref leaf[PageGeometry.Index(a, 0)], ref unmapped, ref cpages);
            }

            va = spanEnd;
        }

        if (unmapped)
        {
            Tlb.Shootdown(); // flush_tlb_range: no CPU access still uses a collected frame
        }

        InvalidateRangeEnd(range);
        args.Npages = n;
        args.Cpages = cpages;
        args.End = args.Start + ((ulong)n << PageGeometry.PageShift);
    }

    /// <summary>migrate_vma_collect_pmd for one entry: the source word, after replacing a selected page's entry with a
    /// migration entry (the reference the entry held passes to it; collect takes one more).</summary>
    private ulong CollectPte(MigrateVma args, bool anonymous, ref ulong slot, ref bool unmapped, ref int cpages)
    {
        while (true)
        {
            var pte = new Pte(Volatile.Read(ref slot));
            if (pte.IsNone)
            {
                cpages += anonymous ? 1 : 0;
                return anonymous ? MigratePfn.Empty.Value : 0;
            }

            ulong pfn = pte.Pfn;
            bool write;
            if (!pte.IsMapped)
            {
                // Only device-private entries of the caller's owner; swap, migration and marker entries stay.
                if (!pte.IsDevicePrivate || (args.Flags & MigrateSelect.DevicePrivate) == 0
                    || DevicePagemap.Of(pfn) is not { } pagemap || !ReferenceEquals(pagemap.Owner, args.PgmapOwner))
                {
                    return 0;
                }

                write = pte.Swap == SwapType.DevicePrivateWrite;
            }
            else if (pte.IsSpecial)
            {
                if (pfn == PhysicalMemory.ZeroPfn && (args.Flags & MigrateSelect.System) != 0)
                {
                    cpages++;
                    return MigratePfn.Empty.Value; // the zero page: populated like a hole
                }

                return 0; // no struct page behind it
            }
            else if ((args.Flags & MigrateSelect.System) == 0)
            {
                return 0;
            }
            else
            {
                write = pte.IsWritable;
            }

            if (!TryGetPage(pfn))
            {
                continue; // freed since it was read: the entry has changed
            }

            if (!PageTable.TryUpdate(ref slot, pte, Pte.Migration(pfn, write).WithUffdWp(pte.IsUffdWp)))
            {
                PutPage(pfn);
                continue;
            }

            unmapped |= pte.IsMapped;
            cpages++;
            return MigratePfn.Of(pfn, write).WithMigrate().Value;
        }
    }

    /// <summary>migrate_device_unmap: leaves out (and restores) every collected system page that a reference beyond its
    /// migration entry and collect's own pins (migrate_vma_check_page); sets <see cref="MigrateVma.Cpages"/> to what may move.</summary>
    private void MigrateVmaUnmap(MigrateVma args)
    {
        int unmapped = 0;
        for (int i = 0; i < args.Npages; i++)
        {
            var src = new MigratePfn(args.Src[i]);
            if (!src.IsValid)
            {
                unmapped += src.IsMigrating ? 1 : 0;
                continue;
            }

            ulong pfn = src.Pfn;
            if (DevicePagemap.IsDevicePfn(pfn))
            {
                unmapped++; // device pages are not pinned; a fork-shared one moves here and stays for the other space
                continue;
            }

            int expected = 2 + (_memory.IsPageCache(pfn) ? 1 : 0); // the migration entry, collect, the page cache
            if (_memory.RefCount(pfn) > expected)
            {
                RemoveMigrationPte(args.Start + ((ulong)i << PageGeometry.PageShift), pfn, pfn);
                PutPage(pfn);
                args.Src[i] = 0;
                args.Busy++;
                Counters.Increment(MmEvent.MigrationBusy);
                continue;
            }

            unmapped++;
        }

        args.Cpages = unmapped;
    }

    /// <summary>migrate_vma_insert_page: populates the empty slot (or zero page) at <paramref name="addr"/> with
    /// <paramref name="pfn"/>, taking a reference for the new entry.</summary>
    /// <returns>False when the slot cannot be populated (not anonymous, a huge leaf, no longer empty, userfaultfd MISSING).</returns>
    private bool MigrateInsertPage(Vma vma, ulong addr, ulong pfn)
    {
        if (!vma.IsAnonymous || ((vma.Flags & VmFlags.UffdMissing) != 0 && vma.Userfault is not null))
        {
            return false;
        }

        ulong[]? leaf = PageTable.GetOrCreateLeaf(addr);
        if (leaf is null)
        {
            return false;
        }

        AnonVmaPrepare(addr);
        ref ulong slot = ref leaf[PageGeometry.Index(addr, 0)];
        var orig = new Pte(Volatile.Read(ref slot));
        if (orig.IsMapped ? !(orig.IsSpecial && orig.Pfn == PhysicalMemory.ZeroPfn) : !orig.IsNone)
        {
            return false;
        }

        bool write = (vma.Flags & VmFlags.Write) != 0;
        bool device = DevicePagemap.IsDevicePfn(pfn);
        GetPage(pfn);
        if (!InstallPte(ref slot, orig, device ? Pte.DevicePrivate(pfn, write) : Pte.Present(pfn, write)))
        {
            return false;
        }

        if (device)
        {
            DevicePagemap.Of(pfn)!.NoteMapped(this);
        }

        return true;
    }

    /// <summary>remove_migration_pte for the page at <paramref name="addr"/>: replaces the migration entry of
    /// <paramref name="oldPfn"/> with an entry for <paramref name="newPfn"/> (the same page when restoring) with the write
    /// permission and userfaultfd write-protect bit the migration entry kept. Nothing when the entry is gone (zapped).</summary>
    private void RemoveMigrationPte(ulong addr, ulong oldPfn, ulong newPfn)
    {
        ulong[]? leaf = PageTable.FindLeaf(addr);
        if (leaf is null)
        {
            return;
        }

        ref ulong slot = ref leaf[PageGeometry.Index(addr, 0)];
        var pte = new Pte(Volatile.Read(ref slot));
        if (!pte.IsMigration || pte.Pfn != oldPfn)
        {
            return;
        }

        bool write = pte.Swap == SwapType.MigrationWrite && !pte.IsUffdWp;
        bool device = DevicePagemap.IsDevicePfn(newPfn);
        Pte entry = (device ? Pte.DevicePrivate(newPfn, write) : Pte.Present(newPfn, write)).WithUffdWp(pte.IsUffdWp);
        if (!device && VmaLookup(addr) is { } vma && (vma.Flags & VmFlags.AccessMask) == 0)
        {
            entry = entry.WithProtNone(); // vm_page_prot of a PROT_NONE mapping
        }
        if (newPfn == oldPfn)
        {
            PageTable.TryUpdate(ref slot, pte, entry); // the migration entry's reference passes back to the page's entry
            return;
        }

        GetPage(newPfn);
        if (InstallPte(ref slot, pte, entry))
        {
            PutPage(oldPfn); // the migration entry's reference
            if (device)
            {
                DevicePagemap.Of(newPfn)!.NoteMapped(this);
            }
        }
    }

    /// <summary>get_page on a system or device page.</summary>
    internal void GetPage(ulong pfn)
    {
        if (!DevicePagemap.IsDevicePfn(pfn))
        {
            _memory.Get(pfn);
        }
        else
        {
            DevicePagemap.Of(pfn)?.Get(pfn);
        }
    }

    /// <summary>folio_try_get on a system or device page (false for a device page whose pagemap is gone).</summary>
    internal bool TryGetPage(ulong pfn) =>
        !DevicePagemap.IsDevicePfn(pfn) ? _memory.TryGet(pfn) : DevicePagemap.Of(pfn)?.TryGet(pfn) ?? false;

    /// <summary>put_page on a system or device page. A system page whose entry was just cleared must be put after a TLB
    /// shootdown (an <see cref="MmuGather"/>); a device page never has a CPU mapping.</summary>
    internal void PutPage(ulong pfn)
    {
        if (!DevicePagemap.IsDevicePfn(pfn))
        {
            _memory.Put(pfn);
        }
        else
        {
            DevicePagemap.Of(pfn)?.Put(pfn); // a pagemap already gone took its pool with it
        }
    }
}
