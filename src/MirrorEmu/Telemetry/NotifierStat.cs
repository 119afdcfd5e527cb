namespace MirrorEmu.Telemetry;

/// <summary>Counters of the notifier machinery beside the per-event counts.</summary>
public enum NotifierStat
{
    /// <summary>Invalidation periods that hit at least one subscription (the sequence went odd).</summary>
    OddPeriods,
    /// <summary>Invalidate callbacks called.</summary>
    Callbacks,
    /// <summary>Non-blockable starts that a callback refused (-EAGAIN).</summary>
    WouldBlock,
    /// <summary>Inserts deferred to the end of an odd period.</summary>
    DeferredInserts,
    /// <summary>Removes deferred to the end of an odd period.</summary>
    DeferredRemoves,
    /// <summary>ReadBegin calls that had to wait for an invalidation to end.</summary>
    ReadBeginWaits,
}
