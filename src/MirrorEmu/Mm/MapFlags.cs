namespace MirrorEmu.Mm;

/// <summary>mmap flags (MAP_*), with the Linux x86-64 values.</summary>
/// <remarks>With MAP_SHARED or MAP_PRIVATE the kernel ignores bits it does not know (mmap(2)); MAP_SHARED_VALIDATE
/// rejects them with -EOPNOTSUPP.</remarks>
[Flags]
public enum MapFlags
{
    /// <summary>No flags (invalid alone: one of Shared, Private or SharedValidate is required).</summary>
    None = 0,
    /// <summary>MAP_SHARED: writes reach the file (or the shared anonymous object) and every mapper.</summary>
    Shared = 0x01,
    /// <summary>MAP_PRIVATE: copy-on-write.</summary>
    Private = 0x02,
    /// <summary>MAP_SHARED_VALIDATE: MAP_SHARED that fails with -EOPNOTSUPP on flags the kernel does not know (files only).</summary>
    SharedValidate = 0x03,
    /// <summary>MAP_DROPPABLE (anonymous only): private memory the kernel may drop under pressure (never here: the
    /// emulator reclaims nothing), not inherited by fork children (VM_WIPEONFORK), left out of core dumps, not charged.</summary>
    Droppable = 0x08,
    /// <summary>MAP_TYPE: the mask of the mapping type (Shared, Private, SharedValidate, Droppable).</summary>
    TypeMask = 0x0F,
    /// <summary>MAP_FIXED: place exactly at the address, replacing what is there.</summary>
    Fixed = 0x10,
    /// <summary>MAP_ANONYMOUS: no file (a file passed with it is ignored).</summary>
    Anonymous = 0x20,
    /// <summary>MAP_32BIT: without MAP_FIXED, place the mapping in the first 2 GiB (from 1 GiB up), ignoring a hint.</summary>
    Bit32 = 0x40,
    /// <summary>MAP_DENYWRITE: ignored.</summary>
    DenyWrite = 0x800,
    /// <summary>MAP_EXECUTABLE: ignored.</summary>
    Executable = 0x1000,
    /// <summary>MAP_LOCKED: VM_LOCKED, and the mapping is populated.</summary>
    Locked = 0x2000,
    /// <summary>MAP_NORESERVE: VM_NORESERVE, no commit charge.</summary>
    NoReserve = 0x4000,
    /// <summary>MAP_POPULATE: prefault the whole mapping.</summary>
    Populate = 0x8000,
    /// <summary>MAP_NONBLOCK: together with MAP_POPULATE, do not populate.</summary>
    NonBlock = 0x10000,
    /// <summary>MAP_STACK: VM_NOHUGEPAGE (since Linux 6.7).</summary>
    Stack = 0x20000,
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
    /// <summary>MREMAP_DONTUNMAP: move the pages but leave the old range mapped, empty (needs MayMove and equal sizes).</summary>
    DontUnmap = 4,
}

/// <summary>madvise advice values (MADV_*), with the Linux values (include/uapi/asm-generic/mman-common.h).</summary>
public enum Advice
{
    /// <summary>MADV_NORMAL: clear MADV_RANDOM / MADV_SEQUENTIAL.</summary>
    Normal = 0,
    /// <summary>MADV_RANDOM: VM_RAND_READ (read-ahead hint; no other effect here).</summary>
    Random = 1,
    /// <summary>MADV_SEQUENTIAL: VM_SEQ_READ (read-ahead hint; no other effect here).</summary>
    Sequential = 2,
    /// <summary>MADV_WILLNEED: read ahead (nothing to do without swap or disk).</summary>
    WillNeed = 3,
    /// <summary>MADV_DONTNEED: drop the pages; private anonymous memory reads back as zeros.</summary>
    DontNeed = 4,
    /// <summary>MADV_FREE: private anonymous pages may be discarded under memory pressure (the emulator has none, so they stay).</summary>
    Free = 8,
    /// <summary>MADV_REMOVE: punch a hole in the shared file or shmem behind the range (every mapper sees zeros).</summary>
    Remove = 9,
    /// <summary>MADV_DONTFORK: VM_DONTCOPY.</summary>
    DontFork = 10,
    /// <summary>MADV_DOFORK: clear VM_DONTCOPY.</summary>
    DoFork = 11,
    /// <summary>MADV_HUGEPAGE: allow transparent huge pages in the range.</summary>
    HugePage = 14,
    /// <summary>MADV_NOHUGEPAGE: forbid transparent huge pages in the range.</summary>
    NoHugePage = 15,
    /// <summary>MADV_DONTDUMP: VM_DONTDUMP.</summary>
    DontDump = 16,
    /// <summary>MADV_DODUMP: clear VM_DONTDUMP.</summary>
    DoDump = 17,
    /// <summary>MADV_WIPEONFORK: VM_WIPEONFORK (private anonymous only): a fork child sees zeros.</summary>
    WipeOnFork = 18,
    /// <summary>MADV_KEEPONFORK: clear VM_WIPEONFORK.</summary>
    KeepOnFork = 19,
    /// <summary>MADV_COLD: deactivate the pages (no effect without reclaim).</summary>
    Cold = 20,
    /// <summary>MADV_PAGEOUT: reclaim the pages (no effect without swap).</summary>
    PageOut = 21,
    /// <summary>MADV_POPULATE_READ: prefault readable.</summary>
    PopulateRead = 22,
    /// <summary>MADV_POPULATE_WRITE: prefault writable (breaking COW).</summary>
    PopulateWrite = 23,
    /// <summary>MADV_DONTNEED_LOCKED: MADV_DONTNEED that is allowed on VM_LOCKED ranges.</summary>
    DontNeedLocked = 24,
    /// <summary>MADV_GUARD_INSTALL: make the pages guard regions (an access is SIGSEGV) until removed or unmapped.</summary>
    GuardInstall = 102,
    /// <summary>MADV_GUARD_REMOVE: remove guard regions.</summary>
    GuardRemove = 103,
}

/// <summary>msync flags (MS_*).</summary>
[Flags]
public enum MsyncFlags
{
    /// <summary>None (as MS_ASYNC without the early return).</summary>
    None = 0,
    /// <summary>MS_ASYNC: schedule the write-back.</summary>
    Async = 1,
    /// <summary>MS_INVALIDATE: invalidate other mappings (fails with -EBUSY on VM_LOCKED ranges).</summary>
    Invalidate = 2,
    /// <summary>MS_SYNC: write back and wait.</summary>
    Sync = 4,
}

/// <summary>mlock2 flags.</summary>
[Flags]
public enum MlockFlags
{
    /// <summary>Lock and populate now (mlock).</summary>
    None = 0,
    /// <summary>MLOCK_ONFAULT: lock pages as they fault in.</summary>
    OnFault = 1,
}
