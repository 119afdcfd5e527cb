namespace MirrorEmu.Mm;

/// <summary>A VMA's flags (VM_*), named after include/linux/mm.h.</summary>
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
    /// <summary>VM_IO: memory-mapped I/O; never faulted, reported as an error by HMM.</summary>
    Io = 1L << 14,
    /// <summary>VM_PFNMAP: raw pfns with no struct page.</summary>
    PfnMap = 1L << 10,
    /// <summary>VM_MIXEDMAP: a mix of pfns and pages (accepted by HMM).</summary>
    MixedMap = 1L << 28,
    /// <summary>VM_DONTCOPY: not inherited by fork.</summary>
    DontCopy = 1L << 17,
    /// <summary>VM_HUGEPAGE: MADV_HUGEPAGE was given.</summary>
    HugePage = 1L << 29,
    /// <summary>VM_NOHUGEPAGE: MADV_NOHUGEPAGE was given.</summary>
    NoHugePage = 1L << 30,
    /// <summary>VM_UFFD_MISSING: registered with userfaultfd for missing faults.</summary>
    UffdMissing = 1L << 32,
    /// <summary>VM_UFFD_WP: registered with userfaultfd for write-protect faults.</summary>
    UffdWp = 1L << 33,
    /// <summary>VM_UFFD_MINOR: registered with userfaultfd for minor faults.</summary>
    UffdMinor = 1L << 34,

    /// <summary>The protection part.</summary>
    AccessMask = Read | Write | Exec,
    /// <summary>The userfaultfd part.</summary>
    UffdMask = UffdMissing | UffdWp | UffdMinor,
}
