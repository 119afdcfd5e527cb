namespace MirrorEmu.Mm;

public sealed partial class AddressSpace
{
    /// <summary>
    /// zap_page_range: clears every entry of [start, end) inside <paramref name="vma"/> and drops the
    /// frame references they held. Huge leaves wholly inside are dropped whole; others are split first.
    /// With <paramref name="freeTables"/>, leaf tables whose whole 2 MiB span lies in the range are freed.
    /// </summary>
    /// <remarks>
    /// Call with the mmap lock held: for write when freeing tables; MADV_DONTNEED zaps under the read
    /// lock, racing faults, which is safe because each entry is taken with one atomic exchange.
    /// Raise the notifier start before and the end after.
    /// </remarks>
    private void ZapRange(Vma vma, ulong start, ulong end, bool freeTables)
    {
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
                    for (ulong i = 0; i < (1UL << PageGeometry.PmdOrder); i++)
                    {
                        _memory.Put(huge.Pfn + i);
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
                    if (Volatile.Read(ref slot) == 0)
                    {
                        continue;
                    }

                    var old = new Pte(Interlocked.Exchange(ref slot, 0UL));
                    zapped++;
                    DropEntryReference(old, special);
                }

                if (freeTables && (va & PageGeometry.PmdMask) == 0 && spanEnd - va == PageGeometry.PmdSize)
                {
                    PageTable.FreeLeaf(va);
                }
            }

            va = spanEnd;
        }

        Counters.Add(Telemetry.MmEvent.PtesZapped, zapped);
    }

    /// <summary>Drops the frame reference a cleared entry held (zap_pte_range's put_page / free_swap_and_cache).</summary>
    private void DropEntryReference(Pte old, bool specialVma)
    {
        if (old.IsMapped)
        {
            if (!old.IsSpecial && !specialVma)
            {
                _memory.Put(old.Pfn);
            }

            return;
        }

        if (old.HoldsFrameReference)
        {
            _memory.Put(old.Pfn);
        }
    }
}
