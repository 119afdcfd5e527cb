using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using MirrorEmu.Telemetry;

namespace MirrorEmu.Mm;

/// <summary>
/// What the CPUs of an address space may still hold of its page table: a thread between reading an
/// entry and finishing the access through it holds the translation, as a CPU's TLB does. A
/// <see cref="Shootdown"/> (flush_tlb_range and the IPI that waits for every CPU) returns only when every
/// access that may have read an entry before it has ended. Frames whose entry was cleared or replaced
/// are put back only after a shootdown (<see cref="MmuGather"/>, as mm/mmu_gather.c's tlb_finish_mmu frees
/// after the flush), so an access that read the old entry never reads or writes a frame that was
/// already handed to someone else.
/// </summary>
/// <remarks>
/// <para>Concurrency model:</para> each accessing thread has a <see cref="Slot"/> whose sequence is odd
/// while it is inside an access. The access side costs two plain stores: <see cref="Enter"/> makes the
/// sequence odd before the entry is read, <see cref="Exit"/> makes it even after the bytes are copied
/// (a release store, so the copy is ordered before it). A store followed by a load may be reordered by
/// the processor, so <see cref="Shootdown"/> runs a process-wide memory barrier (membarrier(2), the
/// IPI's job) before it reads the slots: after it, an access either shows an odd sequence or reads the
/// entry after the caller changed it. The caller changes the entry with an interlocked operation (a
/// full barrier) before calling <see cref="Shootdown"/>.
/// <list type="table">
/// <item><term>no other thread ever accessed this space</term><description>nothing to wait for; no barrier (the common single-threaded case costs nothing).</description></item>
/// <item><term>a slot's sequence is even</term><description>that thread is not inside an access, or started one after the barrier (it sees the new entry).</description></item>
/// <item><term>a slot's sequence is odd</term><description>wait until it changes: that access ends without blocking (no lock, no fault inside a section).</description></item>
/// </list>
/// </remarks>
public sealed class Tlb
{
    /// <summary>How long a shootdown waits for one access before it reports a stuck accessor, in milliseconds.
    /// An access section holds no lock and never blocks, so only a descheduled thread makes it wait at all.</summary>
    internal const int StuckAccessMs = 10_000;

    // The calling thread's slot in the TLB it used last (a thread alternating between address spaces
    // looks the other one's up in _byThread): one thread-static read per access.
    [ThreadStatic]
    private static Slot? t_slot;

    private readonly object _registerLock = new();
    private readonly Dictionary<int, Slot> _byThread = [];
    private readonly CounterSet<MmEvent> _counters;
    private Slot[] _slots = [];

    /// <summary>Creates the TLB state of one address space.</summary>
    /// <param name="counters">Where shootdowns and their waits are counted.</param>
    internal Tlb(CounterSet<MmEvent> counters) => _counters = counters;

    /// <summary>Threads that have accessed this address space (slots registered).</summary>
    public int AccessingThreads => Volatile.Read(ref _slots).Length;

    /// <summary>The calling thread's slot in this TLB (registered on first use): look it up once per access call.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal Slot CurrentSlot()
    {
        Slot? slot = t_slot;
        return slot is not null && ReferenceEquals(slot.Owner, this) ? slot : Register();
    }

    /// <summary>Marks the thread as inside an access: call before reading the entry.</summary>
    /// <param name="slot">The thread's slot (<see cref="CurrentSlot"/>).</param>
    /// <remarks>Nothing inside the section may block or take a lock: leave it before faulting.</remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Enter(Slot slot) => Volatile.Write(ref slot.Sequence, slot.Sequence + 1);

    /// <summary>Ends the access that <see cref="Enter"/> began: call after the last byte is copied.</summary>
    /// <param name="slot">The thread's slot.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Exit(Slot slot) => Volatile.Write(ref slot.Sequence, slot.Sequence + 1);

    /// <summary>
    /// flush_tlb_range and its wait: returns when no access that may have read an entry changed before
    /// this call is still running. Call after changing the entries (with interlocked operations) and
    /// before putting the frames they referred to.
    /// </summary>
    /// <exception cref="InvalidOperationException">An access did not end within <see cref="StuckAccessMs"/> (a thread stuck inside a section).</exception>
    internal void Shootdown()
    {
        Slot[] slots = Volatile.Read(ref _slots);
        Slot? self = t_slot is { } mine && ReferenceEquals(mine.Owner, this) ? mine : null;
        if (slots.Length == 0 || (slots.Length == 1 && ReferenceEquals(slots[0], self)))
        {
            return;
        }

        _counters.Increment(MmEvent.TlbShootdowns);
        Interlocked.MemoryBarrierProcessWide();
        foreach (Slot slot in slots)
        {
            if (ReferenceEquals(slot, self))
            {
                continue;
            }

            long seen = Volatile.Read(ref slot.Sequence);
            if ((seen & 1) != 0)
            {
                WaitForAccessEnd(slot, seen);
            }
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void WaitForAccessEnd(Slot slot, long seen)
    {
        _counters.Increment(MmEvent.TlbShootdownWaits);
        long start = Stopwatch.GetTimestamp();
        var spin = new SpinWait();
        while (Volatile.Read(ref slot.Sequence) == seen)
        {
            spin.SpinOnce();
            if (spin.NextSpinWillYield && Stopwatch.GetElapsedTime(start).TotalMilliseconds > StuckAccessMs)
            {
                throw new InvalidOperationException($"TLB shootdown: the CPU access of thread {slot.ThreadId} did not end within {StuckAccessMs} ms");
            }
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private Slot Register()
    {
        int id = Environment.CurrentManagedThreadId;
        Slot? slot;
        lock (_registerLock)
        {
            if (!_byThread.TryGetValue(id, out slot))
            {
                slot = new Slot { ThreadId = id, Owner = this };
                _byThread.Add(id, slot);
                Slot[] grown = [.. _slots, slot];
                Volatile.Write(ref _slots, grown);
            }
        }

        // A full barrier after the slot is published and before this thread's first entry read: a shootdown that
        // did not see the slot ran its barrier before this one, so this thread reads the entries it changed.
        Interlocked.MemoryBarrier();
        t_slot = slot;
        return slot;
    }

    /// <summary>One thread's access state, alone on its cache line.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal sealed class Slot
    {
#pragma warning disable CS0169, IDE0051 // padding keeps the sequence off its neighbours' cache lines
        private long _pad0, _pad1, _pad2, _pad3, _pad4, _pad5, _pad6;
#pragma warning restore CS0169, IDE0051

        /// <summary>Odd while the thread is inside an access; written only by that thread.</summary>
        public long Sequence;

#pragma warning disable CS0169, IDE0051
        private long _pad7, _pad8, _pad9, _pad10, _pad11, _pad12, _pad13;
#pragma warning restore CS0169, IDE0051

        /// <summary>The managed thread id, for messages.</summary>
        public int ThreadId;

        /// <summary>The TLB this slot belongs to.</summary>
        public Tlb? Owner;
    }
}

/// <summary>
/// mmu_gather (mm/mmu_gather.c): the frame references dropped by clearing or replacing entries,
/// kept until a <see cref="Tlb.Shootdown"/> has made sure no access still uses them, then put. A full
/// batch is flushed on the way (tlb_flush_mmu), so a gather needs no more than its buffer.
/// </summary>
internal ref struct MmuGather
{
    private readonly AddressSpace _mm;
    private readonly Span<ulong> _pfns;
    private int _count;

    /// <summary>Starts a gather (tlb_gather_mmu).</summary>
    /// <param name="mm">The address space whose entries are being cleared.</param>
    /// <param name="buffer">Room for the batch (512 entries covers a huge page).</param>
    public MmuGather(AddressSpace mm, Span<ulong> buffer)
    {
        _mm = mm;
        _pfns = buffer;
        _count = 0;
    }

    /// <summary>Frames gathered and not yet put.</summary>
    public readonly int Count => _count;

    /// <summary>Adds one frame reference to drop once the entries are flushed (tlb_remove_page).</summary>
    /// <param name="pfn">The frame whose reference the cleared entry held.</param>
    public void Add(ulong pfn)
    {
        if (_count == _pfns.Length)
        {
            Flush();
        }

        _pfns[_count++] = pfn;
    }

    /// <summary>tlb_flush_mmu: shoots the TLBs down, then puts every gathered frame.</summary>
    public void Flush()
    {
        if (_count == 0)
        {
            return;
        }

        _mm.Tlb.Shootdown();
        PhysicalMemory memory = _mm.Memory;
        for (int i = 0; i < _count; i++)
        {
            memory.Put(_pfns[i]);
        }

        _count = 0;
    }
}
