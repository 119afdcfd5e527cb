namespace MirrorEmu.Notifier;

/// <summary>
/// A driver's mirror lock (dmirror's <c>mutex</c>, a GPU driver's page-table lock): the lock an
/// interval notifier's invalidate callback takes around <see cref="MmuIntervalNotifier.SetSeq"/> and
/// the driver's fault path takes around <see cref="MmuIntervalNotifier.ReadRetry"/> and its device
/// page-table update. Like a kernel mutex it does not recurse: a second <see cref="Enter"/> by the
/// holder is a deadlock, reported as an exception, and <see cref="TryEnter()"/> by the holder fails,
/// as mutex_trylock does (so a non-blockable invalidation from inside the driver's own critical
/// section answers -EAGAIN instead of slipping through).
/// </summary>
/// <remarks>
/// <para>Lock order (<see cref="LockOrder"/>): taken after the mmap lock and before a userfaultfd
/// context's lock, the notifier subscriptions' lock and the frame pool's lock. Code run while it is
/// held must not take the mmap lock or fault memory.</para>
/// <para>Concurrency model:</para> a <see cref="SemaphoreSlim"/> of one permit (it spins briefly, then
/// blocks); <see cref="_owner"/> is the holder's managed thread id, written only by the holder.
/// </remarks>
public sealed class DriverLock
{
    private readonly SemaphoreSlim _permit = new(1, 1);
    private readonly string _name;
    private int _owner;

    /// <summary>Creates an unlocked lock.</summary>
    /// <param name="name">What the lock guards, for messages ("dmirror", "device 0").</param>
    public DriverLock(string name = "driver lock") => _name = name;

    /// <summary>True while the calling thread holds the lock.</summary>
    public bool IsHeldByCurrentThread => Volatile.Read(ref _owner) == Environment.CurrentManagedThreadId;

    /// <summary>How long <see cref="Enter"/> waits before it reports the wait as a probable deadlock, in milliseconds.</summary>
    public const int DeadlockReportMs = 120_000;

    /// <summary>mutex_lock: waits as long as it takes, up to <see cref="DeadlockReportMs"/>.</summary>
    /// <exception cref="InvalidOperationException">The calling thread already holds it (a self-deadlock).</exception>
    /// <exception cref="TimeoutException">Not acquired within <see cref="DeadlockReportMs"/>.</exception>
    public void Enter()
    {
        if (!TryEnter(DeadlockReportMs, CancellationToken.None))
        {
            throw new TimeoutException($"{_name}: not acquired after {DeadlockReportMs / 1000} s (held by thread {Volatile.Read(ref _owner)}); a deadlock, or a holder that never released it");
        }
    }

    /// <summary>mutex_trylock: no wait.</summary>
    /// <returns>True if the lock is now held; false if anyone holds it, the caller included.</returns>
    public bool TryEnter()
    {
        if (IsHeldByCurrentThread)
        {
            return false;
        }

        LockOrder.Acquiring(LockRank.DriverLock, this);
        if (!_permit.Wait(0))
        {
            LockOrder.Released(LockRank.DriverLock, this);
            return false;
        }

        Volatile.Write(ref _owner, Environment.CurrentManagedThreadId);
        return true;
    }

    /// <summary>mutex_lock_killable with a limit.</summary>
    /// <param name="timeoutMs">Most milliseconds to wait, or <see cref="Timeout.Infinite"/>.</param>
    /// <param name="cancellation">Ends the wait.</param>
    /// <returns>True if the lock is now held; false if the time ran out or the cancellation fired.</returns>
    /// <exception cref="InvalidOperationException">The calling thread already holds it.</exception>
    public bool TryEnter(int timeoutMs, CancellationToken cancellation)
    {
        if (IsHeldByCurrentThread)
        {
            throw new InvalidOperationException($"{_name}: taken again by the thread that holds it (it does not recurse)");
        }

        LockOrder.Acquiring(LockRank.DriverLock, this);
        bool taken;
        try
        {
            taken = _permit.Wait(timeoutMs, cancellation);
        }
        catch (OperationCanceledException)
        {
            taken = false;
        }

        if (!taken)
        {
            LockOrder.Released(LockRank.DriverLock, this);
            return false;
        }

        Volatile.Write(ref _owner, Environment.CurrentManagedThreadId);
        return true;
    }

    /// <summary>mutex_unlock.</summary>
    /// <exception cref="InvalidOperationException">The calling thread does not hold it.</exception>
    public void Exit()
    {
        if (!IsHeldByCurrentThread)
        {
            throw new InvalidOperationException($"{_name}: released by a thread that does not hold it");
        }

        Volatile.Write(ref _owner, 0);
        _permit.Release();
        LockOrder.Released(LockRank.DriverLock, this);
    }

    /// <summary>Takes the lock for a <c>using</c> block.</summary>
    /// <returns>A scope whose disposal releases it.</returns>
    public Scope Hold()
    {
        Enter();
        return new Scope(this);
    }

    /// <inheritdoc/>
    public override string ToString() => _name;

    /// <summary>Releases the lock when disposed.</summary>
    public readonly struct Scope : IDisposable
    {
        private readonly DriverLock _lock;

        internal Scope(DriverLock held) => _lock = held;

        /// <inheritdoc/>
        public void Dispose() => _lock.Exit();
    }
}
