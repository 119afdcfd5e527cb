using MirrorEmu.Notifier;

namespace MirrorEmu.Mm;

public sealed partial class AddressSpace
{
    /// <summary>
    /// mprotect(2): sets the protection of [addr, addr + length), splitting and merging VMAs, and
    /// updates present entries (write permission removed, PROT_NONE entries made protnone). Raises
    /// PROTECTION_VMA over the range.
    /// </summary>
    /// <param name="addr">Page-aligned start.</param>
    /// <param name="length">Length in bytes (rounded up to pages); 0 does nothing.</param>
    /// <param name="prot">PROT_* bits.</param>
    /// <returns>0; -EINVAL (unaligned, unknown bits); -ENOMEM (beyond the address space, or a hole in the range;
    /// unlike Linux nothing is changed then).</returns>
    public KResult Mprotect(ulong addr, ulong length, Prot prot)
    {
        ThrowIfDisposed();
        if ((prot & ~(Prot.Read | Prot.Write | Prot.Exec)) != 0)
        {
            return KResult.Error(Errno.EINVAL, $"mprotect: prot=0x{(int)prot:X} has unknown bits");
        }

        KResult check = CheckRange("mprotect", addr, length, Errno.ENOMEM, out ulong end);
        if (!check.IsOk || end == addr)
        {
            return check;
        }

        MmapLock.WriteLock();
        try
        {
            if (!IsFullyMapped(addr, end))
            {
                return KResult.Error(Errno.ENOMEM, $"mprotect: [0x{addr:X16}, 0x{end:X16}) is not fully mapped");
            }

            (int first, int last) = SplitRange(addr, end);
            NotifierRange range = InvalidateRangeStart(addr, end, NotifierEvent.ProtectionVma);
            VmFlags access = ToVmFlags(prot);
            for (int i = first; i < last; i++)
            {
                Vma old = _vmas[i];
                Vma updated = old.CloneRange(old.Start, old.End);
                updated.Flags = (old.Flags & ~VmFlags.AccessMask) | access;
                ReplaceVmaAt(i, updated);
                ChangeProtection(updated, prot);
            }

            InvalidateRangeEnd(range);
            MergeAround(first, last);
            return KResult.Ok;
        }
        finally
        {
            MmapLock.WriteUnlock();
        }
    }

    /// <summary>change_protection: rewrites the present and protnone entries of <paramref name="vma"/> for <paramref name="prot"/>.
    /// Private mappings keep a write bit only if they had it and still may write (a later write fault reuses or copies);
    /// shared mappings get it from the protection.</summary>
    private void ChangeProtection(Vma vma, Prot prot)
    {
        bool none = (prot & (Prot.Read | Prot.Write | Prot.Exec)) == 0;
        bool mayWrite = (prot & Prot.Write) != 0;
        for (ulong va = vma.Start; va < vma.End;)
        {
            ulong spanEnd = Math.Min(vma.End, (va | PageGeometry.PmdMask) + 1);
            Pte huge = PageTable.FindHuge(va);
            if (!huge.IsNone)
            {
                if ((va & PageGeometry.PmdMask) == 0 && spanEnd - va == PageGeometry.PmdSize)
                {
                    PageTable.TryUpdateHuge(va, huge, Reprotect(huge, none, mayWrite, vma.IsShared));
                    va = spanEnd;
                    continue;
                }

                PageTable.SplitHuge(va);
                Counters.Increment(Telemetry.MmEvent.HugeSplits);
            }

            ulong[]? leaf = PageTable.FindLeaf(va);
            if (leaf is not null)
            {
                for (ulong a = va; a < spanEnd; a += PageGeometry.PageSize)
                {
                    ref ulong slot = ref leaf[PageGeometry.Index(a, 0)];
                    while (true)
                    {
                        var pte = new Pte(Volatile.Read(ref slot));
                        if (!pte.IsMapped)
                        {
                            break;
                        }

                        Pte updated = Reprotect(pte, none, mayWrite, vma.IsShared);
                        if (updated == pte || PageTable.TryUpdate(ref slot, pte, updated))
                        {
                            break;
                        }
                    }
                }
            }

            va = spanEnd;
        }
    }

    private static Pte Reprotect(Pte pte, bool none, bool mayWrite, bool shared)
    {
        if (none)
        {
            return pte.IsPresent ? pte.WithProtNone() : pte;
        }

        Pte present = pte.IsProtNone ? pte.WithPresent() : pte;
        if (present.IsSpecial)
        {
            return present.WithWritable(false);
        }

        return present.WithWritable(shared ? mayWrite : mayWrite && pte.IsWritable);
    }

    /// <summary>
    /// madvise(2) with DONTNEED, HUGEPAGE, NOHUGEPAGE, POPULATE_READ or POPULATE_WRITE.
    /// </summary>
    /// <param name="addr">Page-aligned start.</param>
    /// <param name="length">Length in bytes (rounded up to pages); 0 does nothing.</param>
    /// <param name="advice">The advice.</param>
    /// <returns>0; -EINVAL (unaligned, unknown advice, VM_IO/VM_PFNMAP, or a populate the protection forbids);
    /// -ENOMEM (a hole in the range: checked first, so nothing changes; or out of frames while populating);
    /// -EFAULT (populating would SIGBUS).</returns>
    public KResult Madvise(ulong addr, ulong length, Advice advice)
    {
        ThrowIfDisposed();
        if (advice is not (Advice.DontNeed or Advice.HugePage or Advice.NoHugePage or Advice.PopulateRead or Advice.PopulateWrite))
        {
            return KResult.Error(Errno.EINVAL, $"madvise: advice={(int)advice} is not supported");
        }

        KResult check = CheckRange("madvise", addr, length, Errno.EINVAL, out ulong end);
        if (!check.IsOk || end == addr)
        {
            return check;
        }

        if (advice is Advice.HugePage or Advice.NoHugePage)
        {
            return MadviseHuge(addr, end, advice == Advice.HugePage);
        }

        MmapLock.ReadLock();
        try
        {
            if (!IsFullyMapped(addr, end))
            {
                return KResult.Error(Errno.ENOMEM, $"madvise: [0x{addr:X16}, 0x{end:X16}) is not fully mapped");
            }

            if (advice == Advice.DontNeed)
            {
                return MadviseDontNeed(addr, end);
            }

            bool write = advice == Advice.PopulateWrite;
            int rc = PopulateLocked(addr, end, write, FaultFlags.AllowRetry | FaultFlags.Killable, out _);
            return rc == 0 ? KResult.Ok : KResult.Error(-rc, $"madvise: populating [0x{addr:X16}, 0x{end:X16}) {(write ? "writable" : "readable")} failed with {Errno.Name(rc)}");
        }
        finally
        {
            MmapLock.ReadUnlock();
        }
    }

    /// <summary>MADV_DONTNEED under the read lock: CLEAR over the range, then zap every entry.</summary>
    private KResult MadviseDontNeed(ulong addr, ulong end)
    {
        for (int i = FindVmaIndex(addr); i < _vmas.Count && _vmas[i].Start < end; i++)
        {
            if ((_vmas[i].Flags & (VmFlags.Io | VmFlags.PfnMap)) != 0)
            {
                return KResult.Error(Errno.EINVAL, $"madvise: MADV_DONTNEED on the VM_IO/VM_PFNMAP mapping at 0x{_vmas[i].Start:X16}");
            }
        }

        NotifierRange range = InvalidateRangeStart(addr, end, NotifierEvent.Clear);
        for (int i = FindVmaIndex(addr); i < _vmas.Count && _vmas[i].Start < end; i++)
        {
            Vma vma = _vmas[i];
            ulong zapStart = Math.Max(addr, vma.Start);
            ulong zapEnd = Math.Min(end, vma.End);
            vma.Userfault?.OnRemove(zapStart, zapEnd); // userfaultfd_remove
            ZapRange(vma, zapStart, zapEnd, freeTables: false);
        }

        InvalidateRangeEnd(range);
        return KResult.Ok;
    }

    private KResult MadviseHuge(ulong addr, ulong end, bool huge)
    {
        MmapLock.WriteLock();
        try
        {
            if (!IsFullyMapped(addr, end))
            {
                return KResult.Error(Errno.ENOMEM, $"madvise: [0x{addr:X16}, 0x{end:X16}) is not fully mapped");
            }

            (int first, int last) = SplitRange(addr, end);
            for (int i = first; i < last; i++)
            {
                Vma old = _vmas[i];
                Vma updated = old.CloneRange(old.Start, old.End);
                updated.Flags = huge
                    ? (old.Flags | VmFlags.HugePage) & ~VmFlags.NoHugePage
                    : (old.Flags | VmFlags.NoHugePage) & ~VmFlags.HugePage;
                ReplaceVmaAt(i, updated);
            }

            MergeAround(first, last);
            return KResult.Ok;
        }
        finally
        {
            MmapLock.WriteUnlock();
        }
    }
}
