using MirrorEmu.Notifier;
using MirrorEmu.Telemetry;

namespace MirrorEmu.Mm;

public sealed partial class AddressSpace
{
    /// <summary>
    /// MADV_PAGEOUT on [start, end) of VMA <paramref name="i"/> (madvise_cold_or_pageout_pte_range, then reclaim_pages and
    /// shrink_folio_list), as Linux 6.18 does it for the pages mapped by this VMA alone (folio_maybe_mapped_shared skips the
    /// others):
    /// <list type="bullet">
    /// <item>A huge page that the range touches is split, and every 4 KiB part of it that holds only zeros maps the zero page
    /// instead (its frame is freed): the huge page cannot be swapped whole, and the split remaps zero-filled subpages
    /// (try_to_map_unused_to_zeropage). The huge zero page stays.</item>
    /// <item>A page-cache page (file or shmem) is unmapped (try_to_unmap; the page stays in the cache, and an entry with a
    /// userfaultfd write-protect bit leaves a write-protect marker in a VMA registered for it).</item>
    /// <item>An anonymous page is swapped out when the pool has swap (<see cref="PhysicalMemory.SwapEnabled"/>): its entry becomes
    /// a swap entry and its frame, with its bytes, the swap cache, so that the next access swaps it in (major fault) with the same
    /// bytes; without swap it stays mapped, as on a host without swap.</item>
    /// </list>
    /// Each entry that changes raises CLEAR over its page (a huge page's split over its 2 MiB). Frames are freed late.
    /// </summary>
    /// <remarks>Call with the mmap read lock held (as madvise does); entries change with compare-and-exchange, so a racing
    /// fault either comes before (and its page is reclaimed or kept) or after.</remarks>
    private void PageOut(int i, ulong start, ulong end)
    {
        Vma vma = _vmas[i];
        if ((vma.Flags & (VmFlags.Io | VmFlags.PfnMap)) != 0)
        {
            return;
        }

        EnsureAnonVma(i); // the anon_vma outlives the pages that leave
        Span<ulong> buffer = stackalloc ulong[GatherBatch];
        var tlb = new MmuGather(this, buffer);
        bool swap = _memory.SwapEnabled;
        for (ulong va = start; va < end;)
        {
            ulong spanEnd = Math.Min(end, (va | PageGeometry.PmdMask) + 1);
            Pte huge = PageTable.FindHuge(va);
            if (!huge.IsNone && !huge.IsSpecial && huge.IsPresent && ExclusiveHuge(huge))
            {
                SplitHugeForReclaim(va & ~PageGeometry.PmdMask, ref tlb);
            }

            ulong[]? leaf = PageTable.FindLeaf(va);
            for (ulong a = va; leaf is not null && a < spanEnd; a += PageGeometry.PageSize)
            {
                ReclaimOne(vma, a, ref leaf[PageGeometry.Index(a, 0)], swap, ref tlb);
            }

            va = spanEnd;
        }

        tlb.Flush();
    }

    /// <summary>True when every frame of the huge page is mapped once (not shared with a fork child).</summary>
    private bool ExclusiveHuge(Pte huge)
    {
        for (ulong k = 0; k < (1UL << PageGeometry.PmdOrder); k++)
        {
            if (_memory.RefCount(huge.Pfn + k) != 1)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>split_folio as reclaim does it: splits the huge leaf at <paramref name="haddr"/> and maps the zero page over
    /// each 4 KiB part that holds only zeros, gathering its frame to be freed after the shootdown.</summary>
    private void SplitHugeForReclaim(ulong haddr, ref MmuGather tlb)
    {
        NotifierRange range = InvalidateRangeStart(haddr, haddr + PageGeometry.PmdSize, NotifierEvent.Clear);
        if (PageTable.SplitHuge(haddr))
        {
            Counters.Increment(MmEvent.HugeSplits);
            ulong[]? leaf = PageTable.FindLeaf(haddr);
            for (int k = 0; leaf is not null && k < PageGeometry.LevelEntries; k++)
            {
                ref ulong slot = ref leaf[k];
                var pte = new Pte(Volatile.Read(ref slot));
                if (!pte.IsMapped || pte.IsSpecial || _memory.Frame(pte.Pfn).IndexOfAnyExcept((byte)0) >= 0)
                {
                    continue;
                }

                Pte zero = Pte.Special(PhysicalMemory.ZeroPfn).WithUffdWp(pte.IsUffdWp);
                if (PageTable.TryUpdate(ref slot, pte, pte.IsProtNone ? zero.WithProtNone() : zero))
                {
                    tlb.Add(pte.Pfn);
                }
            }
        }

        InvalidateRangeEnd(range);
    }

    /// <summary>shrink_folio_list for the page at <paramref name="va"/>: unmaps a page-cache page mapped only here, swaps an
    /// exclusive anonymous page out when <paramref name="swap"/>, leaves anything else.</summary>
    private void ReclaimOne(Vma vma, ulong va, ref ulong slot, bool swap, ref MmuGather tlb)
    {
        var pte = new Pte(Volatile.Read(ref slot));
        if (!pte.IsMapped || pte.IsSpecial || (vma.Flags & (VmFlags.Io | VmFlags.PfnMap)) != 0)
        {
            return; // empty, not present, the zero page
        }

        bool cached = _memory.IsPageCache(pte.Pfn);
        Pte next;
        if (cached)
        {
            if (_memory.RefCount(pte.Pfn) != 2)
            {
                return; // the cache's hold plus this mapping: any other mapping keeps it mapped
            }

            bool marker = pte.IsUffdWp && (vma.Flags & VmFlags.UffdWp) != 0 && !vma.IsAnonymous; // pte_install_uffd_wp_if_needed
            next = marker ? Pte.SwapEntry(SwapType.Marker, 0).WithUffdWp(true) : Pte.None;
        }
        else if (swap && _memory.RefCount(pte.Pfn) == 1)
        {
            next = Pte.SwapEntry(SwapType.Swap, pte.Pfn).WithUffdWp(pte.IsUffdWp); // the reference passes to the swap cache
        }
        else
        {
            return; // anonymous memory without swap, or shared with a fork child
        }

        NotifierRange range = InvalidateRangeStart(va, va + PageGeometry.PageSize, NotifierEvent.Clear);
        if (PageTable.TryUpdate(ref slot, pte, next) && cached)
        {
            tlb.Add(pte.Pfn);
        }

        InvalidateRangeEnd(range);
    }
}
