namespace MirrorEmu.Mm;

/// <summary>
/// The owner of device-private memory (a dev_pagemap's owner and its migrate_to_ram callback):
/// a CPU fault on a device-private entry asks it to move the page back to system memory.
/// </summary>
public interface IDevicePagemapOwner
{
    /// <summary>The owner cookie HMM compares with <c>dev_private_owner</c>.</summary>
    object Owner { get; }

    /// <summary>Moves the page at <paramref name="address"/> back to a system frame and maps it.</summary>
    /// <param name="vma">The VMA.</param>
    /// <param name="address">Page-aligned faulting address.</param>
    /// <param name="entry">The device-private entry found there.</param>
    /// <returns>The VM_FAULT code.</returns>
    /// <remarks>Called with the mmap read lock held.</remarks>
    VmFault MigrateToRam(Vma vma, ulong address, Pte entry);
}
