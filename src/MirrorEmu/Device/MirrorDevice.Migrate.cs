using System.Diagnostics;
using MirrorEmu.Kernels;
using MirrorEmu.Mm;
using MirrorEmu.Telemetry;

namespace MirrorEmu.Device;

public sealed partial class MirrorDevice
{
    private MigrateVma? _spareMigrate; // one chunk's migration state kept for the next call (Interlocked.Exchange)
    private MigrateVma? _spareFault;   // the same for migrate_to_ram's one page

    /// <summary>
    /// HMM_DMIRROR_MIGRATE_TO_DEV (dmirror_migrate_to_device, lib/test_hmm.c): migrates [Addr, + Npages pages)
    /// to the device's memory (<see cref="MigrateToDevice(ulong, ulong, out ulong)"/>), then reads the range back through the
    /// device page table (dmirror_do_read) into <paramref name="buffer"/> for verification.
    /// </summary>
    /// <param name="cmd">In: Addr, Npages. Out on success: Cpages (pages read back).</param>
    /// <param name="buffer">Receives Npages * 4096 bytes.</param>
    /// <returns>0; -EINVAL (bad command, a page not mapped or PROT_NONE); -EFAULT (buffer too small); -ENOENT (a page the
    /// device does not map afterwards: not migrated, as a shared page, another device's page, or one the device memory had
    /// no room for). On an error <paramref name="cmd"/> and <paramref name="buffer"/> are untouched (the pages that
    /// migrated stay migrated).</returns>
    public KResult MigrateToDevice(ref DmirrorCmd cmd, Span<byte> buffer)
    {
        KResult v = CheckCmd("HMM_DMIRROR_MIGRATE_TO_DEV", cmd, buffer.Length);
        if (!v.IsOk)
        {
            return v;
        }

        KResult r = MigrateToDevice(cmd.Addr, cmd.Npages, out _);
        if (!r.IsOk)
        {
            return r;
        }

        var bounce = new byte[cmd.Npages << PageGeometry.PageShift];
        r = DoRead("HMM_DMIRROR_MIGRATE_TO_DEV", cmd.Addr, bounce);
        if (!r.IsOk)
        {
            return r;
        }

        bounce.CopyTo(buffer);
        cmd.Cpages = cmd.Npages;
        return KResult.Ok;
    }

    /// <summary>
    /// Migrates [<paramref name="addr"/>, + <paramref name="npages"/> pages) to the device's memory, a VMA and at most 512
    /// pages at a time (dmirror's chunk): migrate_vma_setup selecting system pages, a device page allocated and filled for
    /// each page that may move (zeroed for an empty slot), migrate_vma_pages, the moved pages mapped in the device page
    /// table (dmirror_migrate_finalize_and_map, skipped for a chunk an invalidation hit meanwhile), migrate_vma_finalize.
    /// The CPU page table then holds device-private entries; the pages' system frames go back to the pool.
    /// </summary>
    /// <param name="addr">Page-aligned start.</param>
    /// <param name="npages">Pages, at least 1.</param>
    /// <param name="migrated">Pages that moved (the rest stay where they were: busy, shared, already on a device, or no
    /// room in the device memory; see <see cref="Counters"/>).</param>
    /// <returns>0; -EINVAL (bad range, or a page of it not mapped or PROT_NONE: the chunks before it stay migrated).</returns>
    /// <remarks>Takes the mmap read lock for the whole call and the driver lock briefly per chunk.</remarks>
    public KResult MigrateToDevice(ulong addr, ulong npages, out ulong migrated)
    {
        migrated = 0;
        KResult v = CheckCmd("migrate to device", new DmirrorCmd(addr, npages), long.MaxValue);
        if (!v.IsOk)
        {
            return v;
        }

        ulong end = addr + (npages << PageGeometry.PageShift);
        MigrateVma args = Interlocked.Exchange(ref _spareMigrate, null) ?? new MigrateVma();
        Mm.MmapLock.ReadLock();
        try
        {
            for (ulong a = addr, next; a < end; a = next)
            {
                KResult chunk = ChunkAt("migrate to device", a, end, out Vma? vma, out next);
                if (!chunk.IsOk)
                {
                    return chunk;
                }

                // The device's own MIGRATE events change its sequence but clear nothing, so other invalidations since the
                // start are told by the epoch, read once no invalidation of the device is in progress (read_begin's wait).
                bool current = Mm.Notifiers.TryReadBegin(Notifier, out _, Options.FaultTimeoutMs) == 0;
                long epoch = Volatile.Read(ref _invalidationEpoch);
                args.Reset(vma!, a, next, this, MigrateSelect.System);
                KResult r = Mm.MigrateVmaSetup(args);
                if (!r.IsOk)
                {
                    return r;
                }

                AllocateAndCopyToDevice(args);
                Mm.MigrateVmaPages(args);
                int moved = args.Migrated();
                MapMigrated(args, current ? epoch : null);
                Mm.MigrateVmaFinalize(args);
                migrated += (ulong)moved;
                Counters.Add(DeviceEvent.PagesMigratedToDevice, moved);
                Counters.Add(DeviceEvent.MigrationPagesBusy, args.Busy);
            }

            return KResult.Ok;
        }
        finally
        {
            Mm.MmapLock.ReadUnlock();
            _spareMigrate = args;
        }
    }

    /// <summary>
    /// HMM_DMIRROR_MIGRATE_TO_SYS (dmirror_migrate_to_system): migrates this device's pages in [Addr, + Npages pages) back
    /// to system memory, a VMA and at most 512 pages at a time (migrate_vma_setup selecting this device's private pages, a
    /// system frame for each, the copy, migrate_vma_pages, migrate_vma_finalize).
    /// </summary>
    /// <param name="cmd">In: Addr, Npages. Out on success: Cpages (pages that moved).</param>
    /// <returns>0; -EINVAL (bad command, a page not mapped or PROT_NONE); -ENOMEM (no system frames: that chunk stays on the
    /// device). On an error <paramref name="cmd"/> is untouched.</returns>
    /// <remarks>Takes the mmap read lock for the whole call.</remarks>
    public KResult MigrateToSystem(ref DmirrorCmd cmd)
    {
        KResult v = CheckCmd("HMM_DMIRROR_MIGRATE_TO_SYS", cmd, long.MaxValue);
        if (!v.IsOk)
        {
            return v;
        }

        ulong end = cmd.Addr + (cmd.Npages << PageGeometry.PageShift);
        ulong cpages = 0;
        MigrateVma args = Interlocked.Exchange(ref _spareMigrate, null) ?? new MigrateVma();
        Mm.MmapLock.ReadLock();
        try
        {
            for (ulong a = cmd.Addr, next; a < end; a = next)
            {
                KResult chunk = ChunkAt("HMM_DMIRROR_MIGRATE_TO_SYS", a, end, out Vma? vma, out next);
                if (!chunk.IsOk)
                {
                    return chunk;
                }

                KResult r = MigrateChunkToSystem(Mm, args, vma!, a, next, out int moved);
                if (!r.IsOk)
                {
                    return r;
                }

                cpages += (ulong)moved;
            }
        }
        finally
        {
            Mm.MmapLock.ReadUnlock();
            _spareMigrate = args;
        }

        cmd.Cpages = cpages;
        return KResult.Ok;
    }

    /// <summary>
    /// HMM_DMIRROR_EXCLUSIVE (dmirror_exclusive): for each page of [Addr, + Npages pages), make_device_exclusive and a device
    /// page-table entry for atomics on it (dmirror_atomic_map), then reads the range back through the device page table.
    /// A CPU access to such a page restores it (MMU_NOTIFY_EXCLUSIVE clears the atomic entry).
    /// </summary>
    /// <param name="cmd">In: Addr, Npages. Out on success: Cpages (pages read back).</param>
    /// <param name="buffer">Receives Npages * 4096 bytes.</param>
    /// <param name="cancellation">Ends the call with -EINTR between pages.</param>
    /// <returns>0; -EINVAL, -EFAULT as <see cref="Read"/>; make_device_exclusive's errors (-EFAULT for a page that is not
    /// writable, -EOPNOTSUPP for one that is not anonymous); -EBUSY when a page kept being invalidated for
    /// <see cref="DeviceOptions.FaultTimeoutMs"/>. On an error <paramref name="cmd"/> and <paramref name="buffer"/> are
    /// untouched.</returns>
    /// <remarks>Each page follows nouveau's atomic fault: read_begin, the mmap read lock around make_device_exclusive
    /// (passing the device as owner, whose EXCLUSIVE event the device then ignores), the driver lock, read_retry, the map.</remarks>
    public KResult MakeExclusive(ref DmirrorCmd cmd, Span<byte> buffer, CancellationToken cancellation = default)
    {
        KResult v = CheckCmd("HMM_DMIRROR_EXCLUSIVE", cmd, buffer.Length);
        if (!v.IsOk)
        {
            return v;
        }

        ulong end = cmd.Addr + (cmd.Npages << PageGeometry.PageShift);
        for (ulong a = cmd.Addr; a < end; a += PageGeometry.PageSize)
        {
            KResult r = MakePageExclusive(a, cancellation);
            if (!r.IsOk)
            {
                return r;
            }
        }

        var bounce = new byte[cmd.Npages << PageGeometry.PageShift];
        KResult read = DoRead("HMM_DMIRROR_EXCLUSIVE", cmd.Addr, bounce);
        if (!read.IsOk)
        {
            return read;
        }

        bounce.CopyTo(buffer);
        cmd.Cpages = cmd.Npages;
        return KResult.Ok;
    }

    /// <summary>HMM_DMIRROR_CHECK_EXCLUSIVE (dmirror_check_atomic): -EPERM if any page of [Addr, + Npages pages) still has an
    /// atomic (device-exclusive) entry in the device page table, else 0.</summary>
    /// <param name="cmd">In: Addr, Npages.</param>
    /// <returns>0, -EPERM, or -EINVAL for a bad command.</returns>
    public KResult CheckExclusive(in DmirrorCmd cmd)
    {
        KResult v = CheckCmd("HMM_DMIRROR_CHECK_EXCLUSIVE", cmd, long.MaxValue);
        if (!v.IsOk)
        {
            return v;
        }

        ulong end = cmd.Addr + (cmd.Npages << PageGeometry.PageShift);
        using (DriverLock.Hold())
        {
            for (ulong a = cmd.Addr; a < end; a += PageGeometry.PageSize)
            {
                if (Table.Lookup(a).IsAtomic)
                {
                    return KResult.Error(Errno.EPERM, $"{Options.Name}: HMM_DMIRROR_CHECK_EXCLUSIVE: 0x{a:X16} is still mapped for device atomics");
                }
            }
        }

        return KResult.Ok;
    }

    /// <summary>
    /// HMM_DMIRROR_RELEASE (dmirror_device_remove_chunks → dmirror_device_evict_chunk): moves every page of the device's
    /// memory back to system memory, in every address space that holds one (the device's, and fork children that share
    /// its pages: <see cref="DevicePagemap.MappedAddressSpaces"/>), so that none is left on the device.
    /// </summary>
    /// <returns>0, or -ENOMEM when system memory had no room (the pages not yet moved stay on the device).</returns>
    /// <remarks>Takes each address space's mmap read lock in turn. The kernel finds the pages through the reverse map
    /// (migrate_device_range); the emulator has none and walks those address spaces' page tables instead.</remarks>
    public KResult Release()
    {
        ThrowIfDisposed();
        return Evict();
    }

    /// <summary>The eviction behind <see cref="Release"/> and <see cref="Dispose"/>.</summary>
    private KResult Evict()
    {
        MigrateVma args = Interlocked.Exchange(ref _spareMigrate, null) ?? new MigrateVma();
        try
        {
            foreach (AddressSpace mm in Pagemap.MappedAddressSpaces())
            {
                KResult r = EvictFrom(mm, args);
                if (!r.IsOk)
                {
                    return r;
                }
            }

            return KResult.Ok;
        }
        finally
        {
            _spareMigrate = args;
        }
    }

    /// <summary>Migrates every page of this device that <paramref name="mm"/> maps back to system memory.</summary>
    private KResult EvictFrom(AddressSpace mm, MigrateVma args)
    {
        mm.MmapLock.ReadLock();
        try
        {
            if (mm.IsDisposed)
            {
                return KResult.Ok;
            }

            for (Vma? vma = mm.FindVma(0); vma is not null; vma = mm.FindVma(vma.End))
            {
                for (ulong a = vma.Start; a < vma.End;)
                {
                    ulong next = Math.Min(vma.End, a + ((ulong)args.Src.Length << PageGeometry.PageShift));
                    if (HoldsDevicePages(mm, a, next))
                    {
                        KResult r = MigrateChunkToSystem(mm, args, vma, a, next, out _);
                        if (!r.IsOk)
                        {
                            return r;
                        }
                    }

                    a = next;
                }
            }

            return KResult.Ok;
        }
        finally
        {
            mm.MmapLock.ReadUnlock();
        }
    }

    /// <summary>True if [start, end) of <paramref name="mm"/> has an entry naming one of this device's pages. Call with its
    /// mmap lock held.</summary>
    private bool HoldsDevicePages(AddressSpace mm, ulong start, ulong end)
    {
        for (ulong a = start; a < end; a = (a | PageGeometry.PmdMask) + 1)
        {
            ulong[]? leaf = mm.PageTable.FindLeaf(a);
            ulong spanEnd = Math.Min(end, (a | PageGeometry.PmdMask) + 1);
            for (ulong p = a; leaf is not null && p < spanEnd; p += PageGeometry.PageSize)
            {
                var pte = new Pte(Volatile.Read(ref leaf[PageGeometry.Index(p, 0)]));
                if ((pte.IsDevicePrivate || pte.IsMigration) && Pagemap.Contains(pte.Pfn))
                {
                    return true;
                }
            }
        }

        return false;
    }

    /// <summary>migrate_to_ram (dmirror_devmem_fault): moves the one faulting page back to system memory.</summary>
    /// <param name="vma">The faulting VMA (its address space's mmap read lock is held).</param>
    /// <param name="address">The page.</param>
    /// <param name="entry">The device-private entry.</param>
    /// <returns>0 (the access retries), <see cref="VmFault.Oom"/>, or <see cref="VmFault.SigBus"/> (setup refused).</returns>
    private VmFault MigrateToRam(Vma vma, ulong address, Pte entry)
    {
        Counters.Increment(DeviceEvent.MigrateToRamCalls);
        MigrateVma args = Interlocked.Exchange(ref _spareFault, null) ?? new MigrateVma(1);
        try
        {
            args.Reset(vma, address, address + PageGeometry.PageSize, this, MigrateSelect.DevicePrivate, entry.Pfn);
            if (!vma.Mm.MigrateVmaSetup(args).IsOk)
            {
                return VmFault.SigBus;
            }

            if (!AllocateAndCopyToSystem(vma.Mm, args))
            {
                vma.Mm.MigrateVmaFinalize(args);
                return VmFault.Oom;
            }

            vma.Mm.MigrateVmaPages(args);
            Counters.Add(DeviceEvent.PagesMigratedToSystem, args.Migrated());
            vma.Mm.MigrateVmaFinalize(args);
            return VmFault.None;
        }
        finally
        {
            _spareFault = args;
        }
    }

    /// <summary>One chunk of a migration back to system memory (the body of dmirror_migrate_to_system's loop).</summary>
    private KResult MigrateChunkToSystem(AddressSpace mm, MigrateVma args, Vma vma, ulong start, ulong end, out int moved)
    {
        moved = 0;
        args.Reset(vma, start, end, this, MigrateSelect.DevicePrivate);
        KResult r = mm.MigrateVmaSetup(args);
        if (!r.IsOk)
        {
            return r;
        }

        if (!AllocateAndCopyToSystem(mm, args))
        {
            mm.MigrateVmaFinalize(args);
            return KResult.Error(Errno.ENOMEM, $"{Options.Name}: no system frames to migrate [0x{start:X16}, 0x{end:X16}) back to");
        }

        mm.MigrateVmaPages(args);
        moved = args.Migrated();
        Counters.Add(DeviceEvent.PagesMigratedToSystem, moved);
        mm.MigrateVmaFinalize(args);
        return KResult.Ok;
    }

    /// <summary>The VMA at <paramref name="a"/> and the end of the chunk that starts there (at most 512 pages, inside the VMA,
    /// before <paramref name="end"/>), or -EINVAL when no readable VMA is there (dmirror's vma_lookup / VM_READ check).</summary>
    private KResult ChunkAt(string what, ulong a, ulong end, out Vma? vma, out ulong next)
    {
        vma = Mm.VmaLookup(a);
        next = end;
        if (vma is null || (vma.Flags & VmFlags.Read) == 0)
        {
            return KResult.Error(Errno.EINVAL, $"{Options.Name}: {what}: 0x{a:X16} is {(vma is null ? "not mapped" : "PROT_NONE (no VM_READ)")}");
        }

        next = Math.Min(Math.Min(end, a + ((ulong)PageGeometry.LevelEntries << PageGeometry.PageShift)), vma.End);
        return KResult.Ok;
    }

    /// <summary>
    /// dmirror_migrate_alloc_and_copy: a device page for each source that may move (system pages and empty slots; another
    /// device's or this device's pages are not sources here), filled with its bytes or zeroes; the destination writable if
    /// the source was, or, for an empty slot, if the VMA is. Before copying, the device's own entries for those pages are
    /// cleared: it ignores its own MIGRATE event, and its kernels must not store into a frame already copied.
    /// </summary>
    private unsafe void AllocateAndCopyToDevice(MigrateVma args)
    {
        int want = 0;
        for (int i = 0; i < args.Npages; i++)
        {
            want += MovesToDevice(args.SrcAt(i)) ? 1 : 0;
        }

        if (want == 0)
        {
            return;
        }

        UnmapMigrating(args, args.Vma!.Mm);
        Span<ulong> frames = stackalloc ulong[want];
        int got = MemoryPool.TryAllocateBatch(frames);
        if (got < want)
        {
            Counters.Add(DeviceEvent.DeviceAllocationFailures, want - got);
        }

        bool streaming = got >= PageCopy.StreamingThresholdPages;
        bool vmaWrite = (args.Vma.Flags & VmFlags.Write) != 0;
        PhysicalMemory memory = args.Vma.Mm.Memory;
        int k = 0;
        for (int i = 0; i < args.Npages && k < got; i++)
        {
            MigratePfn src = args.SrcAt(i);
            if (!MovesToDevice(src))
            {
                continue;
            }

            ulong frame = frames[k++];
            _binding.CopyToDeviceFrame(frame, src.IsValid ? memory.FramePointer(src.Pfn) : null, streaming);
            args.Dst[i] = MigratePfn.Of(Pagemap.ToPfn(frame), src.IsWritable || (!src.IsValid && vmaWrite)).Value;
        }

        if (streaming)
        {
            _binding.CopiesDone();
        }
    }

    /// <summary>True for a source <see cref="AllocateAndCopyToDevice"/> gives a device page: one that may move and is a system
    /// page or an empty slot (the count of frames to allocate and the copy loop that consumes them must agree).</summary>
    private static bool MovesToDevice(MigratePfn src) => src.IsMigrating && !(src.IsValid && DevicePagemap.IsDevicePfn(src.Pfn));

    /// <summary>
    /// dmirror_devmem_fault_alloc_and_copy: a system frame for each of this device's pages that may move, filled from the
    /// device page, the destination writable if the device-private entry was; the device's entries for them are cleared
    /// first (in its own address space: a fork child's pages are the child's). All or nothing.
    /// </summary>
    /// <returns>False when system memory has no room for every page (nothing allocated then).</returns>
    private unsafe bool AllocateAndCopyToSystem(AddressSpace mm, MigrateVma args)
    {
        int want = 0;
        for (int i = 0; i < args.Npages; i++)
        {
            MigratePfn src = args.SrcAt(i);
            want += src.IsValid && src.IsMigrating ? 1 : 0;
        }

        if (want == 0)
        {
            return true;
        }

        PhysicalMemory memory = mm.Memory;
        Span<ulong> frames = stackalloc ulong[want];
        int got = memory.TryAllocateBatch(frames);
        if (got < want)
        {
            for (int k = 0; k < got; k++)
            {
                memory.Put(frames[k]);
            }

            return false;
        }

        UnmapMigrating(args, mm);
        bool streaming = want >= PageCopy.StreamingThresholdPages;
        int n = 0;
        for (int i = 0; i < args.Npages; i++)
        {
            MigratePfn src = args.SrcAt(i);
            if (!src.IsValid || !src.IsMigrating)
            {
                continue;
            }

            Debug.Assert(Pagemap.Contains(src.Pfn), "a device-private source selected with this device as owner");
            ulong frame = frames[n++];
            _binding.CopyFromDeviceFrame(DevicePagemap.ToFrame(src.Pfn), memory.FramePointer(frame), streaming);
            args.Dst[i] = MigratePfn.Of(frame, src.IsWritable).Value;
        }

        if (streaming)
        {
            _binding.CopiesDone();
        }

        return true;
    }

    /// <summary>Clears the device page table's entries of the pages that may move, under the driver lock, when
    /// <paramref name="mm"/> is the address space the device mirrors.</summary>
    private void UnmapMigrating(MigrateVma args, AddressSpace mm)
    {
        if (!ReferenceEquals(mm, Mm))
        {
            return;
        }

        using (DriverLock.Hold())
        {
            if (_disposed)
            {
                return;
            }

            long cleared = 0;
            for (int i = 0; i < args.Npages;)
            {
                if (!args.SrcAt(i).IsMigrating)
                {
                    i++;
                    continue;
                }

                int j = i + 1;
                while (j < args.Npages && args.SrcAt(j).IsMigrating)
                {
                    j++;
                }

                cleared += Table.Unmap(args.Start + ((ulong)i << PageGeometry.PageShift), args.Start + ((ulong)j << PageGeometry.PageShift));
                i = j;
            }

            Counters.Add(DeviceEvent.EntriesCleared, cleared);
        }
    }

    /// <summary>dmirror_migrate_finalize_and_map: maps the pages that moved to the device frames that hold them, unless an
    /// invalidation other than the device's own migrations hit it since <paramref name="epoch"/> (a zap may have taken a
    /// migration entry, and its page will not arrive); the device then faults them in later (hmm_range_fault reports its
    /// own pages without a fault).</summary>
    private void MapMigrated(MigrateVma args, long? epoch)
    {
        using (DriverLock.Hold())
        {
            if (_disposed || epoch is not { } e || _invalidationEpoch != e)
            {
                return;
            }

            long mapped = 0;
            for (int i = 0; i < args.Npages; i++)
            {
                MigratePfn dst = args.DstAt(i);
                if (args.SrcAt(i).IsMigrating && dst.IsValid)
                {
                    Table.Map(args.Start + ((ulong)i << PageGeometry.PageShift), DevicePte.DeviceFrame(DevicePagemap.ToFrame(dst.Pfn), dst.IsWritable));
                    mapped++;
                }
            }

            Counters.Add(DeviceEvent.DevicePagesMapped, mapped);
        }
    }

    /// <summary>One page of <see cref="MakeExclusive"/>: nouveau_atomic_range_fault's loop.</summary>
    private KResult MakePageExclusive(ulong a, CancellationToken cancellation)
    {
        long deadline = Environment.TickCount64 + Options.FaultTimeoutMs;
        while (true)
        {
            if (cancellation.IsCancellationRequested)
            {
                return KResult.Error(Errno.EINTR, $"{Options.Name}: HMM_DMIRROR_EXCLUSIVE cancelled at 0x{a:X16}");
            }

            int left = MirrorDriver.Remaining(deadline);
            if (left == 0 || Mm.Notifiers.TryReadBegin(Notifier, out ulong seq, left, cancellation) != 0)
            {
                return KResult.Error(Errno.EBUSY, $"{Options.Name}: HMM_DMIRROR_EXCLUSIVE: 0x{a:X16} kept being invalidated for {Options.FaultTimeoutMs} ms");
            }

            KResult r;
            ulong pfn;
            Mm.MmapLock.ReadLock();
            try
            {
                r = Mm.MakeDeviceExclusive(a, this, out pfn);
            }
            finally
            {
                Mm.MmapLock.ReadUnlock();
            }

            if (!r.IsOk)
            {
                return KResult.Error(-r.Code, $"{Options.Name}: HMM_DMIRROR_EXCLUSIVE: {r.Message}");
            }

            using (DriverLock.Hold())
            {
                if (!Notifier.ReadRetry(seq))
                {
                    Table.Map(a, DevicePte.Atomic(pfn));
                    Counters.Increment(DeviceEvent.PagesMadeExclusive);
                    return KResult.Ok;
                }
            }
        }
    }

    /// <summary>dmirror_do_read: copies every page of [start, + bounce) through the device page table (the CPU's frame in
    /// place, or the device frame), without faulting.</summary>
    /// <returns>0, or -ENOENT naming the first page the device does not map.</returns>
    private KResult DoRead(string what, ulong start, Span<byte> bounce)
    {
        PhysicalMemory memory = Mm.Memory;
        using (DriverLock.Hold())
        {
            for (int p = 0; p < bounce.Length >> PageGeometry.PageShift; p++)
            {
                ulong va = start + ((ulong)p << PageGeometry.PageShift);
                DevicePte pte = Table.Lookup(va);
                Span<byte> to = bounce.Slice(p << PageGeometry.PageShift, PageGeometry.PageSizeInt);
                if (!pte.IsValid)
                {
                    return KResult.Error(Errno.ENOENT, $"{Options.Name}: {what}: the device does not map 0x{va:X16} afterwards (the page did not move to it)");
                }

                if (pte.Kind == DeviceFrameKind.Device)
                {
                    _binding.ReadDeviceFrame(pte.Frame, to);
                }
                else
                {
                    memory.Frame(pte.Frame).CopyTo(to);
                }
            }
        }

        return KResult.Ok;
    }
}
