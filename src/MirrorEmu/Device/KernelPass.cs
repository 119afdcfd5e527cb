using ILGPU;
using MirrorEmu.Kernels;

namespace MirrorEmu.Device;

/// <summary>Everything one slice of a pass hands its kernel: which kernel, the table, the frames, the fault sink, the work list, and the kernel's own
/// views and constants (unused ones are empty or zero).</summary>
/// <param name="Op">The kernel.</param>
/// <param name="Table">The device page table's block pool, as the accelerator sees it.</param>
/// <param name="Frames">Every frame of the CPU's memory, as 64-bit elements, in place.</param>
/// <param name="DeviceFrames">Every frame of the device's own memory, as 64-bit elements.</param>
/// <param name="Faults">Where misses go.</param>
/// <param name="Work">The slice's work list.</param>
/// <param name="Placement">One byte per work item of the launch: where its accesses went.</param>
/// <param name="Data">The device buffer of elements (output of Read and Gather, input of Write and Scatter).</param>
/// <param name="Indices">The index buffer (AtomicAdd, Gather, Scatter).</param>
/// <param name="SrcVa">The source's virtual address (Read, Gather, StreamCopy).</param>
/// <param name="DstVa">The destination's virtual address (Write, AtomicAdd, Scatter, StreamCopy).</param>
/// <param name="Elements">Elements of the indexed array (AtomicAdd, Gather, Scatter).</param>
/// <param name="Value">The addend (AtomicAdd).</param>
internal readonly record struct KernelPass(
    DeviceOp Op,
    ArrayView<ulong> Table,
    ArrayView<ulong> Frames,
    ArrayView<ulong> DeviceFrames,
    FaultSink Faults,
    WorkList Work,
    ArrayView<byte> Placement,
    ArrayView<ulong> Data,
    ArrayView<int> Indices,
    ulong SrcVa,
    ulong DstVa,
    long Elements,
    ulong Value);
