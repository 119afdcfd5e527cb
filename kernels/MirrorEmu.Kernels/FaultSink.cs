using System.Runtime.CompilerServices;
using ILGPU;

namespace MirrorEmu.Kernels;

/// <summary>
/// Where a kernel's misses go: the fault buffer with its state words and dedupe bitmap, the replay mask, and the
/// launch's windows. Passed to every kernel by value; used only on the miss path.
/// </summary>
/// <remarks>
/// <para>Concurrency model:</para> fault appends are lock-free: a work item sets its page's bit in the dedupe bitmap with
/// Atomic.Or and only the item that set it appends (Atomic.Add on the count gives it a slot); every faulting item
/// sets its own bit in the replay mask with Atomic.Or. Nothing here throws.
/// </remarks>
/// <param name="Faults">The fault buffer.</param>
/// <param name="State">The fault buffer's state words (<see cref="FaultBufferState"/>).</param>
/// <param name="Dedupe">The dedupe bitmap (two bits per page of each window).</param>
/// <param name="Replay">One bit per work item of the launch: set when the item faulted and must run again.</param>
/// <param name="Window0">The launch's first window (the source, or the only one).</param>
/// <param name="Window1">The launch's second window (the destination of a copy), or an empty one.</param>
public readonly record struct FaultSink(
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
    /// Records a miss: marks <paramref name="item"/> for replay, and appends (page, access, item) to the fault buffer
    /// unless another work item already did in this pass (the dedupe bitmap), or counts it dropped when the buffer
    /// is full.
    /// </summary>
    /// <param name="va">The address that missed.</param>
    /// <param name="access">What the item was doing.</param>
    /// <param name="item">The work item.</param>
    /// <remarks>The slow path, kept out of line so a kernel's hit path stays small.</remarks>
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
