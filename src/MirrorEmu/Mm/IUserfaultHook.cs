namespace MirrorEmu.Mm;

/// <summary>Why handle_mm_fault hands a fault to userfaultfd (the reason passed to handle_userfault).</summary>
public enum UserfaultReason
{
    /// <summary>VM_UFFD_MISSING: no page there.</summary>
    Missing,
    /// <summary>VM_UFFD_WP: a write to a userfaultfd write-protected page.</summary>
    WriteProtect,
    /// <summary>VM_UFFD_MINOR: the page is in the page cache but not mapped.</summary>
    Minor,
}

/// <summary>
/// What the Mm layer calls for a VMA registered with userfaultfd: handle_userfault for faults, and
/// the non-cooperative event hooks (fs/userfaultfd.c: dup_userfaultfd, mremap_userfaultfd_prep,
/// userfaultfd_remove, userfaultfd_unmap_prep). Implemented by the Uffd layer's context; the object is
/// also the VMA's registration (vm_userfaultfd_ctx).
/// </summary>
public interface IUserfaultHook
{
    /// <summary>handle_userfault: a fault that userfaultfd must see, on one page or (MISSING only) a run of missing pages.</summary>
    /// <param name="vma">The VMA, looked up under the mmap read lock the caller holds.</param>
    /// <param name="address">The faulting address (page aligned).</param>
    /// <param name="pages">1 for a fault on one page; more for a whole run of missing pages inside <paramref name="vma"/>
    /// that one message names (the RangeEvent policy's proposed extension).</param>
    /// <param name="flags">The fault flags; <see cref="FaultFlags.AllowRetry"/> decides whether the lock may be dropped.</param>
    /// <param name="reason">Which registration mode applies.</param>
    /// <returns>
    /// The VM_FAULT code. <see cref="VmFault.Retry"/> or <see cref="VmFault.Completed"/> means the
    /// hook released the mmap read lock (unless <see cref="FaultFlags.RetryNoWait"/> was set), and the
    /// caller comes back through <see cref="AddressSpace.RetakeAfterRetry"/>. Every other result returns
    /// with the lock held (a wait that failed retakes it before answering <see cref="VmFault.SigBus"/>).
    /// </returns>
    /// <remarks>Called with the mmap read lock held, by <see cref="FaultHandler"/> only.</remarks>
    VmFault HandleUserfault(Vma vma, ulong address, ulong pages, FaultFlags flags, UserfaultReason reason);

    /// <summary>dup_userfaultfd: fork copies a registered VMA. Returns the context the child's VMA is registered with,
    /// or null to drop the registration there.</summary>
    /// <param name="vma">The parent's VMA.</param>
    /// <param name="child">The child address space.</param>
    /// <remarks>Called under the parent's mmap write lock.</remarks>
    IUserfaultHook? OnFork(Vma vma, AddressSpace child);

    /// <summary>mremap moved [from, from + length) of a registered VMA to <paramref name="to"/>. Returns whether the moved VMA keeps its registration.</summary>
    /// <param name="vma">The VMA being moved.</param>
    /// <param name="from">Old start.</param>
    /// <param name="to">New start.</param>
    /// <param name="length">Bytes moved.</param>
    /// <remarks>Called under the mmap write lock.</remarks>
    bool OnRemap(Vma vma, ulong from, ulong to, ulong length);

    /// <summary>MADV_DONTNEED dropped the pages of [start, end) in a registered VMA (UFFD_EVENT_REMOVE).</summary>
    /// <param name="start">First address.</param>
    /// <param name="end">Half-open end.</param>
    /// <remarks>Called under the mmap read lock.</remarks>
    void OnRemove(ulong start, ulong end);

    /// <summary>munmap removed [start, end), which held registered VMAs (UFFD_EVENT_UNMAP).</summary>
    /// <param name="start">First address of the munmap call.</param>
    /// <param name="end">Half-open end.</param>
    /// <remarks>Called under the mmap write lock, once per context.</remarks>
    void OnUnmap(ulong start, ulong end);
}
