namespace MirrorEmu.Mm;

/// <summary>
/// The owner of device-private memory (a dev_pagemap's owner and its dev_pagemap_ops): a CPU fault on a device-private
/// entry of one of its pages (<see cref="DevicePagemap"/>) asks it to move the page back to system memory.
/// </summary>
public interface IDevicePagemapOwner
{
    /// <summary>The owner cookie HMM compares with <c>dev_private_owner</c> and migrations pass as <c>pgmap_owner</c>.</summary>
    object Owner { get; }

    /// <summary>migrate_to_ram: moves the page at <paramref name="address"/> back to a system frame and maps it (with
    /// <see cref="AddressSpace.MigrateVmaSetup"/>, <see cref="AddressSpace.MigrateVmaPages"/> and
    /// <see cref="AddressSpace.MigrateVmaFinalize"/> over that page, the device page as the fault page).</summary>
    /// <param name="vma">The VMA, of the address space that faulted (a fork child's, possibly: the page may be shared).</param>
    /// <param name="address">Page-aligned faulting address.</param>
    /// <param name="entry">The device-private entry found there.</param>
    /// <returns>The VM_FAULT code: 0 when the access may retry (whether or not this call moved the page: a racing
    /// migration may have), <see cref="VmFault.Oom"/> or <see cref="VmFault.SigBus"/> when it cannot be moved.</returns>
    /// <remarks>Called with the mmap read lock of <paramref name="vma"/>'s address space held, and no other lock.</remarks>
    VmFault MigrateToRam(Vma vma, ulong address, Pte entry);
}
