namespace MirrorEmu.Mm;

public sealed partial class AddressSpace
{
    /// <summary>
    /// mmap of a device region followed by remap_pfn_range / vm_insert_pfn: a VMA whose pages are special
    /// entries for raw pfns, populated up front. <paramref name="kind"/> is VM_IO | VM_PFNMAP (hmm_range_fault
    /// reports ERROR there and cannot fault) or VM_MIXEDMAP (walked; the pfns are special, ERROR as well).
    /// </summary>
    /// <param name="length">Length in bytes (rounded up to pages).</param>
    /// <param name="prot">PROT_* bits.</param>
    /// <param name="kind">Io, PfnMap and/or MixedMap.</param>
    /// <param name="basePfn">The first pfn (not a frame of the pool), above 0.</param>
    /// <param name="address">The mapping's address.</param>
    /// <returns>0 or -EINVAL / -ENOMEM as <see cref="Mmap"/>.</returns>
    public KResult MmapPfn(ulong length, Prot prot, VmFlags kind, ulong basePfn, out ulong address)
    {
        address = 0;
        if ((kind & ~(VmFlags.Io | VmFlags.PfnMap | VmFlags.MixedMap)) != 0 || kind == VmFlags.None || basePfn == 0)
        {
            return KResult.Error(Errno.EINVAL, $"mmap_pfn: kind=0x{(long)kind:X} must be VM_IO/VM_PFNMAP/VM_MIXEDMAP and basePfn=0x{basePfn:X} above 0");
        }

        KResult r = MmapAnonymous(length, prot, MapFlags.Shared, out ulong start);
        if (!r.IsOk)
        {
            return r;
        }

        MmapLock.WriteLock();
        try
        {
            int i = FindVmaIndex(start);
            Vma old = _vmas[i];
            var vma = new Vma(this, old.Start, old.End, (old.Flags & ~VmFlags.Shared) | VmFlags.Shared | kind, null, basePfn);
            ReplaceVmaAt(i, vma);
            for (ulong va = vma.Start, pfn = basePfn; va < vma.End; va += PageGeometry.PageSize, pfn++)
            {
                PageTable.GetOrCreateLeaf(va)![PageGeometry.Index(va, 0)] = Pte.Special(pfn).WithWritable((prot & Prot.Write) != 0).Value;
            }

            address = start;
            return KResult.Ok;
        }
        finally
        {
            MmapLock.WriteUnlock();
        }
    }
}
