namespace MirrorEmu.Mm;

public sealed partial class AddressSpace
{
    /// <summary>
    /// msync(2) (mm/msync.c). The emulator's files live in memory, so there is nothing to write back: the call checks
    /// its arguments and the range as Linux does. Holes are skipped and reported as -ENOMEM at the end (MS_ASYNC alone
    /// returns -ENOMEM at the first); MS_INVALIDATE on a VM_LOCKED mapping is -EBUSY.
    /// </summary>
    /// <param name="addr">Page-aligned start.</param>
    /// <param name="length">Length in bytes (rounded up to pages); 0 does nothing.</param>
    /// <param name="flags">MS_ASYNC or MS_SYNC, and MS_INVALIDATE.</param>
    /// <returns>0; -EINVAL (unknown flags, both MS_ASYNC and MS_SYNC, unaligned); -ENOMEM (the range wraps, or a hole);
    /// -EBUSY (MS_INVALIDATE on a locked mapping).</returns>
    public KResult Msync(ulong addr, ulong length, MsyncFlags flags)
    {
        ThrowIfDisposed();
        if ((flags & ~(MsyncFlags.Async | MsyncFlags.Invalidate | MsyncFlags.Sync)) != 0 || !PageGeometry.IsPageAligned(addr)
            || (flags & (MsyncFlags.Async | MsyncFlags.Sync)) == (MsyncFlags.Async | MsyncFlags.Sync))
        {
            return KResult.Error(Errno.EINVAL, $"msync: flags=0x{(int)flags:X} or addr=0x{addr:X16} is invalid");
        }

        ulong end = unchecked(addr + PageGeometry.PageAlignWrapping(length));
        if (end < addr)
        {
            return KResult.Error(Errno.ENOMEM, $"msync: addr=0x{addr:X16} + length=0x{length:X} wraps around");
        }

        if (end == addr)
        {
            return KResult.Ok;
        }

        MmapLock.ReadLock();
        try
        {
            bool hole = false;
            for (ulong at = addr; at < end;)
            {
                Vma? vma = FindVma(at);
                if (vma is null || (vma.Start >= end && at < vma.Start))
                {
                    return KResult.Error(Errno.ENOMEM, $"msync: [0x{at:X16}, 0x{end:X16}) is not mapped");
                }

                if (at < vma.Start)
                {
                    if (flags == MsyncFlags.Async)
                    {
                        return KResult.Error(Errno.ENOMEM, $"msync: 0x{at:X16} is not mapped");
                    }

                    hole = true;
                    at = vma.Start;
                }

                if ((flags & MsyncFlags.Invalidate) != 0 && (vma.Flags & VmFlags.Locked) != 0)
                {
                    return KResult.Error(Errno.EBUSY, $"msync: MS_INVALIDATE on the VM_LOCKED mapping at 0x{vma.Start:X16}");
                }

                at = vma.End;
            }

            return hole ? KResult.Error(Errno.ENOMEM, $"msync: [0x{addr:X16}, 0x{end:X16}) has holes") : KResult.Ok;
        }
        finally
        {
            MmapLock.ReadUnlock();
        }
    }

    /// <summary>
    /// mincore(2) (mm/mincore.c): one byte per page of [addr, addr + length), bit 0 set if the page is resident: for
    /// anonymous memory, if an entry maps it (the zero page included) or it is swapped out and in the swap cache (always, in
    /// the emulator); for file and shmem mappings, if it is in the page cache or mapped (behind a guard or userfaultfd marker too). Bytes are written up to the first hole, which makes
    /// the result -ENOMEM.
    /// </summary>
    /// <param name="addr">Page-aligned start.</param>
    /// <param name="length">Length in bytes (rounded up to pages); 0 writes nothing.</param>
    /// <param name="vec">One byte per page.</param>
    /// <returns>0; -EINVAL (unaligned); -ENOMEM (beyond the user address space, or a hole); -EFAULT (<paramref name="vec"/> too short).</returns>
    public KResult Mincore(ulong addr, ulong length, Span<byte> vec)
    {
        ThrowIfDisposed();
        if (!PageGeometry.IsPageAligned(addr))
        {
            return KResult.Error(Errno.EINVAL, $"mincore: addr=0x{addr:X16} is not page aligned");
        }

        if (length > PageGeometry.TaskSize || addr > PageGeometry.TaskSize - length)
        {
            return KResult.Error(Errno.ENOMEM, $"mincore: [0x{addr:X16}, +0x{length:X}) is beyond the user address space");
        }

        ulong pages = (length >> PageGeometry.PageShift) + ((length & PageGeometry.PageMask) != 0 ? 1UL : 0UL);
        if (pages > (ulong)vec.Length)
        {
            return KResult.Error(Errno.EFAULT, $"mincore: vec holds {vec.Length} bytes, not the {pages} the range needs");
        }

        MmapLock.ReadLock();
        try
        {
            for (ulong p = 0; p < pages; p++)
            {
                ulong va = addr + (p << PageGeometry.PageShift);
                Vma? vma = VmaLookup(va);
                if (vma is null)
                {
                    return KResult.Error(Errno.ENOMEM, $"mincore: 0x{va:X16} is not mapped");
                }

                Pte pte = PageTable.Read(va);
                // Markers (guard, userfaultfd) count as empty: a file page behind one may still be cached. A swapped-out page
                // is resident while it is in the swap cache (mincore_swap), which the emulator never reclaims.
                bool resident = pte.IsMapped
                    || pte.HoldsFrameReference
                    || pte.IsDevicePrivate // a non-swap entry: "always uptodate" (mincore_pte_range)
                    || (vma.File is { } f && vma.PageIndex(va) < f.PageCount && f.TryFindPage(vma.PageIndex(va), out _));
                vec[(int)p] = resident ? (byte)1 : (byte)0;
            }

            return KResult.Ok;
        }
        finally
        {
            MmapLock.ReadUnlock();
        }
    }
}
