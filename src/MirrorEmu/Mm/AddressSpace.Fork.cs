using MirrorEmu.Notifier;

namespace MirrorEmu.Mm;

public sealed partial class AddressSpace
{
    /// <summary>
    /// fork(2)'s dup_mmap: a new address space over the same pool with a copy of every VMA except
    /// VM_DONTCOPY ones. Private pages become copy-on-write in both (their write bits are cleared,
    /// raising PROTECTION_PAGE over each private VMA of the parent); shared pages are shared.
    /// </summary>
    /// <returns>The child.</returns>
    /// <remarks>Takes the parent's mmap write lock.</remarks>
    public AddressSpace Fork()
    {
        ThrowIfDisposed();
        var child = new AddressSpace(_memory);
        MmapLock.WriteLock();
        try
        {
            foreach (Vma vma in _vmas)
            {
                if ((vma.Flags & VmFlags.DontCopy) != 0)
                {
                    continue;
                }

                var copy = new Vma(child, vma.Start, vma.End, vma.Flags & ~VmFlags.UffdMask, vma.File, vma.PgOff);
                if (vma.Userfault?.OnFork(vma, child) is { } hook)
                {
                    copy.Userfault = hook;
                    copy.Flags = vma.Flags;
                }

                child.InsertVmaAt(child._vmas.Count, copy);
                bool cow = !vma.IsShared && (vma.Flags & (VmFlags.Io | VmFlags.PfnMap)) == 0;
                if (cow)
                {
                    NotifierRange range = InvalidateRangeStart(vma.Start, vma.End, NotifierEvent.ProtectionPage);
                    CopyPageRange(vma, child, cow: true);
                    InvalidateRangeEnd(range);
                }
                else
                {
                    CopyPageRange(vma, child, cow: false);
                }
            }
        }
        finally
        {
            MmapLock.WriteUnlock();
        }

        return child;
    }

    /// <summary>copy_page_range: copies the entries of <paramref name="vma"/> into <paramref name="child"/>, taking a
    /// frame reference for each; with <paramref name="cow"/> both sides lose the write bit.</summary>
    private void CopyPageRange(Vma vma, AddressSpace child, bool cow)
    {
        bool special = (vma.Flags & (VmFlags.Io | VmFlags.PfnMap)) != 0;
        for (ulong va = vma.Start; va < vma.End;)
        {
            ulong spanEnd = Math.Min(vma.End, (va | PageGeometry.PmdMask) + 1);
            Pte huge = PageTable.FindHuge(va);
            if (!huge.IsNone)
            {
                Pte shared = cow ? huge.WithWritable(false) : huge;
                if (cow && huge.IsWritable)
                {
                    PageTable.TryUpdateHuge(va, huge, shared);
                }

                for (ulong i = 0; i < (1UL << PageGeometry.PmdOrder); i++)
                {
                    _memory.Get(huge.Pfn + i);
                }

                child.PageTable.TryInstallHuge(va & ~PageGeometry.PmdMask, shared);
                va = spanEnd;
                continue;
            }

            ulong[]? leaf = PageTable.FindLeaf(va);
            if (leaf is null)
            {
                va = spanEnd;
                continue;
            }

            ulong[]? childLeaf = null;
            for (ulong a = va; a < spanEnd; a += PageGeometry.PageSize)
            {
                ref ulong slot = ref leaf[PageGeometry.Index(a, 0)];
                var pte = new Pte(Volatile.Read(ref slot));
                if (pte.IsNone)
                {
                    continue;
                }

                if (pte.IsMapped)
                {
                    if (cow && pte.IsWritable)
                    {
                        pte = pte.WithWritable(false);
                        Volatile.Write(ref slot, pte.Value); // under the write lock: no fault races this
                    }

                    if (!pte.IsSpecial && !special)
                    {
                        _memory.Get(pte.Pfn);
                    }
                }
                else if (pte.HoldsFrameReference)
                {
                    _memory.Get(pte.Pfn);
                }
                else if (pte.Swap is SwapType.DevicePrivateRead or SwapType.DevicePrivateWrite or SwapType.Poisoned)
                {
                    continue; // not inherited: the child faults afresh
                }

                childLeaf ??= child.PageTable.GetOrCreateLeaf(va)!;
                childLeaf[PageGeometry.Index(a, 0)] = pte.Value;
            }

            va = spanEnd;
        }
    }
}
