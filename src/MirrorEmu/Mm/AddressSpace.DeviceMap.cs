namespace MirrorEmu.Mm;

public sealed partial class AddressSpace
{
    /// <summary>
    /// A device driver's mmap that inserts its own zeroed pages (lib/test_hmm.c's dmirror_fops_mmap: vm_insert_page of
    /// freshly allocated pages, which makes the VMA VM_MIXEDMAP). The pages are ordinary frames of the pool, mapped
    /// read-only as vm_insert_page maps them into a private mapping; a write fault copies or reuses them as for
    /// anonymous memory, and munmap frees them.
    /// </summary>
    /// <param name="length">Length in bytes (rounded up to pages).</param>
    /// <param name="prot">PROT_* bits of the VMA.</param>
    /// <param name="address">The mapping's address.</param>
    /// <returns>0; or -EINVAL / -ENOMEM as <see cref="Mmap"/>; -ENOMEM when the pool has no frame for a page (nothing stays mapped).</returns>
    /// <remarks>An internal hook for the Device layer's dmirror mmap; takes the mmap write lock.</remarks>
    internal KResult MmapDevicePages(ulong length, Prot prot, out ulong address) =>
        MmapDriverPages(length, prot, MapFlags.Private, VmFlags.MixedMap, 0, "device mmap", out address, (vma, va, index) =>
        {
            if (!_memory.TryAllocate(out ulong pfn))
            {
                return false;
            }

            _memory.Frame(pfn).Clear();
            PageTable.GetOrCreateLeaf(va)![PageGeometry.Index(va, 0)] = Pte.Present(pfn, writable: false).Value;
            return true;
        });
}
