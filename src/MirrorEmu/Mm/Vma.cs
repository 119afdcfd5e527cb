namespace MirrorEmu.Mm;

/// <summary>
/// A virtual memory area (vm_area_struct): a half-open page-aligned range [Start, End) with one
/// protection, one set of flags and one backing (anonymous, or a file at a page offset).
/// </summary>
/// <remarks>
/// Fields change only under the owning address space's mmap write lock; readers hold the read
/// lock. A split or a merge makes new <see cref="Vma"/> objects, so a VMA looked up before a lock
/// drop may describe a range that no longer exists: compare <see cref="MmapLock.Sequence"/> and
/// look it up again (<see cref="AddressSpace.FindVma"/>).
/// </remarks>
public sealed class Vma
{
    internal Vma(AddressSpace mm, ulong start, ulong end, VmFlags flags, MemFile? file, ulong pgoff)
    {
        Mm = mm;
        Start = start;
        End = end;
        Flags = flags;
        File = file;
        PgOff = pgoff;
    }

    /// <summary>The address space the VMA belongs to (vm_mm).</summary>
    public AddressSpace Mm { get; }

    /// <summary>First address, page aligned (vm_start).</summary>
    public ulong Start { get; internal set; }

    /// <summary>One past the last address, page aligned (vm_end).</summary>
    public ulong End { get; internal set; }

    /// <summary>Size in bytes.</summary>
    public ulong Size => End - Start;

    /// <summary>Protection and kind (vm_flags).</summary>
    public VmFlags Flags { get; internal set; }

    /// <summary>The backing file (for shared anonymous memory, its shmem object), or null for private anonymous memory.</summary>
    public MemFile? File { get; internal set; }

    /// <summary>File offset of <see cref="Start"/>, in pages (vm_pgoff). For a pfnmap, the first pfn.</summary>
    public ulong PgOff { get; internal set; }

    /// <summary>True for MAP_SHARED.</summary>
    public bool IsShared => (Flags & VmFlags.Shared) != 0;

    /// <summary>True for private anonymous memory (vma_is_anonymous).</summary>
    public bool IsAnonymous => File is null && (Flags & (VmFlags.PfnMap | VmFlags.Io)) == 0;

    /// <summary>The userfaultfd context this VMA is registered with (vm_userfaultfd_ctx), which handle_mm_fault
    /// calls for the faults userfaultfd must see; null when not registered.</summary>
    public IUserfaultHook? Userfault { get; internal set; }

    /// <summary>The anon_vma its anonymous pages belong to (vm_area_struct.anon_vma), or null while it has none.</summary>
    /// <remarks>Read and written under the mmap write lock; <see cref="AddressSpace"/> assigns it lazily (see <see cref="Mm.AnonVma"/>).</remarks>
    internal AnonVma? AnonVma { get; set; }

    /// <summary>True when its anon_vma chain links more than its own anon_vma (a fork child's VMA): Linux then refuses
    /// merges that would have to share that anon_vma (vma_had_uncowed_parents).</summary>
    internal bool AnonVmaForked { get; set; }

    /// <summary>The protection as PROT_* bits.</summary>
    public Prot Prot => (Prot)(int)(Flags & VmFlags.AccessMask);

    /// <summary>True if [start, end) lies inside the VMA.</summary>
    /// <param name="start">First address.</param>
    /// <param name="end">One past the last address.</param>
    public bool Covers(ulong start, ulong end) => start >= Start && end <= End;

    /// <summary>The file page index of <paramref name="address"/>.</summary>
    /// <param name="address">An address inside the VMA.</param>
    public ulong PageIndex(ulong address) => PgOff + ((address - Start) >> PageGeometry.PageShift);

    internal Vma CloneRange(ulong start, ulong end) =>
        new(Mm, start, end, Flags, File, PgOff + ((start - Start) >> PageGeometry.PageShift))
        {
            Userfault = Userfault,
            AnonVma = AnonVma,
            AnonVmaForked = AnonVmaForked,
        };

    /// <inheritdoc/>
    public override string ToString()
    {
        char r = (Flags & VmFlags.Read) != 0 ? 'r' : '-';
        char w = (Flags & VmFlags.Write) != 0 ? 'w' : '-';
        char x = (Flags & VmFlags.Exec) != 0 ? 'x' : '-';
        char s = IsShared ? 's' : 'p';
        string file = File is null ? string.Empty : " " + File.Name;
        return $"[0x{Start:x}, 0x{End:x}) {r}{w}{x}{s}{file}";
    }
}
