using MirrorEmu.Notifier;

namespace MirrorEmu.Mm;

public sealed partial class AddressSpace
{
    /// <summary>
    /// fork(2)'s dup_mmap: a new address space over the same pool with a copy of every VMA except
    /// VM_DONTCOPY ones. Private pages become copy-on-write in both (their write bits are cleared,
    /// raising PROTECTION_PAGE over each private VMA of the parent); shared pages are shared. The child's
    /// VMAs are not mlocked; a VM_WIPEONFORK VMA comes empty; a VMA with an anon_vma gets a new one chained to
    /// the parent's (so it merges only with its own pieces); entries are copied only where Linux copies them
    /// (vma_needs_copy: an anon_vma, a pfn map, or a write-protect registration kept by the child), and keep
    /// their userfaultfd write-protect bits and markers only if the child keeps that registration. Device-private pages
    /// are shared with the child (read-only in both for a private mapping), and a device-exclusive page is restored
    /// first and then shared copy-on-write (copy_nonpresent_pte).
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
            for (int i = 0; i < _vmas.Count; i++)
            {
                Vma vma = _vmas[i];
                if ((vma.Flags & VmFlags.DontCopy) != 0)
                {
                    continue;
                }

                EnsureAnonVma(i);
                bool wipe = (vma.Flags & VmFlags.WipeOnFork) != 0;
                var copy = new Vma(child, vma.Start, vma.End, vma.Flags & ~(VmFlags.UffdMask | VmFlags.LockedMask), vma.File, vma.PgOff)
                {
                    AnonVma = vma.AnonVma is null || wipe ? null : new AnonVma(),
                    AnonVmaForked = vma.AnonVma is not null && !wipe,
                };
                if (vma.Userfault?.OnFork(vma, child) is { } hook)
                {
                    copy.Userfault = hook;
                    copy.Flags = (vma.Flags & ~VmFlags.LockedMask) | (vma.Flags & VmFlags.UffdMask);
                }

                child.InsertVmaAt(child._vmas.Count, copy);
                bool keepWp = (copy.Flags & VmFlags.UffdWp) != 0;
                if (wipe || (vma.AnonVma is null && !keepWp && (vma.Flags & (VmFlags.PfnMap | VmFlags.MixedMap)) == 0))
                {
                    continue; // the child faults its pages in afresh
                }

                bool cow = !vma.IsShared && (vma.Flags & (VmFlags.Io | VmFlags.PfnMap)) == 0;
                if (cow)
                {
                    NotifierRange range = InvalidateRangeStart(vma.Start, vma.End, NotifierEvent.ProtectionPage);
                    CopyPageRange(vma, child, cow: true, keepWp);
                    InvalidateRangeEnd(range);
                }
                else
                {
                    CopyPageRange(vma, child, cow: false, keepWp);
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
    /// frame reference for each; with <paramref name="cow"/> both sides lose the write bit. Without
    /// <paramref name="keepWp"/> the child's entries lose their userfaultfd write-protect bit and write-protect
    /// markers are not copied (guard markers always are).</summary>
    private void CopyPageRange(Vma vma, AddressSpace child, bool cow, bool keepWp)
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

                shared = keepWp ? shared : shared.WithUffdWp(false);

                for (ulong i = 0; !huge.IsSpecial && i < (1UL << PageGeometry.PmdOrder); i++)
                {
                    _memory.Get(huge.Pfn + i); // copy_huge_pmd: the huge zero page (special) is shared without a reference
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
                else if (pte.Swap == SwapType.DeviceExclusive && cow)
                {
                    // copy_nonpresent_pte: restore the page (try_restore_exclusive_pte), then copy it as a present COW page.
                    pte = Pte.Present(pte.Pfn, writable: false);
                    Volatile.Write(ref slot, pte.Value);
                    _memory.Get(pte.Pfn);
                }
                else if (pte.IsDevicePrivate)
                {
                    // copy_nonpresent_pte: both map the device page; a writable entry of a COW mapping becomes read-only in both.
                    GetPage(pte.Pfn);
                    if (cow && pte.Swap == SwapType.DevicePrivateWrite)
                    {
                        pte = pte.WithReadableSwap();
                        Volatile.Write(ref slot, pte.Value);
                    }

                    DevicePagemap.Of(pte.Pfn)?.NoteMapped(child);
                }
                else if (pte.HoldsFrameReference)
                {
                    if (cow && pte.Swap == SwapType.MigrationWrite)
                    {
                        pte = pte.WithReadableSwap();
                        Volatile.Write(ref slot, pte.Value);
                    }

                    GetPage(pte.Pfn);
                }
                else if (pte.Swap == SwapType.Poisoned || (pte.Swap == SwapType.Marker && !keepWp))
                {
                    continue; // not inherited: the child faults afresh
                }

                if (!keepWp)
                {
                    pte = pte.WithUffdWp(false);
                }

                childLeaf ??= child.PageTable.GetOrCreateLeaf(va)!;
                childLeaf[PageGeometry.Index(a, 0)] = pte.Value;
            }

            va = spanEnd;
        }
    }
}
