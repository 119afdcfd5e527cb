namespace MirrorEmu.Mm;

/// <summary>mmap flags (MAP_*), with the Linux x86-64 values.</summary>
[Flags]
public enum MapFlags
{
    /// <summary>No flags (invalid alone: one of Shared or Private is required).</summary>
    None = 0,
    /// <summary>MAP_SHARED: writes reach the file (or the shared anonymous object) and every mapper.</summary>
    Shared = 0x01,
    /// <summary>MAP_PRIVATE: copy-on-write.</summary>
    Private = 0x02,
    /// <summary>MAP_FIXED: place exactly at the address, replacing what is there.</summary>
    Fixed = 0x10,
    /// <summary>MAP_ANONYMOUS: no file.</summary>
    Anonymous = 0x20,
    /// <summary>MAP_POPULATE: prefault the whole mapping.</summary>
    Populate = 0x8000,
    /// <summary>MAP_FIXED_NOREPLACE: like Fixed, but fail with -EEXIST rather than replace.</summary>
    FixedNoReplace = 0x100000,
}

/// <summary>mremap flags (MREMAP_*).</summary>
[Flags]
public enum MremapFlags
{
    /// <summary>Grow or shrink in place only.</summary>
    None = 0,
    /// <summary>MREMAP_MAYMOVE: the mapping may move.</summary>
    MayMove = 1,
    /// <summary>MREMAP_FIXED: move to the given new address (needs MayMove).</summary>
    Fixed = 2,
}

/// <summary>madvise advice values (MADV_*), with the Linux values.</summary>
public enum Advice
{
    /// <summary>MADV_DONTNEED: drop the pages; private anonymous memory reads back as zeros.</summary>
    DontNeed = 4,
    /// <summary>MADV_HUGEPAGE: allow transparent huge pages in the range.</summary>
    HugePage = 14,
    /// <summary>MADV_NOHUGEPAGE: forbid transparent huge pages in the range.</summary>
    NoHugePage = 15,
    /// <summary>MADV_POPULATE_READ: prefault readable.</summary>
    PopulateRead = 22,
    /// <summary>MADV_POPULATE_WRITE: prefault writable (breaking COW).</summary>
    PopulateWrite = 23,
}
