using System.Diagnostics;
using System.Runtime.CompilerServices;
using MirrorEmu.Telemetry;

namespace MirrorEmu.Mm;

/// <summary>
/// The mmap_lock: a reader/writer semaphore with the kernel's uses. Faults and walks hold it for
/// read; munmap, mprotect, mremap, madvise(HUGEPAGE) and fork hold it for write. Like an rwsem it
/// has no owner thread, waiting writers hold off new readers, and it does not recurse.
/// </summary>
/// <remarks>
/// <para>Revalidation: <see cref="Sequence"/> advances at every write unlock (the kernel's
/// mm_lock_seq). Code that drops the lock remembers it; after retaking the lock, an unchanged
/// sequence means no VMA changed meanwhile, and a changed one means VMA pointers and everything
/// looked up under the old hold must be looked up again.</para>
/// <para>Concurrency model:</para> <see cref="_state"/> packs [63 writer held][62..32 writers waiting][31..0 readers].
/// Fast paths are one compare-and-exchange. Slow paths wait on <see cref="_gate"/>; a releaser that
/// sees <see cref="_sleepers"/> non-zero after changing the state pulses it. A sleeper registers in
/// <see cref="_sleepers"/> before its last look at the state, so a wake-up cannot be lost.
/// </remarks>
public sealed class MmapLock
{
    private const long WriterHeld = long.MinValue;
    private const int WaitingShift = 32;
    private const long OneWaiting = 1L << WaitingShift;
    private const long WaitingMask = 0x7FFF_FFFFL << WaitingShift;
    private const long ReaderMask = 0xFFFF_FFFFL;

    private readonly object _gate = new();
    private readonly CounterSet<MmEvent> _counters;
    private long _state;
    private int _sleepers;
    private long _sequence;

    /// <summary>Creates an unlocked lock.</summary>
    /// <param name="counters">Where acquisitions and drops are counted.</param>
    public MmapLock(CounterSet<MmEvent> counters) => _counters = counters;

    /// <summary>Advances at every write unlock; compare before and after a drop to know whether to revalidate.</summary>
    public long Sequence => Volatile.Read(ref _sequence);

    /// <summary>True while some thread holds the lock for read.</summary>
    public bool IsReadLocked => (Volatile.Read(ref _state) & ReaderMask) != 0;

    /// <summary>True while some thread holds the lock for write.</summary>
    public bool IsWriteLocked => Volatile.Read(ref _state) < 0;

    /// <summary>True while held in either mode.</summary>
    public bool IsLocked => IsReadLocked || IsWriteLocked;

    /// <summary>How long <see cref="ReadLock"/> and <see cref="WriteLock"/> wait before they report the wait as a
    /// probable deadlock instead of hanging, in milliseconds (the kernel waits for ever; no operation of the
    /// emulator holds the lock for more than a fraction of this).</summary>
    public const int DeadlockReportMs = 120_000;

    /// <summary>mmap_read_lock: waits as long as it takes, up to <see cref="DeadlockReportMs"/>.</summary>
    /// <exception cref="TimeoutException">Not acquired within <see cref="DeadlockReportMs"/>: a deadlock, named with the lock's state.</exception>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void ReadLock()
    {
        LockOrder.Acquiring(LockRank.MmapLock, this);
        if (!TryAcquireRead() && !ReadLockSlow(DeadlockReportMs, CancellationToken.None))
        {
            ThrowDeadlock("read");
        }
    }

    /// <summary>mmap_read_lock_killable: waits until the lock is had or <paramref name="cancellation"/> fires.</summary>
    /// <param name="cancellation">The "fatal signal".</param>
    /// <returns>0, or -EINTR when cancelled first.</returns>
    public int ReadLockKillable(CancellationToken cancellation)
    {
        LockOrder.Acquiring(LockRank.MmapLock, this);
        if (TryAcquireRead() || ReadLockSlow(Timeout.Infinite, cancellation))
        {
            return 0;
        }

        LockOrder.Released(LockRank.MmapLock, this);
        return -Errno.EINTR;
    }

    /// <summary>Read lock with a limit.</summary>
    /// <param name="timeoutMs">Milliseconds to wait at most.</param>
    /// <returns>False if the time ran out.</returns>
    public bool TryReadLock(int timeoutMs)
    {
        LockOrder.Acquiring(LockRank.MmapLock, this);
        if (TryAcquireRead() || ReadLockSlow(timeoutMs, CancellationToken.None))
        {
            return true;
        }

        LockOrder.Released(LockRank.MmapLock, this);
        return false;
    }

    /// <summary>mmap_read_trylock: no wait.</summary>
    /// <returns>True if the lock is now held for read.</returns>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryReadLock()
    {
        if (TryAcquireRead())
        {
            LockOrder.Acquiring(LockRank.MmapLock, this, tryLock: true);
            return true;
        }

        return false;
    }

    /// <summary>The read fast path: one compare-and-exchange, no lock-order bookkeeping.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool TryAcquireRead()
    {
        long s = Volatile.Read(ref _state);
        if ((s & (WriterHeld | WaitingMask)) == 0 && Interlocked.CompareExchange(ref _state, s + 1, s) == s)
        {
            _counters.Increment(MmEvent.LockReadAcquisitions);
            return true;
        }

        return false;
    }

    /// <summary>mmap_read_unlock.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void ReadUnlock()
    {
        LockOrder.Released(LockRank.MmapLock, this);
        long s = Interlocked.Decrement(ref _state);
        Debug.Assert((s & ReaderMask) != ReaderMask, "mmap read unlock without a read hold");
        if (Volatile.Read(ref _sleepers) != 0 && (s & ReaderMask) == 0)
        {
            WakeAll();
        }
    }

    /// <summary>Drops a read hold inside a fault path (VM_FAULT_RETRY): counted as a lock drop.</summary>
    public void ReadUnlockForRetry()
    {
        _counters.Increment(MmEvent.LockDrops);
        ReadUnlock();
    }

    /// <summary>mmap_write_lock: waits as long as it takes, up to <see cref="DeadlockReportMs"/>.</summary>
    /// <exception cref="TimeoutException">Not acquired within <see cref="DeadlockReportMs"/>: a deadlock, named with the lock's state.</exception>
    public void WriteLock()
    {
        LockOrder.Acquiring(LockRank.MmapLock, this);
        if (Interlocked.CompareExchange(ref _state, WriterHeld, 0) == 0)
        {
            _counters.Increment(MmEvent.LockWriteAcquisitions);
            return;
        }

        if (!WriteLockSlow(DeadlockReportMs, CancellationToken.None))
        {
            ThrowDeadlock("write");
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ThrowDeadlock(string mode)
    {
        LockOrder.Released(LockRank.MmapLock, this);
        long s = Volatile.Read(ref _state);
        throw new TimeoutException(
            $"mmap_lock: no {mode} hold after {DeadlockReportMs / 1000} s (held for write: {s < 0}, readers: {s & ReaderMask}, " +
            $"writers waiting: {(s & WaitingMask) >> WaitingShift}); a deadlock, or a holder that never released it");
    }

    /// <summary>mmap_write_lock_killable.</summary>
    /// <param name="cancellation">The "fatal signal".</param>
    /// <returns>0, or -EINTR when cancelled first.</returns>
    public int WriteLockKillable(CancellationToken cancellation)
    {
        LockOrder.Acquiring(LockRank.MmapLock, this);
        if (Interlocked.CompareExchange(ref _state, WriterHeld, 0) == 0)
        {
            _counters.Increment(MmEvent.LockWriteAcquisitions);
            return 0;
        }

        if (WriteLockSlow(Timeout.Infinite, cancellation))
        {
            return 0;
        }

        LockOrder.Released(LockRank.MmapLock, this);
        return -Errno.EINTR;
    }

    /// <summary>mmap_write_trylock.</summary>
    /// <returns>True if the lock is now held for write.</returns>
    public bool TryWriteLock()
    {
        if (Interlocked.CompareExchange(ref _state, WriterHeld, 0) == 0)
        {
            LockOrder.Acquiring(LockRank.MmapLock, this, tryLock: true);
            _counters.Increment(MmEvent.LockWriteAcquisitions);
            return true;
        }

        return false;
    }

    /// <summary>mmap_write_unlock. Advances <see cref="Sequence"/>.</summary>
    public void WriteUnlock()
    {
        Debug.Assert(IsWriteLocked, "mmap write unlock without a write hold");
        LockOrder.Released(LockRank.MmapLock, this);
        Interlocked.Increment(ref _sequence);
        Interlocked.And(ref _state, ~WriterHeld);
        if (Volatile.Read(ref _sleepers) != 0)
        {
            WakeAll();
        }
    }

    /// <summary>mmap_write_downgrade: turns a write hold into a read hold without letting a writer in.</summary>
    public void Downgrade()
    {
        Debug.Assert(IsWriteLocked, "downgrade without a write hold");
        Interlocked.Increment(ref _sequence);
        long s = Volatile.Read(ref _state);
        while (Interlocked.CompareExchange(ref _state, (s & ~WriterHeld) + 1, s) != s)
        {
            s = Volatile.Read(ref _state);
        }

        if (Volatile.Read(ref _sleepers) != 0)
        {
            WakeAll();
        }
    }

    /// <summary>Asserts in debug builds that the lock is held (mmap_assert_locked).</summary>
    [Conditional("DEBUG")]
    public void DebugAssertLocked() => Debug.Assert(IsLocked, "mmap_lock must be held");

    /// <summary>Asserts in debug builds that the lock is held for write (mmap_assert_write_locked).</summary>
    [Conditional("DEBUG")]
    public void DebugAssertWriteLocked() => Debug.Assert(IsWriteLocked, "mmap_lock must be held for write");

    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool ReadLockSlow(int timeoutMs, CancellationToken cancellation)
    {
        var spin = new SpinWait();
        for (int i = 0; i < 20; i++)
        {
            spin.SpinOnce(sleep1Threshold: -1);
            if (TryAcquireRead())
            {
                return true;
            }
        }

        long deadline = timeoutMs == Timeout.Infinite ? long.MaxValue : Environment.TickCount64 + timeoutMs;
        using CancellationTokenRegistration reg = cancellation.CanBeCanceled ? cancellation.UnsafeRegister(static g => WakeGate(g!), _gate) : default;
        lock (_gate)
        {
            Interlocked.Increment(ref _sleepers);
            try
            {
                while (!TryAcquireRead())
                {
                    if (cancellation.IsCancellationRequested || !WaitGate(deadline))
                    {
                        return false;
                    }
                }

                return true;
            }
            finally
            {
                Interlocked.Decrement(ref _sleepers);
            }
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool WriteLockSlow(int timeoutMs, CancellationToken cancellation)
    {
        long deadline = timeoutMs == Timeout.Infinite ? long.MaxValue : Environment.TickCount64 + timeoutMs;
        using CancellationTokenRegistration reg = cancellation.CanBeCanceled ? cancellation.UnsafeRegister(static g => WakeGate(g!), _gate) : default;
        Interlocked.Add(ref _state, OneWaiting);
        lock (_gate)
        {
            Interlocked.Increment(ref _sleepers);
            try
            {
                while (true)
                {
                    long s = Volatile.Read(ref _state);
                    if ((s & (WriterHeld | ReaderMask)) == 0 && Interlocked.CompareExchange(ref _state, (s - OneWaiting) | WriterHeld, s) == s)
                    {
                        _counters.Increment(MmEvent.LockWriteAcquisitions);
                        return true;
                    }

                    if (cancellation.IsCancellationRequested || !WaitGate(deadline))
                    {
                        Interlocked.Add(ref _state, -OneWaiting);
                        Monitor.PulseAll(_gate); // readers held off by our waiting bit may go now
                        return false;
                    }
                }
            }
            finally
            {
                Interlocked.Decrement(ref _sleepers);
            }
        }
    }

    private bool WaitGate(long deadline)
    {
        if (deadline == long.MaxValue)
        {
            Monitor.Wait(_gate);
            return true;
        }

        long left = deadline - Environment.TickCount64;
        return left > 0 && (Monitor.Wait(_gate, (int)Math.Min(left, int.MaxValue)) || Environment.TickCount64 < deadline);
    }

    private void WakeAll()
    {
        lock (_gate)
        {
            Monitor.PulseAll(_gate);
        }
    }

    private static void WakeGate(object gate)
    {
        lock (gate)
        {
            Monitor.PulseAll(gate);
        }
    }
}
