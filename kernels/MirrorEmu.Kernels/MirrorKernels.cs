using ILGPU;

namespace MirrorEmu.Kernels;

/// <summary>
/// The device's kernels: each work item moves one 64-bit element, and every access to mirrored memory is
/// translated through the device page table (<see cref="MirrorMmu.Translate"/>). A miss or a permission miss is
/// never thrown: the item records it (<see cref="MirrorMmu.Fault"/>), is marked for replay, and does nothing else,
/// so running it again after the driver mapped the page gives the same result as running it once. An item that
/// touches two pages (a copy) checks both before it touches either.
/// </summary>
/// <remarks>
/// ILGPU kernels (STYLE.md rule 18): index first, then views, then by-value constants; no exceptions, no
/// allocation, no recursion. The same methods run on ILGPU's accelerators and, called in a loop, on the
/// <c>direct</c> launcher.
/// </remarks>
public static class MirrorKernels
{
    /// <summary>Loads element <c>item</c> of the mirrored array at <paramref name="srcVa"/> into <c>output[item]</c>.</summary>
    /// <param name="index">The thread's index in the slice.</param>
    /// <param name="mmu">The device MMU.</param>
    /// <param name="work">Which work item the thread runs.</param>
    /// <param name="output">Device memory receiving one element per work item.</param>
    /// <param name="srcVa">The mirrored array's virtual address, 8-byte aligned.</param>
    public static void ReadKernel(Index1D index, MirrorMmu mmu, WorkList work, ArrayView<ulong> output, ulong srcVa)
    {
        int item = work.Item(index);
        ulong va = srcVa + ((ulong)item << DeviceGeometry.ElementShift);
        long element = mmu.Translate(va, write: false);
        if (element < 0)
        {
            mmu.Fault(va, DeviceAccess.Read, item);
            return;
        }

        output[item] = mmu.Frames[element];
    }

    /// <summary>Stores <c>input[item]</c> into element <c>item</c> of the mirrored array at <paramref name="dstVa"/>.</summary>
    /// <param name="index">The thread's index in the slice.</param>
    /// <param name="mmu">The device MMU.</param>
    /// <param name="work">Which work item the thread runs.</param>
    /// <param name="input">Device memory holding one element per work item.</param>
    /// <param name="dstVa">The mirrored array's virtual address, 8-byte aligned.</param>
    public static void WriteKernel(Index1D index, MirrorMmu mmu, WorkList work, ArrayView<ulong> input, ulong dstVa)
    {
        int item = work.Item(index);
        ulong va = dstVa + ((ulong)item << DeviceGeometry.ElementShift);
        long element = mmu.Translate(va, write: true);
        if (element < 0)
        {
            mmu.Fault(va, DeviceAccess.Write, item);
            return;
        }

        mmu.Frames[element] = input[item];
    }

    /// <summary>Atomically adds <paramref name="value"/> to element <c>indices[item]</c> of the mirrored array at
    /// <paramref name="dstVa"/> (a histogram when indices repeat).</summary>
    /// <param name="index">The thread's index in the slice.</param>
    /// <param name="mmu">The device MMU.</param>
    /// <param name="work">Which work item the thread runs.</param>
    /// <param name="indices">Device memory holding one element index per work item.</param>
    /// <param name="dstVa">The mirrored array's virtual address, 8-byte aligned.</param>
    /// <param name="dstElements">Elements in the mirrored array; an index outside [0, dstElements) is an error.</param>
    /// <param name="value">The addend.</param>
    public static void AtomicAddKernel(Index1D index, MirrorMmu mmu, WorkList work, ArrayView<int> indices, ulong dstVa, long dstElements, ulong value)
    {
        int item = work.Item(index);
        int at = indices[item];
        if (at < 0 || at >= dstElements)
        {
            mmu.Error(item, FaultBufferState.ErrorIndexOutOfRange, at);
            return;
        }

        ulong va = dstVa + ((ulong)at << DeviceGeometry.ElementShift);
        long element = mmu.Translate(va, write: true);
        if (element < 0)
        {
            mmu.Fault(va, DeviceAccess.Atomic, item);
            return;
        }

        Atomic.Add(ref mmu.Frames[element], value);
    }

    /// <summary>Loads element <c>indices[item]</c> of the mirrored array at <paramref name="srcVa"/> into <c>output[item]</c>.</summary>
    /// <param name="index">The thread's index in the slice.</param>
    /// <param name="mmu">The device MMU.</param>
    /// <param name="work">Which work item the thread runs.</param>
    /// <param name="indices">Device memory holding one element index per work item.</param>
    /// <param name="output">Device memory receiving one element per work item.</param>
    /// <param name="srcVa">The mirrored array's virtual address, 8-byte aligned.</param>
    /// <param name="srcElements">Elements in the mirrored array; an index outside [0, srcElements) is an error.</param>
    public static void GatherKernel(Index1D index, MirrorMmu mmu, WorkList work, ArrayView<int> indices, ArrayView<ulong> output, ulong srcVa, long srcElements)
    {
        int item = work.Item(index);
        int at = indices[item];
        if (at < 0 || at >= srcElements)
        {
            mmu.Error(item, FaultBufferState.ErrorIndexOutOfRange, at);
            return;
        }

        ulong va = srcVa + ((ulong)at << DeviceGeometry.ElementShift);
        long element = mmu.Translate(va, write: false);
        if (element < 0)
        {
            mmu.Fault(va, DeviceAccess.Read, item);
            return;
        }

        output[item] = mmu.Frames[element];
    }

    /// <summary>Stores <c>input[item]</c> into element <c>indices[item]</c> of the mirrored array at <paramref name="dstVa"/>.</summary>
    /// <param name="index">The thread's index in the slice.</param>
    /// <param name="mmu">The device MMU.</param>
    /// <param name="work">Which work item the thread runs.</param>
    /// <param name="indices">Device memory holding one element index per work item.</param>
    /// <param name="input">Device memory holding one element per work item.</param>
    /// <param name="dstVa">The mirrored array's virtual address, 8-byte aligned.</param>
    /// <param name="dstElements">Elements in the mirrored array; an index outside [0, dstElements) is an error.</param>
    public static void ScatterKernel(Index1D index, MirrorMmu mmu, WorkList work, ArrayView<int> indices, ArrayView<ulong> input, ulong dstVa, long dstElements)
    {
        int item = work.Item(index);
        int at = indices[item];
        if (at < 0 || at >= dstElements)
        {
            mmu.Error(item, FaultBufferState.ErrorIndexOutOfRange, at);
            return;
        }

        ulong va = dstVa + ((ulong)at << DeviceGeometry.ElementShift);
        long element = mmu.Translate(va, write: true);
        if (element < 0)
        {
            mmu.Fault(va, DeviceAccess.Write, item);
            return;
        }

        mmu.Frames[element] = input[item];
    }

    /// <summary>Copies element <c>item</c> of the mirrored array at <paramref name="srcVa"/> to element <c>item</c> of the
    /// one at <paramref name="dstVa"/>, both in place (a streaming copy: no device buffer in between).</summary>
    /// <param name="index">The thread's index in the slice.</param>
    /// <param name="mmu">The device MMU.</param>
    /// <param name="work">Which work item the thread runs.</param>
    /// <param name="srcVa">The source's virtual address, 8-byte aligned.</param>
    /// <param name="dstVa">The destination's virtual address, 8-byte aligned.</param>
    public static void StreamCopyKernel(Index1D index, MirrorMmu mmu, WorkList work, ulong srcVa, ulong dstVa)
    {
        int item = work.Item(index);
        ulong offset = (ulong)item << DeviceGeometry.ElementShift;
        long from = mmu.Translate(srcVa + offset, write: false);
        long to = mmu.Translate(dstVa + offset, write: true);
        if (from < 0 || to < 0)
        {
            if (from < 0)
            {
                mmu.Fault(srcVa + offset, DeviceAccess.Read, item);
            }

            if (to < 0)
            {
                mmu.Fault(dstVa + offset, DeviceAccess.Write, item);
            }

            return;
        }

        mmu.Frames[to] = mmu.Frames[from];
    }
}
