using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace MirrorEmu.Uffd;

/// <summary>
/// A one-word wait/wake for the userfaultfd hand-off, as the kernel's own wait queues are: on Linux a
/// futex(2) on one 32-bit word (FUTEX_WAIT_PRIVATE / FUTEX_WAKE_PRIVATE), elsewhere a monitor. A
/// sleeper waits while the word holds the value it last saw; a waker changes the word, then makes the
/// wake system call only if someone sleeps. Used for a faulting thread's "resolved" flag
/// (<see cref="Set"/>/<see cref="Reset"/>) and for a context's "messages queued" count
/// (<see cref="Bump"/>).
/// </summary>
/// <remarks>
/// <para>Why not ManualResetEventSlim or Monitor.Wait: they block through the runtime's monitor, whose
/// lock spins when the runtime believes there is more than one processor. A process restricted to one
/// processor after it started (sched_setaffinity, a cpuset change) still believes so, and each hand-off
/// then spun for tens of microseconds against a partner that could not run (bench
/// Uffd/HandOffContentionBenchmarks, OneCore). A futex has no such spin: the hand-off costs what the
/// kernel's own userfaultfd costs, a sleep and a wake.</para>
/// <para>Concurrency model:</para> <see cref="_sleepers"/> counts threads between deciding to sleep and
/// waking. Sleeper: increment it (a full barrier), re-read the word, sleep if unchanged (the kernel
/// compares atomically). Waker: change the word with an interlocked operation (a full barrier), then
/// read <see cref="_sleepers"/>. Either the sleeper sees the new word, or the waker sees the sleeper
/// and wakes it.
/// </remarks>
internal sealed unsafe partial class HandOffSignal
{
    private const int FutexWaitPrivate = 128;
    private const int FutexWakePrivate = 129;

    private static readonly long s_futexNr = RuntimeInformation.ProcessArchitecture switch
    {
        Architecture.X64 when OperatingSystem.IsLinux() => 202,
        Architecture.Arm64 when OperatingSystem.IsLinux() => 98,
        _ => -1,
    };

    // The word lives in a pinned array (it never moves, and it is freed only when no sleeper can still
    // reference it); 16 ints so that it has a cache line to itself.
    private readonly int[] _storage = GC.AllocateArray<int>(16, pinned: true);
    private readonly int* _word;
    private readonly object? _fallback;
    private int _sleepers;

    /// <summary>Creates a signal whose word is 0 (not set).</summary>
    public HandOffSignal()
    {
        _word = (int*)Unsafe.AsPointer(ref _storage[0]);
        _fallback = s_futexNr < 0 ? new object() : null;
    }

    /// <summary>True once <see cref="Set"/> ran and until <see cref="Reset"/>.</summary>
    public bool IsSet
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => Volatile.Read(ref *_word) != 0;
    }

    /// <summary>The word's value (a count for <see cref="Bump"/> users).</summary>
    public int Value
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => Volatile.Read(ref *_word);
    }

    /// <summary>Makes the word 0 again, for the next wait. Call only when nobody can be woken by the old value.</summary>
    public void Reset() => Volatile.Write(ref *_word, 0);

    /// <summary>Sets the word to 1 and wakes every sleeper.</summary>
    /// <returns>True if a sleeper had to be woken (the partner was asleep, not polling).</returns>
    public bool Set()
    {
        Interlocked.Exchange(ref *_word, 1);
        return WakeSleepers();
    }

    /// <summary>Adds one to the word (a new message) and wakes every sleeper.</summary>
    /// <returns>True if a sleeper had to be woken.</returns>
    public bool Bump()
    {
        Interlocked.Increment(ref *_word);
        return WakeSleepers();
    }

    /// <summary>Wakes the sleepers without changing the word, so they look again (a cancellation, a close).</summary>
    public void Interrupt() => WakeSleepers(force: true);

    /// <summary>Sleeps while the word equals <paramref name="seen"/>.</summary>
    /// <param name="seen">The value the caller last saw (0 for a signal not yet set).</param>
    /// <param name="timeoutMs">Most milliseconds to sleep, or <see cref="Timeout.Infinite"/>.</param>
    /// <param name="cancellation">Ends the sleep (its registration interrupts the sleepers).</param>
    /// <returns>True if the word changed; false if the time ran out or the cancellation fired first.</returns>
    public bool WaitWhile(int seen, int timeoutMs, CancellationToken cancellation)
    {
        if (Value != seen)
        {
            return true;
        }

        long deadline = timeoutMs == Timeout.Infinite ? long.MaxValue : Stopwatch.GetTimestamp() + (timeoutMs * Stopwatch.Frequency / 1000);
        using CancellationTokenRegistration reg = cancellation.CanBeCanceled
            ? cancellation.UnsafeRegister(static s => ((HandOffSignal)s!).Interrupt(), this)
            : default;
        Interlocked.Increment(ref _sleepers);
        try
        {
            while (Value == seen)
            {
                if (cancellation.IsCancellationRequested)
                {
                    return false;
                }

                long left = deadline == long.MaxValue ? long.MaxValue : deadline - Stopwatch.GetTimestamp();
                if (left <= 0)
                {
                    return false;
                }

                Sleep(seen, left);
            }

            return true;
        }
        finally
        {
            Interlocked.Decrement(ref _sleepers);
        }
    }

    private void Sleep(int seen, long leftTicks)
    {
        if (_fallback is { } gate)
        {
            lock (gate)
            {
                if (Value == seen)
                {
                    Monitor.Wait(gate, leftTicks == long.MaxValue ? Timeout.Infinite : (int)Math.Clamp(leftTicks * 1000 / Stopwatch.Frequency, 1, int.MaxValue));
                }
            }

            return;
        }

        if (leftTicks == long.MaxValue)
        {
            _ = Syscall(s_futexNr, (nint)_word, FutexWaitPrivate, seen, 0, 0, 0);
            return;
        }

        long nanos = (long)(leftTicks * (1e9 / Stopwatch.Frequency));
        long* timespec = stackalloc long[2] { nanos / 1_000_000_000, nanos % 1_000_000_000 };
        _ = Syscall(s_futexNr, (nint)_word, FutexWaitPrivate, seen, (nint)timespec, 0, 0); // EAGAIN, EINTR, ETIMEDOUT: the loop looks again
    }

    private bool WakeSleepers(bool force = false)
    {
        if (!force && Volatile.Read(ref _sleepers) == 0)
        {
            return false;
        }

        if (_fallback is { } gate)
        {
            lock (gate)
            {
                Monitor.PulseAll(gate);
            }
        }
        else
        {
            _ = Syscall(s_futexNr, (nint)_word, FutexWakePrivate, int.MaxValue, 0, 0, 0);
        }

        return true;
    }

    [LibraryImport("libc", EntryPoint = "syscall")]
    private static partial long Syscall(long number, nint a1, nint a2, nint a3, nint a4, nint a5, nint a6);
}
