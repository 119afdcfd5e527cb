namespace MirrorEmu.Mm;

public sealed partial class AddressSpace
{
    /// <summary>
    /// Sets (or, with <paramref name="modes"/> = None, clears) the userfaultfd registration of every
    /// VMA in [start, end), splitting at the edges and merging afterwards (userfaultfd_register's VMA walk).
    /// </summary>
    /// <param name="start">Page-aligned start.</param>
    /// <param name="end">Page-aligned end; the range must be fully mapped (the caller checks).</param>
    /// <param name="modes">VM_UFFD_* bits.</param>
    /// <param name="hook">The fault hook, or null to unregister.</param>
    /// <param name="context">The userfaultfd context (vm_userfaultfd_ctx), or null.</param>
    /// <remarks>Call with the mmap write lock held.</remarks>
    internal void SetUserfaultLocked(ulong start, ulong end, VmFlags modes, IUserfaultHook? hook, object? context)
    {
        MmapLock.DebugAssertWriteLocked();
        (int first, int last) = SplitRange(start, end);
        for (int i = first; i < last; i++)
        {
            Vma old = _vmas[i];
            Vma updated = old.CloneRange(old.Start, old.End);
            updated.Flags = (old.Flags & ~VmFlags.UffdMask) | (modes & VmFlags.UffdMask);
            updated.Userfault = hook;
            updated.UserfaultContext = context;
            ReplaceVmaAt(i, updated);
        }

        MergeAround(first, last);
    }
}
