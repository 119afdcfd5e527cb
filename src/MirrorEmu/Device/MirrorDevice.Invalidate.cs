using System.Diagnostics;
using MirrorEmu.Notifier;

namespace MirrorEmu.Device;

public sealed partial class MirrorDevice
{
    /// <summary>
    /// dmirror_interval_invalidate: ignores EXCLUSIVE events raised for this device (nouveau's filter: the atomic map that
    /// follows is checked with read_retry) and leaves its entries alone for MIGRATE events it raised (its migrations clear
    /// the entries of the pages that move), recording only the sequence; otherwise takes the driver lock (which
    /// waits for the slice in flight, a GPU's TLB shootdown), records the sequence, clears the range's entries, and
    /// returns. A non-blockable range whose lock is taken gets false (-EAGAIN).
    /// </summary>
    /// <param name="subscription">The device's subscription.</param>
    /// <param name="range">The invalidation.</param>
    /// <param name="curSeq">The odd sequence of this invalidation period.</param>
    /// <returns>False only for a non-blockable range while the driver lock is held.</returns>
    /// <remarks>Called by Mm before the range's PTEs change, possibly under the mmap lock (taken before the driver lock in
    /// the lock order). Afterwards no work item reaches the range's old frames (invariant 1).</remarks>
    /// <exception cref="InvalidOperationException">The driver lock was not free within
    /// <see cref="DeviceOptions.InvalidateTimeoutMs"/>: the device is stuck, and returning would break invariant 1.</exception>
    private bool Invalidate(MmuIntervalNotifier subscription, in NotifierRange range, ulong curSeq)
    {
        bool own = range.Event is NotifierEvent.Migrate or NotifierEvent.Exclusive && ReferenceEquals(range.Owner, this);
        if (own && range.Event == NotifierEvent.Exclusive)
        {
            Counters.Increment(DeviceEvent.InvalidationsIgnored);
            return true;
        }

        long t0 = Stopwatch.GetTimestamp();
        bool duringLaunch = Volatile.Read(ref _launchesRunning) > 0;
        if (!range.Blockable)
        {
            if (!DriverLock.TryEnter())
            {
                Counters.Increment(DeviceEvent.InvalidationsRefused);
                return false;
            }
        }
        else
        {
            // Take a ticket: a pass lets every invalidation that took one before its slice ended in before it takes the
            // lock again, so this one waits for the slice in flight and no more (the lock does not queue fairly), and
            // invalidations that come later cannot hold the pass back for ever.
            Interlocked.Increment(ref _invalidationTickets);
            bool taken = DriverLock.TryEnter(Options.InvalidateTimeoutMs, CancellationToken.None);
            Interlocked.Increment(ref _invalidationsEntered);
            if (!taken)
            {
                throw new InvalidOperationException(
                    $"{Options.Name}: invalidation of [0x{range.Start:X16}, 0x{range.End:X16}) ({range.Event}) waited {Options.InvalidateTimeoutMs} ms for the driver lock; the device is stuck and could still reach the old frames");
            }
        }

        try
        {
            subscription.SetSeq(curSeq);
            if (own)
            {
                // The device's own migration: it clears its entries of the pages that move itself; the new sequence only
                // makes a fault that read one of its device pfns before the migration retry instead of mapping a page that
                // is about to be freed.
                Counters.Increment(DeviceEvent.InvalidationsIgnored);
                return true;
            }

            _invalidationEpoch++;
            if (!_disposed)
            {
                Counters.Add(DeviceEvent.EntriesCleared, Table.Unmap(range.Start, range.End));
            }

            Counters.Increment(DeviceEvent.Invalidations);
        }
        finally
        {
            DriverLock.Exit();
        }

        long elapsed = Stopwatch.GetTimestamp() - t0;
        InvalidationLatency.Record(elapsed);
        if (duringLaunch)
        {
            Counters.Increment(DeviceEvent.InvalidationsDuringLaunch);
            InvalidationLatencyDuringLaunch.Record(elapsed);
        }

        return true;
    }
}
