using System.Runtime.InteropServices;

namespace MirrorEmu.Kernels;

/// <summary>
/// One fault-buffer entry (a GPU's replayable fault packet, reduced): the virtual page that missed, the
/// access, and the work item that missed first. Written by a kernel with an atomic append; read by the
/// driver after the pass.
/// </summary>
/// <param name="Page">The virtual page number (address >> page shift).</param>
/// <param name="WorkItem">The launch's work item that appended the entry.</param>
/// <param name="Access">What the work item was doing.</param>
[StructLayout(LayoutKind.Sequential)]
public readonly record struct DeviceFault(ulong Page, int WorkItem, DeviceAccess Access)
{
    /// <summary>True if servicing the fault needs a writable mapping.</summary>
    public bool NeedsWrite => Access != DeviceAccess.Read;

    /// <summary>The sort key of the driver's preprocessing: page, then reads before writes (UVM sorts by address and access type).</summary>
    public ulong SortKey => (Page << 1) | (NeedsWrite ? 1UL : 0UL);
}
