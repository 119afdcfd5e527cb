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
/// What handle_mm_fault calls for a VMA registered with userfaultfd (handle_userfault in
/// fs/userfaultfd.c). Implemented by the Uffd layer.
/// </summary>
public interface IUserfaultHook
{
    /// <summary>Handles a fault that userfaultfd must see.</summary>
    /// <param name="vma">The VMA, looked up under the mmap read lock the caller holds.</param>
    /// <param name="address">The faulting address (page aligned).</param>
    /// <param name="flags">The fault flags; <see cref="FaultFlags.AllowRetry"/> decides whether the lock may be dropped.</param>
    /// <param name="reason">Which registration mode applies.</param>
    /// <returns>
    /// The VM_FAULT code. <see cref="VmFault.Retry"/> or <see cref="VmFault.Completed"/> means the
    /// hook released the mmap read lock (unless <see cref="FaultFlags.RetryNoWait"/> was set),
    /// and the caller must retake it and revalidate the VMA.
    /// </returns>
    /// <remarks>Called with the mmap read lock held.</remarks>
    VmFault HandleUserfault(Vma vma, ulong address, FaultFlags flags, UserfaultReason reason);
}
