using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using MirrorEmu.Telemetry;

namespace MirrorEmu.Mm;

/// <summary>
/// The emulated physical memory: frames of <see cref="PageGeometry.PageSize"/> real bytes, carved
/// from chunks of 64 MiB of a <see cref="FrameArena"/> committed on demand, with a reference count per
/// frame, the shared zero page (pfn 0), the huge zero page (512 frames, made on first use) and a configurable limit. Several address spaces (a process and
/// its fork children) draw on one pool. By default the arena is one contiguous reservation
/// (<see cref="FrameArenaKind.Reserved"/>), so a device can address every frame by pfn through one view.
/// </summary>
/// <remarks>
/// <para>Bookkeeping is 4 bytes per frame (the count), held per chunk, plus 8 bytes per frame while
/// it is free (the free queue). The free queue is an array rather than a list linked through the
/// frames themselves: taking a batch then reads no frame memory, where a linked list made every
/// pop a dependent cache miss (bench Mm/PopulateBenchmarks.PopulateWrite: 2.0x → 0.99x the
/// clear-the-pages floor). It is first-in first-out, so frames freed in address order are handed
/// out again in that order; a LIFO stack reversed the order on every free/allocate round and made
/// every other FirstTouchWrite iteration 2.3x slower (descending pages defeat the prefetcher).</para>
/// <para>Concurrency model:</para> allocation and freeing take <see cref="_lock"/>; reference counts
/// change with <see cref="Interlocked"/>; frame bytes are the caller's business (page-table locking
/// rules decide who may touch them). Chunk pointers are written once, under the lock, before the
/// first pfn of the chunk is handed out, so readers need no lock.
/// <para>Allocation never throws for lack of memory: at the limit, or when the arena cannot commit a
/// chunk, <see cref="TryAllocate"/>, <see cref="TryAllocateBatch"/> and <see cref="TryAllocateHuge"/>
/// return false or fewer frames and change nothing else.</para>
/// </remarks>
public sealed unsafe class PhysicalMemory : IDisposable
{
    /// <summary>The pfn of the shared zero page. It is never allocated, freed or counted.</summary>
    public const ulong ZeroPfn = 0;

    /// <summary>log2 of frames per native chunk (16,384 frames, 64 MiB).</summary>
    public const int ChunkShift = 14;

    /// <summary>Frames per native chunk.</summary>
    public const int ChunkFrames = 1 << ChunkShift;

    private const int ChunkFrameMask = ChunkFrames - 1;

    /// <summary>Bit 30 of a frame's count word: the frame belongs to a file's page cache, not to anonymous memory.</summary>
    private const int PageCacheFlag = 1 << 30;
    private const int CountMask = PageCacheFlag - 1;

    private const ulong HugeFrames = 1UL << PageGeometry.PmdOrder;

    /// <summary>The count each frame of the huge zero page holds: far from 0 either way, so that a stray get or put can
    /// neither free it nor make it look exclusive (as <see cref="RefCount"/> answers for the zero page).</summary>
    private const int PinnedCount = 1 << 29;

    // Guards _nextFresh, _freeQueue, _freeHead, _freeCount and chunk creation. Frame counts are read and
    // changed without it (Interlocked).
    private readonly object _lock = new();
    private readonly FrameArena _arena;
    private readonly nint[] _chunks;
    private readonly int[]?[] _counts;
    private readonly ulong _maxFrames;
    private ulong _nextFresh;
    private ulong[] _freeQueue = new ulong[PageGeometry.LevelEntries]; // a ring; length is a power of two
    private long _freeHead; // index of the oldest free frame in the ring
    private long _freeCount;
    private int _chunkCount;
    private bool _disposed;
    private bool _poisonFreed; // guarded by _lock
    private long _canaryViolations;
    private ulong _firstCanaryViolation = ulong.MaxValue;
    private ulong _hugeZeroPfn; // 0 until the huge zero page exists; written once (CompareExchange)
    private bool _useHugeZeroPage = true;
    private bool _swapEnabled;

    /// <summary>Creates a pool.</summary>
    /// <param name="limitBytes">Most bytes of frames that may be in use at once (the zero page included), a multiple of the page size; default 8 GiB.</param>
    /// <param name="counters">Where to count; a fresh set when null.</param>
    /// <param name="arena">Where the frames live; <see cref="FrameArenaKind.Default"/> is one contiguous reservation where the
    /// operating system supports it.</param>
    /// <exception cref="ArgumentOutOfRangeException">A bad limit, named in hex.</exception>
    /// <exception cref="OutOfMemoryException">The arena could not be reserved, or its first chunk (the zero page's) not committed.</exception>
    public PhysicalMemory(ulong limitBytes = 8UL << 30, CounterSet<MmEvent>? counters = null, FrameArenaKind arena = FrameArenaKind.Default)
        : this(limitBytes, FrameArena.Create(arena, ChunksFor(limitBytes)), counters)
    {
    }

    /// <summary>Creates a pool whose frames live in <paramref name="arena"/>, which the pool then owns (and disposes).</summary>
    /// <param name="limitBytes">As for the other constructor.</param>
    /// <param name="arena">An arena of exactly <see cref="ChunksFor"/>(<paramref name="limitBytes"/>) chunks with nothing committed.</param>
    /// <param name="counters">Where to count; a fresh set when null.</param>
    /// <exception cref="ArgumentOutOfRangeException">A bad limit, or an arena of another size, named in hex.</exception>
    /// <exception cref="OutOfMemoryException">The arena could not commit its first chunk (the zero page's).</exception>
    public PhysicalMemory(ulong limitBytes, FrameArena arena, CounterSet<MmEvent>? counters = null)
    {
        ArgumentNullException.ThrowIfNull(arena);
        int chunkSlots = ChunksFor(limitBytes);
        if (arena.ChunkCount != chunkSlots)
        {
            throw new ArgumentOutOfRangeException(nameof(arena), $"arena.ChunkCount={arena.ChunkCount} must be {chunkSlots} for limitBytes=0x{limitBytes:X}");
        }

        _maxFrames = limitBytes >> PageGeometry.PageShift;
        _chunks = new nint[chunkSlots];
        _counts = new int[]?[chunkSlots];
        Counters = counters ?? new CounterSet<MmEvent>();
        _arena = arena;
        if (!EnsureChunk(0))
        {
            _arena.Dispose();
            throw new OutOfMemoryException($"the frame arena could not commit its first chunk ({_arena.Description})");
        }

        NativeMemory.Clear(FramePointer(ZeroPfn), (nuint)PageGeometry.PageSize);
        _nextFresh = ZeroPfn + 1;
    }

    /// <summary>Chunks of <see cref="ChunkFrames"/> frames a pool of <paramref name="limitBytes"/> needs.</summary>
    /// <param name="limitBytes">The pool's limit in bytes.</param>
    /// <exception cref="ArgumentOutOfRangeException">A bad limit, named in hex.</exception>
    public static int ChunksFor(ulong limitBytes)
    {
        if (limitBytes < 2 * PageGeometry.PageSize || !PageGeometry.IsPageAligned(limitBytes) || (limitBytes >> PageGeometry.PageShift) > Pte.MaxPfn)
        {
            throw new ArgumentOutOfRangeException(nameof(limitBytes), $"limitBytes=0x{limitBytes:X} must be page aligned, at least two pages and at most 2^40 pages");
        }

        return (int)(((limitBytes >> PageGeometry.PageShift) + ChunkFrameMask) >> ChunkShift);
    }

    /// <summary>Counters of every address space that uses this pool.</summary>
    public CounterSet<MmEvent> Counters { get; }

    /// <summary>Most frames that can be in use at once, the zero page included.</summary>
    public ulong LimitFrames => _maxFrames;

    /// <summary>Where the frames live. When <see cref="FrameArena.IsContiguous"/>, frame <c>pfn</c> is at
    /// <see cref="FrameArena.BaseAddress"/> + <c>pfn</c> * page size (what a device view over the frames relies on).</summary>
    public FrameArena Arena => _arena;

    /// <summary>Frames in use (allocated and not yet freed), without the zero page and the huge zero page.</summary>
    public long FramesInUse
    {
        get
        {
            long hugeZero = Volatile.Read(ref _hugeZeroPfn) != 0 ? (long)HugeFrames : 0;
            using (new RankedMonitor(_lock, LockRank.FramePool))
            {
                return (long)_nextFresh - 1 - _freeCount - hugeZero;
            }
        }
    }

    /// <summary>
    /// /sys/kernel/mm/transparent_hugepage/use_zero_page for every address space on this pool: while true (Linux's default),
    /// a read fault in a THP-eligible anonymous VMA maps the huge zero page read-only (<see cref="TryGetHugeZeroPage"/>), and
    /// the first write there allocates a huge page (do_huge_zero_wp_pmd) or, when none can be had, splits it into
    /// small zero-page entries and copies one page. While false, a read fault there allocates a huge page (writable if the VMA is), as a
    /// write fault does. Changing it affects later faults only.
    /// </summary>
    public bool UseHugeZeroPage
    {
        get => Volatile.Read(ref _useHugeZeroPage);
        set => Volatile.Write(ref _useHugeZeroPage, value);
    }

    /// <summary>
    /// Whether the emulated machine has swap (a swap area after swapon(8)). With it, MADV_PAGEOUT swaps the anonymous pages an
    /// address space alone maps out: each entry becomes a swap entry and the frame, with its bytes, stays as the swap cache
    /// (nothing is written anywhere, and the swap cache is never reclaimed), so the next access swaps the page in (a major
    /// fault) with the same bytes, mincore reports it resident (in the swap cache, as Linux does for a page just paged out),
    /// and hmm_range_fault faults it in when asked to. Without it (the default, a host without swap) MADV_PAGEOUT leaves
    /// anonymous pages mapped, as Linux does. Changing it affects later calls only.
    /// </summary>
    public bool SwapEnabled
    {
        get => Volatile.Read(ref _swapEnabled);
        set => Volatile.Write(ref _swapEnabled, value);
    }

    /// <summary>The first pfn of the huge zero page, or 0 while it has not been needed yet.</summary>
    public ulong HugeZeroPfn => Volatile.Read(ref _hugeZeroPfn);

    /// <summary>
    /// get_huge_zero_folio (mm/huge_memory.c): the huge zero page, 512 contiguous zeroed frames, made on first use and never
    /// freed (like the zero page, pfn 0). Its entries are special and hold no reference on its frames.
    /// </summary>
    /// <param name="basePfn">Its first frame, 512-aligned.</param>
    /// <returns>False when it does not exist yet and no aligned block of 512 frames can be had (the caller falls back to
    /// small pages, as a THP fault does when the huge zero page cannot be allocated).</returns>
    public bool TryGetHugeZeroPage(out ulong basePfn)
    {
        basePfn = Volatile.Read(ref _hugeZeroPfn);
        if (basePfn != 0)
        {
            return true;
        }

        if (!TryAllocateZeroedHuge(out ulong fresh))
        {
            return false;
        }

        for (ulong i = 0; i < HugeFrames; i++)
        {
            Volatile.Write(ref CountRef(fresh + i), PinnedCount);
        }

        basePfn = Interlocked.CompareExchange(ref _hugeZeroPfn, fresh, 0);
        if (basePfn != 0)
        {
            // Another fault made it first: these frames were never seen by anyone.
            for (ulong i = 0; i < HugeFrames; i++)
            {
                Volatile.Write(ref CountRef(fresh + i), 1);
                Put(fresh + i);
            }

            return true;
        }

        basePfn = fresh;
        return true;
    }

    /// <summary>Bytes of bookkeeping this pool holds beside the frames themselves (count words of every chunk).</summary>
    public long BookkeepingBytes => (long)Volatile.Read(ref _chunkCount) * ChunkFrames * sizeof(int);

    /// <summary>Bytes of native memory reserved for frames.</summary>
    public long ReservedBytes => (long)Volatile.Read(ref _chunkCount) * ChunkFrames * (long)PageGeometry.PageSize;

    /// <summary>The byte every freed frame holds while <see cref="PoisonFreedFrames"/> is on (the canary).</summary>
    public const byte CanaryByte = 0xCD;

    /// <summary>
    /// Test hook (canaries, as KASAN poisons freed memory): while on, every frame put on the free queue is filled with
    /// <see cref="CanaryByte"/>, and every frame taken from it is checked to still hold only canary bytes; a frame
    /// that does not was written after it was freed (<see cref="CanaryViolations"/>). Turning it on fills the frames
    /// already free. Costs a page fill and a page scan per free and reuse.
    /// </summary>
    internal bool PoisonFreedFrames
    {
        get
        {
            using (new RankedMonitor(_lock, LockRank.FramePool))
            {
                return _poisonFreed;
            }
        }

        set
        {
            using (new RankedMonitor(_lock, LockRank.FramePool))
            {
                if (value && !_poisonFreed)
                {
                    int mask = _freeQueue.Length - 1;
                    for (long i = 0; i < _freeCount; i++)
                    {
                        Frame(_freeQueue[(int)((_freeHead + i) & mask)]).Fill(CanaryByte);
                    }
                }

                _poisonFreed = value;
            }
        }
    }

    /// <summary>Frames found written after they were freed, while <see cref="PoisonFreedFrames"/> was on.</summary>
    internal long CanaryViolations => Interlocked.Read(ref _canaryViolations);

    /// <summary>The first frame found written after it was freed, or <see cref="ulong.MaxValue"/>.</summary>
    internal ulong FirstCanaryViolation => Interlocked.Read(ref _firstCanaryViolation);

    /// <summary>The address of a frame's first byte.</summary>
    /// <param name="pfn">An allocated frame number, or <see cref="ZeroPfn"/>.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public byte* FramePointer(ulong pfn)
    {
        Debug.Assert((pfn >> ChunkShift) < (ulong)_chunks.Length, "pfn beyond the pool");
        return (byte*)_chunks[(int)(pfn >> ChunkShift)] + ((pfn & ChunkFrameMask) << PageGeometry.PageShift);
    }

    /// <summary>A frame's bytes.</summary>
    /// <param name="pfn">An allocated frame number, or <see cref="ZeroPfn"/> (whose bytes must not be written).</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Span<byte> Frame(ulong pfn) => new(FramePointer(pfn), PageGeometry.PageSizeInt);

    /// <summary>Takes one frame, with count 1. Its bytes are left as they were: the caller zeroes or fills it.</summary>
    /// <param name="pfn">The frame number.</param>
    /// <returns>False when the pool is at its limit or out of memory (the caller reports VM_FAULT_OOM).</returns>
    public bool TryAllocate(out ulong pfn)
    {
        Span<ulong> one = stackalloc ulong[1];
        if (TryAllocateBatch(one) == 1)
        {
            pfn = one[0];
            return true;
        }

        pfn = 0;
        return false;
    }

    /// <summary>Takes up to <c>pfns.Length</c> frames under one lock hold, each with count 1.</summary>
    /// <param name="pfns">Receives the frame numbers.</param>
    /// <returns>How many were taken; fewer than asked only at the pool's limit or when the arena cannot commit a chunk.</returns>
    public int TryAllocateBatch(Span<ulong> pfns)
    {
        ThrowIfDisposed();
        int n = 0;
        using (new RankedMonitor(_lock, LockRank.FramePool))
        {
            int fromQueue = (int)Math.Min(_freeCount, pfns.Length);
            while (n < fromQueue)
            {
                int at = (int)(_freeHead & (_freeQueue.Length - 1));
                int run = Math.Min(fromQueue - n, _freeQueue.Length - at);
                _freeQueue.AsSpan(at, run).CopyTo(pfns[n..]);
                if (_poisonFreed)
                {
                    CheckCanaries(pfns.Slice(n, run));
                }

                _freeHead += run;
                _freeCount -= run;
                n += run;
            }

            while (n < pfns.Length && _nextFresh < _maxFrames)
            {
                if (!EnsureChunk((int)(_nextFresh >> ChunkShift)))
                {
                    break; // the arena could not commit memory: fewer frames, nothing else changes
                }

                pfns[n++] = _nextFresh++;
            }
        }

        for (int i = 0; i < n; i++)
        {
            Volatile.Write(ref CountRef(pfns[i]), 1);
        }

        Counters.Add(MmEvent.FramesAllocated, n);
        return n;
    }

    /// <summary>Takes 512 contiguous frames whose first pfn is 512-aligned (a 2 MiB huge page), each with count 1.</summary>
    /// <param name="basePfn">The first frame.</param>
    /// <returns>False when no fresh aligned block is left below the limit, or the arena cannot commit its chunk; the
    /// free list is not searched.</returns>
    public bool TryAllocateHuge(out ulong basePfn)
    {
        ThrowIfDisposed();
        using (new RankedMonitor(_lock, LockRank.FramePool))
        {
            ulong aligned = (_nextFresh + HugeFrames - 1) & ~(HugeFrames - 1);
            if (aligned + HugeFrames > _maxFrames)
            {
                basePfn = 0;
                return false;
            }

            // A huge block never straddles a chunk (chunks are 32 huge pages), so one commit covers it; the frames
            // skipped to reach alignment lie in committed chunks or in the aligned block's chunk.
            if (!EnsureChunk((int)(aligned >> ChunkShift)))
            {
                basePfn = 0;
                return false;
            }

            // The frames skipped to reach alignment go to the free list.
            for (ulong pfn = _nextFresh; pfn < aligned; pfn++)
            {
                bool committed = EnsureChunk((int)(pfn >> ChunkShift));
                Debug.Assert(committed, "a skipped frame lies in a chunk below the aligned block's");
                PushFree(pfn);
            }

            _nextFresh = aligned + HugeFrames;
            basePfn = aligned;
        }

        for (ulong i = 0; i < HugeFrames; i++)
        {
            Volatile.Write(ref CountRef(basePfn + i), 1);
        }

        Counters.Add(MmEvent.FramesAllocated, (long)HugeFrames);
        return true;
    }

    /// <summary>vma_alloc_anon_folio_pmd: <see cref="TryAllocateHuge"/>, then the 2 MiB cleared at once (the block is contiguous).</summary>
    /// <param name="basePfn">The first frame.</param>
    /// <returns>False as for <see cref="TryAllocateHuge"/>.</returns>
    internal bool TryAllocateZeroedHuge(out ulong basePfn)
    {
        if (!TryAllocateHuge(out basePfn))
        {
            return false;
        }

        NativeMemory.Clear(FramePointer(basePfn), (nuint)(HugeFrames << PageGeometry.PageShift));
        return true;
    }

    /// <summary>Marks a frame as owned by a file's page cache (so a private write COWs it instead of reusing it).</summary>
    /// <param name="pfn">An allocated frame.</param>
    public void MarkPageCache(ulong pfn) => Interlocked.Or(ref CountRef(pfn), PageCacheFlag);

    /// <summary>True if the frame belongs to a page cache.</summary>
    /// <param name="pfn">An allocated frame.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool IsPageCache(ulong pfn) => pfn != ZeroPfn && (Volatile.Read(ref CountRef(pfn)) & PageCacheFlag) != 0;

    /// <summary>The frame's reference count (mappings plus page-cache and swap-cache holds).</summary>
    /// <param name="pfn">An allocated frame.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int RefCount(ulong pfn) => pfn == ZeroPfn ? int.MaxValue : Volatile.Read(ref CountRef(pfn)) & CountMask;

    /// <summary>Adds a reference (get_page). The zero page is not counted.</summary>
    /// <param name="pfn">An allocated frame.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Get(ulong pfn)
    {
        if (pfn != ZeroPfn)
        {
            Interlocked.Increment(ref CountRef(pfn));
        }
    }

    /// <summary>folio_try_get: adds a reference unless the frame is free (its count 0), for a caller that read the pfn from
    /// an entry that may be cleared and its frame freed meanwhile. The zero page always succeeds, uncounted.</summary>
    /// <param name="pfn">A frame number that was allocated when the caller read it.</param>
    /// <returns>False when the frame was free: the entry the caller read has changed.</returns>
    public bool TryGet(ulong pfn)
    {
        if (pfn == ZeroPfn)
        {
            return true;
        }

        ref int count = ref CountRef(pfn);
        int seen = Volatile.Read(ref count);
        while ((seen & CountMask) != 0)
        {
            int was = Interlocked.CompareExchange(ref count, seen + 1, seen);
            if (was == seen)
            {
                return true;
            }

            seen = was;
        }

        return false;
    }

    /// <summary>Drops a reference (put_page); the frame goes back to the pool when the last one goes.</summary>
    /// <param name="pfn">An allocated frame.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Put(ulong pfn)
    {
        if (pfn == ZeroPfn)
        {
            return;
        }

        int left = Interlocked.Decrement(ref CountRef(pfn)) & CountMask;
        if (left == 0)
        {
            Free(pfn);
        }
        else
        {
            Debug.Assert(left != CountMask, "frame reference count went below zero");
        }
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        using (new RankedMonitor(_lock, LockRank.FramePool))
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            Array.Clear(_chunks);
            _arena.Dispose();
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void Free(ulong pfn)
    {
        Volatile.Write(ref CountRef(pfn), 0);
        using (new RankedMonitor(_lock, LockRank.FramePool))
        {
            PushFree(pfn);
        }

        Counters.Increment(MmEvent.FramesFreed);
    }

    /// <summary>Counts the frames of <paramref name="pfns"/>, just taken off the free queue, that lost their canary bytes.</summary>
    private void CheckCanaries(ReadOnlySpan<ulong> pfns)
    {
        foreach (ulong pfn in pfns)
        {
            if (Frame(pfn).IndexOfAnyExcept(CanaryByte) >= 0)
            {
                Interlocked.Increment(ref _canaryViolations);
                Interlocked.CompareExchange(ref _firstCanaryViolation, pfn, ulong.MaxValue);
            }
        }
    }

    private void PushFree(ulong pfn)
    {
        if (_poisonFreed)
        {
            Frame(pfn).Fill(CanaryByte);
        }

        int mask = _freeQueue.Length - 1;
        if (_freeCount == _freeQueue.LongLength)
        {
            // Grow, laying the ring out from index 0.
            var bigger = new ulong[_freeQueue.Length * 2];
            for (long i = 0; i < _freeCount; i++)
            {
                bigger[i] = _freeQueue[(int)((_freeHead + i) & mask)];
            }

            _freeQueue = bigger;
            _freeHead = 0;
            mask = _freeQueue.Length - 1;
        }

        _freeQueue[(int)((_freeHead + _freeCount) & mask)] = pfn;
        _freeCount++;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ref int CountRef(ulong pfn)
    {
        int[]? counts = _counts[(int)(pfn >> ChunkShift)];
        Debug.Assert(counts is not null, "pfn in a chunk never allocated");
        return ref counts[(int)(pfn & ChunkFrameMask)];
    }

    /// <summary>Makes chunk <paramref name="chunk"/> usable: its count words and its committed bytes. Call under <see cref="_lock"/>.</summary>
    /// <returns>False when the memory cannot be had; nothing changed then.</returns>
    private bool EnsureChunk(int chunk)
    {
        if (_chunks[chunk] != 0)
        {
            return true;
        }

        if (FailChunkAllocationsForTest)
        {
            Counters.Increment(MmEvent.HostAllocationFailures);
            return false;
        }

        int[] counts;
        try
        {
            counts = new int[ChunkFrames];
        }
        catch (OutOfMemoryException)
        {
            Counters.Increment(MmEvent.HostAllocationFailures);
            return false;
        }

        nint address = _arena.TryCommit(chunk);
        if (address == 0)
        {
            Counters.Increment(MmEvent.HostAllocationFailures);
            return false;
        }

        _counts[chunk] = counts;
        Volatile.Write(ref _chunks[chunk], address);
        _chunkCount++;
        return true;
    }

    /// <summary>Test hook: while true, a chunk that does not exist yet cannot be allocated (as if the host refused the
    /// memory), so allocations beyond the chunks already made fail the way a host out of memory makes them fail.</summary>
    internal bool FailChunkAllocationsForTest { get; set; }

    private void ThrowIfDisposed()
    {
        if (_disposed)
        {
            ThrowHelper.ThrowDisposed(nameof(PhysicalMemory));
        }
    }
}
