using ILGPU;
using MirrorEmu.Kernels;

namespace MirrorEmu.Device;

/// <summary>Everything one slice of a pass hands its kernel: which kernel, the MMU, the work list, and the kernel's own
/// views and constants (unused ones are empty or zero).</summary>
/// <param name="Op">The kernel.</param>
/// <param name="Mmu">The device MMU.</param>
/// <param name="Work">The slice's work list.</param>
/// <param name="Data">The device buffer of elements (output of Read and Gather, input of Write and Scatter).</param>
/// <param name="Indices">The index buffer (AtomicAdd, Gather, Scatter).</param>
/// <param name="SrcVa">The source's virtual address (Read, Gather, StreamCopy).</param>
/// <param name="DstVa">The destination's virtual address (Write, AtomicAdd, Scatter, StreamCopy).</param>
/// <param name="Elements">Elements of the indexed array (AtomicAdd, Gather, Scatter).</param>
/// <param name="Value">The addend (AtomicAdd).</param>
internal readonly record struct KernelPass(
    DeviceOp Op,
    MirrorMmu Mmu,
    WorkList Work,
    ArrayView<ulong> Data,
    ArrayView<int> Indices,
    ulong SrcVa,
    ulong DstVa,
    long Elements,
    ulong Value);
