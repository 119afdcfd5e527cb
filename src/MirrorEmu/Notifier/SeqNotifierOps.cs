namespace MirrorEmu.Notifier;

/// <summary>
/// The smallest correct invalidate callback: records the invalidation's sequence with
/// <see cref="MmuIntervalNotifier.SetSeq"/> under <see cref="DriverLock"/> (the lock a driver's read_retry
/// takes) and counts the calls. For drivers whose mirror needs no other update, tools and tests.
/// </summary>
public sealed class SeqNotifierOps : IMmuIntervalNotifierOps
{
    private long _invalidations;

    /// <summary>The driver lock: take it around <see cref="MmuIntervalNotifier.ReadRetry"/>.</summary>
    public DriverLock DriverLock { get; } = new("SeqNotifierOps driver lock");

    /// <summary>Callbacks so far.</summary>
    public long Invalidations => Interlocked.Read(ref _invalidations);

    /// <inheritdoc/>
    public bool Invalidate(MmuIntervalNotifier subscription, in NotifierRange range, ulong curSeq)
    {
        Interlocked.Increment(ref _invalidations);
        if (!range.Blockable)
        {
            if (!DriverLock.TryEnter())
            {
                return false;
            }
        }
        else
        {
            DriverLock.Enter();
        }

        try
        {
            subscription.SetSeq(curSeq);
        }
        finally
        {
            DriverLock.Exit();
        }

        return true;
    }
}
