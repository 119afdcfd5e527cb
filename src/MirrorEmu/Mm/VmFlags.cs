namespace MirrorEmu.Mm;

/// <summary>A VMA's flags (VM_*), named after include/linux/mm.h, with its values where it has one.</summary>
/// <remarks>Every flag takes part in merging: two neighbours merge only if their flags are equal (vma.c: is_mergeable_vma).</remarks>
[Flags]
public enum VmFlags : long
{
    /// <summary>No flags.</summary>
    None = 0,
    /// <summary>VM_READ.</summary>
    Read = 1L << 0,
    /// <summary>VM_WRITE.</summary>
    Write = 1L << 1,
    /// <summary>VM_EXEC.</summary>
    Exec = 1L << 2,
    /// <summary>VM_SHARED.</summary>
    Shared = 1L << 3,
    /// <summary>VM_PFNMAP: raw pfns with no struct page.</summary>
    PfnMap = 1L << 10,
    /// <summary>VM_LOCKED: mlock()ed (or MAP_LOCKED); its pages are populated and stay.</summary>
    Locked = 1L << 13,
    /// <summary>VM_IO: memory-mapped I/O; never faulted, reported as an error by HMM.</summary>
    Io = 1L << 14,
    /// <summary>VM_SEQ_READ: MADV_SEQUENTIAL.</summary>
    SeqRead = 1L << 15,
    /// <summary>VM_RAND_READ: MADV_RANDOM.</summary>
    RandRead = 1L << 16,
    /// <summary>VM_DONTCOPY: not inherited by fork (MADV_DONTFORK).</summary>
    DontCopy = 1L << 17,
    /// <summary>VM_LOCKONFAULT: mlock2(MLOCK_ONFAULT): locked as pages fault in, not populated up front.</summary>
    LockOnFault = 1L << 19,
    /// <summary>VM_ACCOUNT: the mapping's pages are charged to the commit limit (private writable mappings).</summary>
    Account = 1L << 20,
    /// <summary>VM_NORESERVE: MAP_NORESERVE, nothing charged.</summary>
    NoReserve = 1L << 21,
    /// <summary>VM_WIPEONFORK: a fork child gets the range empty (MADV_WIPEONFORK).</summary>
    WipeOnFork = 1L << 25,
    /// <summary>VM_DONTDUMP: left out of core dumps (MADV_DONTDUMP).</summary>
    DontDump = 1L << 26,
    /// <summary>VM_MIXEDMAP: a mix of pfns and pages (accepted by HMM).</summary>
    MixedMap = 1L << 28,
    /// <summary>VM_HUGEPAGE: MADV_HUGEPAGE was given.</summary>
    HugePage = 1L << 29,
    /// <summary>VM_NOHUGEPAGE: MADV_NOHUGEPAGE (or MAP_STACK) was given.</summary>
    NoHugePage = 1L << 30,
    /// <summary>VM_UFFD_MISSING: registered with userfaultfd for missing faults.</summary>
    UffdMissing = 1L << 32,
    /// <summary>VM_UFFD_WP: registered with userfaultfd for write-protect faults.</summary>
    UffdWp = 1L << 33,
    /// <summary>VM_UFFD_MINOR: registered with userfaultfd for minor faults.</summary>
    UffdMinor = 1L << 34,
    /// <summary>VM_DROPPABLE: MAP_DROPPABLE (MADV_KEEPONFORK and MADV_DODUMP are refused on it).</summary>
    Droppable = 1L << 40,

    /// <summary>The protection part.</summary>
    AccessMask = Read | Write | Exec,
    /// <summary>The userfaultfd part.</summary>
    UffdMask = UffdMissing | UffdWp | UffdMinor,
    /// <summary>VM_LOCKED_MASK: both mlock flags.</summary>
    LockedMask = Locked | LockOnFault,
    /// <summary>VM_SPECIAL (as far as the emulator has it): mappings whose pages are not ordinary (remap_pfn_range).</summary>
    Special = Io | PfnMap | MixedMap,
}
