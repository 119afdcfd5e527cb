namespace MirrorEmu.Mm;

public sealed partial class AddressSpace
{
    /// <summary>
    /// mlock2(2) (mm/mlock.c: do_mlock): marks the VMAs of [addr, addr + length) VM_LOCKED (with MLOCK_ONFAULT also
    /// VM_LOCKONFAULT), splitting and merging, then populates them (not with MLOCK_ONFAULT): a locked range stays
    /// resident, so MADV_DONTNEED and similar advices refuse it. The start is rounded down to a page and the
    /// length grown to match. A hole stops the marking with -ENOMEM, the VMAs before it stay locked.
    /// </summary>
    /// <param name="addr">Start (any alignment).</param>
    /// <param name="length">Length in bytes.</param>
    /// <param name="flags">None (mlock) or <see cref="MlockFlags.OnFault"/>.</param>
    /// <returns>0; -EINVAL (unknown flags, the range wraps); -ENOMEM (a hole, or populating hit a page that cannot be
    /// faulted, PROT_NONE included); -EAGAIN (out of frames while populating).</returns>
    public KResult Mlock(ulong addr, ulong length, MlockFlags flags = MlockFlags.None)
    {
        ThrowIfDisposed();
        if ((flags & ~MlockFlags.OnFault) != 0)
        {
            return KResult.Error(Errno.EINVAL, $"mlock2: flags=0x{(int)flags:X} has unknown bits");
        }

        VmFlags lockFlags = VmFlags.Locked | ((flags & MlockFlags.OnFault) != 0 ? VmFlags.LockOnFault : VmFlags.None);
        ulong start = PageGeometry.PageDown(addr);
        ulong len = PageGeometry.PageAlignWrapping(unchecked(length + (addr & PageGeometry.PageMask)));
        KResult r = ApplyLockFlags("mlock", start, len, lockFlags);
        if (!r.IsOk)
        {
            return r;
        }

        return MmPopulate("mlock", start, unchecked(start + len), ignoreErrors: false);
    }

    /// <summary>munlock(2): clears VM_LOCKED and VM_LOCKONFAULT on the VMAs of [addr, addr + length), splitting and merging.</summary>
    /// <param name="addr">Start (any alignment).</param>
    /// <param name="length">Length in bytes.</param>
    /// <returns>0; -EINVAL (the range wraps); -ENOMEM (a hole; the VMAs before it are unlocked).</returns>
    public KResult Munlock(ulong addr, ulong length)
    {
        ThrowIfDisposed();
        ulong start = PageGeometry.PageDown(addr);
        ulong len = PageGeometry.PageAlignWrapping(unchecked(length + (addr & PageGeometry.PageMask)));
        return ApplyLockFlags("munlock", start, len, VmFlags.None);
    }

    /// <summary>apply_vma_lock_flags: sets the lock flags of every VMA of [start, start + len) in turn; a hole stops it with -ENOMEM.</summary>
    private KResult ApplyLockFlags(string call, ulong start, ulong len, VmFlags lockFlags)
    {
        ulong end = unchecked(start + len);
        if (end < start)
        {
            return KResult.Error(Errno.EINVAL, $"{call}: [0x{start:X16}, +0x{len:X}) wraps around");
        }

        if (end == start)
        {
            return KResult.Ok;
        }

        MmapLock.WriteLock();
        try
        {
            for (ulong at = start; at < end;)
            {
                int i = FindVmaIndex(at);
                if (i >= _vmas.Count || _vmas[i].Start > at)
                {
                    return KResult.Error(Errno.ENOMEM, $"{call}: [0x{start:X16}, 0x{end:X16}) is not mapped at 0x{at:X16}");
                }

                Vma vma = _vmas[i];
                VmFlags flags = (vma.Flags & ~VmFlags.LockedMask) | lockFlags;
                at = flags == vma.Flags || (vma.Flags & (VmFlags.Special | VmFlags.Droppable)) != 0
                    ? vma.End // mlock_fixup leaves special and droppable mappings alone
                    : MergeAroundOne(UpdateVmaFlags(at, Math.Min(end, vma.End), flags));
            }

            return KResult.Ok;
        }
        finally
        {
            MmapLock.WriteUnlock();
        }
    }

    /// <summary>__mm_populate(start, end - start, ignoreErrors): faults in each VMA of [start, end) through
    /// populate_vma_page_range, writable if it is private and writable, readable otherwise; VM_IO/VM_PFNMAP and
    /// VM_LOCKONFAULT VMAs are skipped and a PROT_NONE one fails with -EFAULT. With <paramref name="ignoreErrors"/>
    /// (mmap's MAP_POPULATE, a grown VM_LOCKED mapping) every failure is passed over and 0 comes back; without it
    /// (mlock) the first failure stops the walk and is returned as mlock reports it (__mlock_posix_error_return:
    /// -EFAULT is -ENOMEM, -ENOMEM is -EAGAIN). Takes the mmap read lock.</summary>
    private KResult MmPopulate(string call, ulong start, ulong end, bool ignoreErrors)
    {
        FaultFlags faultFlags = ignoreErrors ? FaultFlags.None : FaultFlags.AllowRetry | FaultFlags.Killable;
        MmapLock.ReadLock();
        try
        {
            for (ulong at = start; at < end;)
            {
                Vma? vma = FindVma(at);
                if (vma is null || vma.Start >= end)
                {
                    break;
                }

                ulong from = Math.Max(at, vma.Start);
                ulong to = Math.Min(end, vma.End);
                at = to;
                if ((vma.Flags & (VmFlags.Io | VmFlags.PfnMap | VmFlags.LockOnFault)) != 0)
                {
                    continue;
                }

                int rc = (vma.Flags & VmFlags.AccessMask) == 0 ? -Errno.EFAULT
                    : PopulateLocked(from, to, (vma.Flags & (VmFlags.Write | VmFlags.Shared)) == VmFlags.Write, faultFlags, out _);
                if (rc != 0 && !ignoreErrors)
                {
                    int code = rc == -Errno.EFAULT ? -Errno.ENOMEM : rc == -Errno.ENOMEM ? -Errno.EAGAIN : rc;
                    return KResult.Error(-code, $"{call}: populating [0x{from:X16}, 0x{to:X16}) failed with {Errno.Name(rc)}");
                }
            }

            return KResult.Ok;
        }
        finally
        {
            MmapLock.ReadUnlock();
        }
    }
}
