using System.Runtime.CompilerServices;
using ILGPU;

namespace MirrorEmu.Kernels;

/// <summary>
/// The device's memory-management unit as a kernel uses it: the walk of the device page table and the translation
/// of an access to an element of the CPU's frames, reached in place, or of the device's own memory. Static functions over the views a kernel gets
/// as parameters (so the JIT keeps the views in registers on the direct launcher), and the miss path that records
/// into a <see cref="FaultSink"/>.
/// </summary>
/// <remarks>
/// The page table is a pool of 512-entry blocks; block 0 is the root. An entry of levels 3 to 1 is either a
/// directory entry naming the next block or (level 1) a huge leaf; level 0 holds page leaves
/// (<see cref="DevicePte"/>). Frames are viewed as 64-bit elements: page <c>pfn</c>'s element <c>k</c> is
/// <c>frames[pfn * 512 + k]</c>, and device frame <c>f</c>'s is <c>deviceFrames[f * 512 + k]</c>. The table is read-only during a pass (the driver changes it only under its lock,
/// between passes). Nothing here throws.
/// </remarks>
public static class MirrorMmu
{
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

    /// <summary>Marks an element index returned by <see cref="Translate"/> as one of the device-frames view rather than of
    /// the CPU's frames (bit 62: an element index never reaches it).</summary>
    public const long DeviceElement = 1L << 62;

    /// <summary>Translates <paramref name="va"/> for <paramref name="access"/>: the index of its element in the frames view,
    /// or, with <see cref="DeviceElement"/> set, in the device-frames view; -1 when the page is not mapped or the entry
    /// does not allow the access (<see cref="DevicePte.Allows"/>).</summary>
    /// <param name="table">The device page table's block pool.</param>
    /// <param name="va">A virtual address, 8-byte aligned.</param>
    /// <param name="access">What the item does there.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static long Translate(ArrayView<ulong> table, ulong va, DeviceAccess access)
    {
        DevicePte leaf = Walk(table, va);
        if (!leaf.Allows(access))
        {
            return -1;
        }

        long element = (long)((leaf.Frame << DeviceGeometry.PageElementShift) | ((va & DeviceGeometry.PageMask) >> DeviceGeometry.ElementShift));
        return leaf.Kind == DeviceFrameKind.Device ? element | DeviceElement : element;
    }

    /// <summary>Loads the element <see cref="Translate"/> returned: from the device's memory or the CPU's frames.</summary>
    /// <param name="frames">Every frame of the CPU's memory.</param>
    /// <param name="deviceFrames">Every frame of the device's memory.</param>
    /// <param name="element">A non-negative result of <see cref="Translate"/>.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Load(ArrayView<ulong> frames, ArrayView<ulong> deviceFrames, long element) =>
        (element & DeviceElement) != 0 ? deviceFrames[element ^ DeviceElement] : frames[element];

    /// <summary>Stores into the element <see cref="Translate"/> returned.</summary>
    /// <param name="frames">Every frame of the CPU's memory.</param>
    /// <param name="deviceFrames">Every frame of the device's memory.</param>
    /// <param name="element">A non-negative result of <see cref="Translate"/>.</param>
    /// <param name="value">The value.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(ArrayView<ulong> frames, ArrayView<ulong> deviceFrames, long element, ulong value)
    {
        if ((element & DeviceElement) != 0)
        {
            deviceFrames[element ^ DeviceElement] = value;
        }
        else
        {
            frames[element] = value;
        }
    }

    /// <summary>Atomically adds to the element <see cref="Translate"/> returned.</summary>
    /// <param name="frames">Every frame of the CPU's memory.</param>
    /// <param name="deviceFrames">Every frame of the device's memory.</param>
    /// <param name="element">A non-negative result of <see cref="Translate"/>.</param>
    /// <param name="value">The addend.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void AtomicAdd(ArrayView<ulong> frames, ArrayView<ulong> deviceFrames, long element, ulong value)
    {
        if ((element & DeviceElement) != 0)
        {
            Atomic.Add(ref deviceFrames[element ^ DeviceElement], value);
        }
        else
        {
            Atomic.Add(ref frames[element], value);
        }
    }

    /// <summary>The count word of the access to the element <see cref="Translate"/> returned:
    /// <see cref="AccessPlacement.System"/> or <see cref="AccessPlacement.Device"/>.</summary>
    /// <param name="element">A non-negative result of <see cref="Translate"/>.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static long Placement(long element) => 1L << (int)((element >> 62) << 5);

    /// <summary>Translates <paramref name="va"/> for <paramref name="access"/> by <paramref name="item"/>: the element's index in
    /// the frames view, or -1 after recording the miss (<see cref="FaultSink.Fault"/>). The one miss path of every kernel.</summary>
    /// <param name="table">The device page table's block pool.</param>
    /// <param name="sink">Where misses go.</param>
    /// <param name="va">A virtual address, 8-byte aligned.</param>
    /// <param name="access">What the item does there.</param>
    /// <param name="item">The work item.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static long TranslateOrFault(ArrayView<ulong> table, FaultSink sink, ulong va, DeviceAccess access, int item)
    {
        long element = Translate(table, va, access);
        if (element < 0)
        {
            sink.Fault(va, access, item);
        }

        return element;
    }

    /// <summary>Translates element <paramref name="index"/> of the array of <paramref name="elements"/> at <paramref name="baseVa"/>
    /// (a gather, scatter or atomic through an index buffer): -1 after recording an error for an index out of range
    /// (<see cref="FaultSink.Error"/>) or a miss, else the element's index in the frames view.</summary>
    /// <param name="table">The device page table's block pool.</param>
    /// <param name="sink">Where misses and errors go.</param>
    /// <param name="index">The element index the item read from its index buffer.</param>
    /// <param name="baseVa">The array's virtual address, 8-byte aligned.</param>
    /// <param name="elements">Elements of the array.</param>
    /// <param name="access">What the item does there.</param>
    /// <param name="item">The work item.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static long TranslateIndexed(ArrayView<ulong> table, FaultSink sink, int index, ulong baseVa, long elements, DeviceAccess access, int item)
    {
        if (index < 0 || index >= elements)
        {
            sink.Error(item, FaultBufferState.ErrorIndexOutOfRange, index);
            return -1;
        }

        return TranslateOrFault(table, sink, baseVa + ((ulong)index << DeviceGeometry.ElementShift), access, item);
    }
}
