using MirrorEmu.Mm;

namespace MirrorEmu.Hmm;

public static partial class HmmFault
{
    /// <summary>A walk could not go on collecting: the runs so far are faulted, then the re-walk meets the obstacle.</summary>
    private const int Stop = 2;

    private const ulong PudMask = (1UL << PageGeometry.PudShift) - 1;

    /// <summary>walk_page_range over [last, end) with the hmm_walk_ops.</summary>
    private static int Walk(HmmRange range, ref ulong last)
    {
        var w = new Walker(range, last);
        int r = w.Run();
        last = w.Last;
        if (r == Stop)
        {
            r = 0;
        }

        return w.Collecting && r == 0 ? FaultPending : r;
    }

    /// <summary>One walk pass: outputs until the first page to fault, then only collection.</summary>
    private struct Walker(HmmRange range, ulong last)
    {
        private readonly HmmRange _range = range;
        private readonly ulong[] _pfns = range.HmmPfns;
        private readonly ulong _default = range.DefaultFlags;
        private readonly ulong _mask = range.PfnFlagsMask;
        private readonly AddressSpace _mm = range.Mm;

        public ulong Last = last;
        public bool Collecting;

        public int Run()
        {
            _range.Runs.Clear();
            ulong end = _range.End;
            ulong addr = Last;
            while (addr < end)
            {
                Vma? vma = _mm.FindVma(addr);
                ulong holeEnd = vma is null ? end : Math.Min(end, vma.Start);
                int r;
                if (addr < holeEnd)
                {
                    r = HoleNoVma(addr, holeEnd);
                    addr = holeEnd;
                }
                else
                {
                    ulong vend = Math.Min(end, vma!.End);
                    r = WalkVma(vma, addr, vend);
                    addr = vend;
                }

                if (r != 0)
                {
                    return r;
                }
            }

            if (!Collecting)
            {
                Last = end;
            }

            return 0;
        }

        /// <summary>hmm_vma_walk_hole with no VMA: -EFAULT if a fault is needed, else ERROR.</summary>
        private int HoleNoVma(ulong addr, ulong end)
        {
            if (RangeNeedFault(addr, end, 0) != NeedFault.None)
            {
                return Collecting ? Stop : -Errno.EFAULT;
            }

            Fill(addr, end, HmmPfn.Error);
            return 0;
        }

        /// <summary>hmm_vma_walk_test, then the PUD/PMD/PTE levels of one VMA.</summary>
        private int WalkVma(Vma vma, ulong addr, ulong vend)
        {
            if ((vma.Flags & VmFlags.Read) == 0 || (vma.Flags & (VmFlags.Io | VmFlags.PfnMap)) != 0)
            {
                if (RangeNeedFault(addr, vend, 0) != NeedFault.None)
                {
                    return Collecting ? Stop : -Errno.EFAULT;
                }

                Fill(addr, vend, HmmPfn.Error);
                return 0;
            }

            PageTable pt = _mm.PageTable;
            while (addr < vend)
            {
                PageTable.PmdTable? pmd = pt.FindPmdTable(addr);
                ulong chunkEnd;
                int r;
                if (pmd is null)
                {
                    chunkEnd = Math.Min(vend, (addr | PudMask) + 1);
                    r = Hole(vma, addr, chunkEnd);
                }
                else
                {
                    chunkEnd = Math.Min(vend, (addr | PageGeometry.PmdMask) + 1);
                    ulong[]? leaf = PageTable.ReadPmd(pmd, PageGeometry.Index(addr, 1), out ulong huge);
                    r = leaf is not null ? Ptes(vma, leaf, addr, chunkEnd)
                        : huge != 0 ? Huge(vma, new Pte(huge), addr, chunkEnd)
                        : Hole(vma, addr, chunkEnd);
                }

                if (r != 0)
                {
                    return r;
                }

                addr = chunkEnd;
            }

            return 0;
        }

        /// <summary>hmm_vma_walk_hole inside a VMA: fault the hole if needed, else 0.</summary>
        private int Hole(Vma vma, ulong addr, ulong end)
        {
            NeedFault need = RangeNeedFault(addr, end, 0);
            if (need != NeedFault.None)
            {
                return AddFault(vma, addr, end, need, 0);
            }

            Fill(addr, end, 0);
            return 0;
        }

        /// <summary>hmm_vma_handle_pmd: a huge leaf reports VALID[|WRITE] | order 9 on every page.</summary>
        private int Huge(Vma vma, Pte huge, ulong addr, ulong end)
        {
            ulong cpu = huge.IsProtNone ? 0 : HmmPfn.Valid | (huge.IsWritable ? HmmPfn.Write : 0) | HmmPfn.OrderBitsFor(PageGeometry.PmdOrder);
            NeedFault need = RangeNeedFault(addr, end, cpu);
            if (need != NeedFault.None)
            {
                return AddFault(vma, addr, end, need, cpu);
            }

            if (!Collecting)
            {
                ulong basePfn = huge.Pfn + ((addr & PageGeometry.PmdMask) >> PageGeometry.PageShift);
                for (int i = _range.IndexOf(addr), k = 0; i < _range.IndexOf(end); i++, k++)
                {
                    _pfns[i] = HmmPfn.Output(_pfns[i], cpu | (basePfn + (ulong)k));
                }
            }

            return 0;
        }

        /// <summary>hmm_vma_walk_pmd's PTE loop: the SIMD scanner, and hmm_vma_handle_pte for the entries it stops at.</summary>
        private int Ptes(Vma vma, ulong[] leaf, ulong addr, ulong end)
        {
            int n = (int)((end - addr) >> PageGeometry.PageShift);
            ReadOnlySpan<ulong> ptes = leaf.AsSpan(PageGeometry.Index(addr, 0), n);
            Span<ulong> pfns = _pfns.AsSpan(_range.IndexOf(addr), n);
            int k = 0;
            while (k < n)
            {
                int stop = k + PteScanner.Scan(ptes[k..], pfns[k..], _default, _mask, store: !Collecting);
                if (stop >= n)
                {
                    return 0;
                }

                ulong a = addr + ((ulong)stop << PageGeometry.PageShift);
                int r = HandlePte(vma, new Pte(Volatile.Read(in ptes[stop])), ref pfns[stop], a, end);
                if (r != 0)
                {
                    return r;
                }

                if (Collecting && _range.Extent == FaultExtent.Kernel && LastRunEndsAt(end))
                {
                    return 0; // the run covers the rest of the chunk
                }

                k = stop + 1;
            }

            return 0;
        }

        private readonly bool LastRunEndsAt(ulong end) => _range.Runs.Count > 0 && _range.Runs[^1].End == end;

        /// <summary>hmm_vma_handle_pte for an entry the fast path stopped at.</summary>
        private int HandlePte(Vma vma, Pte pte, ref ulong pfn, ulong addr, ulong chunkEnd)
        {
            ulong input = pfn;
            ulong faultEnd = _range.Extent == FaultExtent.Kernel ? chunkEnd : addr + PageGeometry.PageSize;
            if (pte.IsNoneMostly)
            {
                NeedFault need = PteNeedFault(input, 0, _default, _mask);
                if (need != NeedFault.None)
                {
                    return AddFault(vma, addr, faultEnd, need, 0);
                }

                if (!Collecting)
                {
                    pfn = HmmPfn.Output(input, 0);
                }

                return 0;
            }

            if (!pte.IsMapped)
            {
                SwapType swap = pte.Swap;
                if (swap is SwapType.DevicePrivateRead or SwapType.DevicePrivateWrite
                    && _range.DevPrivateOwner is not null && ReferenceEquals(_mm.DevicePagemap?.Owner, _range.DevPrivateOwner))
                {
                    // The caller's own device-private page: reported, never faulted.
                    if (!Collecting)
                    {
                        pfn = HmmPfn.Output(input, HmmPfn.Valid | (swap == SwapType.DevicePrivateWrite ? HmmPfn.Write : 0) | pte.Pfn);
                    }

                    return 0;
                }

                NeedFault need = PteNeedFault(input, 0, _default, _mask);
                if (need == NeedFault.None)
                {
                    if (!Collecting)
                    {
                        pfn = HmmPfn.Output(input, 0);
                    }

                    return 0;
                }

                switch (swap)
                {
                    case SwapType.Swap:
                    case SwapType.DevicePrivateRead:
                    case SwapType.DevicePrivateWrite:
                    case SwapType.DeviceExclusive:
                        return AddFault(vma, addr, faultEnd, need, 0);
                    case SwapType.MigrationRead:
                    case SwapType.MigrationWrite:
                        if (Collecting)
                        {
                            return Stop;
                        }

                        // migration_entry_wait, then -EBUSY: the walk restarts from here.
                        Last = addr;
                        _mm.MigrationEntryWait(addr, pte);
                        return -Errno.EBUSY;
                    default:
                        return Collecting ? Stop : -Errno.EFAULT;
                }
            }

            ulong cpu = pte.IsProtNone ? 0 : HmmPfn.Valid | (pte.IsWritable ? HmmPfn.Write : 0);
            NeedFault required = PteNeedFault(input, cpu, _default, _mask);
            if (required != NeedFault.None)
            {
                return AddFault(vma, addr, faultEnd, required, cpu);
            }

            if (pte.IsSpecial && !pte.IsZeroPage)
            {
                // No struct page behind it (a mixed map's pfn): an error if it had to be faulted.
                if (PteNeedFault(input, 0, _default, _mask) != NeedFault.None)
                {
                    return Collecting ? Stop : -Errno.EFAULT;
                }

                if (!Collecting)
                {
                    pfn = HmmPfn.Output(input, HmmPfn.Error);
                }

                return 0;
            }

            if (!Collecting)
            {
                pfn = HmmPfn.Output(input, pte.Pfn | cpu);
            }

            return 0;
        }

        /// <summary>hmm_range_need_fault: the OR of every page's need, with the snapshot-only shortcut.</summary>
        private readonly NeedFault RangeNeedFault(ulong addr, ulong end, ulong cpu)
        {
            if (((_default | _mask) & HmmPfn.ReqFault) == 0)
            {
                return NeedFault.None;
            }

            NeedFault need = NeedFault.None;
            for (int i = _range.IndexOf(addr), e = _range.IndexOf(end); i < e && need != NeedFault.All; i++)
            {
                need |= PteNeedFault(_pfns[i], cpu, _default, _mask);
            }

            return need;
        }

        private readonly void Fill(ulong addr, ulong end, ulong value)
        {
            if (Collecting)
            {
                return;
            }

            for (int i = _range.IndexOf(addr), e = _range.IndexOf(end); i < e; i++)
            {
                _pfns[i] = HmmPfn.Output(_pfns[i], value);
            }
        }

        /// <summary>Records [addr, end) for faulting; the first one sets <c>last</c> and ends the writing of outputs.
        /// With <see cref="FaultExtent.Precise"/>, only the pages that need it are recorded.</summary>
        /// <returns>0 to go on collecting; <see cref="Stop"/> when the run is in a userfaultfd VMA whose policy
        /// faults one page per walk anyway (Unsupported, SinglePage): looking further would only cost time.</returns>
        private int AddFault(Vma vma, ulong addr, ulong end, NeedFault need, ulong cpu)
        {
            if (!Collecting)
            {
                Collecting = true;
                Last = addr;
            }

            if (_range.Extent == FaultExtent.Kernel)
            {
                AppendRun(new FaultRun(addr, end, need, vma));
            }
            else
            {
                for (ulong a = addr; a < end; a += PageGeometry.PageSize)
                {
                    NeedFault n = PteNeedFault(_pfns[_range.IndexOf(a)], cpu, _default, _mask);
                    if (n != NeedFault.None)
                    {
                        AppendRun(new FaultRun(a, a + PageGeometry.PageSize, n, vma));
                    }
                }
            }

            bool onePagePerWalk = _range.UffdPolicy is UffdFaultPolicy.SinglePage or UffdFaultPolicy.Unsupported;
            return onePagePerWalk && (vma.Flags & VmFlags.UffdMissing) != 0 && vma.Userfault is not null ? Stop : 0;
        }

        /// <summary>Appends a run, merging it with the previous one when they touch, share the VMA and the need.</summary>
        private readonly void AppendRun(FaultRun run)
        {
            List<FaultRun> runs = _range.Runs;
            if (runs.Count > 0)
            {
                FaultRun prev = runs[^1];
                if (prev.End == run.Start && ReferenceEquals(prev.Vma, run.Vma) && prev.Required == run.Required)
                {
                    runs[^1] = prev with { End = run.End };
                    return;
                }
            }

            runs.Add(run);
        }
    }
}
