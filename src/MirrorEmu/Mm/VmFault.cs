namespace MirrorEmu.Mm;

/// <summary>handle_mm_fault's result bits (enum vm_fault_reason, include/linux/mm_types.h), with the kernel's values.</summary>
[Flags]
public enum VmFault
{
    /// <summary>Success: the entry now allows the access.</summary>
    None = 0,
    /// <summary>VM_FAULT_OOM.</summary>
    Oom = 0x000001,
    /// <summary>VM_FAULT_SIGBUS.</summary>
    SigBus = 0x000002,
    /// <summary>VM_FAULT_MAJOR.</summary>
    Major = 0x000004,
    /// <summary>VM_FAULT_HWPOISON.</summary>
    HwPoison = 0x000010,
    /// <summary>VM_FAULT_HWPOISON_LARGE.</summary>
    HwPoisonLarge = 0x000020,
    /// <summary>VM_FAULT_SIGSEGV.</summary>
    SigSegv = 0x000040,
    /// <summary>VM_FAULT_NOPAGE.</summary>
    NoPage = 0x000100,
    /// <summary>VM_FAULT_LOCKED.</summary>
    Locked = 0x000200,
    /// <summary>VM_FAULT_RETRY: the mmap lock was dropped (unless RETRY_NOWAIT); retry the fault.</summary>
    Retry = 0x000400,
    /// <summary>VM_FAULT_FALLBACK.</summary>
    Fallback = 0x000800,
    /// <summary>VM_FAULT_DONE_COW.</summary>
    DoneCow = 0x001000,
    /// <summary>VM_FAULT_NEEDDSYNC.</summary>
    NeedDsync = 0x002000,
    /// <summary>VM_FAULT_COMPLETED: the fault was handled and the mmap lock was dropped.</summary>
    Completed = 0x004000,

    /// <summary>VM_FAULT_ERROR: the bits that mean the fault failed.</summary>
    Error = Oom | SigBus | SigSegv | HwPoison | HwPoisonLarge | Fallback,
}

/// <summary>Fault flags (enum fault_flag, include/linux/mm_types.h), with the kernel's values.</summary>
[Flags]
public enum FaultFlags
{
    /// <summary>A read fault, nothing special.</summary>
    None = 0,
    /// <summary>FAULT_FLAG_WRITE.</summary>
    Write = 1 << 0,
    /// <summary>FAULT_FLAG_MKWRITE.</summary>
    MkWrite = 1 << 1,
    /// <summary>FAULT_FLAG_ALLOW_RETRY: the handler may drop the mmap lock and return VM_FAULT_RETRY.</summary>
    AllowRetry = 1 << 2,
    /// <summary>FAULT_FLAG_RETRY_NOWAIT: return VM_FAULT_RETRY without dropping the lock or sleeping.</summary>
    RetryNoWait = 1 << 3,
    /// <summary>FAULT_FLAG_KILLABLE: a fatal signal may end the wait.</summary>
    Killable = 1 << 4,
    /// <summary>FAULT_FLAG_TRIED: this is a retry.</summary>
    Tried = 1 << 5,
    /// <summary>FAULT_FLAG_USER: the fault came from user space.</summary>
    User = 1 << 6,
    /// <summary>FAULT_FLAG_REMOTE: on behalf of another mm (GUP, HMM).</summary>
    Remote = 1 << 7,
    /// <summary>FAULT_FLAG_INSTRUCTION.</summary>
    Instruction = 1 << 8,
    /// <summary>FAULT_FLAG_INTERRUPTIBLE.</summary>
    Interruptible = 1 << 9,
    /// <summary>FAULT_FLAG_UNSHARE.</summary>
    Unshare = 1 << 10,

    /// <summary>Every flag this emulator knows.</summary>
    Known = Write | MkWrite | AllowRetry | RetryNoWait | Killable | Tried | User | Remote | Instruction | Interruptible | Unshare,
}

/// <summary>Helpers over <see cref="VmFault"/>.</summary>
public static class VmFaultExtensions
{
    /// <summary>vm_fault_to_errno: the errno a GUP-style caller reports for an error result.</summary>
    /// <param name="fault">A fault result with some <see cref="VmFault.Error"/> bit.</param>
    /// <returns>-ENOMEM, -EHWPOISON, -EFAULT; 0 if no error bit is set.</returns>
    public static int ToErrno(this VmFault fault)
    {
        if ((fault & VmFault.Oom) != 0)
        {
            return -Errno.ENOMEM;
        }

        if ((fault & (VmFault.HwPoison | VmFault.HwPoisonLarge)) != 0)
        {
            return -Errno.EHWPOISON;
        }

        return (fault & (VmFault.SigBus | VmFault.SigSegv)) != 0 ? -Errno.EFAULT : 0;
    }
}
