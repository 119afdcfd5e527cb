namespace MirrorEmu.Uffd;

/// <summary>
/// One faulting thread waiting for a resolution (struct userfaultfd_wait_queue, which the kernel keeps
/// on the faulting task's stack): its message, and a signal that spins briefly and then blocks.
/// Waiters are pooled by their context, so a fault allocates nothing.
/// </summary>
/// <remarks>
/// <para>Concurrency model:</para> the lists a waiter is on, and <see cref="Outcome"/>, are guarded by
/// the context's lock; the faulting thread waits on <see cref="_signal"/> without it.
/// </remarks>
internal sealed class UffdWaiter
{
    /// <summary>How long a waiter (and a reading monitor) polls before it blocks, in microseconds. It must
    /// cover a resolution of 64 pages (about 20 µs here) and, above all, exceed a kernel wake-up (40–80 µs
    /// on this VM): when one side's poll is shorter than the other side's wake-up, both fall into a
    /// state where every hand-off sleeps and wakes, and stay there. Measured in bench
    /// Uffd/UffdRoundTripBenchmarks.UffdBlock64: 64 spin iterations (about 1 µs) gave 750 ns per page;
    /// 50 µs gave a bimodal 300–2,200 ns per page. An idle monitor still blocks after this long.</summary>
    internal const int SpinMicros = 200;

    private static readonly long s_spinTicks = System.Diagnostics.Stopwatch.Frequency * SpinMicros / 1_000_000;

    private readonly ManualResetEventSlim _signal = new(false, 1);

    /// <summary>The message this waiter put on the queue.</summary>
    public UffdMsg Message { get; set; }

    /// <summary>First address a wake must cover.</summary>
    public ulong Address { get; set; }

    /// <summary>Stopwatch timestamp of the queueing.</summary>
    public long QueuedAt { get; set; }

    /// <summary>0 while waiting; 1 woken by a resolution; 2 failed (the monitor is gone). Guarded by the context lock.</summary>
    public int Outcome { get; set; }

    /// <summary>True for a RETRY_NOWAIT message: nobody waits on it, it only informs the monitor.</summary>
    public bool NoWait { get; set; }

    /// <summary>Prepares a pooled waiter for a new fault.</summary>
    public void Reset(UffdMsg message, bool noWait)
    {
        Message = message;
        Address = message.Address;
        NoWait = noWait;
        Outcome = 0;
        QueuedAt = System.Diagnostics.Stopwatch.GetTimestamp();
        _signal.Reset();
    }

    /// <summary>Polls <paramref name="condition"/> for up to <see cref="SpinMicros"/>.</summary>
    /// <returns>True as soon as it holds; false when the time is up.</returns>
    internal static bool SpinUntil<T>(Func<T, bool> condition, T state)
    {
        long deadline = System.Diagnostics.Stopwatch.GetTimestamp() + s_spinTicks;
        do
        {
            if (condition(state))
            {
                return true;
            }

            Thread.SpinWait(20);
        }
        while (System.Diagnostics.Stopwatch.GetTimestamp() < deadline);

        return condition(state);
    }

    /// <summary>Wakes the faulting thread. Call under the context lock after setting <see cref="Outcome"/>.</summary>
    public void Signal() => _signal.Set();

    /// <summary>Waits for <see cref="Signal"/>.</summary>
    /// <returns>False if the time ran out or the cancellation fired first.</returns>
    public bool Wait(int timeoutMs, CancellationToken cancellation)
    {
        if (SpinUntil(static w => w._signal.IsSet, this))
        {
            return true;
        }

        try
        {
            return _signal.Wait(timeoutMs, cancellation);
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }
}
