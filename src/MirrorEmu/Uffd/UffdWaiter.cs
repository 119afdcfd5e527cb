namespace MirrorEmu.Uffd;

/// <summary>
/// One faulting thread waiting for a resolution (struct userfaultfd_wait_queue, which the kernel keeps
/// on the faulting task's stack): its message and a signal. Waiters are pooled by their context, so a
/// fault allocates nothing.
/// </summary>
/// <remarks>
/// <para>Concurrency model:</para> the lists a waiter is on, and <see cref="Outcome"/>, are guarded by
/// the context's lock; the faulting thread waits on <see cref="_signal"/> without it.
/// </remarks>
internal sealed class UffdWaiter
{
    private readonly HandOffSignal _signal = new();

    /// <summary>The message this waiter put on the queue.</summary>
    public UffdMsg Message { get; private set; }

    /// <summary>First address a wake must cover.</summary>
    public ulong Address { get; private set; }

    /// <summary>Stopwatch timestamp of the queueing.</summary>
    public long QueuedAt { get; private set; }

    /// <summary>How the wait ended. Guarded by the context lock.</summary>
    public UffdWaitOutcome Outcome { get; set; }

    /// <summary>True once <see cref="Signal"/> ran for the current fault.</summary>
    public bool IsSignalled => _signal.IsSet;

    /// <summary>Prepares a pooled waiter for a new fault.</summary>
    /// <param name="message">The page-fault message.</param>
    public void Reset(UffdMsg message)
    {
        Message = message;
        Address = message.Address;
        Outcome = UffdWaitOutcome.Waiting;
        QueuedAt = System.Diagnostics.Stopwatch.GetTimestamp();
        _signal.Reset();
    }

    /// <summary>Wakes the faulting thread. Call under the context lock after setting <see cref="Outcome"/>.</summary>
    /// <returns>True if the thread was asleep (a wake system call), false if it was still polling.</returns>
    public bool Signal() => _signal.Set();

    /// <summary>Waits for <see cref="Signal"/>: polls while <paramref name="spin"/> says it can pay, then blocks.</summary>
    /// <param name="timeoutMs">Most milliseconds to wait, or <see cref="Timeout.Infinite"/>.</param>
    /// <param name="cancellation">The fatal signal.</param>
    /// <param name="spin">The context's hand-off policy.</param>
    /// <returns>False if the time ran out or the cancellation fired first.</returns>
    public bool Wait(int timeoutMs, CancellationToken cancellation, HandOffSpin spin)
    {
        LockOrder.AssertNoneHeldFrom(LockRank.MmapLock, "waiting for a userfaultfd monitor");
        if (spin.SpinUntil(HandOffSide.Faulter, static w => w._signal.IsSet, this))
        {
            return true;
        }

        return _signal.WaitWhile(0, timeoutMs, cancellation);
    }
}
