namespace MirrorEmu.Mm;

/// <summary>mmap/mprotect protection bits (PROT_*), with the Linux values.</summary>
/// <remarks>mmap ignores bits it does not know; mprotect accepts <see cref="Sem"/> and the grows bits and rejects the rest.</remarks>
[Flags]
public enum Prot
{
    /// <summary>PROT_NONE.</summary>
    None = 0,
    /// <summary>PROT_READ.</summary>
    Read = 0x1,
    /// <summary>PROT_WRITE.</summary>
    Write = 0x2,
    /// <summary>PROT_EXEC.</summary>
    Exec = 0x4,
    /// <summary>PROT_READ | PROT_WRITE.</summary>
    ReadWrite = Read | Write,
    /// <summary>PROT_SEM: accepted and ignored (it meant atomics work on the page).</summary>
    Sem = 0x8,
    /// <summary>PROT_GROWSDOWN (mprotect only): extend the change down to the start of a VM_GROWSDOWN mapping.</summary>
    GrowsDown = 0x01000000,
    /// <summary>PROT_GROWSUP (mprotect only): not on x86-64.</summary>
    GrowsUp = 0x02000000,
}
