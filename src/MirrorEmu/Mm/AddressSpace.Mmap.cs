using MirrorEmu.Notifier;
using MirrorEmu.Telemetry;

namespace MirrorEmu.Mm;

public sealed partial class AddressSpace
{
    /// <summary>LEGACY_MAP_MASK (include/linux/mman.h): what MAP_SHARED_VALIDATE accepts on a file (MAP_SHARED drops the
    /// rest silently; MAP_PRIVATE ignores unknown bits): the named flags plus MAP_UNINITIALIZED, MAP_GROWSDOWN, MAP_HUGETLB,
    /// MAP_ABOVE4G and the MAP_HUGE_2MB / MAP_HUGE_1GB size encodings.</summary>
    private const MapFlags LegacyMapFlags = MapFlags.Shared | MapFlags.Private | MapFlags.Fixed | MapFlags.Anonymous
        | MapFlags.DenyWrite | MapFlags.Executable | MapFlags.Locked | MapFlags.NoReserve | MapFlags.Populate | MapFlags.NonBlock
        | MapFlags.Stack | MapFlags.Bit32 | (MapFlags)0x4000000 | (MapFlags)0x100 | (MapFlags)0x40000 | (MapFlags)0x80
        | (MapFlags)(21 << 26) | (MapFlags)(30 << 26);

    /// <summary>MAP_GROWSDOWN and MAP_HUGETLB: stack growth and hugetlbfs are not emulated (README, deliberate differences).</summary>
    private const MapFlags UnemulatedMapFlags = (MapFlags)0x100 | (MapFlags)0x40000;

    /// <summary>mmap(2) of anonymous memory: <c>Mmap(0, length, prot, flags | Anonymous, null, 0, out addr)</c>.</summary>
    /// <param name="length">Length in bytes (rounded up to pages).</param>
    /// <param name="prot">PROT_* bits.</param>
    /// <param name="flags">MAP_* flags; Anonymous is added.</param>
    /// <param name="address">The mapping's address.</param>
    public KResult MmapAnonymous(ulong length, Prot prot, MapFlags flags, out ulong address) =>
        Mmap(0, length, prot, flags | MapFlags.Anonymous, null, 0, out address);

    /// <summary>
    /// mmap(2): maps [addr, addr + length) as private or shared anonymous memory or as a window on
    /// <paramref name="file"/> from byte <paramref name="offset"/>, with the kernel's checks in the kernel's order
    /// (sys_mmap, ksys_mmap_pgoff, do_mmap, __get_unmapped_area, mmap_region).
    /// </summary>
    /// <param name="addr">A hint (rounded down to a page, used if free), or the exact address with MAP_FIXED / MAP_FIXED_NOREPLACE.</param>
    /// <param name="length">Length in bytes, &gt; 0 (rounded up to pages).</param>
    /// <param name="prot">PROT_* bits; bits other than read, write and exec are ignored, as the kernel does.</param>
    /// <param name="flags">MAP_* flags: a type (Shared, Private, SharedValidate for files, Droppable for anonymous memory),
    /// and any of the others; unknown bits are ignored except with SharedValidate.</param>
    /// <param name="file">The file for a file mapping; ignored with MAP_ANONYMOUS.</param>
    /// <param name="offset">Byte offset in the file, page aligned (checked for anonymous mappings too).</param>
    /// <param name="address">The mapping's address on success.</param>
    /// <returns>0, or -EINVAL (unaligned offset or fixed address, zero length, bad type, MAP_GROWSDOWN/MAP_HUGETLB),
    /// -EBADF (no file without MAP_ANONYMOUS), -ENOMEM (length or range beyond the user address space, no room, a shared
    /// anonymous mapping larger than <see cref="MemFile.MaxSizeBytes"/>),
    /// -EOVERFLOW (offset + length beyond what a file may hold), -EPERM (below mmap_min_addr), -EEXIST
    /// (MAP_FIXED_NOREPLACE over a mapping), -EOPNOTSUPP (MAP_SHARED_VALIDATE with a flag outside LEGACY_MAP_MASK).
    /// An error changes nothing.</returns>
    public KResult Mmap(ulong addr, ulong length, Prot prot, MapFlags flags, MemFile? file, ulong offset, out ulong address)
    {
        address = 0;
        ThrowIfDisposed();
        if (!PageGeometry.IsPageAligned(offset))
        {
            return KResult.Error(Errno.EINVAL, $"mmap: offset=0x{offset:X} is not page aligned");
        }

        bool anonymous = (flags & MapFlags.Anonymous) != 0;
        if (anonymous)
        {
            file = null; // ksys_mmap_pgoff looks at the descriptor only without MAP_ANONYMOUS
        }
        else if (file is null)
        {
            return KResult.Error(Errno.EBADF, "mmap: a file mapping needs a file (or MAP_ANONYMOUS)");
        }

        if ((flags & UnemulatedMapFlags) != 0)
        {
            return KResult.Error(Errno.EINVAL, $"mmap: flags=0x{(int)flags:X}: MAP_GROWSDOWN and MAP_HUGETLB are not emulated");
        }

        if (length == 0)
        {
            return KResult.Error(Errno.EINVAL, "mmap: length=0x0 must be greater than zero");
        }

        ulong len = PageGeometry.PageAlignWrapping(length);
        if (len == 0)
        {
            return KResult.Error(Errno.ENOMEM, $"mmap: length=0x{length:X} overflows when rounded up to pages");
        }

        ulong pgoff = offset >> PageGeometry.PageShift;
        if (pgoff + (len >> PageGeometry.PageShift) < pgoff)
        {
            return KResult.Error(Errno.EOVERFLOW, $"mmap: offset=0x{offset:X} + length=0x{len:X} overflows");
        }

        // calc_vm_prot_bits / calc_vm_flag_bits: MAP_LOCKED is VM_LOCKED, MAP_STACK is VM_NOHUGEPAGE (Linux 6.7).
        VmFlags vmFlags = ToVmFlags(prot)
            | ((flags & MapFlags.Locked) != 0 ? VmFlags.Locked : VmFlags.None)
            | ((flags & MapFlags.Stack) != 0 ? VmFlags.NoHugePage : VmFlags.None);
        if (len > PageGeometry.TaskSize)
        {
            return KResult.Error(Errno.ENOMEM, $"mmap: length=0x{len:X} is larger than the user address space");
        }

        bool fixedAddr = (flags & (MapFlags.Fixed | MapFlags.FixedNoReplace)) != 0;
        MapFlags type = flags & MapFlags.TypeMask;
        MmapLock.WriteLock();
        try
        {
            ulong start = fixedAddr ? addr : GetUnmappedArea(len, addr, below2G: (flags & MapFlags.Bit32) != 0);
            if (start == 0 && !fixedAddr)
            {
                return KResult.Error(Errno.ENOMEM, $"mmap: no free range of length=0x{len:X}");
            }

            if (start > PageGeometry.TaskSize - len)
            {
                return KResult.Error(Errno.ENOMEM, $"mmap: addr=0x{start:X16} + length=0x{len:X} is beyond the user address space (0x{PageGeometry.TaskSize:X})");
            }

            if (!PageGeometry.IsPageAligned(start))
            {
                return KResult.Error(Errno.EINVAL, $"mmap: addr=0x{start:X16} is not page aligned for MAP_FIXED");
            }

            if (start < PageGeometry.MmapMinAddr)
            {
                return KResult.Error(Errno.EPERM, $"mmap: addr=0x{start:X16} is below mmap_min_addr 0x{PageGeometry.MmapMinAddr:X}");
            }

            if ((flags & MapFlags.FixedNoReplace) != 0 && Overlaps(start, start + len))
            {
                return KResult.Error(Errno.EEXIST, $"mmap: [0x{start:X16}, 0x{start + len:X16}) overlaps a mapping (MAP_FIXED_NOREPLACE)");
            }

            KResult typeCheck = CheckMapType(file, flags, type, pgoff, len, ref vmFlags);
            if (!typeCheck.IsOk)
            {
                return typeCheck;
            }

            if (file is null)
            {
                pgoff = (vmFlags & VmFlags.Shared) != 0 ? 0 : start >> PageGeometry.PageShift; // anonymous vm_pgoff is the page number
                if ((vmFlags & VmFlags.Shared) != 0 && len > MemFile.MaxSizeBytes)
                {
                    return KResult.Error(Errno.ENOMEM, $"mmap: a shared anonymous mapping of length=0x{len:X} is larger than its shmem object may be (0x{MemFile.MaxSizeBytes:X})");
                }
            }

            if ((flags & MapFlags.NoReserve) != 0)
            {
                vmFlags |= VmFlags.NoReserve; // honoured unless overcommit is strict; the emulator does not overcommit-check
            }

            // mmap_region: replace what is there, charge private writable mappings (accountable_mapping), link, merge.
            UnmapLocked(start, start + len);
            if ((vmFlags & (VmFlags.NoReserve | VmFlags.Shared | VmFlags.Write)) == VmFlags.Write)
            {
                vmFlags |= VmFlags.Account;
            }

            MemFile? backing = file;
            if (file is null && (vmFlags & VmFlags.Shared) != 0)
            {
                backing = new MemFile(_memory, len, $"shmem@0x{start:x}") { IsShmem = true };
            }

            var vma = new Vma(this, start, start + len, vmFlags, backing, pgoff);
            EnsureAnonVmasAround(start, start + len);
            InsertVma(vma);
            int i = FindVmaIndex(start);
            MergeAround(i, i + 1);
            address = start;
        }
        finally
        {
            MmapLock.WriteUnlock();
        }

        // mm_populate: VM_LOCKED, or MAP_POPULATE without MAP_NONBLOCK; errors are ignored.
        if ((vmFlags & VmFlags.Locked) != 0 || (flags & (MapFlags.Populate | MapFlags.NonBlock)) == MapFlags.Populate)
        {
            _ = MmPopulate("mmap", address, address + len, ignoreErrors: true);
        }

        return KResult.Ok;
    }

    /// <summary>do_mmap's switch on the mapping type, for a file (MAP_SHARED drops flags outside LEGACY_MAP_MASK,
    /// MAP_SHARED_VALIDATE refuses them) or for anonymous memory (MAP_SHARED, MAP_PRIVATE or MAP_DROPPABLE).</summary>
    private static KResult CheckMapType(MemFile? file, MapFlags flags, MapFlags type, ulong pgoff, ulong len, ref VmFlags vmFlags)
    {
        if (file is not null)
        {
            // file_mmap_ok: a regular file's offsets end at MAX_LFS_FILESIZE (2^63 - 1).
            const ulong MaxLfsFileSize = long.MaxValue;
            if (len > MaxLfsFileSize || pgoff > (MaxLfsFileSize - len) >> PageGeometry.PageShift)
            {
                return KResult.Error(Errno.EOVERFLOW, $"mmap: offset=0x{pgoff << PageGeometry.PageShift:X} + length=0x{len:X} is beyond the largest file offset");
            }

            switch (type)
            {
                case MapFlags.Shared:
                case MapFlags.SharedValidate:
                    MapFlags unknown = (type == MapFlags.Shared ? flags & LegacyMapFlags : flags) & ~LegacyMapFlags;
                    if (unknown != 0)
                    {
                        return KResult.Error(Errno.EOPNOTSUPP, $"mmap: MAP_SHARED_VALIDATE does not accept flags=0x{(int)unknown:X}");
                    }

                    vmFlags |= VmFlags.Shared;
                    return KResult.Ok;
                case MapFlags.Private:
                    return KResult.Ok;
                default:
                    return KResult.Error(Errno.EINVAL, $"mmap: flags=0x{(int)flags:X} has mapping type 0x{(int)type:X}, not MAP_SHARED, MAP_PRIVATE or MAP_SHARED_VALIDATE");
            }
        }

        switch (type)
        {
            case MapFlags.Shared:
                vmFlags |= VmFlags.Shared;
                return KResult.Ok;
            case MapFlags.Droppable:
                if ((flags & MapFlags.Locked) != 0)
                {
                    return KResult.Error(Errno.EINVAL, $"mmap: flags=0x{(int)flags:X}: MAP_DROPPABLE cannot be MAP_LOCKED");
                }

                vmFlags |= VmFlags.Droppable | VmFlags.NoReserve | VmFlags.WipeOnFork | VmFlags.DontDump;
                return KResult.Ok;
            case MapFlags.Private:
                return KResult.Ok;
            default:
                return KResult.Error(Errno.EINVAL, $"mmap: flags=0x{(int)flags:X} has mapping type 0x{(int)type:X}, not MAP_SHARED, MAP_PRIVATE or MAP_DROPPABLE (anonymous memory)");
        }
    }

    /// <summary>munmap(2): removes every mapping in [addr, addr + length). Holes are not an error.</summary>
    /// <param name="addr">Page-aligned start.</param>
    /// <param name="length">Length in bytes, &gt; 0 (rounded up to pages).</param>
    /// <returns>0, or -EINVAL (unaligned, zero, or beyond the user address space).</returns>
    public KResult Munmap(ulong addr, ulong length)
    {
        ThrowIfDisposed();
        MmapLock.WriteLock();
        try
        {
            return DoMunmap("munmap", addr, length);
        }
        finally
        {
            MmapLock.WriteUnlock();
        }
    }

    /// <summary>do_vmi_munmap with its argument checks (mremap's shrink and destination go through it too). Call with
    /// the mmap write lock held.</summary>
    /// <param name="call">The system call, for the message.</param>
    /// <param name="addr">Start.</param>
    /// <param name="length">Length in bytes.</param>
    /// <param name="deferredUnmaps">Where to collect the userfaultfd UNMAP events instead of raising them (mremap's uf_unmap
    /// list, raised after its REMAP), or null to raise them now.</param>
    private KResult DoMunmap(string call, ulong addr, ulong length, List<UserfaultUnmap>? deferredUnmaps = null)
    {
        if (!PageGeometry.IsPageAligned(addr) || addr > PageGeometry.TaskSize || length > PageGeometry.TaskSize - addr)
        {
            return KResult.Error(Errno.EINVAL, $"{call}: [0x{addr:X16}, +0x{length:X}) is unaligned or beyond the user address space (0x{PageGeometry.TaskSize:X})");
        }

        ulong end = addr + PageGeometry.PageAlignWrapping(length);
        if (end == addr)
        {
            return KResult.Error(Errno.EINVAL, $"{call}: length=0x{length:X} must be greater than zero");
        }

        UnmapLocked(addr, end, deferredUnmaps);
        return KResult.Ok;
    }

    /// <summary>do_vmi_munmap under the write lock: splits, raises UNMAP (or collects it in <paramref name="deferredUnmaps"/>),
    /// zaps, frees tables, removes the VMAs.</summary>
    private void UnmapLocked(ulong start, ulong end, List<UserfaultUnmap>? deferredUnmaps = null)
    {
        if (start >= end || !Overlaps(start, end))
        {
            return;
        }

        (int first, int last) = SplitRange(start, end);
        NotifyUserfaultUnmap(first, last, start, end, deferredUnmaps);
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

    /// <summary>A userfaultfd UNMAP event prepared but not raised yet (an entry of the kernel's uf_unmap list).</summary>
    /// <param name="Hook">The context.</param>
    /// <param name="Start">First address of the unmapped range.</param>
    /// <param name="End">Half-open end.</param>
    private readonly record struct UserfaultUnmap(IUserfaultHook Hook, ulong Start, ulong End);

    /// <summary>userfaultfd_unmap_complete: raises the UNMAP events collected in <paramref name="unmaps"/>, in order, and empties it.</summary>
    private static void RaiseUserfaultUnmaps(List<UserfaultUnmap> unmaps)
    {
        foreach (UserfaultUnmap u in unmaps)
        {
            u.Hook.OnUnmap(u.Start, u.End);
        }

        unmaps.Clear();
    }

    /// <summary>userfaultfd_unmap_prep/complete: one UNMAP event per userfaultfd context with a VMA in the range, raised now or,
    /// with <paramref name="deferredUnmaps"/>, collected there for the caller to raise later.</summary>
    private void NotifyUserfaultUnmap(int first, int last, ulong start, ulong end, List<UserfaultUnmap>? deferredUnmaps)
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

            if (seen)
            {
                continue;
            }

            if (deferredUnmaps is null)
            {
                hook.OnUnmap(start, end);
            }
            else
            {
                deferredUnmaps.Add(new UserfaultUnmap(hook, start, end));
            }
        }
    }

    /// <summary>
    /// mremap(2) as Linux 6.18 does it (mm/mremap.c): grows or shrinks the mapping at <paramref name="oldAddr"/> in
    /// place when it can, else (with MREMAP_MAYMOVE) moves it, moving the page-table entries. A shrink in place unmaps
    /// [oldAddr + newSize, oldAddr + oldSize) whatever VMAs lie there; a same-size call without MREMAP_FIXED does
    /// nothing; a same-size MREMAP_FIXED move may span several VMAs and holes (not at its start), keeping the gaps; an
    /// old size of 0 makes a second mapping of a shared mapping's pages; MREMAP_DONTUNMAP moves the pages and leaves
    /// the old range mapped and empty. A moved VMA merges with its neighbours at the destination; one that never held
    /// an anonymous page takes the destination's page offset, so that it can.
    /// </summary>
    /// <param name="oldAddr">Page-aligned start of the old range.</param>
    /// <param name="oldSize">Old length in bytes (rounded up to pages, modulo 2^64).</param>
    /// <param name="newSize">New length in bytes, &gt; 0 (rounded up to pages).</param>
    /// <param name="flags">MREMAP_* flags.</param>
    /// <param name="newAddr">With MREMAP_FIXED, the page-aligned destination; with MREMAP_DONTUNMAP alone, a hint.</param>
    /// <param name="address">The mapping's address on success.</param>
    /// <returns>0, or -EINVAL (bad flags, alignment, sizes or destination; a private mapping with old size 0), -EFAULT
    /// (nothing mapped at the old address, or the old range crosses the end of its mapping where that is not allowed),
    /// -ENOMEM (cannot grow in place without MREMAP_MAYMOVE, or no room). Errors found before anything changes change
    /// nothing; as in Linux, a multi-VMA move that fails part-way leaves the VMAs moved so far where they went.</returns>
    public KResult Mremap(ulong oldAddr, ulong oldSize, ulong newSize, MremapFlags flags, ulong newAddr, out ulong address)
    {
        address = 0;
        ThrowIfDisposed();
        var r = new Remap(oldAddr, PageGeometry.PageAlignWrapping(oldSize), PageGeometry.PageAlignWrapping(newSize), flags, newAddr);
        KResult check = CheckMremapParams(r);
        if (!check.IsOk)
        {
            return check;
        }

        KResult result;
        MmapLock.WriteLock();
        try
        {
            result = (flags & MremapFlags.Fixed) != 0 && r.OldLen == r.NewLen ? RemapMove(r, out address) : RemapOne(r, out address);
        }
        finally
        {
            MmapLock.WriteUnlock();
        }

        if (result.IsOk && r.PopulateExpand)
        {
            _ = MmPopulate("mremap", address + r.OldLen, address + r.NewLen, ignoreErrors: true); // the grown part of a VM_LOCKED mapping
        }

        return result;
    }

    /// <summary>The state of one mremap (struct vma_remap_struct): what the caller asked, adjusted as the call proceeds.</summary>
    private sealed class Remap(ulong addr, ulong oldLen, ulong newLen, MremapFlags flags, ulong newAddr)
    {
        public ulong Addr = addr;
        public ulong OldLen = oldLen;
        public ulong NewLen = newLen;
        public ulong NewAddr = newAddr;
        public bool PopulateExpand;

        public MremapFlags Flags { get; } = flags;

        /// <summary>vrm_implies_new_addr: MREMAP_FIXED or MREMAP_DONTUNMAP always makes a new mapping.</summary>
        public bool ImpliesNewAddr => (Flags & (MremapFlags.Fixed | MremapFlags.DontUnmap)) != 0;
    }

    /// <summary>check_mremap_params: the checks made before the mmap lock is taken.</summary>
    private static KResult CheckMremapParams(Remap r)
    {
        if ((r.Flags & ~(MremapFlags.MayMove | MremapFlags.Fixed | MremapFlags.DontUnmap)) != 0)
        {
            return KResult.Error(Errno.EINVAL, $"mremap: flags=0x{(int)r.Flags:X} has unknown bits");
        }

        if (!PageGeometry.IsPageAligned(r.Addr))
        {
            return KResult.Error(Errno.EINVAL, $"mremap: old_address=0x{r.Addr:X16} is not page aligned");
        }

        if (r.NewLen == 0 || r.NewLen > PageGeometry.TaskSize)
        {
            return KResult.Error(Errno.EINVAL, $"mremap: new_size rounds to 0x{r.NewLen:X}, not in (0, 0x{PageGeometry.TaskSize:X}]");
        }

        if (!r.ImpliesNewAddr)
        {
            return KResult.Ok;
        }

        if (r.NewAddr > PageGeometry.TaskSize - r.NewLen || !PageGeometry.IsPageAligned(r.NewAddr))
        {
            return KResult.Error(Errno.EINVAL, $"mremap: new_address=0x{r.NewAddr:X16} is unaligned or [new_address, +new_size) is beyond the user address space");
        }

        if ((r.Flags & MremapFlags.MayMove) == 0)
        {
            return KResult.Error(Errno.EINVAL, $"mremap: flags=0x{(int)r.Flags:X}: MREMAP_FIXED and MREMAP_DONTUNMAP need MREMAP_MAYMOVE");
        }

        if ((r.Flags & MremapFlags.DontUnmap) != 0 && r.OldLen != r.NewLen)
        {
            return KResult.Error(Errno.EINVAL, $"mremap: MREMAP_DONTUNMAP needs old_size=0x{r.OldLen:X} equal to new_size=0x{r.NewLen:X}");
        }

        if (unchecked(r.Addr + r.OldLen) > r.NewAddr && unchecked(r.NewAddr + r.NewLen) > r.Addr)
        {
            return KResult.Error(Errno.EINVAL, $"mremap: new range [0x{r.NewAddr:X16}, +0x{r.NewLen:X}) overlaps the old one");
        }

        return KResult.Ok;
    }

    /// <summary>An mremap of the VMA at the old address (everything but a same-size MREMAP_FIXED move).</summary>
    private KResult RemapOne(Remap r, out ulong address)
    {
        address = 0;
        Vma? vma = VmaLookup(r.Addr);
        KResult check = CheckPrepVma(r, vma);
        if (!check.IsOk)
        {
            return check;
        }

        return r.ImpliesNewAddr ? MremapTo(r, out address) : MremapAt(r, vma!, out address);
    }

    /// <summary>remap_move: a same-size MREMAP_FIXED move of every VMA in [addr, addr + old_size), holes between them
    /// kept (but none at the start); a VMA registered with userfaultfd may only move alone.</summary>
    private KResult RemapMove(Remap r, out ulong address)
    {
        address = 0;
        ulong start = r.Addr;
        ulong end = r.Addr + r.OldLen;
        ulong target = r.NewAddr;
        ulong lastEnd = 0;
        bool seen = false;
        for (ulong cursor = start; ;)
        {
            int i = FindVmaIndex(cursor);
            if (i >= _vmas.Count || _vmas[i].Start >= end)
            {
                break;
            }

            Vma vma = _vmas[i];
            if (!seen && start < vma.Start)
            {
                break; // no gap allowed at the start: -EFAULT
            }

            ulong a = Math.Max(vma.Start, start);
            ulong len = Math.Min(end, vma.End) - a;
            ulong offset = seen ? vma.Start - lastEnd : 0;
            lastEnd = vma.End;
            if ((vma.Flags & VmFlags.UffdMask) != 0 && (seen || vma.End < end))
            {
                return KResult.Error(Errno.EFAULT, $"mremap: the mapping at 0x{vma.Start:X16} is registered with userfaultfd and cannot move together with others");
            }

            var sub = new Remap(a, len, len, r.Flags, target + offset);
            KResult rc = CheckPrepVma(sub, vma);
            if (rc.IsOk)
            {
                rc = MremapTo(sub, out ulong at);
                if (rc.IsOk)
                {
                    address = seen ? address : at;
                    target = at + len;
                    seen = true;
                }
            }

            if (!rc.IsOk)
            {
                return rc;
            }

            cursor = lastEnd;
        }

        return seen ? KResult.Ok : KResult.Error(Errno.EFAULT, $"mremap: nothing is mapped at old_address=0x{start:X16}");
    }

    /// <summary>check_prep_vma: the checks that need the VMA at the old address.</summary>
    private static KResult CheckPrepVma(Remap r, Vma? vma)
    {
        if (vma is null)
        {
            return KResult.Error(Errno.EFAULT, $"mremap: nothing is mapped at old_address=0x{r.Addr:X16}");
        }

        if (!r.ImpliesNewAddr)
        {
            r.NewAddr = r.Addr;
        }

        bool expand = r.NewLen > r.OldLen;
        if (!expand && !r.ImpliesNewAddr)
        {
            return KResult.Ok; // a shrink in place or a no-op: no further checks
        }

        if (r.OldLen == 0 && !vma.IsShared)
        {
            return KResult.Error(Errno.EINVAL, $"mremap: old_size=0 duplicates shared mappings only; the mapping at 0x{vma.Start:X16} is private");
        }

        bool special = (vma.Flags & (VmFlags.Io | VmFlags.PfnMap)) != 0;
        if ((r.Flags & MremapFlags.DontUnmap) != 0 && special)
        {
            return KResult.Error(Errno.EINVAL, $"mremap: MREMAP_DONTUNMAP of the VM_IO/VM_PFNMAP mapping at 0x{vma.Start:X16}");
        }

        ulong oldLen = r.OldLen > r.NewLen ? r.NewLen : r.OldLen; // a shrink may cross the end of the VMA
        if (oldLen > vma.End - r.Addr)
        {
            return KResult.Error(Errno.EFAULT, $"mremap: [0x{r.Addr:X16}, +0x{oldLen:X}) crosses the end of its mapping at 0x{vma.End:X16}");
        }

        if (r.NewLen == oldLen)
        {
            return KResult.Ok;
        }

        r.PopulateExpand = (vma.Flags & VmFlags.Locked) != 0;
        ulong pgoff = vma.PageIndex(r.Addr);
        if (pgoff + (r.NewLen >> PageGeometry.PageShift) < pgoff)
        {
            return KResult.Error(Errno.EINVAL, $"mremap: new_size=0x{r.NewLen:X} overflows the file offset");
        }

        return special
            ? KResult.Error(Errno.EFAULT, $"mremap: the VM_IO/VM_PFNMAP mapping at 0x{vma.Start:X16} cannot grow")
            : KResult.Ok;
    }

    /// <summary>mremap_to: a move to MREMAP_FIXED's address (unmapping what is there first, its UNMAP events raised at once:
    /// uf_unmap_early) or to a new one (MREMAP_DONTUNMAP); a shrink happens before the move, and its UNMAP events are raised
    /// after the move's REMAP, as the kernel completes its uf_unmap list after mremap_userfaultfd_complete.</summary>
    private KResult MremapTo(Remap r, out ulong address)
    {
        var deferredUnmaps = new List<UserfaultUnmap>();
        KResult result = MremapToDeferred(r, deferredUnmaps, out address);
        RaiseUserfaultUnmaps(deferredUnmaps); // what the move did not raise: a failed move still reports its unmaps
        return result;
    }

    /// <summary>The body of <see cref="MremapTo"/>; the UNMAP events of the shrink go to <paramref name="deferredUnmaps"/>.</summary>
    private KResult MremapToDeferred(Remap r, List<UserfaultUnmap> deferredUnmaps, out ulong address)
    {
        address = 0;
        if ((r.Flags & MremapFlags.Fixed) != 0)
        {
            KResult unmap = DoMunmap("mremap", r.NewAddr, r.NewLen);
            if (!unmap.IsOk)
            {
                return unmap;
            }

            // The destination may have held the old address itself (a range that wraps past the end of the address space).
            if (VmaLookup(r.Addr) is null)
            {
                return KResult.Error(Errno.EFAULT, $"mremap: nothing is mapped at old_address=0x{r.Addr:X16} after the destination [0x{r.NewAddr:X16}, +0x{r.NewLen:X}) was unmapped");
            }
        }

        if (r.OldLen > r.NewLen)
        {
            KResult shrink = DoMunmap("mremap", r.Addr + r.NewLen, r.OldLen - r.NewLen, deferredUnmaps);
            if (!shrink.IsOk)
            {
                return shrink;
            }

            r.OldLen = r.NewLen;
        }

        Vma? vma = VmaLookup(r.Addr);
        if (vma is null)
        {
            return KResult.Error(Errno.EFAULT, $"mremap: nothing is mapped at old_address=0x{r.Addr:X16} any more");
        }

        ulong dest = (r.Flags & MremapFlags.Fixed) != 0 ? r.NewAddr : GetUnmappedArea(r.NewLen, r.NewAddr);
        if (dest == 0)
        {
            return KResult.Error(Errno.ENOMEM, $"mremap: no free range of new_size=0x{r.NewLen:X}");
        }

        MoveVma(r, vma, dest, deferredUnmaps);
        address = dest;
        return KResult.Ok;
    }

    /// <summary>mremap_at: resize without a new address: nothing, a shrink in place, or a grow in place (merging with the
    /// next VMA when compatible) or, failing that and with MREMAP_MAYMOVE, a move.</summary>
    private KResult MremapAt(Remap r, Vma vma, out ulong address)
    {
        address = r.Addr;
        if (r.NewLen == r.OldLen)
        {
            return KResult.Ok;
        }

        if (r.NewLen < r.OldLen)
        {
            return DoMunmap("mremap", r.Addr + r.NewLen, r.OldLen - r.NewLen);
        }

        ulong delta = r.NewLen - r.OldLen;
        ulong growEnd = vma.End + delta;
        if (vma.End - r.Addr == r.OldLen && growEnd > vma.End && growEnd - vma.Start <= PageGeometry.TaskSize
            && vma.Start <= PageGeometry.TaskSize - (growEnd - vma.Start) && !Overlaps(vma.End, growEnd))
        {
            EnsureAnonVmasAround(vma.Start, growEnd);
            int i = FindVmaIndex(r.Addr);
            vma = _vmas[i];
            Vma grown = vma.CloneRange(vma.Start, vma.End);
            grown.End = growEnd;
            ReplaceVmaAt(i, grown);
            if (i + 1 < _vmas.Count)
            {
                TryMergeWithNext(i); // vma_merge_extend: the extension may meet the next VMA
            }

            return KResult.Ok;
        }

        if ((r.Flags & MremapFlags.MayMove) == 0)
        {
            return KResult.Error(Errno.ENOMEM, $"mremap: cannot grow [0x{r.Addr:X16}, +0x{r.OldLen:X}) in place and MREMAP_MAYMOVE is not set");
        }

        ulong dest = GetUnmappedArea(r.NewLen, 0);
        if (dest == 0)
        {
            return KResult.Error(Errno.ENOMEM, $"mremap: no free range of new_size=0x{r.NewLen:X}");
        }

        MoveVma(r, vma, dest);
        address = dest;
        return KResult.Ok;
    }

    /// <summary>
    /// move_vma: copy_vma makes the destination VMA (the old one's flags, file, anon_vma and userfaultfd context; an
    /// anonymous VMA that never held a page takes the destination's page offset) and merges it with its neighbours
    /// there, the old VMA included; the entries of the old range move; then the old range is unmapped (raising UNMAP
    /// for a registered VMA, after REMAP) or, with MREMAP_DONTUNMAP, left mapped, empty and unlocked.
    /// </summary>
    /// <param name="r">The remap.</param>
    /// <param name="vma">The VMA at the old address.</param>
    /// <param name="dest">The destination.</param>
    /// <param name="deferredUnmaps">UNMAP events collected before the move (a shrink's), raised after REMAP and before the
    /// source's own UNMAP; or null.</param>
    private void MoveVma(Remap r, Vma vma, ulong dest, List<UserfaultUnmap>? deferredUnmaps = null)
    {
        int index = FindVmaIndex(r.Addr);
        EnsureAnonVma(index);
        vma = _vmas[index];
        ulong pgoff = vma.IsAnonymous && vma.AnonVma is null ? dest >> PageGeometry.PageShift : vma.PageIndex(r.Addr);
        EnsureAnonVmasAround(dest, dest + r.NewLen);
        var moved = new Vma(this, dest, dest + r.NewLen, vma.Flags, vma.File, pgoff)
        {
            Userfault = vma.Userfault,
            AnonVma = vma.AnonVma,
            AnonVmaForked = vma.AnonVmaForked,
        };
        InsertVma(moved);
        int at = FindVmaIndex(dest);
        if (at + 1 < _vmas.Count)
        {
            TryMergeWithNext(at);
        }

        if (at > 0 && TryMergeWithNext(at - 1))
        {
            at--;
        }

        // mremap_userfaultfd_prep: without EVENT_REMAP the destination loses its registration and the moved
        // entries their write-protect bits (vma_has_uffd_without_event_remap).
        bool keepsRegistration = vma.Userfault is null || vma.Userfault.OnRemap(vma, r.Addr, dest, r.OldLen);
        NotifierRange range = InvalidateRangeStart(r.Addr, r.Addr + r.OldLen, NotifierEvent.Unmap);
        MovePageTableEntries(r.Addr, dest, r.OldLen, clearUffdWp: !keepsRegistration);
        InvalidateRangeEnd(range);
        if (!keepsRegistration)
        {
            at = FindVmaIndex(dest);
            Vma target = _vmas[at];
            Vma reset = target.CloneRange(target.Start, target.End);
            reset.Userfault = null;
            reset.Flags &= ~VmFlags.UffdMask;
            ReplaceVmaAt(at, reset);
        }

        if (deferredUnmaps is not null)
        {
            RaiseUserfaultUnmaps(deferredUnmaps);
        }

        if ((r.Flags & MremapFlags.DontUnmap) == 0)
        {
            UnmapLocked(r.Addr, r.Addr + r.OldLen);
            return;
        }

        // dontunmap_complete: the old VMA loses VM_LOCKED, and its anon_vma if all of it moved.
        index = FindVmaIndex(r.Addr);
        Vma source = _vmas[index];
        Vma cleared = source.CloneRange(source.Start, source.End);
        cleared.Flags &= ~VmFlags.LockedMask;
        if (source.Start == r.Addr && source.End == r.Addr + r.OldLen)
        {
            cleared.AnonVma = null;
            cleared.AnonVmaForked = false;
        }

        ReplaceVmaAt(index, cleared);
    }

    /// <summary>move_page_tables: moves each entry (and its frame reference) from the old to the new address.
    /// Huge leaves move whole when both sides are 2 MiB aligned, else they are split first. With
    /// <paramref name="clearUffdWp"/>, moved entries lose their userfaultfd write-protect bit and write-protect
    /// markers are dropped (move_ptes' need_clear_uffd_wp).</summary>
    private void MovePageTableEntries(ulong from, ulong to, ulong length, bool clearUffdWp)
    {
        for (ulong off = 0; off < length;)
        {
            ulong src = from + off;
            Pte huge = PageTable.FindHuge(src);
            if (!huge.IsNone)
            {
                ulong dst = to + off;
                if ((src & PageGeometry.PmdMask) == 0 && (dst & PageGeometry.PmdMask) == 0 && length - off >= PageGeometry.PmdSize
                    && PageTable.FindLeaf(dst) is null && PageTable.TryInstallHuge(dst, clearUffdWp ? huge.WithUffdWp(false) : huge))
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
            if (clearUffdWp && value != 0)
            {
                var entry = new Pte(value);
                value = entry.Swap == SwapType.Marker ? 0 : entry.WithUffdWp(false).Value;
            }

            if (value != 0)
            {
                ulong[] destLeaf = PageTable.GetOrCreateLeaf(to + off)!;
                Volatile.Write(ref destLeaf[PageGeometry.Index(to + off, 0)], value);
            }

            off += PageGeometry.PageSize;
        }
    }
}
