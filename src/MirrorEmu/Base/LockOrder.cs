using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

namespace MirrorEmu;

/// <summary>
/// The lock classes of MirrorEmu, outermost first. A thread may take a lock only while every lock it
/// already holds has a lower rank (the order is written out, with what each lock guards, at the top of
/// <c>src/MirrorEmu/Mm/AddressSpace.cs</c> and in <c>docs/design.md</c>).
/// </summary>
public enum LockRank
{
    /// <summary>An address space's mmap_lock (<c>Mm.MmapLock</c>), read or write.</summary>
    MmapLock = 10,

    /// <summary>The mmap_lock of a second address space taken inside the first (fork's child, as dup_mmap's
    /// SINGLE_DEPTH_NESTING).</summary>
    MmapLockNested = 11,

    /// <summary>A driver's mirror lock (<c>Notifier.DriverLock</c>): invalidate callbacks and the driver's
    /// read_retry and device page-table updates.</summary>
    DriverLock = 20,

    /// <summary>An ILGPU accelerator's launch queue (<c>Device.IlgpuLauncher</c>): one kernel launch and its
    /// synchronize at a time, for the devices that share the accelerator. Taken by a pass under its device's
    /// driver lock; nothing is taken inside it.</summary>
    DeviceQueue = 25,

    /// <summary>A userfaultfd context's lock (its message queues and waiters).</summary>
    UserfaultfdContext = 30,

    /// <summary>A file's page-cache lock (<c>Mm.MemFile</c>).</summary>
    PageCache = 40,

    /// <summary>A PMD table's split lock (<c>Mm.PageTable</c>: installing a leaf table or a huge leaf, splitting one).</summary>
    PageTable = 45,

    /// <summary>The interval-notifier subscriptions' lock (the tree, the invalidate sequence).</summary>
    NotifierSubscriptions = 50,

    /// <summary>The frame pool's lock (<c>Mm.PhysicalMemory</c>'s free queue and chunks).</summary>
    FramePool = 60,
}

/// <summary>
/// A lock-order checker in the manner of lockdep: each thread keeps the stack of lock classes it holds,
/// and taking a lock whose rank is not above the top of that stack throws <see cref="LockOrderException"/>
/// naming both locks. On in Debug builds and wherever the runtime switch <c>MirrorEmu.CheckLockOrder</c>
/// is true (the test project sets it, so every test runs with the checker); off, every call is an
/// inlined test of a static readonly field, which the JIT folds away.
/// </summary>
/// <remarks>
/// Trylocks are pushed but not checked (they never wait, so they cannot close a deadlock cycle), as
/// lockdep treats them. A release that does not match any held entry of this thread is ignored: an
/// rwsem may be released by another thread than the one that took it.
/// </remarks>
public static class LockOrder
{
    /// <summary>Whether the checker runs in this process.</summary>
    public static readonly bool Enabled = IsEnabled();

    [ThreadStatic]
    private static List<(LockRank Rank, object Lock)>? t_held;

    /// <summary>Records that the calling thread is about to wait for <paramref name="lockObject"/> of class <paramref name="rank"/>.</summary>
    /// <param name="rank">The lock's class.</param>
    /// <param name="lockObject">The lock instance (for messages and for matching the release).</param>
    /// <param name="tryLock">True for a trylock: recorded, not checked.</param>
    /// <exception cref="LockOrderException">A held lock has the same or a higher rank.</exception>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Acquiring(LockRank rank, object lockObject, bool tryLock = false)
    {
        if (Enabled)
        {
            Push(rank, lockObject, tryLock);
        }
    }

    /// <summary>Records that the calling thread released <paramref name="lockObject"/>.</summary>
    /// <param name="rank">The lock's class.</param>
    /// <param name="lockObject">The lock instance.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Released(LockRank rank, object lockObject)
    {
        if (Enabled)
        {
            Pop(rank, lockObject);
        }
    }

    /// <summary>Throws unless the calling thread holds no lock of <paramref name="rank"/> or above: for code that is
    /// about to wait for something (a monitor, a device) that may need such a lock to make progress.</summary>
    /// <param name="rank">The lowest rank that must not be held.</param>
    /// <param name="what">What the caller is about to do, for the message.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void AssertNoneHeldFrom(LockRank rank, string what)
    {
        if (Enabled)
        {
            CheckNoneHeld(rank, what);
        }
    }

    /// <summary>The lock classes the calling thread holds, innermost last (empty when the checker is off).</summary>
    public static IReadOnlyList<LockRank> HeldByCurrentThread() =>
        t_held is { } held ? held.ConvertAll(h => h.Rank) : [];

    private static bool IsEnabled()
    {
#if DEBUG
        return !AppContext.TryGetSwitch("MirrorEmu.CheckLockOrder", out bool on) || on;
#else
        return AppContext.TryGetSwitch("MirrorEmu.CheckLockOrder", out bool on) && on;
#endif
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Push(LockRank rank, object lockObject, bool tryLock)
    {
        List<(LockRank Rank, object Lock)> held = t_held ??= [];
        if (!tryLock && held.Count > 0)
        {
            (LockRank topRank, object topLock) = held[^1];
            if (topRank >= rank)
            {
                Throw(rank, lockObject, topRank, topLock);
            }
        }

        held.Add((rank, lockObject));
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Pop(LockRank rank, object lockObject)
    {
        List<(LockRank Rank, object Lock)>? held = t_held;
        if (held is null)
        {
            return;
        }

        for (int i = held.Count - 1; i >= 0; i--)
        {
            if (held[i].Rank == rank && ReferenceEquals(held[i].Lock, lockObject))
            {
                held.RemoveAt(i);
                return;
            }
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void CheckNoneHeld(LockRank rank, string what)
    {
        if (t_held is not { Count: > 0 } held)
        {
            return;
        }

        foreach ((LockRank r, object l) in held)
        {
            if (r >= rank)
            {
                throw new LockOrderException($"lock order: {what} while holding {r} ({l}); code that may wait for others must not hold {rank} or an inner lock");
            }
        }
    }

    [DoesNotReturn]
    private static void Throw(LockRank rank, object lockObject, LockRank topRank, object topLock) =>
        throw new LockOrderException(
            $"lock order: taking {rank} ({lockObject}) while holding {topRank} ({topLock}); the order is " +
            string.Join(" → ", Enum.GetNames<LockRank>()));
}

/// <summary>A lock was taken against <see cref="LockRank"/>'s order: a possible deadlock.</summary>
public sealed class LockOrderException : InvalidOperationException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">Which lock was taken while which was held.</param>
    public LockOrderException(string message)
        : base(message)
    {
    }
}

/// <summary>A <see cref="Monitor"/> hold on a lock object of a known <see cref="LockRank"/>, checked by
/// <see cref="LockOrder"/>: <c>using (new RankedMonitor(_lock, LockRank.FramePool)) { … }</c> instead of
/// <c>lock (_lock) { … }</c>; <see cref="Monitor.Wait(object)"/> works inside as usual.</summary>
public readonly ref struct RankedMonitor
{
    private readonly object _lock;
    private readonly LockRank _rank;

    /// <summary>Takes <paramref name="lockObject"/>'s monitor.</summary>
    /// <param name="lockObject">The lock object.</param>
    /// <param name="rank">Its class.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public RankedMonitor(object lockObject, LockRank rank)
    {
        _lock = lockObject;
        _rank = rank;
        LockOrder.Acquiring(rank, lockObject);
        Monitor.Enter(lockObject);
    }

    /// <summary>Releases the monitor.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Dispose()
    {
        Monitor.Exit(_lock);
        LockOrder.Released(_rank, _lock);
    }
}
