using System.Diagnostics;
using MirrorEmu.Telemetry;

namespace MirrorEmu.Mm;

// Lock ordering in MirrorEmu (as mm/rmap.c's "Lock ordering in mm" block), outermost first. A thread
// takes a lock only while every lock it holds is above it in this list; Base/LockOrder.cs ranks them
// (LockRank, the names in the first column) and checks every acquisition in Debug builds and in the
// test suite.
//
//   MmapLock               mmap_lock (Mm.MmapLock), one per address space: the VMA list; page-table
//                          pages are created under it (read) and freed under it (write)
//   MmapLockNested         a second address space's mmap_lock taken inside the first (fork's child)
//   DriverLock             a mirror's lock (Notifier.DriverLock): its device page table and read_retry;
//                          interval-notifier invalidate callbacks take it
//   DeviceQueue            an ILGPU accelerator's launch queue (Device.IlgpuLauncher): a launch and its
//                          synchronize, under the driver lock of the device that launches
//   UserfaultfdContext     a userfaultfd context's lock: message queues, waiters, the waiter pool
//   PageCache              a file's page-cache lock (Mm.MemFile): the index → frame array
//   PageTable              a PMD table's split lock (Mm.PageTable): installing a leaf table or a huge
//                          leaf, splitting one
//   NotifierSubscriptions  the interval-notifier subscriptions' lock: the interval tree,
//                          invalidate_seq, the deferred list
//   FramePool              the frame pool's lock (Mm.PhysicalMemory): the free queue, chunk creation
//
// Not locks, but ordered all the same: a TLB shootdown (Tlb.Shootdown) waits for CPU access sections,
// which hold no lock and never block, so it may run under any of the above. A userfaultfd wait
// (handle_userfault) drops the mmap lock first and may hold no lock at all (LockOrder asserts it).
// Callbacks: an interval notifier's Invalidate runs under the mmap lock (read or write) of the
// operation that raised it, takes the driver lock, and may not take the mmap lock, fault, or wait for
// a userfaultfd monitor. HmmDriverLoop's whileLocked callback runs under the driver lock with the
// same restrictions (a CPU access there takes the mmap lock in the wrong order and is reported).

/// <summary>
/// A process's address space (mm_struct): a 48-bit virtual space of 4 KiB pages, VMAs kept sorted
/// by address with O(log n) lookup (find_vma), a 4-level <see cref="Mm.PageTable"/>, the
/// <see cref="MmapLock"/>, and the frames of a <see cref="PhysicalMemory"/> pool it shares with
/// its fork children.
/// </summary>
/// <remarks>
/// Kernel-style calls (<c>Mmap</c>, <c>Munmap</c>, <c>Mprotect</c>, <c>Mremap</c>, <c>Madvise</c>)
/// take and release the mmap lock themselves and return a <see cref="KResult"/>: 0 or the man
/// page's negated errno with a one-line message; an error changes nothing. Split across partial
/// files by concern: <c>AddressSpace.Mmap.cs</c>, <c>.Mprotect.cs</c>, <c>.Populate.cs</c>,
/// <c>.Fork.cs</c>, <c>.Access.cs</c>, <c>.Zap.cs</c>, <c>.TestHooks.cs</c>.
/// </remarks>
public sealed partial class AddressSpace : IDisposable
{
    /// <summary>Top of the area where unhinted mappings are placed, top-down (like mmap_base).</summary>
    public const ulong MmapBase = 0x7F00_0000_0000UL;

    // Guarded by the mmap lock: written under the write lock, read under either mode.
    private readonly List<Vma> _vmas = [];
    private readonly PhysicalMemory _memory;
    private readonly bool _ownsMemory;
    private bool _disposed;
    private int _faultRetryTimeoutMs = FaultRetry.DefaultTimeoutMs;

    /// <summary>Creates an empty address space over its own pool of physical memory.</summary>
    /// <param name="memoryLimitBytes">The pool's limit in bytes (default 8 GiB).</param>
    public AddressSpace(ulong memoryLimitBytes = 8UL << 30)
        : this(new PhysicalMemory(memoryLimitBytes), ownsMemory: true)
    {
    }

    /// <summary>Creates an empty address space drawing on <paramref name="memory"/>.</summary>
    /// <param name="memory">The pool of frames.</param>
    /// <param name="ownsMemory">Whether disposing this space disposes the pool.</param>
    public AddressSpace(PhysicalMemory memory, bool ownsMemory = false)
    {
        _memory = memory;
        _ownsMemory = ownsMemory;
        MmapLock = new MmapLock(memory.Counters);
        PageTable = new PageTable();
        Tlb = new Tlb(memory.Counters);
    }

    /// <summary>The mmap_lock.</summary>
    public MmapLock MmapLock { get; }

    /// <summary>The CPU page table.</summary>
    public PageTable PageTable { get; }

    /// <summary>Which threads are inside a CPU access through the page table, and the shootdown that waits for them
    /// before a frame whose entry was cleared goes back to the pool.</summary>
    public Tlb Tlb { get; }

    /// <summary>The pool of frames.</summary>
    public PhysicalMemory Memory => _memory;

    /// <summary>The Mm counters (those of the pool, shared with fork children).</summary>
    public CounterSet<MmEvent> Counters => _memory.Counters;

    /// <summary>True once <see cref="Dispose"/> has begun tearing the space down.</summary>
    internal bool IsDisposed => Volatile.Read(ref _disposed);

    /// <summary>How long a CPU access or a populate call retries a fault at one page that makes no progress before it
    /// gives up (SIGBUS, or -EAGAIN from populate), in milliseconds; default <see cref="FaultRetry.DefaultTimeoutMs"/>.
    /// The kernel retries for ever; see <see cref="FaultRetry"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Not positive.</exception>
    public int FaultRetryTimeoutMs
    {
        get => _faultRetryTimeoutMs;
        set => _faultRetryTimeoutMs = value > 0 ? value
            : throw new ArgumentOutOfRangeException(nameof(FaultRetryTimeoutMs), value, $"FaultRetryTimeoutMs={value} must be a positive number of milliseconds");
    }

    /// <summary>Number of VMAs.</summary>
    public int VmaCount => _vmas.Count;

    /// <summary>Bytes of page-table and frame bookkeeping held (page tables of this space plus the pool's count words).</summary>
    public long BookkeepingBytes => PageTable.BookkeepingBytes + _memory.BookkeepingBytes;

    /// <summary>A copy of the VMA list, in address order. Takes the mmap read lock.</summary>
    public IReadOnlyList<Vma> SnapshotVmas()
    {
        MmapLock.ReadLock();
        try
        {
            return _vmas.ToArray();
        }
        finally
        {
            MmapLock.ReadUnlock();
        }
    }

    /// <summary>find_vma: the first VMA whose end is above <paramref name="address"/>, or null.</summary>
    /// <param name="address">A virtual address.</param>
    /// <remarks>Call with the mmap lock held (either mode).</remarks>
    public Vma? FindVma(ulong address)
    {
        int i = FindVmaIndex(address);
        return i < _vmas.Count ? _vmas[i] : null;
    }

    /// <summary>vma_lookup: the VMA that contains <paramref name="address"/>, or null.</summary>
    /// <param name="address">A virtual address.</param>
    /// <remarks>Call with the mmap lock held (either mode).</remarks>
    public Vma? VmaLookup(ulong address)
    {
        Vma? vma = FindVma(address);
        return vma is not null && vma.Start <= address ? vma : null;
    }

    /// <summary>Index of the first VMA whose end is above <paramref name="address"/> (binary search), or the count.</summary>
    private int FindVmaIndex(ulong address)
    {
        int lo = 0;
        int hi = _vmas.Count;
        while (lo < hi)
        {
            int mid = (lo + hi) >>> 1;
            if (_vmas[mid].End <= address)
            {
                lo = mid + 1;
            }
            else
            {
                hi = mid;
            }
        }

        return lo;
    }

    /// <summary>True if some VMA overlaps [start, end). Call with the mmap lock held.</summary>
    private bool Overlaps(ulong start, ulong end)
    {
        int i = FindVmaIndex(start);
        return i < _vmas.Count && _vmas[i].Start < end;
    }

    /// <summary>
    /// get_unmapped_area for a mapping that is not fixed (arch/x86/kernel/sys_x86_64.c): a hint, rounded down to a page,
    /// is used if the range there is free and below <see cref="PageGeometry.TaskSize"/>; otherwise the mapping goes
    /// top-down below <see cref="MmapBase"/> (mappings of 2 MiB or more 2 MiB aligned, as THP-aware kernels place
    /// anonymous memory), or, with MAP_32BIT, bottom-up from 1 GiB below 2 GiB, ignoring the hint.
    /// </summary>
    /// <param name="length">Page-aligned length.</param>
    /// <param name="hint">A non-fixed address hint, or 0.</param>
    /// <param name="below2G">MAP_32BIT.</param>
    /// <returns>The address, or 0 if no gap is large enough.</returns>
    private ulong GetUnmappedArea(ulong length, ulong hint, bool below2G = false)
    {
        if (length > PageGeometry.TaskSize)
        {
            return 0;
        }

        if (below2G)
        {
            const ulong Low = 1UL << 30;
            const ulong High = 2UL << 30;
            ulong at = Low;
            for (int k = FindVmaIndex(Low); at + length <= High; k++)
            {
                if (k == _vmas.Count || _vmas[k].Start >= at + length)
                {
                    return at;
                }

                at = Math.Max(at, _vmas[k].End);
            }

            return 0;
        }

        if (hint != 0)
        {
            hint = PageGeometry.PageDown(hint);
            hint = hint < PageGeometry.MmapMinAddr ? PageGeometry.MmapMinAddr : hint;
            if (hint <= PageGeometry.TaskSize - length && !Overlaps(hint, hint + length))
            {
                return hint;
            }
        }

        ulong align = length >= PageGeometry.PmdSize ? PageGeometry.PmdSize : PageGeometry.PageSize;
        for (int k = _vmas.Count; k >= 0; k--)
        {
            ulong gapStart = Math.Max(k == 0 ? PageGeometry.MmapMinAddr : _vmas[k - 1].End, PageGeometry.MmapMinAddr);
            ulong gapEnd = Math.Min(k == _vmas.Count ? MmapBase : _vmas[k].Start, MmapBase);
            if (gapEnd <= gapStart || gapEnd - gapStart < length)
            {
                continue;
            }

            ulong candidate = (gapEnd - length) & ~(align - 1);
            if (candidate >= gapStart)
            {
                return candidate;
            }
        }

        return 0;
    }

    /// <summary>Inserts a VMA in address order. Call with the mmap write lock held.</summary>
    private void InsertVma(Vma vma)
    {
        int i = FindVmaIndex(vma.Start);
        Debug.Assert(i == _vmas.Count || _vmas[i].Start >= vma.End, "VMAs overlap");
        InsertVmaAt(i, vma);
    }

    // Every change of the VMA list goes through these three, so that a file knows which address spaces map it
    // (its i_mmap: truncate and hole punching unmap its pages there), and a shared anonymous object (shmem)
    // is released with the last VMA that maps it.
    private void InsertVmaAt(int index, Vma vma)
    {
        vma.File?.AddMapping(this);
        _vmas.Insert(index, vma);
    }

    private void ReplaceVmaAt(int index, Vma vma)
    {
        vma.File?.AddMapping(this);
        Vma old = _vmas[index];
        _vmas[index] = vma;
        old.File?.RemoveMapping(this);
    }

    private void RemoveVmaAt(int index)
    {
        Vma old = _vmas[index];
        _vmas.RemoveAt(index);
        old.File?.RemoveMapping(this);
    }

    /// <summary>
    /// Splits the VMA that strictly contains <paramref name="address"/> into two (__split_vma), and
    /// splits a huge PMD straddling the cut (vma_adjust_trans_huge). Call with the mmap write lock held.
    /// </summary>
    private void SplitAt(ulong address)
    {
        int i = FindVmaIndex(address);
        if (i >= _vmas.Count)
        {
            return;
        }

        Vma vma = _vmas[i];
        if (vma.Start >= address || vma.End <= address)
        {
            return;
        }

        EnsureAnonVma(i); // both pieces keep the anon_vma (anon_vma_clone)
        if ((address & PageGeometry.PmdMask) != 0 && PageTable.SplitHuge(address))
        {
            Counters.Increment(MmEvent.HugeSplits);
        }

        Vma low = vma.CloneRange(vma.Start, address);
        Vma high = vma.CloneRange(address, vma.End);
        ReplaceVmaAt(i, low);
        InsertVmaAt(i + 1, high);
    }

    /// <summary>Splits at both ends of [start, end) and returns the index range of the VMAs inside it. The anon_vmas of
    /// those VMAs and their neighbours are settled first, while they still are neighbours (<see cref="EnsureAnonVma"/>).</summary>
    private (int First, int Last) SplitRange(ulong start, ulong end)
    {
        EnsureAnonVmasAround(start, end);
        SplitAt(start);
        SplitAt(end);
        int first = FindVmaIndex(start);
        int last = first;
        while (last < _vmas.Count && _vmas[last].Start < end)
        {
            last++;
        }

        return (first, last);
    }

    /// <summary>vma_merge: joins neighbours in [first - 1, last] that are compatible. Call with the mmap write lock held.</summary>
    private void MergeAround(int first, int last)
    {
        int i = Math.Max(first - 1, 0);
        int stop = Math.Min(last, _vmas.Count - 1);
        while (i < stop)
        {
            if (TryMergeWithNext(i))
            {
                stop--;
            }
            else
            {
                i++;
            }
        }
    }

    /// <summary>Merges VMA <paramref name="i"/> with the next one if Linux would (<see cref="MayMerge"/>, <see cref="AnonVmasCompatible"/>). Call with the mmap write lock held.</summary>
    /// <returns>True if they merged.</returns>
    private bool TryMergeWithNext(int i)
    {
        Vma a = _vmas[i];
        Vma b = _vmas[i + 1];
        if (!MayMerge(a, b))
        {
            return false;
        }

        EnsureAnonVma(i);
        EnsureAnonVma(i + 1);
        if (!AnonVmasCompatible(a, b))
        {
            return false;
        }

        var merged = a.CloneRange(a.Start, a.Start);
        merged.End = b.End;
        merged.AnonVma = a.AnonVma ?? b.AnonVma;
        merged.AnonVmaForked = a.AnonVma is not null ? a.AnonVmaForked : b.AnonVmaForked;
        ReplaceVmaAt(i, merged);
        RemoveVmaAt(i + 1);
        return true;
    }

    /// <summary>is_mergeable_vma and the page-offset test of can_vma_merge_before/after (mm/vma.c) for neighbours
    /// <paramref name="a"/> (below) and <paramref name="b"/>: every flag equal (VM_ACCOUNT, VM_LOCKED, advice and
    /// userfaultfd modes included), the same file and userfaultfd context, file offsets that continue, not VM_SPECIAL.</summary>
    private static bool MayMerge(Vma a, Vma b) =>
        a.End == b.Start
        && a.Flags == b.Flags
        && (a.Flags & VmFlags.Special) == 0
        && ReferenceEquals(a.File, b.File)
        && a.PgOff + ((a.End - a.Start) >> PageGeometry.PageShift) == b.PgOff
        && ReferenceEquals(a.Userfault, b.Userfault);

    /// <summary>is_mergeable_anon_vma (mm/vma.c): the same anon_vma, or only one has one and it is not a fork child's
    /// (vma_had_uncowed_parents).</summary>
    private static bool AnonVmasCompatible(Vma a, Vma b) =>
        a.AnonVma is null ? b.AnonVma is null || !b.AnonVmaForked
        : b.AnonVma is null ? !a.AnonVmaForked
        : ReferenceEquals(a.AnonVma, b.AnonVma);

    /// <summary>
    /// anon_vma_prepare, done late: the fault paths that put the first anonymous page into a private VMA do not
    /// record it, so every decision that depends on the anon_vma (merging, VM_ACCOUNT in mprotect, the page offset
    /// of a moved VMA, fork) calls this first, and so do the calls that are about to remove anonymous pages (a split,
    /// MADV_DONTNEED, a move). A VMA holding an anonymous page gets a compatible neighbour's anon_vma
    /// (find_mergeable_anon_vma: next, then previous, only if that one's chain is its own) or a new one.
    /// </summary>
    /// <remarks>Call with the mmap write lock held (the read lock suffices on paths that no one else changes VMAs under).</remarks>
    private void EnsureAnonVma(int i)
    {
        Vma vma = _vmas[i];
        if (vma.AnonVma is not null || vma.IsShared || (vma.Flags & VmFlags.Special) != 0 || !HoldsAnonymousPages(vma.Start, vma.End))
        {
            return;
        }

        vma.AnonVma = FindMergeableAnonVma(i);
    }

    /// <summary>find_mergeable_anon_vma: the next VMA's anon_vma, else the previous one's, if it could be shared
    /// (<see cref="ReusableAnonVma"/>); else a new one.</summary>
    private AnonVma FindMergeableAnonVma(int i)
    {
        Vma vma = _vmas[i];
        return (i + 1 < _vmas.Count ? ReusableAnonVma(_vmas[i + 1], vma, _vmas[i + 1]) : null)
            ?? (i > 0 ? ReusableAnonVma(_vmas[i - 1], _vmas[i - 1], vma) : null)
            ?? new AnonVma();
    }

    /// <summary>
    /// find_vma_and_prepare_anon (mm/userfaultfd.c): the resolution ioctls (UFFDIO_COPY, ZEROPAGE, MOVE, CONTINUE) give
    /// the private VMA at <paramref name="address"/> an anon_vma before they even check its registration, which changes
    /// what it merges with later. For the Uffd layer to call; no effect on shared VMAs or where nothing is mapped.
    /// </summary>
    /// <param name="address">The destination (or source) address.</param>
    /// <remarks>Call with the mmap lock held (the read lock suffices: only merges, under the write lock, read the anon_vma).</remarks>
    internal void AnonVmaPrepare(ulong address)
    {
        int i = FindVmaIndex(address);
        if (i < _vmas.Count && _vmas[i].Start <= address && !_vmas[i].IsShared)
        {
            _vmas[i].AnonVma ??= FindMergeableAnonVma(i);
        }
    }

    /// <summary>Settles the anon_vma of the VMA at <paramref name="address"/> (<see cref="EnsureAnonVma"/>): one it holds anonymous
    /// pages for gets it now, before a call moves those pages away (UFFDIO_MOVE's source). No effect where nothing is mapped.</summary>
    /// <param name="address">An address in the VMA.</param>
    /// <remarks>Call with the mmap lock held (the read lock suffices: only merges, under the write lock, read the anon_vma).</remarks>
    internal void SettleAnonVma(ulong address)
    {
        int i = FindVmaIndex(address);
        if (i < _vmas.Count && _vmas[i].Start <= address)
        {
            EnsureAnonVma(i);
        }
    }

    /// <summary>Settles the anon_vma of every VMA in [start, end) and of the one on each side, before a change of the VMA
    /// list makes other VMAs neighbours: a VMA that received its first anonymous page since the last change got it
    /// next to the neighbours it has now. Call with the mmap write lock held.</summary>
    private void EnsureAnonVmasAround(ulong start, ulong end)
    {
        int first = Math.Max(FindVmaIndex(start) - 1, 0);
        for (int i = first; i < _vmas.Count; i++)
        {
            EnsureAnonVma(i);
            if (_vmas[i].Start >= end)
            {
                break;
            }
        }
    }

    /// <summary>reusable_anon_vma: <paramref name="old"/>'s anon_vma if [a, b] could share one (anon_vma_compatible:
    /// adjacent, same file, flags equal but for the protection, offsets continuous) and old's chain is its own.</summary>
    private static AnonVma? ReusableAnonVma(Vma old, Vma a, Vma b) =>
        a.End == b.Start && ReferenceEquals(a.File, b.File)
        && ((a.Flags ^ b.Flags) & ~VmFlags.AccessMask) == 0
        && b.PgOff == a.PgOff + ((b.Start - a.Start) >> PageGeometry.PageShift)
        && old.AnonVma is not null && !old.AnonVmaForked
            ? old.AnonVma
            : null;

    /// <summary>True if [start, end) holds an anonymous page: a present frame that is neither special (zero page, pfn
    /// map) nor in a page cache, a huge anonymous page or the huge zero page, or an entry that stands for one (swap,
    /// migration, device, guard marker). Call with the mmap lock held.</summary>
    private bool HoldsAnonymousPages(ulong start, ulong end)
    {
        for (ulong va = start; va < end;)
        {
            ulong spanEnd = Math.Min(end, (va | PageGeometry.PmdMask) + 1);
            if (!PageTable.FindHuge(va).IsNone)
            {
                return true; // a huge page, or the huge zero page (do_huge_pmd_anonymous_page prepares the anon_vma for it too)
            }

            ulong[]? leaf = PageTable.FindLeaf(va);
            for (ulong a = va; leaf is not null && a < spanEnd; a += PageGeometry.PageSize)
            {
                var pte = new Pte(Volatile.Read(ref leaf[PageGeometry.Index(a, 0)]));
                if (pte.IsMapped ? !pte.IsSpecial && !_memory.IsPageCache(pte.Pfn) : !pte.IsNoneMostly)
                {
                    return true;
                }
            }

            va = spanEnd;
        }

        return false;
    }

    /// <summary>calc_vm_prot_bits: the read, write and exec bits of <paramref name="prot"/> as VM_* bits (the others are not VMA flags).</summary>
    private static VmFlags ToVmFlags(Prot prot) => (VmFlags)(long)(int)(prot & (Prot.Read | Prot.Write | Prot.Exec));

    /// <summary>Tears the address space down (exit_mmap): every mapping is zapped and the frames go back to the pool.</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        MmapLock.WriteLock();
        try
        {
            _disposed = true;
            NotifyRelease();
            for (int i = _vmas.Count - 1; i >= 0; i--)
            {
                Vma vma = _vmas[i];
                ZapRange(vma, vma.Start, vma.End, freeTables: true);
                RemoveVmaAt(i);
            }
        }
        finally
        {
            MmapLock.WriteUnlock();
        }

        if (_ownsMemory)
        {
            _memory.Dispose();
        }
    }

    private void ThrowIfDisposed()
    {
        if (_disposed)
        {
            ThrowHelper.ThrowDisposed(nameof(AddressSpace));
        }
    }
}
