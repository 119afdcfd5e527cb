using MirrorEmu.Notifier;

namespace MirrorEmu.Mm;

public sealed partial class AddressSpace
{
    /// <summary>
    /// unmap_mapping_pages for this address space: in every VMA that maps <paramref name="file"/>, clears the entries
    /// of file pages [<paramref name="firstPage"/>, <paramref name="endPage"/>): all of them in shared VMAs; in private
    /// ones the page-cache pages, and with <paramref name="evenCows"/> (truncation) their private copies too. Markers
    /// stay, as unmap_mapping_range keeps them. Raises CLEAR over each range.
    /// </summary>
    /// <param name="file">The file whose pages go.</param>
    /// <param name="firstPage">First page index in the file.</param>
    /// <param name="endPage">One past the last page index.</param>
    /// <param name="evenCows">Also clear private copies (truncate) rather than only the file's own pages (hole punching).</param>
    /// <remarks>Called by <see cref="MemFile"/> with no lock of it held; takes the mmap write lock.</remarks>
    internal void UnmapFilePages(MemFile file, ulong firstPage, ulong endPage, bool evenCows)
    {
        if (_disposed)
        {
            return;
        }

        MmapLock.WriteLock();
        try
        {
            for (int i = 0; i < _vmas.Count; i++)
            {
                Vma vma = _vmas[i];
                ulong pages = (vma.End - vma.Start) >> PageGeometry.PageShift;
                ulong lo = Math.Max(firstPage, vma.PgOff);
                ulong hi = Math.Min(endPage, vma.PgOff + pages);
                if (!ReferenceEquals(vma.File, file) || lo >= hi)
                {
                    continue;
                }

                EnsureAnonVma(i);
                ulong start = vma.Start + ((lo - vma.PgOff) << PageGeometry.PageShift);
                ulong end = vma.Start + ((hi - vma.PgOff) << PageGeometry.PageShift);
                NotifierRange range = InvalidateRangeStart(start, end, NotifierEvent.Clear);
                for (ulong va = start; va < end;)
                {
                    // Runs of entries to clear go through ZapRange, the one path that drops frame references.
                    ulong runEnd = va;
                    while (runEnd < end && ClearsOnUnmap(vma, runEnd, evenCows))
                    {
                        runEnd += PageGeometry.PageSize;
                    }

                    if (runEnd > va)
                    {
                        ZapRange(vma, va, runEnd, freeTables: false);
                        va = runEnd;
                    }
                    else
                    {
                        va += PageGeometry.PageSize;
                    }
                }

                InvalidateRangeEnd(range);
            }
        }
        finally
        {
            MmapLock.WriteUnlock();
        }
    }

    /// <summary>True if unmap_mapping_pages clears the entry at <paramref name="va"/>: not empty, not a marker, and in a private
    /// VMA either a page-cache page or (with <paramref name="evenCows"/>) anything.</summary>
    private bool ClearsOnUnmap(Vma vma, ulong va, bool evenCows)
    {
        Pte pte = PageTable.Read(va);
        if (pte.IsNone || pte.Swap is SwapType.Marker or SwapType.Guard)
        {
            return false;
        }

        return vma.IsShared || evenCows || (pte.IsMapped && !pte.IsSpecial && _memory.IsPageCache(pte.Pfn));
    }
}
