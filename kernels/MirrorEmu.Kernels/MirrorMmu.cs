using System.Runtime.CompilerServices;
using ILGPU;

namespace MirrorEmu.Kernels;

/// <summary>
/// The device's memory-management unit as a kernel sees it: the device page table, the CPU's frames (reached in
/// place), the fault buffer with its state and dedupe bitmap, the replay mask, and the launch's windows.
/// Passed to every kernel by value.
/// </summary>
/// <remarks>
/// <para>The page table is a pool of 512-entry blocks; block 0 is the root. An entry of levels 3 to 1 is either a
/// directory entry naming the next block or (level 1) a huge leaf; level 0 holds page leaves
/// (<see cref="DevicePte"/>). Frames are viewed as 64-bit elements: page <c>pfn</c>'s element <c>k</c> is
/// <c>Frames[pfn * 512 + k]</c>.</para>
/// <para>Concurrency model:</para> the table is read-only during a pass (the driver changes it only under its
/// lock, between passes). Fault appends are lock-free: a work item sets its page's bit in the dedupe bitmap with
/// Atomic.Or and only the item that set it appends (Atomic.Add on the count gives it a slot); every faulting
/// item sets its own bit in the replay mask with Atomic.Or. Nothing here throws.
/// </remarks>
/// <param name="Table">The table's block pool (block <c>b</c>'s entry <c>i</c> at <c>b * 512 + i</c>).</param>
/// <param name="Frames">Every frame of the CPU's physical memory, as 64-bit elements.</param>
/// <param name="Faults">The fault buffer.</param>
/// <param name="State">The fault buffer's state words (<see cref="FaultBufferState"/>).</param>
/// <param name="Dedupe">The dedupe bitmap (two bits per page of each window).</param>
/// <param name="Replay">One bit per work item of the launch: set when the item faulted and must run again.</param>
/// <param name="Window0">The launch's first window (the source, or the only one).</param>
/// <param name="Window1">The launch's second window (the destination of a copy), or an empty one.</param>
public readonly record struct MirrorMmu(
    ArrayView<ulong> Table,
    ArrayView<ulong> Frames,
    ArrayView<DeviceFault> Faults,
    ArrayView<int> State,
    ArrayView<ulong> Dedupe,
    ArrayView<ulong> Replay,
    MirrorWindow Window0,
    MirrorWindow Window1)
{
    /// <summary>log2 of the bits in one bitmap word.</summary>
    public const int BitmapWordShift = 6;

    /// <summary>Mask of a bit's index inside its word.</summary>
    public const int BitmapBitMask = (1 << BitmapWordShift) - 1;

    /// <summary>
    /// Walks <paramref name="table"/> for <paramref name="va"/>: the leaf that maps its page (for a huge leaf, the
    /// entry of that page inside it), or <see cref="DevicePte.None"/>. The one walker of the device page table:
    /// kernels and the host both use it.
    /// </summary>
    /// <param name="table">A table's block pool.</param>
    /// <param name="va">A virtual address below 2^48.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static DevicePte Walk(ArrayView<ulong> table, ulong va)
    {
        ulong vpn = va >> DeviceGeometry.PageShift;
        long block = 0;
        for (int level = DeviceGeometry.Levels - 1; level > 0; level--)
        {
            var entry = new DevicePte(table[(block << DeviceGeometry.LevelBits) + DeviceGeometry.Index(vpn, level)]);
            if (!entry.IsTable)
            {
                return entry.IsValid ? entry.PageOf(vpn) : DevicePte.None;
            }

            block = (long)entry.Frame;
        }

        return new DevicePte(table[(block << DeviceGeometry.LevelBits) + DeviceGeometry.Index(vpn, 0)]);
    }

    /// <summary>Translates <paramref name="va"/> for an access: the index of its element in <see cref="Frames"/>, or -1
    /// when the page is not mapped, not writable for a write, or not a system frame.</summary>
    /// <param name="va">A virtual address, 8-byte aligned.</param>
    /// <param name="write">True for a store or an atomic.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public long Translate(ulong va, bool write)
    {
        DevicePte leaf = Walk(Table, va);
        if (!leaf.IsValid || (write && !leaf.IsWritable) || leaf.Kind != DeviceFrameKind.System)
        {
            return -1;
        }

        return (long)((leaf.Frame << DeviceGeometry.PageElementShift) | ((va & DeviceGeometry.PageMask) >> DeviceGeometry.ElementShift));
    }

    /// <summary>Translates <paramref name="va"/> for <paramref name="access"/> by <paramref name="item"/>: the element's index in
    /// <see cref="Frames"/>, or -1 after recording the miss (<see cref="Fault"/>). The one miss path of every kernel.</summary>
    /// <param name="va">A virtual address, 8-byte aligned.</param>
    /// <param name="access">What the item does there.</param>
    /// <param name="item">The work item.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public long TranslateOrFault(ulong va, DeviceAccess access, int item)
    {
        long element = Translate(va, access != DeviceAccess.Read);
        if (element < 0)
        {
            Fault(va, access, item);
        }

        return element;
    }

    /// <summary>Translates element <paramref name="index"/> of the array of <paramref name="elements"/> at <paramref name="baseVa"/>
    /// (a gather, scatter or atomic through an index buffer): -1 after recording an error for an index out of range
    /// (<see cref="Error"/>) or a miss, else the element's index in <see cref="Frames"/>.</summary>
    /// <param name="index">The element index the item read from its index buffer.</param>
    /// <param name="baseVa">The array's virtual address, 8-byte aligned.</param>
    /// <param name="elements">Elements of the array.</param>
    /// <param name="access">What the item does there.</param>
    /// <param name="item">The work item.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public long TranslateIndexed(int index, ulong baseVa, long elements, DeviceAccess access, int item)
    {
        if (index < 0 || index >= elements)
        {
            Error(item, FaultBufferState.ErrorIndexOutOfRange, index);
            return -1;
        }

        return TranslateOrFault(baseVa + ((ulong)index << DeviceGeometry.ElementShift), access, item);
    }

    /// <summary>
    /// Records a miss: marks <paramref name="item"/> for replay, and appends (page, access, item) to the fault buffer
    /// unless another work item already did in this pass (the dedupe bitmap), or counts it dropped when the buffer
    /// is full.
    /// </summary>
    /// <param name="va">The address that missed.</param>
    /// <param name="access">What the item was doing.</param>
    /// <param name="item">The work item.</param>
    /// <remarks>The slow path, kept out of line (STYLE.md rule 10) so a kernel's hit path stays small.</remarks>
    [MethodImpl(MethodImplOptions.NoInlining)]
    public void Fault(ulong va, DeviceAccess access, int item)
    {
        Atomic.Or(ref Replay[item >> BitmapWordShift], 1UL << (item & BitmapBitMask));
        ulong page = va >> DeviceGeometry.PageShift;
        bool write = access != DeviceAccess.Read;
        long bit = Window0.Bit(page, write);
        if (bit < 0)
        {
            bit = Window1.Bit(page, write);
        }

        if (bit >= 0)
        {
            long word = bit >> BitmapWordShift;
            ulong mask = 1UL << (int)(bit & BitmapBitMask);
            if ((Dedupe[word] & mask) != 0 || (Atomic.Or(ref Dedupe[word], mask) & mask) != 0)
            {
                return; // another work item appended this page and access in this pass
            }
        }

        int slot = Atomic.Add(ref State[FaultBufferState.Count], 1);
        if (slot < Faults.Length)
        {
            Faults[slot] = new DeviceFault(page, item, access);
        }
        else
        {
            Atomic.Add(ref State[FaultBufferState.Dropped], 1);
        }
    }

    /// <summary>Records an error of <paramref name="item"/> that no fault service can fix (an index out of range); the first
    /// one wins. The item is not marked for replay: the launch ends with the error.</summary>
    /// <param name="item">The work item.</param>
    /// <param name="kind">What went wrong (<see cref="FaultBufferState.ErrorIndexOutOfRange"/>).</param>
    /// <param name="value">The offending value.</param>
    [MethodImpl(MethodImplOptions.NoInlining)]
    public void Error(int item, int kind, int value)
    {
        if (Atomic.CompareExchange(ref State[FaultBufferState.ErrorItem], 0, item + 1) == 0)
        {
            State[FaultBufferState.ErrorKind] = kind;
            State[FaultBufferState.ErrorValue] = value;
        }
    }
}
