using System.Runtime.CompilerServices;
using ILGPU;

namespace MirrorEmu.Kernels;

/// <summary>
/// The device's kernels: each work item moves one 64-bit element, and every access to mirrored memory is
/// translated through the device page table (<see cref="MirrorMmu.Translate"/>). A miss or a permission miss is
/// never thrown: the item records it (<see cref="FaultSink.Fault"/>), is marked for replay, and does nothing else,
/// so running it again after the driver mapped the page gives the same result as running it once. An item that
/// touches two pages (a copy) checks both before it touches either.
/// </summary>
/// <remarks>
/// ILGPU kernels: index first, then views, then by-value constants; no exceptions, no
/// allocation, no recursion. The same methods run on ILGPU's accelerators and, called in a loop, on the
/// <c>direct</c> launcher, which inlines them into its loops (AggressiveInlining, which ILGPU ignores; without it every
/// call copied its view arguments: see bench Device/DeviceAccessBenchmarks.DirectOneThread).
/// </remarks>
public static class MirrorKernels
{
    /// <summary>Loads element <c>item</c> of the mirrored array at <paramref name="srcVa"/> into <c>output[item]</c>.</summary>
    /// <param name="index">The thread's index in the slice.</param>
    /// <param name="table">The device page table's block pool.</param>
    /// <param name="frames">Every frame of the CPU's memory, as 64-bit elements.</param>
    /// <param name="faults">Where misses go.</param>
    /// <param name="work">Which work item the thread runs.</param>
    /// <param name="output">Device memory receiving one element per work item.</param>
    /// <param name="srcVa">The mirrored array's virtual address, 8-byte aligned.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void ReadKernel(Index1D index, ArrayView<ulong> table, ArrayView<ulong> frames, FaultSink faults, WorkList work, ArrayView<ulong> output, ulong srcVa)
    {
        int item = work.Item(index);
        long element = MirrorMmu.TranslateOrFault(table, faults, srcVa + ((ulong)item << DeviceGeometry.ElementShift), DeviceAccess.Read, item);
        if (element >= 0)
        {
            output[item] = frames[element];
        }
    }

    /// <summary>Stores <c>input[item]</c> into element <c>item</c> of the mirrored array at <paramref name="dstVa"/>.</summary>
    /// <param name="index">The thread's index in the slice.</param>
    /// <param name="table">The device page table's block pool.</param>
    /// <param name="frames">Every frame of the CPU's memory, as 64-bit elements.</param>
    /// <param name="faults">Where misses go.</param>
    /// <param name="work">Which work item the thread runs.</param>
    /// <param name="input">Device memory holding one element per work item.</param>
    /// <param name="dstVa">The mirrored array's virtual address, 8-byte aligned.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void WriteKernel(Index1D index, ArrayView<ulong> table, ArrayView<ulong> frames, FaultSink faults, WorkList work, ArrayView<ulong> input, ulong dstVa)
    {
        int item = work.Item(index);
        long element = MirrorMmu.TranslateOrFault(table, faults, dstVa + ((ulong)item << DeviceGeometry.ElementShift), DeviceAccess.Write, item);
        if (element >= 0)
        {
            frames[element] = input[item];
        }
    }

    /// <summary>Atomically adds <paramref name="value"/> to element <c>indices[item]</c> of the mirrored array at
    /// <paramref name="dstVa"/> (a histogram when indices repeat).</summary>
    /// <param name="index">The thread's index in the slice.</param>
    /// <param name="table">The device page table's block pool.</param>
    /// <param name="frames">Every frame of the CPU's memory, as 64-bit elements.</param>
    /// <param name="faults">Where misses go.</param>
    /// <param name="work">Which work item the thread runs.</param>
    /// <param name="indices">Device memory holding one element index per work item.</param>
    /// <param name="dstVa">The mirrored array's virtual address, 8-byte aligned.</param>
    /// <param name="dstElements">Elements in the mirrored array; an index outside [0, dstElements) is an error.</param>
    /// <param name="value">The addend.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void AtomicAddKernel(Index1D index, ArrayView<ulong> table, ArrayView<ulong> frames, FaultSink faults, WorkList work, ArrayView<int> indices, ulong dstVa, long dstElements, ulong value)
    {
        int item = work.Item(index);
        long element = MirrorMmu.TranslateIndexed(table, faults, indices[item], dstVa, dstElements, DeviceAccess.Atomic, item);
        if (element >= 0)
        {
            Atomic.Add(ref frames[element], value);
        }
    }

    /// <summary>Loads element <c>indices[item]</c> of the mirrored array at <paramref name="srcVa"/> into <c>output[item]</c>.</summary>
    /// <param name="index">The thread's index in the slice.</param>
    /// <param name="table">The device page table's block pool.</param>
    /// <param name="frames">Every frame of the CPU's memory, as 64-bit elements.</param>
    /// <param name="faults">Where misses go.</param>
    /// <param name="work">Which work item the thread runs.</param>
    /// <param name="indices">Device memory holding one element index per work item.</param>
    /// <param name="output">Device memory receiving one element per work item.</param>
    /// <param name="srcVa">The mirrored array's virtual address, 8-byte aligned.</param>
    /// <param name="srcElements">Elements in the mirrored array; an index outside [0, srcElements) is an error.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void GatherKernel(Index1D index, ArrayView<ulong> table, ArrayView<ulong> frames, FaultSink faults, WorkList work, ArrayView<int> indices, ArrayView<ulong> output, ulong srcVa, long srcElements)
    {
        int item = work.Item(index);
        long element = MirrorMmu.TranslateIndexed(table, faults, indices[item], srcVa, srcElements, DeviceAccess.Read, item);
        if (element >= 0)
        {
            output[item] = frames[element];
        }
    }

    /// <summary>Stores <c>input[item]</c> into element <c>indices[item]</c> of the mirrored array at <paramref name="dstVa"/>.</summary>
    /// <param name="index">The thread's index in the slice.</param>
    /// <param name="table">The device page table's block pool.</param>
    /// <param name="frames">Every frame of the CPU's memory, as 64-bit elements.</param>
    /// <param name="faults">Where misses go.</param>
    /// <param name="work">Which work item the thread runs.</param>
    /// <param name="indices">Device memory holding one element index per work item.</param>
    /// <param name="input">Device memory holding one element per work item.</param>
    /// <param name="dstVa">The mirrored array's virtual address, 8-byte aligned.</param>
    /// <param name="dstElements">Elements in the mirrored array; an index outside [0, dstElements) is an error.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void ScatterKernel(Index1D index, ArrayView<ulong> table, ArrayView<ulong> frames, FaultSink faults, WorkList work, ArrayView<int> indices, ArrayView<ulong> input, ulong dstVa, long dstElements)
    {
        int item = work.Item(index);
        long element = MirrorMmu.TranslateIndexed(table, faults, indices[item], dstVa, dstElements, DeviceAccess.Write, item);
        if (element >= 0)
        {
            frames[element] = input[item];
        }
    }

    /// <summary>Copies element <c>item</c> of the mirrored array at <paramref name="srcVa"/> to element <c>item</c> of the
    /// one at <paramref name="dstVa"/>, both in place (a streaming copy: no device buffer in between).</summary>
    /// <param name="index">The thread's index in the slice.</param>
    /// <param name="table">The device page table's block pool.</param>
    /// <param name="frames">Every frame of the CPU's memory, as 64-bit elements.</param>
    /// <param name="faults">Where misses go.</param>
    /// <param name="work">Which work item the thread runs.</param>
    /// <param name="srcVa">The source's virtual address, 8-byte aligned.</param>
    /// <param name="dstVa">The destination's virtual address, 8-byte aligned.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void StreamCopyKernel(Index1D index, ArrayView<ulong> table, ArrayView<ulong> frames, FaultSink faults, WorkList work, ulong srcVa, ulong dstVa)
    {
        int item = work.Item(index);
        ulong offset = (ulong)item << DeviceGeometry.ElementShift;
        long from = MirrorMmu.TranslateOrFault(table, faults, srcVa + offset, DeviceAccess.Read, item);
        long to = MirrorMmu.TranslateOrFault(table, faults, dstVa + offset, DeviceAccess.Write, item); // both checked before either is touched
        if (from >= 0 && to >= 0)
        {
            frames[to] = frames[from];
        }
    }
}
