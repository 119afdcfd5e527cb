namespace MirrorEmu.Mm;

/// <summary>
/// The emulated <c>current</c> task's fatal-signal state, per thread: code that sleeps in a killable
/// wait (handle_userfault with FAULT_FLAG_KILLABLE, mmap_read_lock_killable) ends the wait when the
/// token of the thread's current scope fires, as a fatal signal would.
/// </summary>
public static class CurrentTask
{
    [ThreadStatic]
    private static CancellationToken s_fatalSignal;

    /// <summary>The token standing for "a fatal signal is pending" on this thread.</summary>
    public static CancellationToken FatalSignal => s_fatalSignal;

    /// <summary>fatal_signal_pending(current).</summary>
    public static bool FatalSignalPending => s_fatalSignal.IsCancellationRequested;

    /// <summary>Makes <paramref name="fatalSignal"/> this thread's fatal signal until the scope is disposed.</summary>
    /// <param name="fatalSignal">The cancellation that stands for a fatal signal.</param>
    public static Scope Enter(CancellationToken fatalSignal)
    {
        var scope = new Scope(s_fatalSignal);
        s_fatalSignal = fatalSignal;
        return scope;
    }

    /// <summary>Restores the previous token when disposed.</summary>
    public readonly struct Scope : IDisposable
    {
        private readonly CancellationToken _previous;

        internal Scope(CancellationToken previous) => _previous = previous;

        /// <inheritdoc/>
        public void Dispose() => s_fatalSignal = _previous;
    }
}
