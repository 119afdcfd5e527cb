namespace MirrorEmu.Telemetry;

/// <summary>Events counted by the Mm layer (one <see cref="CounterSet{TEvent}"/> per physical memory pool,
/// shared by every address space that draws on it, so a fork's child counts into the same set).</summary>
public enum MmEvent
{
    /// <summary>handle_mm_fault calls.</summary>
    Faults,
    /// <summary>Faults that installed a fresh zeroed anonymous page.</summary>
    FaultsAnon,
    /// <summary>Faults that mapped a file (or shmem) page-cache page.</summary>
    FaultsFile,
    /// <summary>Read faults that mapped the shared zero page.</summary>
    ZeroPageMaps,
    /// <summary>Write faults that copied a page (COW break, or a write to the zero page).</summary>
    CowCopies,
    /// <summary>Write faults that reused a private page mapped once (no copy).</summary>
    WpReuses,
    /// <summary>Faults that found the entry already good (another thread fixed it, or only the accessed bit was missing).</summary>
    SpuriousFaults,
    /// <summary>Faults that installed a 2 MiB huge PMD.</summary>
    HugeFaults,
    /// <summary>Huge PMDs split into 512 PTEs.</summary>
    HugeSplits,
    /// <summary>Faults that swapped a page in.</summary>
    SwapIns,
    /// <summary>Faults handed to the VMA's userfault hook.</summary>
    UserfaultFaults,
    /// <summary>Faults that ended in VM_FAULT_OOM.</summary>
    OomFaults,
    /// <summary>Faults that ended in SIGSEGV or SIGBUS.</summary>
    ErrorFaults,
    /// <summary>Frames taken from the pool.</summary>
    FramesAllocated,
    /// <summary>Frames given back to the pool.</summary>
    FramesFreed,
    /// <summary>Populate calls (MAP_POPULATE, MADV_POPULATE_READ/WRITE).</summary>
    PopulateCalls,
    /// <summary>Pages a populate call faulted in.</summary>
    PopulatedPages,
    /// <summary>mmap_lock read acquisitions.</summary>
    LockReadAcquisitions,
    /// <summary>mmap_lock write acquisitions.</summary>
    LockWriteAcquisitions,
    /// <summary>Times a fault path dropped the mmap_lock (VM_FAULT_RETRY / COMPLETED).</summary>
    LockDrops,
    /// <summary>PTEs zapped (munmap, MADV_DONTNEED, teardown).</summary>
    PtesZapped,
    /// <summary>Installs that lost a race (the entry changed between the read and the install: another fault or a
    /// userfaultfd fill got there first); the new entry's frame went back to the pool.</summary>
    InstallRaces,
    /// <summary>TLB shootdowns that had other accessing threads to wait for (a process-wide barrier each).</summary>
    TlbShootdowns,
    /// <summary>Accesses a shootdown found in progress and waited for.</summary>
    TlbShootdownWaits,
    /// <summary>Faults retried at the same address after the handler returned without allowing the access
    /// (a lock drop, a migration entry, a race); bounded by Mm.FaultRetry.</summary>
    FaultRetries,
    /// <summary>Times the host refused memory for a new chunk of frames (the pool then answers as at its limit:
    /// VM_FAULT_OOM, -ENOMEM).</summary>
    HostAllocationFailures,
    /// <summary>Pages migrate_vma_finalize moved (to or from device-private memory).</summary>
    PagesMigrated,
    /// <summary>Pages a migration collected but left where they were because something beyond the mapping held them
    /// (migrate_vma_check_page: a pin, a fork child's mapping).</summary>
    MigrationBusy,
    /// <summary>Entries made device-exclusive (make_device_exclusive).</summary>
    DeviceExclusiveMade,
    /// <summary>CPU faults on device-private entries, each handed to the page's migrate_to_ram.</summary>
    DevicePrivateFaults,
}
