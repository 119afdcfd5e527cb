namespace MirrorEmu.Telemetry;

/// <summary>Counters of one userfaultfd context and its monitors.</summary>
public enum UffdStat
{
    /// <summary>Page-fault messages queued (handle_userfault reached the queue).</summary>
    FaultsQueued,
    /// <summary>Faulting threads that slept until woken.</summary>
    FaultsWaited,
    /// <summary>Faults answered VM_FAULT_SIGBUS (no ALLOW_RETRY, the SIGBUS feature, a dead monitor).</summary>
    FaultsSigbus,
    /// <summary>Faulting threads whose wait ran out (a stuck monitor).</summary>
    FaultTimeouts,
    /// <summary>Non-cooperative event messages queued (FORK, REMAP, REMOVE, UNMAP).</summary>
    EventsQueued,
    /// <summary>Messages handed to a reader.</summary>
    MessagesRead,
    /// <summary>Waiters woken by a resolution or UFFDIO_WAKE.</summary>
    Wakeups,
    /// <summary>Sum of fault-to-wake times of woken waiters, in nanoseconds (measured with Stopwatch).</summary>
    FaultToWakeNanos,
    /// <summary>Pages filled by UFFDIO_COPY.</summary>
    PagesCopied,
    /// <summary>Pages filled by UFFDIO_ZEROPAGE.</summary>
    PagesZeroed,
    /// <summary>Pages mapped by UFFDIO_CONTINUE.</summary>
    PagesContinued,
    /// <summary>Pages marked by UFFDIO_POISON.</summary>
    PagesPoisoned,
    /// <summary>Pages moved by UFFDIO_MOVE.</summary>
    PagesMoved,
    /// <summary>Resolution calls (COPY, ZEROPAGE, CONTINUE, POISON, MOVE).</summary>
    ResolveCalls,
    /// <summary>Resolutions that stopped at an already-mapped page (-EEXIST).</summary>
    ResolveEexist,
    /// <summary>Resolutions refused because the layout was changing (-EAGAIN).</summary>
    ResolveEagain,
    /// <summary>Page-fault messages a monitor resolved: one hand-off each (fault → monitor → resolution → wake).</summary>
    RoundTrips,
    /// <summary>Pages a monitor resolved.</summary>
    MonitorPages,
    /// <summary>Page-fault messages a monitor could not resolve (a copy failed with an error other than -EEXIST or
    /// -EAGAIN): their waiters were woken with the failure and their faults end in SIGBUS.</summary>
    ResolveFailures,
}
