namespace MirrorEmu.Mm;

/// <summary>The signal a bad CPU access would raise.</summary>
public enum Signal
{
    /// <summary>Segmentation violation: no mapping, or an access the protection forbids.</summary>
    SIGSEGV = 11,

    /// <summary>Bus error: the mapping exists but the page cannot be provided (beyond the file's end, a userfaultfd SIGBUS, poison).</summary>
    SIGBUS = 7,

    /// <summary>Killed: a fatal signal (<see cref="CurrentTask.FatalSignal"/>) ended a killable wait.</summary>
    SIGKILL = 9,
}

/// <summary>A CPU access (<see cref="AddressSpace.CpuRead"/>/<see cref="AddressSpace.CpuWrite"/>) that a real process would die on.</summary>
public sealed class MemoryFaultException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="address">The faulting virtual address.</param>
    /// <param name="signal">The signal a process would get.</param>
    /// <param name="reason">Why, in a few words.</param>
    public MemoryFaultException(ulong address, Signal signal, string reason)
        : base($"{signal} at va=0x{address:X16}: {reason}")
    {
        Address = address;
        Signal = signal;
        Reason = reason;
    }

    /// <summary>The faulting virtual address.</summary>
    public ulong Address { get; }

    /// <summary>The signal a process would get.</summary>
    public Signal Signal { get; }

    /// <summary>Why the access failed.</summary>
    public string Reason { get; }
}
