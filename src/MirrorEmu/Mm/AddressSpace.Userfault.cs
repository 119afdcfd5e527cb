using MirrorEmu.Notifier;
using MirrorEmu.Telemetry;

namespace MirrorEmu.Mm;

/// <summary>What an mfill operation puts into the missing pages it fills.</summary>
internal enum MfillKind
{
    /// <summary>UFFDIO_COPY: the caller's bytes in fresh frames.</summary>
    Copy,
    /// <summary>UFFDIO_ZEROPAGE: the zero page (shmem: a zeroed page-cache page).</summary>
    ZeroPage,
    /// <summary>UFFDIO_CONTINUE: the page-cache pages already there.</summary>
    Continue,
    /// <summary>UFFDIO_POISON: a poison marker, so an access answers VM_FAULT_HWPOISON.</summary>
    Poison,
}

/// <summary>
/// The page-table side of userfaultfd (mm/userfaultfd.c): registration changes to the VMAs, and the
/// resolutions that fill, protect or move pages — mfill_atomic, mwriteprotect_range, move_pages. The
/// Uffd layer (fs/userfaultfd.c) keeps the context, its messages and waiters, and calls these; every
/// entry they install goes through <see cref="InstallPte"/>, the fault handler's own install step.
/// </summary>
public sealed partial class AddressSpace
{
    /// <summary>
    /// Sets (or, with <paramref name="modes"/> = None, clears) the userfaultfd registration of every
    /// VMA in [start, end), splitting at the edges and merging afterwards (userfaultfd_register's VMA walk).
    /// </summary>
    /// <param name="start">Page-aligned start.</param>
    /// <param name="end">Page-aligned end; the range must be fully mapped (the caller checks).</param>
    /// <param name="modes">VM_UFFD_* bits.</param>
    /// <param name="hook">The context (vm_userfaultfd_ctx), or null to unregister.</param>
    /// <remarks>Call with the mmap write lock held.</remarks>
    internal void SetUserfaultLocked(ulong start, ulong end, VmFlags modes, IUserfaultHook? hook)
    {
        MmapLock.DebugAssertWriteLocked();
        (int first, int last) = SplitRange(start, end);
        for (int i = first; i < last; i++)
        {
            Vma old = _vmas[i];
            if (hook is null && (old.Flags & VmFlags.UffdWp) != 0)
            {
                // userfaultfd_clear_vma: unregistering (or closing the descriptor) lifts the write protection the
                // range still has, bits and markers both (uffd_wp_range(..., false)).
                ClearUffdWp(old);
            }

            Vma updated = old.CloneRange(old.Start, old.End);
            updated.Flags = (old.Flags & ~VmFlags.UffdMask) | (modes & VmFlags.UffdMask);
            updated.Userfault = hook;
            ReplaceVmaAt(i, updated);
        }

        MergeAround(first, last);
    }

    /// <summary>
    /// mfill_atomic (mm/userfaultfd.c): fills the missing pages of [dst, dst + length) — which must lie in one
    /// VMA registered with userfaultfd (find_dst_vma: with any context of this address space, not only the one making
    /// the call) — page by page until one is not missing.
    /// </summary>
    /// <param name="kind">Copy, zero page or continue.</param>
    /// <param name="dst">Page-aligned destination.</param>
    /// <param name="length">Page-aligned length, &gt; 0.</param>
    /// <param name="src">For <see cref="MfillKind.Copy"/>, <paramref name="length"/> bytes; else empty.</param>
    /// <param name="wp">MODE_WP: map the pages userfaultfd-write-protected.</param>
    /// <param name="done">Bytes filled from <paramref name="dst"/> on, also when the call stops early.</param>
    /// <returns>0 when all was filled; else why it stopped: -ENOENT (no registered VMA covers the whole range, as
    /// uffd_mfill_lock's validation), -EINVAL (WP without WP registration, CONTINUE outside
    /// shmem, a private file mapping for ZEROPAGE), -EEXIST (a page is already mapped), -ENOMEM (out of
    /// frames), -EFAULT (beyond a file's end; CONTINUE of a page not in the page cache), -EINVAL (CONTINUE beyond a file's end).</returns>
    /// <remarks>Takes the mmap read lock.</remarks>
    internal int MfillAtomic(MfillKind kind, ulong dst, ulong length, ReadOnlySpan<byte> src, bool wp, out ulong done)
    {
        done = 0;
        ulong end = dst + length;
        bool streaming = (length >> PageGeometry.PageShift) >= (ulong)PageCopy.StreamingThresholdPages;
        MmapLock.ReadLock();
        try
        {
            AnonVmaPrepare(dst); // find_vma_and_prepare_anon: before any other check
            Vma? vma = VmaLookup(dst);
            if (vma is null || vma.Userfault is null || end > vma.End)
            {
                return -Errno.ENOENT;
            }

            // mfill_atomic: MODE_WP needs WP registration; CONTINUE needs shmem (any registration mode will do: a page in the
            // page cache is mapped, one that is not is -EFAULT).
            if ((wp && (vma.Flags & VmFlags.UffdWp) == 0) || (kind == MfillKind.Continue && vma.File is null))
            {
                return -Errno.EINVAL;
            }

            bool shmem = vma.File is not null && (vma.IsShared || kind == MfillKind.Continue) && kind != MfillKind.Poison;
            int rc = 0;
            ulong va = dst;
            while (va < end && rc == 0)
            {
                ulong spanEnd = Math.Min(end, (va | PageGeometry.PmdMask) + 1);
                ReadOnlySpan<byte> bytes = kind == MfillKind.Copy ? src.Slice((int)(va - dst), (int)(spanEnd - va)) : default;
                rc = shmem
                    ? MfillShmem(vma, va, spanEnd, kind, bytes, wp, ref va)
                    : MfillAnon(vma, va, spanEnd, kind, bytes, wp, streaming, ref va);
            }

            done = va - dst;
            return rc;
        }
        finally
        {
            MmapLock.ReadUnlock();
        }
    }

    /// <summary>mfill_atomic_pte_copy / _zeropage / _poison for anonymous (and private file) VMAs, over one leaf table span
    /// (poison markers for shmem too, as the kernel puts them in the page table).</summary>
    /// <remarks>
    /// Two passes: first the bytes of every page that is still missing go into fresh frames (streaming
    /// for large calls, <see cref="PageCopy.StreamingThresholdPages"/>), then one store fence and the
    /// entries are installed one compare-and-exchange each. Installing right after each page's copy made
    /// every compare-and-exchange wait for that page's streaming stores to drain (bench
    /// Uffd/UffdRoundTripBenchmarks.CopyOnly64).
    /// </remarks>
    private unsafe int MfillAnon(Vma vma, ulong start, ulong end, MfillKind kind, ReadOnlySpan<byte> src, bool wp, bool streaming, ref ulong va)
    {
        ulong[]? leaf = PageTable.GetOrCreateLeaf(start);
        if (leaf is null)
        {
            return -Errno.EEXIST; // a huge page maps it
        }

        int first = PageGeometry.Index(start, 0);
        int n = (int)((end - start) >> PageGeometry.PageShift);
        int rc = 0;

        // Pass 1: how far the missing pages go, and their bytes. A page of a private file mapping beyond the file's end
        // stops the call with -EFAULT before its entry is looked at (mfill_file_over_size, then pte_none_mostly).
        int missing = 0;
        while (missing < n)
        {
            ulong at = start + ((ulong)missing << PageGeometry.PageShift);
            if (vma.File is { } file && vma.PageIndex(at) >= file.PageCount)
            {
                rc = -Errno.EFAULT;
                break;
            }

            if (!new Pte(Volatile.Read(ref leaf[first + missing])).IsNoneMostly)
            {
                rc = -Errno.EEXIST;
                break;
            }

            missing++;
        }

        bool copy = kind == MfillKind.Copy;
        Span<ulong> frames = stackalloc ulong[copy ? missing : 0];
        int got = copy ? _memory.TryAllocateBatch(frames) : missing;
        if (got < missing)
        {
            missing = got;
            rc = -Errno.ENOMEM;
        }

        if (copy)
        {
            for (int i = 0; i < missing; i++)
            {
                PageCopy.CopyToFrame(_memory.FramePointer(frames[i]), src.Slice(i * PageGeometry.PageSizeInt, PageGeometry.PageSizeInt), streaming);
            }

            if (streaming)
            {
                PageCopy.Fence();
            }
        }

        // Pass 2: install; a page someone filled meanwhile ends the call with -EEXIST.
        bool writable = (vma.Flags & VmFlags.Write) != 0 && !wp;
        int installed = 0;
        for (; installed < missing; installed++)
        {
            ref ulong slot = ref leaf[first + installed];
            var old = new Pte(Volatile.Read(ref slot));
            Pte entry = copy ? Pte.Present(frames[installed], writable).WithUffdWp(wp)
                : kind == MfillKind.Poison ? Pte.SwapEntry(SwapType.Poisoned, 0)
                : Pte.Special(PhysicalMemory.ZeroPfn).WithUffdWp(wp);
            if (!old.IsNoneMostly || !InstallPte(ref slot, old, entry))
            {
                if (!old.IsNoneMostly && copy)
                {
                    _memory.Put(frames[installed]);
                }

                installed++; // this frame is accounted for (put above or by InstallPte)
                rc = -Errno.EEXIST;
                break;
            }

            va += PageGeometry.PageSize;
        }

        for (int i = installed; i < missing && copy; i++)
        {
            _memory.Put(frames[i]); // never mapped: the call stopped before them
        }

        return rc;
    }

    /// <summary>shmem_mfill_atomic_pte / mfill_atomic_pte_continue for shmem VMAs: the page goes into (or comes from) the page cache and is mapped.</summary>
    private int MfillShmem(Vma vma, ulong start, ulong end, MfillKind kind, ReadOnlySpan<byte> src, bool wp, ref ulong va)
    {
        MemFile file = vma.File!;
        bool writable = vma.IsShared && (vma.Flags & VmFlags.Write) != 0 && !wp;
        for (ulong a = start; a < end; a += PageGeometry.PageSize)
        {
            ulong index = vma.PageIndex(a);
            if (index >= file.PageCount)
            {
                // CONTINUE: shmem_get_folio(SGP_NOALLOC) refuses an index beyond i_size with -EINVAL; a fill: -EFAULT.
                return kind == MfillKind.Continue ? -Errno.EINVAL : -Errno.EFAULT;
            }

            ulong[]? leaf = PageTable.GetOrCreateLeaf(a);
            if (leaf is null)
            {
                return -Errno.EEXIST;
            }

            // mfill_atomic_pte_continue looks the page up (shmem_get_folio) before it looks at the entry.
            ulong pfn = 0;
            if (kind == MfillKind.Continue && !file.TryFindPage(index, out pfn))
            {
                return -Errno.EFAULT;
            }

            ref ulong slot = ref leaf[PageGeometry.Index(a, 0)];
            var old = new Pte(Volatile.Read(ref slot));
            if (!old.IsNoneMostly)
            {
                return -Errno.EEXIST;
            }

            if (kind != MfillKind.Continue)
            {
                if (file.TryFindPage(index, out _))
                {
                    return -Errno.EEXIST;
                }

                if (!_memory.TryAllocate(out pfn))
                {
                    return -Errno.ENOMEM;
                }

                Span<byte> frame = _memory.Frame(pfn);
                if (kind == MfillKind.Copy)
                {
                    src.Slice((int)(a - start), PageGeometry.PageSizeInt).CopyTo(frame);
                }
                else
                {
                    frame.Clear();
                }

                if (!file.TryAddPage(index, pfn))
                {
                    _memory.Put(pfn);
                    return -Errno.EEXIST;
                }
            }

            _memory.Get(pfn); // the mapping's reference
            if (!InstallPte(ref slot, old, Pte.Present(pfn, writable).WithUffdWp(wp)))
            {
                return -Errno.EEXIST;
            }

            va += PageGeometry.PageSize;
        }

        return 0;
    }

    /// <summary>
    /// mwriteprotect_range (mm/userfaultfd.c): write-protects (or un-protects) the pages of [start, end), which
    /// must be covered by VMAs registered with <paramref name="ctx"/> in WP mode. With <paramref name="markers"/>
    /// (UFFD_FEATURE_WP_UNPOPULATED), protecting an empty anonymous page installs a marker so its first write
    /// faults too. Raises PROTECTION_VMA over the range.
    /// </summary>
    /// <param name="ctx">The context the VMAs must be registered with.</param>
    /// <param name="start">Page-aligned start.</param>
    /// <param name="end">Page-aligned end.</param>
    /// <param name="protect">True to protect, false to allow writes again.</param>
    /// <param name="markers">Install markers on empty anonymous pages.</param>
    /// <returns>0, or -ENOENT (no VMA in the range, or one not registered in WP mode: the VMAs before it were done; holes
    /// between VMAs are skipped, as mwriteprotect_range walks the VMAs of the range).</returns>
    /// <remarks>Takes the mmap read lock.</remarks>
    internal int MwriteprotectRange(IUserfaultHook ctx, ulong start, ulong end, bool protect, bool markers)
    {
        MmapLock.ReadLock();
        try
        {
            // for_each_vma_range with err = -ENOENT to begin with: no VMA at all is -ENOENT, and so is the first VMA that is
            // not registered in WP mode, which ends the walk after the VMAs before it were done (uffd_wp_range per VMA).
            int rc = -Errno.ENOENT;
            for (Vma? vma = FindVma(start); vma is not null && vma.Start < end; vma = FindVma(vma.End))
            {
                if ((vma.Flags & VmFlags.UffdWp) == 0)
                {
                    return -Errno.ENOENT;
                }

                UffdWpRange(vma, Math.Max(vma.Start, start), Math.Min(vma.End, end), protect, markers);
                rc = 0;
            }

            return rc;
        }
        finally
        {
            MmapLock.ReadUnlock();
        }
    }

    /// <summary>uffd_wp_range: (un)protects the entries of [start, end) inside <paramref name="vma"/>, raising PROTECTION_VMA over it.</summary>
    private void UffdWpRange(Vma vma, ulong start, ulong end, bool protect, bool markers)
    {
        // userfaultfd_wp_use_markers: file and shmem mappings always keep the protection of an empty page in a
        // marker; anonymous ones only with UFFD_FEATURE_WP_UNPOPULATED.
        bool useMarkers = markers || !vma.IsAnonymous;
        NotifierRange range = InvalidateRangeStart(start, end, NotifierEvent.ProtectionVma);
        for (ulong a = start; a < end; a += PageGeometry.PageSize)
        {
            if (PageTable.FindLeaf(a) is null && !PageTable.FindHuge(a).IsNone && PageTable.SplitHuge(a))
            {
                Counters.Increment(MmEvent.HugeSplits);
            }

            ulong[]? leaf = protect && useMarkers ? PageTable.GetOrCreateLeaf(a) : PageTable.FindLeaf(a);
            if (leaf is null)
            {
                continue;
            }

            ref ulong slot = ref leaf[PageGeometry.Index(a, 0)];
            while (true)
            {
                var pte = new Pte(Volatile.Read(ref slot));
                Pte next = UffdReprotect(vma, pte, protect, useMarkers);
                if (next == pte || PageTable.TryUpdate(ref slot, pte, next))
                {
                    break;
                }
            }
        }

        InvalidateRangeEnd(range);
    }

    /// <summary>Takes every userfaultfd write protection off <paramref name="vma"/>'s entries (under the write lock).</summary>
    private void ClearUffdWp(Vma vma)
    {
        NotifierRange range = InvalidateRangeStart(vma.Start, vma.End, NotifierEvent.ProtectionVma);
        for (ulong a = vma.Start; a < vma.End;)
        {
            ulong spanEnd = Math.Min(vma.End, (a | PageGeometry.PmdMask) + 1);
            ulong[]? leaf = PageTable.FindLeaf(a);
            for (ulong p = a; leaf is not null && p < spanEnd; p += PageGeometry.PageSize)
            {
                ref ulong slot = ref leaf[PageGeometry.Index(p, 0)];
                var pte = new Pte(Volatile.Read(ref slot));
                if (pte.IsUffdWp)
                {
                    PageTable.TryUpdate(ref slot, pte, UffdReprotect(vma, pte, protect: false, markers: false));
                }
            }

            a = spanEnd;
        }

        InvalidateRangeEnd(range);
    }

    private Pte UffdReprotect(Vma vma, Pte pte, bool protect, bool markers)
    {
        if (pte.IsNone)
        {
            return protect && markers ? Pte.SwapEntry(SwapType.Marker, 0).WithUffdWp(true) : pte;
        }

        if (!pte.IsMapped)
        {
            return !protect && pte.Swap == SwapType.Marker ? Pte.None : pte;
        }

        if (protect)
        {
            return pte.WithUffdWp(true).WithWritable(false);
        }

        bool exclusive = vma.IsShared || (!pte.IsSpecial && !_memory.IsPageCache(pte.Pfn) && _memory.RefCount(pte.Pfn) == 1);
        return pte.WithUffdWp(false).WithWritable((vma.Flags & VmFlags.Write) != 0 && exclusive && !pte.IsSpecial);
    }

    /// <summary>
    /// move_pages (mm/userfaultfd.c): moves the pages of [src, src + length) to the missing pages of
    /// [dst, dst + length) without copying (both private anonymous; dst registered with <paramref name="ctx"/>),
    /// raising CLEAR over the source. Each source entry is cleared and the TLBs shot down before the page is
    /// installed at its destination (ptep_clear_flush), so no CPU access still reaches it through the source.
    /// </summary>
    /// <param name="ctx">The context dst must be registered with.</param>
    /// <param name="dst">Page-aligned destination.</param>
    /// <param name="src">Page-aligned source.</param>
    /// <param name="length">Page-aligned length.</param>
    /// <param name="allowSrcHoles">UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES: skip empty source pages.</param>
    /// <param name="moved">Bytes handled (moved or skipped holes) before the call stopped.</param>
    /// <param name="pages">Pages actually moved.</param>
    /// <returns>0; -EEXIST (a destination page exists); -ENOENT (dst not registered, or a source hole without
    /// ALLOW_SRC_HOLES); -EBUSY (a source page is shared, huge or not present); -EINVAL (not anonymous).</returns>
    /// <remarks>Takes the mmap read lock.</remarks>
    internal int MovePages(IUserfaultHook ctx, ulong dst, ulong src, ulong length, bool allowSrcHoles, out ulong moved, out long pages)
    {
        moved = 0;
        pages = 0;
        int rc = 0;
        MmapLock.ReadLock();
        try
        {
            // uffd_move_lock: find_vma_and_prepare_anon for the destination only, then vma_lookup of the source; then
            // validate_move_areas, as Linux 6.18 orders them. The source's anon_vma is the one its pages came with: settled
            // here (the late anon_vma_prepare) before the pages leave, and never made for an empty source.
            AnonVmaPrepare(dst);
            Vma? dstVma = VmaLookup(dst);
            Vma? srcVma = VmaLookup(src);
            if (dstVma is null || srcVma is null)
            {
                return -Errno.ENOENT;
            }

            SettleAnonVma(src);

            if (src + length > srcVma.End || dst + length > dstVma.End || !MoveAreasCompatible(ctx, srcVma, dstVma))
            {
                return -Errno.EINVAL;
            }

            NotifierRange range = InvalidateRangeStart(src, src + length, NotifierEvent.Clear);
            for (ulong off = 0; off < length && rc == 0; off += PageGeometry.PageSize)
            {
                rc = MoveOne(ctx, dst + off, src + off, allowSrcHoles, ref pages);
                if (rc == 0)
                {
                    moved = off + PageGeometry.PageSize;
                }
            }

            InvalidateRangeEnd(range);
        }
        finally
        {
            MmapLock.ReadUnlock();
        }

        return rc;
    }

    /// <summary>validate_move_areas (mm/userfaultfd.c): the same access flags and mlock state, a writable source, neither
    /// VM_PFNMAP/VM_IO/VM_MIXEDMAP, the destination registered with <paramref name="ctx"/>, and both anonymous.</summary>
    private static bool MoveAreasCompatible(IUserfaultHook ctx, Vma src, Vma dst) =>
        (src.Flags & VmFlags.AccessMask) == (dst.Flags & VmFlags.AccessMask)
        && (src.Flags & VmFlags.LockedMask) == (dst.Flags & VmFlags.LockedMask)
        && (src.Flags & VmFlags.Write) != 0
        && ((src.Flags | dst.Flags) & VmFlags.Special) == 0
        && ReferenceEquals(dst.Userfault, ctx)
        && src.IsAnonymous && dst.IsAnonymous && !src.IsShared && !dst.IsShared;

    private int MoveOne(IUserfaultHook ctx, ulong dst, ulong src, bool allowHoles, ref long pages)
    {
        Vma dstVma = VmaLookup(dst)!;

        ulong[]? srcLeaf = PageTable.FindLeaf(src);
        ulong[]? dstLeaf = PageTable.GetOrCreateLeaf(dst);
        if (dstLeaf is null || (srcLeaf is null && !PageTable.FindHuge(src).IsNone))
        {
            return -Errno.EBUSY; // huge pages are not moved here
        }

        ref ulong dstSlot = ref dstLeaf[PageGeometry.Index(dst, 0)];
        var dstOld = new Pte(Volatile.Read(ref dstSlot));
        if (!dstOld.IsNoneMostly)
        {
            return -Errno.EEXIST;
        }

        var entry = srcLeaf is null ? Pte.None : new Pte(Volatile.Read(ref srcLeaf[PageGeometry.Index(src, 0)]));
        if (entry.IsNone)
        {
            return allowHoles ? 0 : -Errno.ENOENT;
        }

        if (!entry.IsPresent || (!entry.IsSpecial && _memory.RefCount(entry.Pfn) != 1))
        {
            return -Errno.EBUSY;
        }

        ref ulong srcSlot = ref srcLeaf![PageGeometry.Index(src, 0)];
        if (!PageTable.TryUpdate(ref srcSlot, entry, Pte.None))
        {
            return -Errno.EBUSY;
        }

        Tlb.Shootdown();
        Pte moved = entry.IsSpecial ? entry : entry.WithWritable((dstVma.Flags & VmFlags.Write) != 0);
        if (!PageTable.TryUpdate(ref dstSlot, dstOld, moved))
        {
            // A fault filled the destination meanwhile: put the page back where it was; if a fault
            // refilled the source too, the page has no home left and goes back to the pool.
            if (!PageTable.TryUpdate(ref srcSlot, Pte.None, entry))
            {
                _memory.Put(entry.Pfn);
            }

            return -Errno.EEXIST;
        }

        pages++;
        return 0;
    }
}
