namespace MirrorEmu.Mm;

/// <summary>What <see cref="AddressSpace.TestPeek"/> found behind an address.</summary>
internal enum PeekKind
{
    /// <summary>No VMA there: an access is SIGSEGV.</summary>
    Unmapped,
    /// <summary>An entry maps a frame (present, PROT_NONE, or a swap, migration or device-exclusive entry holding one): its bytes.</summary>
    Frame,
    /// <summary>Nothing is mapped yet: zeros (anonymous memory), or the page-cache page's bytes (a file page, zeros for a hole).</summary>
    NotPresent,
    /// <summary>A file page beyond the end of the file: an access is SIGBUS.</summary>
    BeyondEof,
    /// <summary>A guard region: an access is SIGSEGV.</summary>
    Guard,
    /// <summary>A device-private page or a poisoned one: the bytes are not in a frame of the pool.</summary>
    Elsewhere,
}

public sealed partial class AddressSpace
{
    /// <summary>
    /// Test hook: the bytes a read of the page at <paramref name="va"/> would return, found without faulting, allocating or
    /// changing anything (no entry, no page-cache page, no accessed bit): a model-based test compares with it after every
    /// step without disturbing what the next step finds.
    /// </summary>
    /// <param name="va">An address in the page.</param>
    /// <param name="destination">Receives the page's bytes (a page's worth) for <see cref="PeekKind.Frame"/> and <see cref="PeekKind.NotPresent"/>.</param>
    /// <returns>What is there.</returns>
    /// <remarks>Takes the mmap read lock. Call only while no other thread changes this address space.</remarks>
    internal PeekKind TestPeek(ulong va, Span<byte> destination)
    {
        MmapLock.ReadLock();
        try
        {
            Vma? vma = VmaLookup(va);
            if (vma is null)
            {
                return PeekKind.Unmapped;
            }

            Pte pte = PageTable.Read(va);
            if (pte.IsMapped || pte.HoldsFrameReference)
            {
                _memory.Frame(pte.Pfn).CopyTo(destination);
                return PeekKind.Frame;
            }

            if (pte.Swap == SwapType.Guard)
            {
                return PeekKind.Guard;
            }

            if (!pte.IsNoneMostly)
            {
                return PeekKind.Elsewhere;
            }

            destination[..PageGeometry.PageSizeInt].Clear();
            if (vma.File is { } file)
            {
                ulong index = vma.PageIndex(va);
                if (index >= file.PageCount)
                {
                    return PeekKind.BeyondEof;
                }

                if (file.TryFindPage(index, out ulong pfn))
                {
                    _memory.Frame(pfn).CopyTo(destination);
                }
            }

            return PeekKind.NotPresent;
        }
        finally
        {
            MmapLock.ReadUnlock();
        }
    }

    /// <summary>Test hook: turns the present page at <paramref name="va"/> into a migration entry (the reference stays with it).</summary>
    /// <remarks>Like the kernel's migration code it takes no mmap lock: the entry changes with one compare-and-exchange.</remarks>
    internal bool TestStartMigration(ulong va) =>
        TestReplace(va, p => p.IsPresent && !p.IsSpecial ? Pte.SwapEntry(p.IsWritable ? SwapType.MigrationWrite : SwapType.MigrationRead, p.Pfn) : (Pte?)null, takeMmapLock: false);

    /// <summary>Test hook: ends a migration started by <see cref="TestStartMigration"/>, mapping the same frame again.</summary>
    internal bool TestFinishMigration(ulong va) =>
        TestReplace(va, p => p.Swap is SwapType.MigrationRead or SwapType.MigrationWrite ? Pte.Present(p.Pfn, p.Swap == SwapType.MigrationWrite) : (Pte?)null, takeMmapLock: false);

    /// <summary>Test hook: marks the page hardware-poisoned (its frame is dropped).</summary>
    internal bool TestPoison(ulong va)
    {
        ulong pfn = 0;
        bool done = TestReplace(va, p =>
        {
            pfn = p.Pfn;
            return p.IsPresent && !p.IsSpecial ? Pte.SwapEntry(SwapType.Poisoned, 0) : (Pte?)null;
        });
        if (done)
        {
            _memory.Put(pfn);
        }

        return done;
    }

    /// <summary>Test hook: turns the present page into a device-exclusive entry holding its frame (make_device_exclusive without the device).</summary>
    internal bool TestReplaceForExclusive(ulong va, ulong pfn) =>
        TestReplace(va, p => p.IsPresent && p.Pfn == pfn ? Pte.SwapEntry(SwapType.DeviceExclusive, pfn) : (Pte?)null);

    /// <summary>Test hook: writes a raw entry (device-private, marker…) over an empty slot.</summary>
    internal bool TestInstall(ulong va, Pte entry) => TestReplace(va, p => p.IsNone ? entry : (Pte?)null);

    /// <summary>Test hook: marks [start, start + length) as registered with a userfault hook (what the Uffd layer's
    /// Register does), splitting VMAs at the edges.</summary>
    internal void TestRegisterUserfault(ulong start, ulong length, VmFlags modes, IUserfaultHook hook)
    {
        MmapLock.WriteLock();
        try
        {
            SetUserfaultLocked(start, start + length, modes, hook);
        }
        finally
        {
            MmapLock.WriteUnlock();
        }
    }

    private bool TestReplace(ulong va, Func<Pte, Pte?> change, bool takeMmapLock = true)
    {
        if (takeMmapLock)
        {
            MmapLock.WriteLock();
        }

        try
        {
            ulong[]? leaf = PageTable.GetOrCreateLeaf(va);
            if (leaf is null)
            {
                return false;
            }

            ref ulong slot = ref leaf[PageGeometry.Index(va, 0)];
            var old = new Pte(Volatile.Read(ref slot));
            Pte? next = change(old);
            return next is { } value && PageTable.TryUpdate(ref slot, old, value);
        }
        finally
        {
            if (takeMmapLock)
            {
                MmapLock.WriteUnlock();
            }
        }
    }
}
