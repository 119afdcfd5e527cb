namespace MirrorEmu.Telemetry;

/// <summary>Counters of hmm_range_fault calls.</summary>
public enum HmmStat
{
    /// <summary>hmm_range_fault calls.</summary>
    Calls,
    /// <summary>Walk passes over the page tables (the first, and each re-walk).</summary>
    Walks,
    /// <summary>Walk restarts because the fault path dropped the mmap lock and returned -EBUSY (the SinglePage policy).</summary>
    EbusyRestarts,
    /// <summary>Calls that returned -EBUSY to the caller because the notifier sequence moved.</summary>
    EbusyReturns,
    /// <summary>Pages the fault path made present (or writable).</summary>
    PagesFaulted,
    /// <summary>userfaultfd round trips: faults that went to the monitor and back (the lock was dropped and retaken).</summary>
    RoundTrips,
    /// <summary>mmap lock drops by the fault path.</summary>
    LockDrops,
    /// <summary>mmap lock retakes by the fault path.</summary>
    LockRetakes,
    /// <summary>Runs of pages handed to the fault path.</summary>
    FaultRuns,
}
