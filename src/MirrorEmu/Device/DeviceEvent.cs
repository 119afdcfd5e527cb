namespace MirrorEmu.Device;

/// <summary>Counters of one <see cref="MirrorDevice"/> (its launches, its driver and its invalidations), each incremented by
/// the code path that does the work.</summary>
public enum DeviceEvent
{
    /// <summary>Kernel launches started.</summary>
    Launches,

    /// <summary>Launches that ended with an error.</summary>
    LaunchErrors,

    /// <summary>Work items launched (each runs to completion once, whatever its replays).</summary>
    WorkItems,

    /// <summary>Passes over work items: first passes plus replays.</summary>
    Passes,

    /// <summary>Slices run (a pass runs in slices; the driver lock is dropped between them).</summary>
    Slices,

    /// <summary>Replay passes.</summary>
    Replays,

    /// <summary>Work items run again by replays.</summary>
    ItemsReplayed,

    /// <summary>Fault-buffer entries appended by kernels.</summary>
    FaultsAppended,

    /// <summary>Appends lost to a full fault buffer (their work items replay and append again).</summary>
    FaultsDropped,

    /// <summary>Fetched entries that repeated one already pending (raised again by a replay before they were serviced).</summary>
    FaultsDuplicate,

    /// <summary>Fetched entries whose page was already mapped as needed when their batch came (serviced by an earlier run).</summary>
    FaultsAlreadyServiced,

    /// <summary>Pending entries flushed before a replay (<see cref="ReplayPolicy.BatchFlush"/>).</summary>
    FaultsFlushed,

    /// <summary>Times the driver was entered from a quiescent device to service a pass's faults (dmirror's <c>faults</c>).</summary>
    ServiceEntries,

    /// <summary>Batches serviced.</summary>
    Batches,

    /// <summary>Runs of consecutive faulted pages serviced, each with one read_begin → hmm_range_fault → read_retry loop.</summary>
    Runs,

    /// <summary>Runs serviced with hmm_range_fault_unlocked (a userfaultfd VMA in the run).</summary>
    RunsUnlocked,

    /// <summary>Pages faulted by the runs (the fault entries they served).</summary>
    PagesServiced,

    /// <summary>Page leaves written into the device page table.</summary>
    PagesMapped,

    /// <summary>Huge (2 MiB) leaves written into the device page table.</summary>
    HugeMapped,

    /// <summary>hmm_range_fault calls made by the driver.</summary>
    HmmCalls,

    /// <summary>Walk passes of those calls.</summary>
    HmmWalks,

    /// <summary>Pages the CPU fault path made present or writable for the driver.</summary>
    HmmPagesFaulted,

    /// <summary>userfaultfd round trips of the driver's calls.</summary>
    HmmRoundTrips,

    /// <summary>Walk restarts after a lock-dropping fault (the SinglePage policy's -EBUSY per page).</summary>
    HmmEbusyRestarts,

    /// <summary>hmm_range_fault calls that returned -EBUSY because the notifier sequence moved.</summary>
    HmmEbusyReturns,

    /// <summary>mmap lock drops by the fault path.</summary>
    HmmLockDrops,

    /// <summary>Invalidate callbacks that cleared entries.</summary>
    Invalidations,

    /// <summary>Of those, the ones that came while a launch was running.</summary>
    InvalidationsDuringLaunch,

    /// <summary>Non-blockable invalidations refused because the driver lock was held (-EAGAIN).</summary>
    InvalidationsRefused,

    /// <summary>MIGRATE invalidations this device raised itself, ignored as dmirror does.</summary>
    InvalidationsIgnored,

    /// <summary>Leaf entries cleared by invalidations (a huge leaf counts once).</summary>
    EntriesCleared,

    /// <summary>Kernel accesses that reached a frame of the CPU's memory in place.</summary>
    AccessesSystem,

    /// <summary>Kernel accesses that reached a frame of the device's own memory.</summary>
    AccessesDevice,

    /// <summary>Pages migrated to device memory (migrate_vma_pages left MIGRATE on them).</summary>
    PagesMigratedToDevice,

    /// <summary>Pages migrated back to system memory: by MigrateToSystem, Release, or a CPU fault (migrate_to_ram).</summary>
    PagesMigratedToSystem,

    /// <summary>CPU faults on this device's pages handed to its migrate_to_ram (dmirror_devmem_fault).</summary>
    MigrateToRamCalls,

    /// <summary>Pages a migration to the device left in system memory because something else held them (migrate_vma's busy pages).</summary>
    MigrationPagesBusy,

    /// <summary>Pages a migration to the device left in system memory because the device memory was full.</summary>
    DeviceAllocationFailures,

    /// <summary>Pages mapped for device atomics by make_device_exclusive (HMM_DMIRROR_EXCLUSIVE).</summary>
    PagesMadeExclusive,

    /// <summary>Device page-table entries pointing at device memory, written by migrations and by faults on the device's
    /// own pages (hmm_range_fault reporting its device pfn).</summary>
    DevicePagesMapped,
}
