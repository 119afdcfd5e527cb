namespace MirrorEmu.Uffd;

/// <summary>UFFD_API: the only API version (include/uapi/linux/userfaultfd.h).</summary>
public static class UffdApi
{
    /// <summary>The API number a handshake must name.</summary>
    public const ulong Version = 0xAA;
}

/// <summary>UFFD_FEATURE_* bits, with the kernel's values.</summary>
[Flags]
public enum UffdFeatures : ulong
{
    /// <summary>No feature.</summary>
    None = 0,
    /// <summary>UFFD_FEATURE_PAGEFAULT_FLAG_WP.</summary>
    PagefaultFlagWp = 1UL << 0,
    /// <summary>UFFD_FEATURE_EVENT_FORK: fork gives the child a new context, announced by a FORK message.</summary>
    EventFork = 1UL << 1,
    /// <summary>UFFD_FEATURE_EVENT_REMAP: mremap keeps the registration and sends a REMAP message.</summary>
    EventRemap = 1UL << 2,
    /// <summary>UFFD_FEATURE_EVENT_REMOVE: MADV_DONTNEED sends a REMOVE message.</summary>
    EventRemove = 1UL << 3,
    /// <summary>UFFD_FEATURE_MISSING_SHMEM: MISSING registration on shmem (shared anonymous and file) VMAs.</summary>
    MissingShmem = 1UL << 5,
    /// <summary>UFFD_FEATURE_EVENT_UNMAP: munmap sends an UNMAP message.</summary>
    EventUnmap = 1UL << 6,
    /// <summary>UFFD_FEATURE_SIGBUS: faults get SIGBUS at once instead of a message.</summary>
    SigBus = 1UL << 7,
    /// <summary>UFFD_FEATURE_THREAD_ID: page-fault messages carry the faulting thread's id.</summary>
    ThreadId = 1UL << 8,
    /// <summary>UFFD_FEATURE_MINOR_SHMEM: MINOR registration on shmem VMAs.</summary>
    MinorShmem = 1UL << 10,
    /// <summary>UFFD_FEATURE_WP_UNPOPULATED: write-protecting an empty page installs a marker, so its first write faults.</summary>
    WpUnpopulated = 1UL << 13,
    /// <summary>UFFD_FEATURE_POISON: UFFDIO_POISON.</summary>
    Poison = 1UL << 14,
    /// <summary>UFFD_FEATURE_MOVE: UFFDIO_MOVE.</summary>
    Move = 1UL << 16,

    /// <summary>Every feature this emulator implements.</summary>
    Supported = PagefaultFlagWp | EventFork | EventRemap | EventRemove | MissingShmem | EventUnmap | SigBus | ThreadId | MinorShmem | WpUnpopulated | Poison | Move,
}

/// <summary>UFFDIO_REGISTER_MODE_* bits.</summary>
[Flags]
public enum UffdRegisterMode : ulong
{
    /// <summary>No mode (invalid).</summary>
    None = 0,
    /// <summary>MISSING: faults on absent pages.</summary>
    Missing = 1,
    /// <summary>WP: writes to write-protected pages.</summary>
    WriteProtect = 2,
    /// <summary>MINOR: page-cache pages not yet mapped.</summary>
    Minor = 4,
}

/// <summary>The ioctls a registered range allows, as the bit mask UFFDIO_REGISTER returns (1 &lt;&lt; _UFFDIO_*).</summary>
[Flags]
public enum UffdIoctls : ulong
{
    /// <summary>None.</summary>
    None = 0,
    /// <summary>UFFDIO_WAKE.</summary>
    Wake = 1UL << 0x02,
    /// <summary>UFFDIO_COPY.</summary>
    Copy = 1UL << 0x03,
    /// <summary>UFFDIO_ZEROPAGE.</summary>
    ZeroPage = 1UL << 0x04,
    /// <summary>UFFDIO_MOVE.</summary>
    Move = 1UL << 0x05,
    /// <summary>UFFDIO_WRITEPROTECT.</summary>
    WriteProtect = 1UL << 0x06,
    /// <summary>UFFDIO_CONTINUE.</summary>
    Continue = 1UL << 0x07,
    /// <summary>UFFDIO_POISON.</summary>
    Poison = 1UL << 0x08,
}

/// <summary>UFFDIO_COPY_MODE_* / UFFDIO_ZEROPAGE_MODE_* / UFFDIO_CONTINUE_MODE_* / UFFDIO_POISON_MODE_* /
/// UFFDIO_WRITEPROTECT_MODE_* bits (DONTWAKE is bit 0 for COPY, ZEROPAGE, CONTINUE and POISON; WRITEPROTECT has
/// MODE_WP at bit 0 and MODE_DONTWAKE at bit 1, which <see cref="Userfaultfd.WriteProtect"/> takes as its own arguments).</summary>
[Flags]
public enum UffdCopyMode : ulong
{
    /// <summary>Copy and wake.</summary>
    None = 0,
    /// <summary>DONTWAKE: do not wake the waiters of the range.</summary>
    DontWake = 1,
    /// <summary>WP: map the pages write-protected (userfaultfd).</summary>
    WriteProtect = 2,
}

/// <summary>UFFDIO_MOVE_MODE_* bits.</summary>
[Flags]
public enum UffdMoveMode : ulong
{
    /// <summary>Move and wake.</summary>
    None = 0,
    /// <summary>UFFDIO_MOVE_MODE_DONTWAKE.</summary>
    DontWake = 1,
    /// <summary>UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES: empty source pages are skipped, not an error.</summary>
    AllowSrcHoles = 2,
}

/// <summary>UFFD_PAGEFAULT_FLAG_* bits of a page-fault message.</summary>
[Flags]
public enum UffdPagefaultFlags : ulong
{
    /// <summary>A read fault on a missing page.</summary>
    None = 0,
    /// <summary>UFFD_PAGEFAULT_FLAG_WRITE.</summary>
    Write = 1,
    /// <summary>UFFD_PAGEFAULT_FLAG_WP.</summary>
    WriteProtect = 2,
    /// <summary>UFFD_PAGEFAULT_FLAG_MINOR.</summary>
    Minor = 4,
}

/// <summary>UFFD_EVENT_* message kinds.</summary>
public enum UffdEventType : byte
{
    /// <summary>UFFD_EVENT_PAGEFAULT.</summary>
    Pagefault = 0x12,
    /// <summary>UFFD_EVENT_FORK.</summary>
    Fork = 0x13,
    /// <summary>UFFD_EVENT_REMAP.</summary>
    Remap = 0x14,
    /// <summary>UFFD_EVENT_REMOVE.</summary>
    Remove = 0x15,
    /// <summary>UFFD_EVENT_UNMAP.</summary>
    Unmap = 0x16,
}

/// <summary>
/// One message read from a userfaultfd (struct uffd_msg). Fields by event: PAGEFAULT: Address, Flags,
/// ThreadId, and RunPages (pages of a whole missing run when the fault named one, else 0);
/// REMAP: Address = from, Arg = to, Length = bytes; REMOVE / UNMAP: Address = start, Arg = end;
/// FORK: Child = the child's new context.
/// </summary>
/// <param name="Event">The kind of message.</param>
/// <param name="Address">PAGEFAULT: the faulting page; REMAP: the old address; REMOVE / UNMAP: the start.</param>
/// <param name="Flags">PAGEFAULT: UFFD_PAGEFAULT_FLAG_* bits.</param>
/// <param name="ThreadId">PAGEFAULT with UFFD_FEATURE_THREAD_ID: the faulting thread.</param>
/// <param name="RunPages">PAGEFAULT: pages of the missing run the message names (RangeEvent), or 0 for one page.</param>
/// <param name="Arg">REMAP: the new address; REMOVE / UNMAP: the end.</param>
/// <param name="Length">REMAP: bytes moved.</param>
/// <param name="Child">FORK: the child's context.</param>
public readonly record struct UffdMsg(
    UffdEventType Event,
    ulong Address,
    UffdPagefaultFlags Flags = UffdPagefaultFlags.None,
    int ThreadId = 0,
    ulong RunPages = 0,
    ulong Arg = 0,
    ulong Length = 0,
    Userfaultfd? Child = null);

/// <summary>How a faulting thread's wait ended.</summary>
public enum UffdWaitOutcome
{
    /// <summary>Not ended yet (or ended by a timeout or a fatal signal).</summary>
    Waiting,
    /// <summary>A resolution or UFFDIO_WAKE covered the address: retry the fault.</summary>
    Resolved,
    /// <summary>The monitor is gone or could not resolve the fault: the fault answers SIGBUS.</summary>
    Failed,
}
