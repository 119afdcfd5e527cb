using System.Runtime.CompilerServices;
using MirrorEmu.Mm;
using MirrorEmu.Telemetry;

namespace MirrorEmu.Uffd;

public sealed partial class Userfaultfd
{
    // The child contexts made by dup_userfaultfd, so that one fork makes one context per child.
    private readonly ConditionalWeakTable<AddressSpace, Userfaultfd> _forkChildren = [];

    /// <summary>Non-cooperative events queued and not yet read (the kernel's mmap_changing): while
    /// any is pending, resolutions answer -EAGAIN so the monitor reads the layout change first.</summary>
    public int MmapChanging => Volatile.Read(ref _mmapChanging);

    /// <summary>
    /// read(2) on the descriptor: takes up to <c>messages.Length</c> messages, page faults first, then
    /// events. A page-fault message read moves its waiter to the list that wakes wait on.
    /// </summary>
    /// <param name="messages">Where messages go.</param>
    /// <param name="count">How many were taken.</param>
    /// <param name="timeoutMs">0 for a non-blocking read; else how long to wait for the first message
    /// (<see cref="Timeout.Infinite"/> for as long as it takes). A reader spins briefly before sleeping.</param>
    /// <param name="cancellation">Ends a blocking wait.</param>
    /// <returns>0 with at least one message; -EAGAIN (nothing, non-blocking or timed out); -EINTR (cancelled);
    /// -EBADF (released); -EINVAL (no handshake, or an empty buffer).</returns>
    public KResult Read(Span<UffdMsg> messages, out int count, int timeoutMs = Timeout.Infinite, CancellationToken cancellation = default)
    {
        count = 0;
        if (!_apiDone || messages.IsEmpty)
        {
            return KResult.Error(Errno.EINVAL, _apiDone ? "read: the message buffer is empty" : "read: UFFDIO_API must come first");
        }

        if (TryTake(messages, out count))
        {
            return KResult.Ok;
        }

        if (timeoutMs == 0)
        {
            return _released ? Closed : NoMessage;
        }

        // Poll while it can pay (HandOffSpin): while a workload runs, the next fault usually arrives within microseconds.
        if (_handOff.SpinUntil(HandOffSide.Monitor, static c => Volatile.Read(ref c._queuedCount) != 0, this) && TryTake(messages, out count))
        {
            return KResult.Ok;
        }

        long deadline = timeoutMs == Timeout.Infinite ? long.MaxValue : Environment.TickCount64 + timeoutMs;
        while (true)
        {
            // Whatever is queued after this read of the count changes it, so the sleep below cannot miss it.
            int seen = _queued.Value;
            if (TryTake(messages, out count))
            {
                return KResult.Ok;
            }

            if (_released)
            {
                return Closed;
            }

            if (cancellation.IsCancellationRequested)
            {
                return Interrupted;
            }

            long left = deadline == long.MaxValue ? Timeout.Infinite : deadline - Environment.TickCount64;
            if (deadline != long.MaxValue && left <= 0)
            {
                return NoMessage;
            }

            _queued.WaitWhile(seen, (int)Math.Min(left, int.MaxValue), cancellation);
        }
    }

    // Messages queued and not yet read; read without the lock by spinning readers.
    private int _queuedCount;

    private static readonly KResult NoMessage = KResult.Error(Errno.EAGAIN, "read: no message (non-blocking, or the wait timed out)");
    private static readonly KResult Closed = KResult.Error(Errno.EBADF, "read: the userfaultfd was closed");
    private static readonly KResult Interrupted = KResult.Error(Errno.EINTR, "read: the wait was cancelled");

    private bool TryTake(Span<UffdMsg> messages, out int count)
    {
        using (new RankedMonitor(_lock, LockRank.UserfaultfdContext))
        {
            return TakeLocked(messages, out count);
        }
    }

    private bool TakeLocked(Span<UffdMsg> messages, out int count)
    {
        count = 0;
        while (count < messages.Length && _pending.Count > 0)
        {
            UffdWaiter w = _pending[0];
            _pending.RemoveAt(0);
            messages[count++] = w.Message;
            _waiting.Add(w);
        }

        while (count < messages.Length && _events.Count > 0)
        {
            messages[count++] = _events.Dequeue();
            Interlocked.Decrement(ref _mmapChanging);
        }

        _queuedCount = _pending.Count + _events.Count;
        Stats.Add(UffdStat.MessagesRead, count);
        return count > 0;
    }

    private void QueueEvent(UffdMsg msg)
    {
        using (new RankedMonitor(_lock, LockRank.UserfaultfdContext))
        {
            QueueEventLocked(msg);
        }

        _queued.Bump();
    }

    /// <summary>Queues an event. Call under the lock, then <c>_queued.Bump()</c> after releasing it.</summary>
    private void QueueEventLocked(UffdMsg msg)
    {
        _events.Enqueue(msg);
        Interlocked.Increment(ref _mmapChanging);
        Stats.Increment(UffdStat.EventsQueued);
        _queuedCount = _pending.Count + _events.Count;
    }
}
