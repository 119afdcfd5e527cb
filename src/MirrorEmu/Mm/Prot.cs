namespace MirrorEmu.Mm;

/// <summary>mmap/mprotect protection bits (PROT_*), with the Linux values.</summary>
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
}
