using MirrorEmu.Mm;
using MirrorEmu.Notifier;
using MirrorEmu.Telemetry;

namespace MirrorEmu.Uffd;

public sealed partial class Userfaultfd
{
    /// <summary>UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES.</summary>
    public const UffdCopyMode MoveAllowSrcHoles = (UffdCopyMode)2;

    private enum FillKind
    {
        Copy,
        Zero,
        Continue,
    }

    /// <summary>
    /// UFFDIO_COPY (mfill_atomic_copy): fills the missing pages of [dst, dst + src.Length) with
    /// <paramref name="src"/>'s bytes, many pages in one call, then wakes the waiters of the filled
    /// range (unless DONTWAKE).
    /// </summary>
    /// <param name="dst">Page-aligned destination in a range registered with this context.</param>
    /// <param name="src">The bytes, a whole number of pages.</param>
    /// <param name="mode">DONTWAKE and/or WP (map the pages userfaultfd-write-protected; needs WP registration).</param>
    /// <param name="copied">Bytes filled, also when the call stops early.</param>
    /// <returns>0; -EEXIST (a page already mapped: <paramref name="copied"/> says how far it got); -EAGAIN (the layout is
    /// changing: read the pending events first); -ENOENT (not registered with this context); -EINVAL (alignment, mode);
    /// -ENOMEM (out of frames); -EBADF (released).</returns>
    public int Copy(ulong dst, ReadOnlySpan<byte> src, UffdCopyMode mode, out ulong copied) =>
        Fill(FillKind.Copy, "UFFDIO_COPY", dst, (ulong)src.Length, src, mode, out copied);

    /// <summary>UFFDIO_ZEROPAGE: maps the zero page (shmem: a zeroed page-cache page) over the missing pages of [dst, dst + length).</summary>
    /// <param name="dst">Page-aligned destination.</param>
    /// <param name="length">Page-aligned length.</param>
    /// <param name="mode">DONTWAKE only.</param>
    /// <param name="zeroed">Bytes mapped.</param>
    /// <returns>As <see cref="Copy"/>.</returns>
    public int ZeroPage(ulong dst, ulong length, UffdCopyMode mode, out ulong zeroed) =>
        (mode & UffdCopyMode.WriteProtect) != 0
            ? FailEinval(out zeroed)
            : Fill(FillKind.Zero, "UFFDIO_ZEROPAGE", dst, length, ReadOnlySpan<byte>.Empty, mode, out zeroed);

    /// <summary>UFFDIO_CONTINUE: maps the page-cache pages of a MINOR-registered shmem range.</summary>
    /// <param name="start">Page-aligned start.</param>
    /// <param name="length">Page-aligned length.</param>
    /// <param name="mode">DONTWAKE and/or WP.</param>
    /// <param name="mapped">Bytes mapped.</param>
    /// <returns>0; -EFAULT (a page not in the page cache); -EINVAL (not MINOR-registered shmem); otherwise as <see cref="Copy"/>.</returns>
    public int Continue(ulong start, ulong length, UffdCopyMode mode, out ulong mapped) =>
        Fill(FillKind.Continue, "UFFDIO_CONTINUE", start, length, ReadOnlySpan<byte>.Empty, mode, out mapped);

    private static int FailEinval(out ulong done)
    {
        done = 0;
        return -Errno.EINVAL;
    }

    private int Fill(FillKind kind, string call, ulong dst, ulong length, ReadOnlySpan<byte> src, UffdCopyMode mode, out ulong done)
    {
        done = 0;
        KResult check = CheckUsable(call, dst, length);
        if (!check.IsOk)
        {
            return check.Code;
        }

        if ((mode & ~(UffdCopyMode.DontWake | UffdCopyMode.WriteProtect)) != 0)
        {
            return -Errno.EINVAL;
        }

        Stats.Increment(UffdStat.ResolveCalls);
        if (Volatile.Read(ref _mmapChanging) != 0)
        {
            Stats.Increment(UffdStat.ResolveEagain);
            return -Errno.EAGAIN;
        }

        ulong end = dst + length;
        int rc = 0;
        bool wp = (mode & UffdCopyMode.WriteProtect) != 0;
        bool streaming = (length >> PageGeometry.PageShift) >= (ulong)PageCopy.StreamingThresholdPages;
        _mm.MmapLock.ReadLock();
        try
        {
            ulong va = dst;
            while (va < end && rc == 0)
            {
                Vma? vma = _mm.VmaLookup(va);
                if (vma is null || !ReferenceEquals(vma.UserfaultContext, this))
                {
                    rc = -Errno.ENOENT;
                    break;
                }

                if ((wp && (vma.Flags & VmFlags.UffdWp) == 0) || (kind == FillKind.Continue && (vma.File is null || (vma.Flags & VmFlags.UffdMinor) == 0)))
                {
                    rc = -Errno.EINVAL;
                    break;
                }

                ulong spanEnd = Math.Min(Math.Min(end, vma.End), (va | PageGeometry.PmdMask) + 1);
                ReadOnlySpan<byte> bytes = kind == FillKind.Copy ? src.Slice((int)(va - dst), (int)(spanEnd - va)) : default;
                rc = vma.File is not null && (vma.IsShared || kind == FillKind.Continue)
                    ? FillShmem(vma, va, spanEnd, kind, bytes, wp, ref va)
                    : FillAnon(vma, va, spanEnd, kind, bytes, wp, streaming, ref va);
            }

            done = va - dst;
        }
        finally
        {
            _mm.MmapLock.ReadUnlock();
        }

        long pages = (long)(done >> PageGeometry.PageShift);
        Stats.Add(kind switch { FillKind.Copy => UffdStat.PagesCopied, FillKind.Zero => UffdStat.PagesZeroed, _ => UffdStat.PagesContinued }, pages);
        if (rc == -Errno.EEXIST)
        {
            Stats.Increment(UffdStat.ResolveEexist);
        }

        if (done > 0 && (mode & UffdCopyMode.DontWake) == 0)
        {
            WakeRange(dst, dst + done, outcome: 1);
        }

        return rc;
    }

    /// <summary>mfill_atomic_pte_copy / _zeropage for anonymous (and private file) VMAs: one leaf table span.</summary>
    /// <remarks>
    /// Two passes: first the bytes of every page that is still missing go into fresh frames (streaming
    /// for large calls, <see cref="PageCopy.StreamingThresholdPages"/>), then one store fence and the
    /// entries are installed one compare-and-exchange each. Installing right after each page's copy made
    /// every compare-and-exchange wait for that page's streaming stores to drain.
    /// </remarks>
    private unsafe int FillAnon(Vma vma, ulong start, ulong end, FillKind kind, ReadOnlySpan<byte> src, bool wp, bool streaming, ref ulong va)
    {
        ulong[]? leaf = _mm.PageTable.GetOrCreateLeaf(start);
        if (leaf is null)
        {
            return -Errno.EEXIST; // a huge page maps it
        }

        PhysicalMemory memory = _mm.Memory;
        int first = PageGeometry.Index(start, 0);
        int n = (int)((end - start) >> PageGeometry.PageShift);
        int rc = 0;

        // Pass 1: how far the missing pages go, and their bytes.
        int missing = 0;
        while (missing < n && new Pte(Volatile.Read(ref leaf[first + missing])).IsNoneMostly)
        {
            missing++;
        }

        if (missing < n)
        {
            rc = -Errno.EEXIST;
        }

        Span<ulong> frames = stackalloc ulong[kind == FillKind.Copy ? missing : 0];
        int got = kind == FillKind.Copy ? memory.TryAllocateBatch(frames) : missing;
        if (got < missing)
        {
            missing = got;
            rc = -Errno.ENOMEM;
        }

        if (kind == FillKind.Copy)
        {
            for (int i = 0; i < missing; i++)
            {
                PageCopy.CopyToFrame(memory.FramePointer(frames[i]), src.Slice(i * PageGeometry.PageSizeInt, PageGeometry.PageSizeInt), streaming);
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
            Pte entry = kind == FillKind.Zero
                ? Pte.Special(PhysicalMemory.ZeroPfn).WithUffdWp(wp)
                : Pte.Present(frames[installed], writable).WithUffdWp(wp);
            if (!old.IsNoneMostly || !PageTable.TryUpdate(ref slot, old, entry))
            {
                rc = -Errno.EEXIST;
                break;
            }

            va += PageGeometry.PageSize;
        }

        for (int i = installed; i < frames.Length && i < got; i++)
        {
            memory.Put(frames[i]);
        }

        return rc;
    }

    /// <summary>shmem_mfill_atomic_pte / mfill_atomic_pte_continue for shmem VMAs: the page goes into (or comes from) the page cache and is mapped.</summary>
    private int FillShmem(Vma vma, ulong start, ulong end, FillKind kind, ReadOnlySpan<byte> src, bool wp, ref ulong va)
    {
        MemFile file = vma.File!;
        PhysicalMemory memory = _mm.Memory;
        bool writable = vma.IsShared && (vma.Flags & VmFlags.Write) != 0 && !wp;
        for (ulong a = start; a < end; a += PageGeometry.PageSize)
        {
            ulong index = vma.PageIndex(a);
            if (index >= file.PageCount)
            {
                return -Errno.EFAULT;
            }

            ulong[]? leaf = _mm.PageTable.GetOrCreateLeaf(a);
            if (leaf is null)
            {
                return -Errno.EEXIST;
            }

            ref ulong slot = ref leaf[PageGeometry.Index(a, 0)];
            var old = new Pte(Volatile.Read(ref slot));
            if (!old.IsNoneMostly)
            {
                return -Errno.EEXIST;
            }

            ulong pfn;
            if (kind == FillKind.Continue)
            {
                if (!file.TryFindPage(index, out pfn))
                {
                    return -Errno.EFAULT;
                }
            }
            else
            {
                if (file.TryFindPage(index, out _))
                {
                    return -Errno.EEXIST;
                }

                if (!memory.TryAllocate(out pfn))
                {
                    return -Errno.ENOMEM;
                }

                Span<byte> frame = memory.Frame(pfn);
                if (kind == FillKind.Copy)
                {
                    src.Slice((int)(a - start), PageGeometry.PageSizeInt).CopyTo(frame);
                }
                else
                {
                    frame.Clear();
                }

                if (!file.TryAddPage(index, pfn))
                {
                    memory.Put(pfn);
                    return -Errno.EEXIST;
                }
            }

            memory.Get(pfn); // the mapping's reference
            if (!PageTable.TryUpdate(ref slot, old, Pte.Present(pfn, writable).WithUffdWp(wp)))
            {
                memory.Put(pfn);
                return -Errno.EEXIST;
            }

            va += PageGeometry.PageSize;
        }

        return 0;
    }

    /// <summary>
    /// UFFDIO_WRITEPROTECT: write-protects (or un-protects) the pages of a WP-registered range. With
    /// UFFD_FEATURE_WP_UNPOPULATED, protecting an empty anonymous page installs a marker so its first
    /// write faults too. Un-protecting wakes the range's waiters unless DONTWAKE.
    /// </summary>
    /// <param name="start">Page-aligned start.</param>
    /// <param name="length">Page-aligned length.</param>
    /// <param name="protect">True to protect, false to allow writes again.</param>
    /// <param name="mode">DONTWAKE.</param>
    /// <returns>0; -ENOENT (not WP-registered with this context); -EINVAL; -EAGAIN (layout changing).</returns>
    public int WriteProtect(ulong start, ulong length, bool protect, UffdCopyMode mode = UffdCopyMode.None)
    {
        KResult check = CheckUsable("UFFDIO_WRITEPROTECT", start, length);
        if (!check.IsOk)
        {
            return check.Code;
        }

        if (Volatile.Read(ref _mmapChanging) != 0)
        {
            Stats.Increment(UffdStat.ResolveEagain);
            return -Errno.EAGAIN;
        }

        ulong end = start + length;
        bool markers = (_features & UffdFeatures.WpUnpopulated) != 0;
        _mm.MmapLock.ReadLock();
        try
        {
            for (ulong a = start; a < end;)
            {
                Vma? vma = _mm.VmaLookup(a);
                if (vma is null || !ReferenceEquals(vma.UserfaultContext, this) || (vma.Flags & VmFlags.UffdWp) == 0)
                {
                    return -Errno.ENOENT;
                }

                a = Math.Min(end, vma.End);
            }

            var range = new NotifierRange(start, end, NotifierEvent.ProtectionVma);
            _mm.Notifiers.InvalidateRangeStart(range);
            for (ulong a = start; a < end; a += PageGeometry.PageSize)
            {
                Vma vma = _mm.VmaLookup(a)!;
                if (_mm.PageTable.FindLeaf(a) is null && !_mm.PageTable.FindHuge(a).IsNone)
                {
                    _mm.PageTable.SplitHuge(a);
                }

                ulong[]? leaf = protect && markers ? _mm.PageTable.GetOrCreateLeaf(a) : _mm.PageTable.FindLeaf(a);
                if (leaf is null)
                {
                    continue;
                }

                ref ulong slot = ref leaf[PageGeometry.Index(a, 0)];
                while (true)
                {
                    var pte = new Pte(Volatile.Read(ref slot));
                    Pte next = Reprotect(vma, pte, protect, markers);
                    if (next == pte || PageTable.TryUpdate(ref slot, pte, next))
                    {
                        break;
                    }
                }
            }

            _mm.Notifiers.InvalidateRangeEnd(range);
        }
        finally
        {
            _mm.MmapLock.ReadUnlock();
        }

        if (!protect && (mode & UffdCopyMode.DontWake) == 0)
        {
            WakeRange(start, end, outcome: 1);
        }

        return 0;
    }

    private Pte Reprotect(Vma vma, Pte pte, bool protect, bool markers)
    {
        if (pte.IsNone)
        {
            return protect && markers && vma.IsAnonymous ? Pte.SwapEntry(SwapType.Marker, 0).WithUffdWp(true) : pte;
        }

        if (!pte.IsMapped)
        {
            return !protect && pte.Swap == SwapType.Marker ? Pte.None : pte;
        }

        if (protect)
        {
            return pte.WithUffdWp(true).WithWritable(false);
        }

        bool exclusive = vma.IsShared || (!pte.IsSpecial && !_mm.Memory.IsPageCache(pte.Pfn) && _mm.Memory.RefCount(pte.Pfn) == 1);
        return pte.WithUffdWp(false).WithWritable((vma.Flags & VmFlags.Write) != 0 && exclusive && !pte.IsSpecial);
    }

    /// <summary>UFFDIO_WAKE: wakes the waiters whose fault address lies in [start, start + length).</summary>
    /// <param name="start">Page-aligned start.</param>
    /// <param name="length">Page-aligned length.</param>
    /// <returns>0 or -EINVAL.</returns>
    public int Wake(ulong start, ulong length)
    {
        KResult check = CheckUsable("UFFDIO_WAKE", start, length);
        if (!check.IsOk)
        {
            return check.Code;
        }

        WakeRange(start, start + length, outcome: 1);
        return 0;
    }

    /// <summary>
    /// UFFDIO_MOVE: moves the pages of [src, src + length) to the missing pages of [dst, dst + length)
    /// without copying (both private anonymous; dst registered with this context), raising CLEAR over the source.
    /// </summary>
    /// <param name="dst">Page-aligned destination.</param>
    /// <param name="src">Page-aligned source.</param>
    /// <param name="length">Page-aligned length.</param>
    /// <param name="mode">DONTWAKE and/or <see cref="MoveAllowSrcHoles"/>.</param>
    /// <param name="moved">Bytes handled.</param>
    /// <returns>0; -EEXIST (a destination page exists); -ENOENT (a source hole without ALLOW_SRC_HOLES, or dst not
    /// registered); -EBUSY (a source page is shared or not present); -EINVAL (no MOVE feature, overlap, not anonymous).</returns>
    public int Move(ulong dst, ulong src, ulong length, UffdCopyMode mode, out ulong moved)
    {
        moved = 0;
        KResult check = CheckUsable("UFFDIO_MOVE", dst, length);
        if (!check.IsOk)
        {
            return check.Code;
        }

        if ((_features & UffdFeatures.Move) == 0 || !CheckRange("UFFDIO_MOVE", src, length).IsOk
            || (dst < src + length && src < dst + length) || (mode & ~(UffdCopyMode.DontWake | MoveAllowSrcHoles)) != 0)
        {
            return -Errno.EINVAL;
        }

        if (Volatile.Read(ref _mmapChanging) != 0)
        {
            Stats.Increment(UffdStat.ResolveEagain);
            return -Errno.EAGAIN;
        }

        Stats.Increment(UffdStat.ResolveCalls);
        int rc = 0;
        long pages = 0;
        _mm.MmapLock.ReadLock();
        try
        {
            var range = new NotifierRange(src, src + length, NotifierEvent.Clear);
            _mm.Notifiers.InvalidateRangeStart(range);
            for (ulong off = 0; off < length && rc == 0; off += PageGeometry.PageSize)
            {
                rc = MoveOne(dst + off, src + off, (mode & MoveAllowSrcHoles) != 0, ref pages);
                if (rc == 0)
                {
                    moved = off + PageGeometry.PageSize;
                }
            }

            _mm.Notifiers.InvalidateRangeEnd(range);
        }
        finally
        {
            _mm.MmapLock.ReadUnlock();
        }

        Stats.Add(UffdStat.PagesMoved, pages);
        if (moved > 0 && (mode & UffdCopyMode.DontWake) == 0)
        {
            WakeRange(dst, dst + moved, outcome: 1);
        }

        return rc;
    }

    private int MoveOne(ulong dst, ulong src, bool allowHoles, ref long pages)
    {
        Vma? dstVma = _mm.VmaLookup(dst);
        Vma? srcVma = _mm.VmaLookup(src);
        if (dstVma is null || !ReferenceEquals(dstVma.UserfaultContext, this))
        {
            return -Errno.ENOENT;
        }

        if (srcVma is null || !srcVma.IsAnonymous || !dstVma.IsAnonymous)
        {
            return -Errno.EINVAL;
        }

        ulong[]? srcLeaf = _mm.PageTable.FindLeaf(src);
        ulong[]? dstLeaf = _mm.PageTable.GetOrCreateLeaf(dst);
        if (dstLeaf is null || (srcLeaf is null && !_mm.PageTable.FindHuge(src).IsNone))
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

        if (!entry.IsPresent || (!entry.IsSpecial && _mm.Memory.RefCount(entry.Pfn) != 1))
        {
            return -Errno.EBUSY;
        }

        ref ulong srcSlot = ref srcLeaf![PageGeometry.Index(src, 0)];
        if (!PageTable.TryUpdate(ref srcSlot, entry, Pte.None))
        {
            return -Errno.EBUSY;
        }

        Pte moved = entry.IsSpecial ? entry : entry.WithWritable((dstVma.Flags & VmFlags.Write) != 0);
        if (!PageTable.TryUpdate(ref dstSlot, dstOld, moved))
        {
            // A fault filled the destination meanwhile: put the page back where it was; if a fault
            // refilled the source too, the page has no home left and goes back to the pool.
            if (!PageTable.TryUpdate(ref srcSlot, Pte.None, entry))
            {
                _mm.Memory.Put(entry.Pfn);
            }

            return -Errno.EEXIST;
        }

        pages++;
        return 0;
    }
}
