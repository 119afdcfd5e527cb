using System.Runtime.CompilerServices;
using ILGPU;

namespace MirrorEmu.Kernels;

/// <summary>
/// The device's kernels: each work item moves one 64-bit element, and every access to mirrored memory is
/// translated through the device page table (<see cref="MirrorMmu.Translate"/>) to a frame of the CPU's memory, in
/// place, or of the device's own memory. A miss or a permission miss is never thrown: the item records it
/// (<see cref="FaultSink.Fault"/>), is marked for replay, and does nothing else, so running it again after the driver
/// mapped the page gives the same result as running it once. An item that touches two pages (a copy) checks both before
/// it touches either.
/// </summary>
/// <remarks>
/// ILGPU kernels: index first, then views, then by-value constants; no exceptions, no
/// allocation, no recursion. Each kernel is an entry (<c>…Kernel</c>) around an item method that does the work of one
/// work item and returns where its accesses went (a count word of <see cref="AccessPlacement"/>, 0 when it faulted): the
/// entry stores it as the item's placement byte, which the launch counts at its end. The <c>direct</c> launcher calls the
/// item methods in its loops and adds the words up in a register instead (a byte store per item cost it a quarter of its
/// rate: bench Device/DeviceAccessBenchmarks.DirectOneThread); both count the same accesses. Everything is AggressiveInlining,
/// which ILGPU ignores (without it every call copied its view arguments).
/// </remarks>
public static class MirrorKernels
{
    /// <summary>Loads element <c>item</c> of the mirrored array at <paramref name="srcVa"/> into <c>output[item]</c>.</summary>
    /// <param name="index">The thread's index in the slice.</param>
    /// <param name="table">The device page table's block pool.</param>
    /// <param name="frames">Every frame of the CPU's memory, as 64-bit elements.</param>
    /// <param name="deviceFrames">Every frame of the device's own memory, as 64-bit elements.</param>
    /// <param name="faults">Where misses go.</param>
    /// <param name="work">Which work item the thread runs.</param>
    /// <param name="placement">One byte per work item: where its accesses went (<see cref="AccessPlacement"/>).</param>
    /// <param name="output">Device memory receiving one element per work item.</param>
    /// <param name="srcVa">The mirrored array's virtual address, 8-byte aligned.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void ReadKernel(Index1D index, ArrayView<ulong> table, ArrayView<ulong> frames, ArrayView<ulong> deviceFrames, FaultSink faults, WorkList work, ArrayView<byte> placement, ArrayView<ulong> output, ulong srcVa)
    {
        int item = work.Item(index);
        Record(placement, item, Read(item, table, frames, deviceFrames, faults, output, srcVa));
    }

    /// <summary>Work item <paramref name="item"/> of <see cref="ReadKernel"/>.</summary>
    /// <param name="item">The work item.</param>
    /// <param name="table">The device page table's block pool.</param>
    /// <param name="frames">Every frame of the CPU's memory.</param>
    /// <param name="deviceFrames">Every frame of the device's own memory.</param>
    /// <param name="faults">Where misses go.</param>
    /// <param name="output">Device memory receiving one element per work item.</param>
    /// <param name="srcVa">The mirrored array's virtual address.</param>
    /// <returns>Where the access went (a count word of <see cref="AccessPlacement"/>), or 0 when it faulted.</returns>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static long Read(int item, ArrayView<ulong> table, ArrayView<ulong> frames, ArrayView<ulong> deviceFrames, FaultSink faults, ArrayView<ulong> output, ulong srcVa)
    {
        long element = MirrorMmu.TranslateOrFault(table, faults, srcVa + ((ulong)item << DeviceGeometry.ElementShift), DeviceAccess.Read, item);
        if (element < 0)
        {
            return 0;
        }

        output[item] = MirrorMmu.Load(frames, deviceFrames, element);
        return MirrorMmu.Placement(element);
    }

    /// <summary>Stores <c>input[item]</c> into element <c>item</c> of the mirrored array at <paramref name="dstVa"/>.</summary>
    /// <param name="index">The thread's index in the slice.</param>
    /// <param name="table">The device page table's block pool.</param>
    /// <param name="frames">Every frame of the CPU's memory, as 64-bit elements.</param>
    /// <param name="deviceFrames">Every frame of the device's own memory, as 64-bit elements.</param>
    /// <param name="faults">Where misses go.</param>
    /// <param name="work">Which work item the thread runs.</param>
    /// <param name="placement">One byte per work item: where its accesses went (<see cref="AccessPlacement"/>).</param>
    /// <param name="input">Device memory holding one element per work item.</param>
    /// <param name="dstVa">The mirrored array's virtual address, 8-byte aligned.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void WriteKernel(Index1D index, ArrayView<ulong> table, ArrayView<ulong> frames, ArrayView<ulong> deviceFrames, FaultSink faults, WorkList work, ArrayView<byte> placement, ArrayView<ulong> input, ulong dstVa)
    {
        int item = work.Item(index);
        Record(placement, item, Write(item, table, frames, deviceFrames, faults, input, dstVa));
    }

    /// <summary>Work item <paramref name="item"/> of <see cref="WriteKernel"/>.</summary>
    /// <param name="item">The work item.</param>
    /// <param name="table">The device page table's block pool.</param>
    /// <param name="frames">Every frame of the CPU's memory.</param>
    /// <param name="deviceFrames">Every frame of the device's own memory.</param>
    /// <param name="faults">Where misses go.</param>
    /// <param name="input">Device memory holding one element per work item.</param>
    /// <param name="dstVa">The mirrored array's virtual address.</param>
    /// <returns>Where the access went, or 0 when it faulted.</returns>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static long Write(int item, ArrayView<ulong> table, ArrayView<ulong> frames, ArrayView<ulong> deviceFrames, FaultSink faults, ArrayView<ulong> input, ulong dstVa)
    {
        long element = MirrorMmu.TranslateOrFault(table, faults, dstVa + ((ulong)item << DeviceGeometry.ElementShift), DeviceAccess.Write, item);
        if (element < 0)
        {
            return 0;
        }

        MirrorMmu.Store(frames, deviceFrames, element, input[item]);
        return MirrorMmu.Placement(element);
    }

    /// <summary>Atomically adds <paramref name="value"/> to element <c>indices[item]</c> of the mirrored array at
    /// <paramref name="dstVa"/> (a histogram when indices repeat).</summary>
    /// <param name="index">The thread's index in the slice.</param>
    /// <param name="table">The device page table's block pool.</param>
    /// <param name="frames">Every frame of the CPU's memory, as 64-bit elements.</param>
    /// <param name="deviceFrames">Every frame of the device's own memory, as 64-bit elements.</param>
    /// <param name="faults">Where misses go.</param>
    /// <param name="work">Which work item the thread runs.</param>
    /// <param name="placement">One byte per work item: where its accesses went (<see cref="AccessPlacement"/>).</param>
    /// <param name="indices">Device memory holding one element index per work item.</param>
    /// <param name="dstVa">The mirrored array's virtual address, 8-byte aligned.</param>
    /// <param name="dstElements">Elements in the mirrored array; an index outside [0, dstElements) is an error.</param>
    /// <param name="value">The addend.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void AtomicAddKernel(Index1D index, ArrayView<ulong> table, ArrayView<ulong> frames, ArrayView<ulong> deviceFrames, FaultSink faults, WorkList work, ArrayView<byte> placement, ArrayView<int> indices, ulong dstVa, long dstElements, ulong value)
    {
        int item = work.Item(index);
        Record(placement, item, AtomicAdd(item, table, frames, deviceFrames, faults, indices, dstVa, dstElements, value));
    }

    /// <summary>Work item <paramref name="item"/> of <see cref="AtomicAddKernel"/>.</summary>
    /// <param name="item">The work item.</param>
    /// <param name="table">The device page table's block pool.</param>
    /// <param name="frames">Every frame of the CPU's memory.</param>
    /// <param name="deviceFrames">Every frame of the device's own memory.</param>
    /// <param name="faults">Where misses and errors go.</param>
    /// <param name="indices">One element index per work item.</param>
    /// <param name="dstVa">The mirrored array's virtual address.</param>
    /// <param name="dstElements">Elements in the mirrored array.</param>
    /// <param name="value">The addend.</param>
    /// <returns>Where the access went, or 0 when it faulted or its index was out of range.</returns>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static long AtomicAdd(int item, ArrayView<ulong> table, ArrayView<ulong> frames, ArrayView<ulong> deviceFrames, FaultSink faults, ArrayView<int> indices, ulong dstVa, long dstElements, ulong value)
    {
        long element = MirrorMmu.TranslateIndexed(table, faults, indices[item], dstVa, dstElements, DeviceAccess.Atomic, item);
        if (element < 0)
        {
            return 0;
        }

        MirrorMmu.AtomicAdd(frames, deviceFrames, element, value);
        return MirrorMmu.Placement(element);
    }

    /// <summary>Loads element <c>indices[item]</c> of the mirrored array at <paramref name="srcVa"/> into <c>output[item]</c>.</summary>
    /// <param name="index">The thread's index in the slice.</param>
    /// <param name="table">The device page table's block pool.</param>
    /// <param name="frames">Every frame of the CPU's memory, as 64-bit elements.</param>
    /// <param name="deviceFrames">Every frame of the device's own memory, as 64-bit elements.</param>
    /// <param name="faults">Where misses go.</param>
    /// <param name="work">Which work item the thread runs.</param>
    /// <param name="placement">One byte per work item: where its accesses went (<see cref="AccessPlacement"/>).</param>
    /// <param name="indices">Device memory holding one element index per work item.</param>
    /// <param name="output">Device memory receiving one element per work item.</param>
    /// <param name="srcVa">The mirrored array's virtual address, 8-byte aligned.</param>
    /// <param name="srcElements">Elements in the mirrored array; an index outside [0, srcElements) is an error.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void GatherKernel(Index1D index, ArrayView<ulong> table, ArrayView<ulong> frames, ArrayView<ulong> deviceFrames, FaultSink faults, WorkList work, ArrayView<byte> placement, ArrayView<int> indices, ArrayView<ulong> output, ulong srcVa, long srcElements)
    {
        int item = work.Item(index);
        Record(placement, item, Gather(item, table, frames, deviceFrames, faults, indices, output, srcVa, srcElements));
    }

    /// <summary>Work item <paramref name="item"/> of <see cref="GatherKernel"/>.</summary>
    /// <param name="item">The work item.</param>
    /// <param name="table">The device page table's block pool.</param>
    /// <param name="frames">Every frame of the CPU's memory.</param>
    /// <param name="deviceFrames">Every frame of the device's own memory.</param>
    /// <param name="faults">Where misses and errors go.</param>
    /// <param name="indices">One element index per work item.</param>
    /// <param name="output">Device memory receiving one element per work item.</param>
    /// <param name="srcVa">The mirrored array's virtual address.</param>
    /// <param name="srcElements">Elements in the mirrored array.</param>
    /// <returns>Where the access went, or 0 when it faulted or its index was out of range.</returns>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static long Gather(int item, ArrayView<ulong> table, ArrayView<ulong> frames, ArrayView<ulong> deviceFrames, FaultSink faults, ArrayView<int> indices, ArrayView<ulong> output, ulong srcVa, long srcElements)
    {
        long element = MirrorMmu.TranslateIndexed(table, faults, indices[item], srcVa, srcElements, DeviceAccess.Read, item);
        if (element < 0)
        {
            return 0;
        }

        output[item] = MirrorMmu.Load(frames, deviceFrames, element);
        return MirrorMmu.Placement(element);
    }

    /// <summary>Stores <c>input[item]</c> into element <c>indices[item]</c> of the mirrored array at <paramref name="dstVa"/>.</summary>
    /// <param name="index">The thread's index in the slice.</param>
    /// <param name="table">The device page table's block pool.</param>
    /// <param name="frames">Every frame of the CPU's memory, as 64-bit elements.</param>
    /// <param name="deviceFrames">Every frame of the device's own memory, as 64-bit elements.</param>
    /// <param name="faults">Where misses go.</param>
    /// <param name="work">Which work item the thread runs.</param>
    /// <param name="placement">One byte per work item: where its accesses went (<see cref="AccessPlacement"/>).</param>
    /// <param name="indices">Device memory holding one element index per work item.</param>
    /// <param name="input">Device memory holding one element per work item.</param>
    /// <param name="dstVa">The mirrored array's virtual address, 8-byte aligned.</param>
    /// <param name="dstElements">Elements in the mirrored array; an index outside [0, dstElements) is an error.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void ScatterKernel(Index1D index, ArrayView<ulong> table, ArrayView<ulong> frames, ArrayView<ulong> deviceFrames, FaultSink faults, WorkList work, ArrayView<byte> placement, ArrayView<int> indices, ArrayView<ulong> input, ulong dstVa, long dstElements)
    {
        int item = work.Item(index);
        Record(placement, item, Scatter(item, table, frames, deviceFrames, faults, indices, input, dstVa, dstElements));
    }

    /// <summary>Work item <paramref name="item"/> of <see cref="ScatterKernel"/>.</summary>
    /// <param name="item">The work item.</param>
    /// <param name="table">The device page table's block pool.</param>
    /// <param name="frames">Every frame of the CPU's memory.</param>
    /// <param name="deviceFrames">Every frame of the device's own memory.</param>
    /// <param name="faults">Where misses and errors go.</param>
    /// <param name="indices">One element index per work item.</param>
    /// <param name="input">Device memory holding one element per work item.</param>
    /// <param name="dstVa">The mirrored array's virtual address.</param>
    /// <param name="dstElements">Elements in the mirrored array.</param>
    /// <returns>Where the access went, or 0 when it faulted or its index was out of range.</returns>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static long Scatter(int item, ArrayView<ulong> table, ArrayView<ulong> frames, ArrayView<ulong> deviceFrames, FaultSink faults, ArrayView<int> indices, ArrayView<ulong> input, ulong dstVa, long dstElements)
    {
        long element = MirrorMmu.TranslateIndexed(table, faults, indices[item], dstVa, dstElements, DeviceAccess.Write, item);
        if (element < 0)
        {
            return 0;
        }

        MirrorMmu.Store(frames, deviceFrames, element, input[item]);
        return MirrorMmu.Placement(element);
    }

    /// <summary>Copies element <c>item</c> of the mirrored array at <paramref name="srcVa"/> to element <c>item</c> of the
    /// one at <paramref name="dstVa"/>, both in place (a streaming copy: no device buffer in between).</summary>
    /// <param name="index">The thread's index in the slice.</param>
    /// <param name="table">The device page table's block pool.</param>
    /// <param name="frames">Every frame of the CPU's memory, as 64-bit elements.</param>
    /// <param name="deviceFrames">Every frame of the device's own memory, as 64-bit elements.</param>
    /// <param name="faults">Where misses go.</param>
    /// <param name="work">Which work item the thread runs.</param>
    /// <param name="placement">One byte per work item: where its accesses went (<see cref="AccessPlacement"/>).</param>
    /// <param name="srcVa">The source's virtual address, 8-byte aligned.</param>
    /// <param name="dstVa">The destination's virtual address, 8-byte aligned.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void StreamCopyKernel(Index1D index, ArrayView<ulong> table, ArrayView<ulong> frames, ArrayView<ulong> deviceFrames, FaultSink faults, WorkList work, ArrayView<byte> placement, ulong srcVa, ulong dstVa)
    {
        int item = work.Item(index);
        Record(placement, item, StreamCopy(item, table, frames, deviceFrames, faults, srcVa, dstVa));
    }

    /// <summary>Work item <paramref name="item"/> of <see cref="StreamCopyKernel"/>.</summary>
    /// <param name="item">The work item.</param>
    /// <param name="table">The device page table's block pool.</param>
    /// <param name="frames">Every frame of the CPU's memory.</param>
    /// <param name="deviceFrames">Every frame of the device's own memory.</param>
    /// <param name="faults">Where misses go.</param>
    /// <param name="srcVa">The source's virtual address.</param>
    /// <param name="dstVa">The destination's virtual address.</param>
    /// <returns>The count words of both accesses added up, or 0 when either faulted.</returns>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static long StreamCopy(int item, ArrayView<ulong> table, ArrayView<ulong> frames, ArrayView<ulong> deviceFrames, FaultSink faults, ulong srcVa, ulong dstVa)
    {
        ulong offset = (ulong)item << DeviceGeometry.ElementShift;
        long from = MirrorMmu.TranslateOrFault(table, faults, srcVa + offset, DeviceAccess.Read, item);
        long to = MirrorMmu.TranslateOrFault(table, faults, dstVa + offset, DeviceAccess.Write, item); // both checked before either is touched
        if (from < 0 || to < 0)
        {
            return 0;
        }

        MirrorMmu.Store(frames, deviceFrames, to, MirrorMmu.Load(frames, deviceFrames, from));
        return MirrorMmu.Placement(from) + MirrorMmu.Placement(to);
    }

    /// <summary>Stores a completed item's placement byte (nothing for an item that faulted: its byte stays 0 until its replay).</summary>
    /// <param name="placement">The launch's placement bytes.</param>
    /// <param name="item">The work item.</param>
    /// <param name="word">What the item method returned.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Record(ArrayView<byte> placement, int item, long word)
    {
        if (word != 0)
        {
            placement[item] = AccessPlacement.ToByte(word);
        }
    }
}
