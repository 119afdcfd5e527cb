namespace MirrorEmu.Mm;

public sealed partial class AddressSpace
{
    /// <summary>Frames a zap gathers before it flushes (a huge page's worth: one flush per 2 MiB at most).</summary>
    private const int GatherBatch = PageGeometry.LevelEntries;

    /// <summary>
    /// zap_page_range: clears every entry of [start, end) inside <paramref name="vma"/> and drops the
    /// frame references they held, late: the references are gathered (<see cref="MmuGather"/>) and put
    /// only after a <see cref="Tlb.Shootdown"/>, so a CPU access that read an entry before it was cleared
    /// finishes with its frame before the frame can be handed out again. Huge leaves wholly inside are
    /// dropped whole; others are split first. With <paramref name="freeTables"/>, leaf tables whose
    /// whole 2 MiB span lies in the range are freed.
    /// </summary>
    /// <remarks>
    /// Call with the mmap lock held: for write when freeing tables; MADV_DONTNEED zaps under the read
    /// lock, racing faults and CPU accesses. Each entry is taken with one atomic exchange, so a racing
    /// fault either installs before (and its frame is gathered here) or after (and keeps its frame).
    /// Raise the notifier start before and the end after.
    /// </remarks>
    /// <param name="vma">The VMA the range lies in.</param>
    /// <param name="start">Page-aligned start.</param>
    /// <param name="end">Page-aligned end.</param>
    /// <param name="freeTables">Free leaf tables wholly inside the range (the VMA is going away).</param>
    /// <param name="dropMarkers">Clear guard and userfaultfd-wp markers too (zap_drop_markers: only when the VMA goes away);
    /// MADV_DONTNEED and friends keep them, so a guard region or a write-protected empty page stays so.</param>
    private void ZapRange(Vma vma, ulong start, ulong end, bool freeTables, bool dropMarkers = true)
    {
        Span<ulong> buffer = stackalloc ulong[GatherBatch];
        var tlb = new MmuGather(this, buffer);
        bool special = (vma.Flags & (VmFlags.PfnMap | VmFlags.Io)) != 0;
        long zapped = 0;
        ulong va = start;
        while (va < end)
        {
            ulong spanEnd = Math.Min(end, (va | PageGeometry.PmdMask) + 1);
            Pte huge = PageTable.FindHuge(va);
            if (!huge.IsNone)
            {
                if ((va & PageGeometry.PmdMask) == 0 && spanEnd - va == PageGeometry.PmdSize && PageTable.TryUpdateHuge(va, huge, Pte.None))
                {
                    for (ulong i = 0; !huge.IsSpecial && i < (1UL << PageGeometry.PmdOrder); i++)
                    {
                        tlb.Add(huge.Pfn + i); // the huge zero page (special) holds no reference: zap_huge_pmd
                    }

                    zapped += 1L << PageGeometry.PmdOrder;
                    va = spanEnd;
                    continue;
                }

                if (PageTable.SplitHuge(va))
                {
                    Counters.Increment(Telemetry.MmEvent.HugeSplits);
                }
            }

            ulong[]? leaf = PageTable.FindLeaf(va);
            if (leaf is not null)
            {
                for (ulong a = va; a < spanEnd; a += PageGeometry.PageSize)
                {
                    ref ulong slot = ref leaf[PageGeometry.Index(a, 0)];
                    ulong word = Volatile.Read(ref slot);
                    if (word == 0 || (!dropMarkers && new Pte(word).Swap is SwapType.Guard or SwapType.Marker))
                    {
                        continue;
                    }

                    var old = new Pte(Interlocked.Exchange(ref slot, 0UL));
                    zapped++;
                    if (!old.IsMapped && (old.IsDevicePrivate || old.HoldsFrameReference) && DevicePagemap.IsDevicePfn(old.Pfn))
                    {
                        PutPage(old.Pfn); // a device page: the CPU never mapped it, nothing to shoot down
                    }
                    else if (HeldFrameReference(old, special))
                    {
                        tlb.Add(old.Pfn);
                    }
                }

                if (freeTables && (va & PageGeometry.PmdMask) == 0 && spanEnd - va == PageGeometry.PmdSize)
                {
                    PageTable.FreeLeaf(va);
                }
            }

            va = spanEnd;
        }

        tlb.Flush();
        Counters.Add(Telemetry.MmEvent.PtesZapped, zapped);
    }

    /// <summary>Whether a cleared entry held a frame reference that zap_pte_range drops (put_page / free_swap_and_cache).</summary>
    private static bool HeldFrameReference(Pte old, bool specialVma) =>
        old.IsMapped ? !old.IsSpecial && !specialVma : old.HoldsFrameReference;
}
