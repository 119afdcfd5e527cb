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
        if ((kind & ~(VmFlags.Io | VmFlags.PfnMap | VmFlags.MixedMap)) != 0 || kind == VmFlags.None || basePfn == 0)
        {
            address = 0;
            return KResult.Error(Errno.EINVAL, $"mmap_pfn: kind=0x{(long)kind:X} must be VM_IO/VM_PFNMAP/VM_MIXEDMAP and basePfn=0x{basePfn:X} above 0");
        }

        return MmapDriverPages(length, prot, MapFlags.Shared, kind, basePfn, "mmap_pfn", out address, (vma, va, index) =>
        {
            PageTable.GetOrCreateLeaf(va)![PageGeometry.Index(va, 0)] = Pte.Special(basePfn + index).WithWritable((prot & Prot.Write) != 0).Value;
            return true;
        });
    }

    /// <summary>
    /// The shape of a driver's mmap (a device file's f_op->mmap): an anonymous mapping whose VMA the driver then makes
    /// its own (extra flags, its page offset) and fills page by page with <paramref name="insert"/>, under the mmap write
    /// lock. If an insert fails, everything the call mapped is unmapped again.
    /// </summary>
    /// <param name="length">Length in bytes.</param>
    /// <param name="prot">PROT_* bits.</param>
    /// <param name="share">MAP_SHARED or MAP_PRIVATE.</param>
    /// <param name="kind">VM_* flags the driver adds (VM_IO, VM_PFNMAP, VM_MIXEDMAP).</param>
    /// <param name="pgoff">The VMA's page offset.</param>
    /// <param name="call">The call's name, for messages.</param>
    /// <param name="address">The mapping's address.</param>
    /// <param name="insert">Installs the entry for one page (the VMA, the page's address, its index); false when it cannot.</param>
    /// <returns>0, mmap's error, or -ENOMEM when an insert failed.</returns>
    private KResult MmapDriverPages(ulong length, Prot prot, MapFlags share, VmFlags kind, ulong pgoff, string call, out ulong address, Func<Vma, ulong, ulong, bool> insert)
    {
        address = 0;
        KResult r = MmapAnonymous(length, prot, share, out ulong start);
        if (!r.IsOk)
        {
            return r;
        }

        MmapLock.WriteLock();
        try
        {
            int i = FindVmaIndex(start);
            Vma old = _vmas[i];
            var vma = new Vma(this, old.Start, old.End, old.Flags | kind, null, pgoff);
            ReplaceVmaAt(i, vma);
            for (ulong va = vma.Start, index = 0; va < vma.End; va += PageGeometry.PageSize, index++)
            {
                if (!insert(vma, va, index))
                {
                    ZapRange(vma, vma.Start, va, freeTables: true);
                    RemoveVmaAt(i);
                    return KResult.Error(Errno.ENOMEM, $"{call}: nothing to map the page at 0x{va:X16} with");
                }
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
