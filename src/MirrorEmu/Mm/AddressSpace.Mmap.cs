using MirrorEmu.Notifier;
using MirrorEmu.Telemetry;

namespace MirrorEmu.Mm;

public sealed partial class AddressSpace
{
    private const MapFlags KnownMapFlags = MapFlags.Shared | MapFlags.Private | MapFlags.Fixed | MapFlags.Anonymous | MapFlags.Populate | MapFlags.FixedNoReplace;

    /// <summary>mmap(2) of anonymous memory: <c>Mmap(0, length, prot, flags | Anonymous, null, 0, out addr)</c>.</summary>
    /// <param name="length">Length in bytes (rounded up to pages).</param>
    /// <param name="prot">PROT_* bits.</param>
    /// <param name="flags">MAP_* flags; Anonymous is added.</param>
    /// <param name="address">The mapping's address.</param>
    public KResult MmapAnonymous(ulong length, Prot prot, MapFlags flags, out ulong address) =>
        Mmap(0, length, prot, flags | MapFlags.Anonymous, null, 0, out address);

    /// <summary>
    /// mmap(2): maps [addr, addr + length) as private or shared anonymous memory or as a window on
    /// <paramref name="file"/> from byte <paramref name="offset"/>.
    /// </summary>
    /// <param name="addr">A hint, or the exact address with MAP_FIXED / MAP_FIXED_NOREPLACE; page aligned when fixed.</param>
    /// <param name="length">Length in bytes, &gt; 0 (rounded up to pages).</param>
    /// <param name="prot">PROT_* bits.</param>
    /// <param name="flags">MAP_* flags: exactly one of Shared or Private.</param>
    /// <param name="file">The file for a file mapping; null with MAP_ANONYMOUS.</param>
    /// <param name="offset">Byte offset in the file, page aligned.</param>
    /// <param name="address">The mapping's address on success.</param>
    /// <returns>0, or -EINVAL (bad flags, length or alignment), -ENOMEM (no room, or beyond the address space),
    /// -EEXIST (MAP_FIXED_NOREPLACE over a mapping), -EPERM (below mmap_min_addr), -EBADF (no file),
    /// -EOVERFLOW (offset + length overflows).</returns>
    public KResult Mmap(ulong addr, ulong length, Prot prot, MapFlags flags, MemFile? file, ulong offset, out ulong address)
    {
        address = 0;
        ThrowIfDisposed();
        if ((prot & ~(Prot.Read | Prot.Write | Prot.Exec)) != 0)
        {
            return KResult.Error(Errno.EINVAL, $"mmap: prot=0x{(int)prot:X} has unknown bits");
        }

        if ((flags & ~KnownMapFlags) != 0)
        {
            return KResult.Error(Errno.EINVAL, $"mmap: flags=0x{(int)flags:X} has unknown bits 0x{(int)(flags & ~KnownMapFlags):X}");
        }

        bool shared = (flags & MapFlags.Shared) != 0;
        if (shared == ((flags & MapFlags.Private) != 0))
        {
            return KResult.Error(Errno.EINVAL, $"mmap: flags=0x{(int)flags:X} must hold exactly one of MAP_SHARED and MAP_PRIVATE");
        }

        if (length == 0)
        {
            return KResult.Error(Errno.EINVAL, "mmap: length=0x0 must be greater than zero");
        }

        if (!PageGeometry.TryPageAlignUp(length, out ulong len) || len > PageGeometry.AddressSpaceSize - PageGeometry.MmapMinAddr)
        {
            return KResult.Error(Errno.ENOMEM, $"mmap: length=0x{length:X} is larger than the address space");
        }

        if (!PageGeometry.IsPageAligned(offset))
        {
            return KResult.Error(Errno.EINVAL, $"mmap: offset=0x{offset:X} is not page aligned");
        }

        bool anonymous = (flags & MapFlags.Anonymous) != 0;
        if (anonymous && file is not null)
        {
            return KResult.Error(Errno.EINVAL, "mmap: MAP_ANONYMOUS given together with a file");
        }

        if (!anonymous && file is null)
        {
            return KResult.Error(Errno.EBADF, "mmap: a file mapping needs a file (or MAP_ANONYMOUS)");
        }

        ulong pgoff = offset >> PageGeometry.PageShift;
        if (file is not null && pgoff + (len >> PageGeometry.PageShift) < pgoff)
        {
            return KResult.Error(Errno.EOVERFLOW, $"mmap: offset=0x{offset:X} + length=0x{len:X} overflows");
        }

        bool fixedAddr = (flags & (MapFlags.Fixed | MapFlags.FixedNoReplace)) != 0;
        if (fixedAddr)
        {
            if (!PageGeometry.IsPageAligned(addr))
            {
                return KResult.Error(Errno.EINVAL, $"mmap: addr=0x{addr:X16} is not page aligned for MAP_FIXED");
            }

            if (addr < PageGeometry.MmapMinAddr)
            {
                return KResult.Error(Errno.EPERM, $"mmap: addr=0x{addr:X16} is below mmap_min_addr 0x{PageGeometry.MmapMinAddr:X}");
            }

            if (addr > PageGeometry.AddressSpaceSize - len)
            {
                return KResult.Error(Errno.ENOMEM, $"mmap: addr=0x{addr:X16} + length=0x{len:X} is beyond the address space");
            }
        }

        MmapLock.WriteLock();
        try
        {
            ulong start;
            if (fixedAddr)
            {
                start = addr;
                if (Overlaps(start, start + len))
                {
                    if ((flags & MapFlags.FixedNoReplace) != 0)
                    {
                        return KResult.Error(Errno.EEXIST, $"mmap: [0x{start:X16}, 0x{start + len:X16}) overlaps a mapping (MAP_FIXED_NOREPLACE)");
                    }

                    UnmapLocked(start, start + len);
                }
            }
            else
            {
                start = GetUnmappedArea(len, addr);
                if (start == 0)
                {
                    return KResult.Error(Errno.ENOMEM, $"mmap: no free range of length=0x{len:X}");
                }
            }

            VmFlags vmFlags = ToVmFlags(prot) | (shared ? VmFlags.Shared : VmFlags.None);
            MemFile? backing = file;
            if (anonymous && shared)
            {
                backing = new MemFile(_memory, len, $"shmem@0x{start:x}") { IsShmem = true };
                pgoff = 0;
            }
            else if (anonymous)
            {
                pgoff = start >> PageGeometry.PageShift; // anonymous vm_pgoff is the virtual page number
            }

            var vma = new Vma(this, start, start + len, vmFlags, backing, pgoff);
            InsertVma(vma);
            int i = FindVmaIndex(start);
            MergeAround(i, i + 1);
            address = start;
        }
        finally
        {
            MmapLock.WriteUnlock();
        }

        if ((flags & MapFlags.Populate) != 0)
        {
            // mm_populate: write-populate private writable mappings, read-populate the rest; errors are ignored.
            bool write = (prot & Prot.Write) != 0 && !shared;
            MmapLock.ReadLock();
            try
            {
                PopulateLocked(address, address + len, write, FaultFlags.None, out _);
            }
            finally
            {
                MmapLock.ReadUnlock();
            }
        }

        return KResult.Ok;
    }

    /// <summary>munmap(2): removes every mapping in [addr, addr + length). Holes are not an error.</summary>
    /// <param name="addr">Page-aligned start.</param>
    /// <param name="length">Length in bytes, &gt; 0 (rounded up to pages).</param>
    /// <returns>0, or -EINVAL (unaligned, zero or overflowing).</returns>
    public KResult Munmap(ulong addr, ulong length)
    {
        ThrowIfDisposed();
        KResult check = CheckRange("munmap", addr, length, Errno.EINVAL, out ulong end);
        if (!check.IsOk)
        {
            return check;
        }

        if (end == addr)
        {
            return KResult.Error(Errno.EINVAL, "munmap: length=0x0 must be greater than zero");
        }

        MmapLock.WriteLock();
        try
        {
            UnmapLocked(addr, end);
        }
        finally
        {
            MmapLock.WriteUnlock();
        }

        return KResult.Ok;
    }

    /// <summary>Validates a (start, length) pair the way munmap/mprotect/madvise do, before any page arithmetic (STYLE.md rule 11).</summary>
    private static KResult CheckRange(string call, ulong addr, ulong length, int overflowErrno, out ulong end)
    {
        end = 0;
        if (!PageGeometry.IsPageAligned(addr))
        {
            return KResult.Error(Errno.EINVAL, $"{call}: addr=0x{addr:X16} is not page aligned");
        }

        if (addr > PageGeometry.AddressSpaceSize || length > PageGeometry.AddressSpaceSize - addr)
        {
            return KResult.Error(overflowErrno, $"{call}: addr=0x{addr:X16} + length=0x{length:X} is beyond the address space");
        }

        PageGeometry.TryPageAlignUp(length, out ulong len);
        if (len > PageGeometry.AddressSpaceSize - addr)
        {
            return KResult.Error(overflowErrno, $"{call}: addr=0x{addr:X16} + length=0x{length:X} is beyond the address space");
        }

        end = addr + len;
        return KResult.Ok;
    }

    /// <summary>do_vmi_munmap under the write lock: splits, raises UNMAP, zaps, frees tables, removes the VMAs.</summary>
    private void UnmapLocked(ulong start, ulong end)
    {
        if (start >= end || !Overlaps(start, end))
        {
            return;
        }

        (int first, int last) = SplitRange(start, end);
        NotifyUserfaultUnmap(first, last, start, end);
        ulong notifyStart = _vmas[first].Start;
        ulong notifyEnd = _vmas[last - 1].End;
        NotifierRange range = InvalidateRangeStart(notifyStart, notifyEnd, NotifierEvent.Unmap);
        for (int i = last - 1; i >= first; i--)
        {
            Vma vma = _vmas[i];
            ZapRange(vma, vma.Start, vma.End, freeTables: true);
            RemoveVmaAt(i);
        }

        InvalidateRangeEnd(range);
    }

    /// <summary>userfaultfd_unmap_prep/complete: one UNMAP event per userfaultfd context with a VMA in the range.</summary>
    private void NotifyUserfaultUnmap(int first, int last, ulong start, ulong end)
    {
        for (int i = first; i < last; i++)
        {
            IUserfaultHook? hook = _vmas[i].Userfault;
            if (hook is null)
            {
                continue;
            }

            bool seen = false;
            for (int j = first; j < i && !seen; j++)
            {
                seen = ReferenceEquals(_vmas[j].Userfault, hook);
            }

            if (!seen)
            {
                hook.OnUnmap(start, end);
            }
        }
    }

    /// <summary>
    /// mremap(2): grows or shrinks the mapping at <paramref name="oldAddr"/>, in place when it can,
    /// else (with MREMAP_MAYMOVE) at a new address, moving the page-table entries.
    /// </summary>
    /// <param name="oldAddr">Page-aligned start of the old range, inside one VMA.</param>
    /// <param name="oldSize">Old length in bytes.</param>
    /// <param name="newSize">New length in bytes, &gt; 0.</param>
    /// <param name="flags">MREMAP_* flags.</param>
    /// <param name="newAddr">With MREMAP_FIXED, the page-aligned destination.</param>
    /// <param name="address">The mapping's address on success.</param>
    /// <returns>0, or -EINVAL (bad flags, alignment or sizes), -EFAULT (old range not inside one VMA),
    /// -ENOMEM (cannot grow in place without MAYMOVE, or no room).</returns>
    public KResult Mremap(ulong oldAddr, ulong oldSize, ulong newSize, MremapFlags flags, ulong newAddr, out ulong address)
    {
        address = 0;
        ThrowIfDisposed();
        if ((flags & ~(MremapFlags.MayMove | MremapFlags.Fixed)) != 0)
        {
            return KResult.Error(Errno.EINVAL, $"mremap: flags=0x{(int)flags:X} has unknown bits");
        }

        if ((flags & MremapFlags.Fixed) != 0 && (flags & MremapFlags.MayMove) == 0)
        {
            return KResult.Error(Errno.EINVAL, "mremap: MREMAP_FIXED needs MREMAP_MAYMOVE");
        }

        if (!PageGeometry.IsPageAligned(oldAddr))
        {
            return KResult.Error(Errno.EINVAL, $"mremap: old_address=0x{oldAddr:X16} is not page aligned");
        }

        if (!PageGeometry.TryPageAlignUp(oldSize, out ulong oldLen) || !PageGeometry.TryPageAlignUp(newSize, out ulong newLen)
            || oldAddr > PageGeometry.AddressSpaceSize - oldLen)
        {
            return KResult.Error(Errno.EINVAL, $"mremap: old_size=0x{oldSize:X} or new_size=0x{newSize:X} is beyond the address space");
        }

        if (newLen == 0)
        {
            return KResult.Error(Errno.EINVAL, "mremap: new_size=0x0 must be greater than zero");
        }

        if ((flags & MremapFlags.Fixed) != 0
            && (!PageGeometry.IsPageAligned(newAddr) || newAddr < PageGeometry.MmapMinAddr || newAddr > PageGeometry.AddressSpaceSize - newLen
                || (newAddr < oldAddr + oldLen && oldAddr < newAddr + newLen)))
        {
            return KResult.Error(Errno.EINVAL, $"mremap: new_address=0x{newAddr:X16} is unaligned, out of range or overlaps the old range");
        }

        MmapLock.WriteLock();
        try
        {
            Vma? vma = VmaLookup(oldAddr);
            if (vma is null || oldLen == 0 || oldAddr + oldLen > vma.End)
            {
                return KResult.Error(Errno.EFAULT, $"mremap: [0x{oldAddr:X16}, +0x{oldLen:X}) is not inside one mapping");
            }

            if ((vma.Flags & (VmFlags.Io | VmFlags.PfnMap)) != 0)
            {
                return KResult.Error(Errno.EINVAL, $"mremap: the mapping at 0x{oldAddr:X16} is VM_IO/VM_PFNMAP");
            }

            if ((flags & MremapFlags.Fixed) == 0)
            {
                if (newLen <= oldLen)
                {
                    UnmapLocked(oldAddr + newLen, oldAddr + oldLen);
                    address = oldAddr;
                    return KResult.Ok;
                }

                ulong growEnd = oldAddr + newLen;
                if (oldAddr + oldLen == vma.End && growEnd <= PageGeometry.AddressSpaceSize
                    && !Overlaps(vma.End, growEnd))
                {
                    int i = FindVmaIndex(oldAddr);
                    Vma grown = vma.CloneRange(vma.Start, vma.End);
                    grown.End = growEnd;
                    ReplaceVmaAt(i, grown);
                    MergeAround(i, i + 1);
                    address = oldAddr;
                    return KResult.Ok;
                }

                if ((flags & MremapFlags.MayMove) == 0)
                {
                    return KResult.Error(Errno.ENOMEM, $"mremap: cannot grow [0x{oldAddr:X16}, +0x{oldLen:X}) in place and MREMAP_MAYMOVE is not set");
                }
            }

            ulong dest;
            if ((flags & MremapFlags.Fixed) != 0)
            {
                dest = newAddr;
                UnmapLocked(dest, dest + newLen);
            }
            else
            {
                dest = GetUnmappedArea(newLen, 0);
                if (dest == 0)
                {
                    return KResult.Error(Errno.ENOMEM, $"mremap: no free range of new_size=0x{newLen:X}");
                }
            }

            MoveLocked(oldAddr, oldLen, dest, newLen);
            address = dest;
            return KResult.Ok;
        }
        finally
        {
            MmapLock.WriteUnlock();
        }
    }

    /// <summary>move_vma: creates the VMA at <paramref name="dest"/>, moves the entries of the first
    /// min(oldLen, newLen) bytes, then unmaps the old range (raising UNMAP over it).</summary>
    private void MoveLocked(ulong oldAddr, ulong oldLen, ulong dest, ulong newLen)
    {
        (int first, _) = SplitRange(oldAddr, oldAddr + oldLen);
        Vma old = _vmas[first];
        Vma moved = old.CloneRange(old.Start, old.Start);
        moved.Start = dest;
        moved.End = dest + newLen;
        if (old.IsAnonymous)
        {
            moved.PgOff = old.PgOff;
        }

        ulong moveLen = Math.Min(oldLen, newLen);
        if (old.Userfault is not null && !old.Userfault.OnRemap(old, oldAddr, dest, moveLen))
        {
            // mremap_userfaultfd_prep: without EVENT_REMAP the moved VMA loses its registration.
            moved.Userfault = null;
            moved.Flags &= ~VmFlags.UffdMask;
        }

        NotifierRange range = InvalidateRangeStart(oldAddr, oldAddr + oldLen, NotifierEvent.Unmap);
        InsertVma(moved);
        MovePageTableEntries(oldAddr, dest, moveLen);
        int index = FindVmaIndex(oldAddr);
        ZapRange(_vmas[index], oldAddr, oldAddr + oldLen, freeTables: true);
        RemoveVmaAt(index);
        InvalidateRangeEnd(range);
    }

    /// <summary>move_page_tables: moves each entry (and its frame reference) from the old to the new address.
    /// Huge leaves move whole when both sides are 2 MiB aligned, else they are split first.</summary>
    private void MovePageTableEntries(ulong from, ulong to, ulong length)
    {
        for (ulong off = 0; off < length;)
        {
            ulong src = from + off;
            Pte huge = PageTable.FindHuge(src);
            if (!huge.IsNone)
            {
                ulong dst = to + off;
                if ((src & PageGeometry.PmdMask) == 0 && (dst & PageGeometry.PmdMask) == 0 && length - off >= PageGeometry.PmdSize
                    && PageTable.FindLeaf(dst) is null && PageTable.TryInstallHuge(dst, huge))
                {
                    PageTable.TryUpdateHuge(src, huge, Pte.None);
                    off += PageGeometry.PmdSize;
                    continue;
                }

                PageTable.SplitHuge(src);
                Counters.Increment(MmEvent.HugeSplits);
            }

            ulong[]? leaf = PageTable.FindLeaf(src);
            if (leaf is null)
            {
                off = Math.Min(length, ((src | PageGeometry.PmdMask) + 1) - from);
                continue;
            }

            ref ulong slot = ref leaf[PageGeometry.Index(src, 0)];
            ulong value = Interlocked.Exchange(ref slot, 0UL);
            if (value != 0)
            {
                ulong[] destLeaf = PageTable.GetOrCreateLeaf(to + off)!;
                Volatile.Write(ref destLeaf[PageGeometry.Index(to + off, 0)], value);
            }

            off += PageGeometry.PageSize;
        }
    }
}
