namespace MirrorEmu.Mm;

/// <summary>Which pages a migration collects (enum migrate_vma_direction, include/linux/migrate.h).</summary>
[Flags]
public enum MigrateSelect
{
    /// <summary>Nothing.</summary>
    None = 0,

    /// <summary>MIGRATE_VMA_SELECT_SYSTEM: system pages, the zero page and empty anonymous slots (towards the device).</summary>
    System = 1 << 0,

    /// <summary>MIGRATE_VMA_SELECT_DEVICE_PRIVATE: device-private pages of the caller's <see cref="MigrateVma.PgmapOwner"/>
    /// (back to system memory).</summary>
    DevicePrivate = 1 << 1,
}

/// <summary>
/// struct migrate_vma (include/linux/migrate.h): the arguments and the state of one migration of a range inside one VMA,
/// through <see cref="AddressSpace.MigrateVmaSetup"/> → the caller's copy → <see cref="AddressSpace.MigrateVmaPages"/> →
/// <see cref="AddressSpace.MigrateVmaFinalize"/>. Reusable: a driver keeps one and refills its arguments per chunk, so a
/// migration allocates nothing.
/// </summary>
/// <remarks>Owned by one thread. <see cref="Src"/>[i] and <see cref="Dst"/>[i] describe page <c>Start + i * 4096</c>.</remarks>
public sealed class MigrateVma
{
    /// <summary>Creates the state for ranges of up to <paramref name="capacityPages"/> pages.</summary>
    /// <param name="capacityPages">Length of <see cref="Src"/> and <see cref="Dst"/>; dmirror uses PTRS_PER_PTE (512).</param>
    /// <exception cref="ArgumentOutOfRangeException">Not positive.</exception>
    public MigrateVma(int capacityPages = PageGeometry.LevelEntries)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacityPages, 1);
        Src = new ulong[capacityPages];
        Dst = new ulong[capacityPages];
    }

    /// <summary>The VMA the range lies in, looked up under the mmap read lock the caller holds.</summary>
    public Vma? Vma { get; set; }

    /// <summary>First address, page aligned (rounded down by setup).</summary>
    public ulong Start { get; set; }

    /// <summary>End of the range (exclusive, rounded down by setup; set by collect to what it walked).</summary>
    public ulong End { get; set; }

    /// <summary>The source entries (<see cref="MigratePfn"/> words), filled by setup.</summary>
    public ulong[] Src { get; }

    /// <summary>The destination entries, filled by the caller between setup and pages: a <see cref="MigratePfn.Of"/> of a
    /// page it allocated (one reference, which finalize drops) for each source it migrates, 0 for the others.</summary>
    public ulong[] Dst { get; }

    /// <summary>pgmap_owner: passed with the MIGRATE notifier event (a driver ignores its own) and compared with the
    /// owner of device-private pages under <see cref="MigrateSelect.DevicePrivate"/>.</summary>
    public object? PgmapOwner { get; set; }

    /// <summary>Which pages to collect.</summary>
    public MigrateSelect Flags { get; set; }

    /// <summary>fault_page: the device pfn of the page a migrate_to_ram runs for, or 0.</summary>
    public ulong FaultPage { get; set; }

    /// <summary>Pages walked by collect (npages).</summary>
    public int Npages { get; internal set; }

    /// <summary>Pages that may migrate after setup (cpages): collected and unmapped, empty slots included.</summary>
    public int Cpages { get; internal set; }

    /// <summary>Pages collect took but unmap gave back because a reference beyond the mapping and the migration's own
    /// pinned them (a GUP pin, a page mapped by another address space too): reported, never migrated.</summary>
    public int Busy { get; internal set; }

    /// <summary>Sets the arguments for a new migration (and clears what the last one reported).</summary>
    /// <param name="vma">The VMA.</param>
    /// <param name="start">First address.</param>
    /// <param name="end">End (exclusive).</param>
    /// <param name="owner">pgmap_owner.</param>
    /// <param name="flags">What to collect.</param>
    /// <param name="faultPage">The fault page's device pfn, or 0.</param>
    public void Reset(Vma vma, ulong start, ulong end, object? owner, MigrateSelect flags, ulong faultPage = 0)
    {
        Vma = vma;
        Start = start;
        End = end;
        PgmapOwner = owner;
        Flags = flags;
        FaultPage = faultPage;
        Npages = 0;
        Cpages = 0;
        Busy = 0;
    }

    /// <summary>Source entry <paramref name="i"/>.</summary>
    /// <param name="i">Page index in the range.</param>
    public MigratePfn SrcAt(int i) => new(Src[i]);

    /// <summary>Destination entry <paramref name="i"/>.</summary>
    /// <param name="i">Page index in the range.</param>
    public MigratePfn DstAt(int i) => new(Dst[i]);

    /// <summary>Pages whose source still has MIGRATE and a destination (what moved, after <see cref="AddressSpace.MigrateVmaPages"/>).</summary>
    public int Migrated()
    {
        int n = 0;
        for (int i = 0; i < Npages; i++)
        {
            n += new MigratePfn(Src[i]).IsMigrating && new MigratePfn(Dst[i]).IsValid ? 1 : 0;
        }

        return n;
    }
}
