namespace MirrorEmu.Hmm;

/// <summary>How hmm_range_fault treats a page it must fault in a VMA registered with userfaultfd (MISSING): docs/design.md, "The policies compared".</summary>
public enum UffdFaultPolicy
{
    /// <summary>The kernel before the 2026 patch: no FAULT_FLAG_ALLOW_RETRY, so handle_userfault answers VM_FAULT_SIGBUS and the call fails with -EFAULT.</summary>
    Unsupported,
    /// <summary>The RFC patch: ALLOW_RETRY | USER; after VM_FAULT_RETRY/COMPLETED retake the mmap lock and return -EBUSY, so the walk restarts from <c>last</c>: one page per round trip.</summary>
    SinglePage,
    /// <summary>Ours: after a retry, retake the lock, revalidate the VMA (as fixup_user_fault does) and go on with the rest of the run in the same call.</summary>
    Batched,
    /// <summary>Ours, a proposed userfaultfd extension: one message names the whole missing run; the monitor fills it with one multi-page copy.</summary>
    RangeEvent,
}

/// <summary>Which pages a fault covers once a page needs one (mm/hmm.c hmm_vma_fault and hmm_vma_walk_hole; docs/design.md "Fault extent").</summary>
public enum FaultExtent
{
    /// <summary>As the kernel: from the first page that needs it to the end of the walk chunk (the PMD span, or the whole hole).</summary>
    Kernel,
    /// <summary>Only the pages that need it.</summary>
    Precise,
}
