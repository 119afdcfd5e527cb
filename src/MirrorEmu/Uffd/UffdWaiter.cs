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
    /// <summary>Spins before blocking: about a microsecond or two of polling, so that a prompt
    /// monitor hands the page back without a kernel sleep, and an idle one costs no core.</summary>
    internal const int SpinCount = 64;

    private readonly ManualResetEventSlim _signal = new(false, SpinCount);

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

    /// <summary>Wakes the faulting thread. Call under the context lock after setting <see cref="Outcome"/>.</summary>
    public void Signal() => _signal.Set();

    /// <summary>Waits for <see cref="Signal"/>.</summary>
    /// <returns>False if the time ran out or the cancellation fired first.</returns>
    public bool Wait(int timeoutMs, CancellationToken cancellation)
    {
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
