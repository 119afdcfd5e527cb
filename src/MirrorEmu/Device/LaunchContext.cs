using System.Diagnostics;
using System.Numerics;
using ILGPU;
using MirrorEmu.Kernels;

namespace MirrorEmu.Device;

/// <summary>
/// The state of one launch: the fault buffer and its state words, the dedupe bitmap, the replay mask and list (all
/// shared with the kernels through the device's <see cref="LauncherBinding"/>), the staged data buffers, the
/// driver's pending entries, and the launch's own counters. Reused from launch to launch; the arrays only grow.
/// </summary>
/// <remarks>Owned by one launch at a time: no field is shared between threads, except the arrays with the kernels of
/// a pass, which the launch's thread waits for.</remarks>
internal sealed class LaunchContext : IDisposable
{
    private readonly bool _recordsPlacement; // the kernels store placement bytes (false: the launcher counts accesses itself)

    /// <summary>Creates the arrays on <paramref name="binding"/>.</summary>
    /// <param name="binding">The device's launcher binding.</param>
    /// <param name="faultBufferEntries">Entries of the fault buffer.</param>
    public LaunchContext(LauncherBinding binding, int faultBufferEntries)
    {
        Faults = binding.Allocate<DeviceFault>();
        State = binding.Allocate<int>();
        Dedupe = binding.Allocate<ulong>();
        Replay = binding.Allocate<ulong>();
        ReplayList = binding.Allocate<int>();
        StageData = binding.Allocate<ulong>();
        StageIndices = binding.Allocate<int>();
        Placement = binding.Allocate<byte>();
        _recordsPlacement = !binding.CountsAccesses;
        Faults.EnsureLength(faultBufferEntries);
        State.EnsureLength(FaultBufferState.Length);
        FaultCapacity = faultBufferEntries;
    }

    /// <summary>The fault buffer.</summary>
    public DeviceArray<DeviceFault> Faults { get; }

    /// <summary>Entries the fault buffer holds.</summary>
    public int FaultCapacity { get; }

    /// <summary>The fault buffer's state words.</summary>
    public DeviceArray<int> State { get; }

    /// <summary>The dedupe bitmap.</summary>
    public DeviceArray<ulong> Dedupe { get; }

    /// <summary>The replay mask, one bit per work item.</summary>
    public DeviceArray<ulong> Replay { get; }

    /// <summary>The replay list: the marked work items of the last pass.</summary>
    public DeviceArray<int> ReplayList { get; }

    /// <summary>One byte per work item: where its accesses went (<see cref="AccessPlacement"/>), written by the kernels.</summary>
    public DeviceArray<byte> Placement { get; }

    /// <summary>Staging for the launch's element buffer (accelerators that cannot reach caller memory).</summary>
    public DeviceArray<ulong> StageData { get; }

    /// <summary>Staging for the launch's index buffer.</summary>
    public DeviceArray<int> StageIndices { get; }

    /// <summary>The kernel.</summary>
    public DeviceOp Op { get; private set; }

    /// <summary>Work items of the launch.</summary>
    public int Items { get; private set; }

    /// <summary>The first window (source, or the only one).</summary>
    public MirrorWindow Window0 { get; private set; }

    /// <summary>The second window (a copy's destination), or an empty one.</summary>
    public MirrorWindow Window1 { get; private set; }

    /// <summary>Words of the replay mask in use.</summary>
    public int ReplayWords => (Items + FaultSink.BitmapBitMask) >> FaultSink.BitmapWordShift;

    /// <summary>Words of the dedupe bitmap in use.</summary>
    public long DedupeWords { get; private set; }

    /// <summary>The kernel's element buffer view.</summary>
    public ArrayView<ulong> Data { get; set; }

    /// <summary>The kernel's index buffer view.</summary>
    public ArrayView<int> Indices { get; set; }

    /// <summary>The source address.</summary>
    public ulong SrcVa { get; set; }

    /// <summary>The destination address.</summary>
    public ulong DstVa { get; set; }

    /// <summary>Elements of the indexed array.</summary>
    public long Elements { get; set; }

    /// <summary>The addend.</summary>
    public ulong Value { get; set; }

    /// <summary>True when the last pass marked work items for replay (its mask is downloaded).</summary>
    public bool Marked { get; set; }

    /// <summary>The driver's pending entries, sorted by <see cref="DeviceFault.SortKey"/>, at [PendingStart, PendingEnd).</summary>
    public DeviceFault[] Pending { get; set; } = new DeviceFault[DeviceGeometry.BlockEntries];

    /// <summary>Scratch for merging fetched entries into the pending ones.</summary>
    public DeviceFault[] Merge { get; set; } = new DeviceFault[DeviceGeometry.BlockEntries];

    /// <summary>The batch being serviced (a copy out of <see cref="Pending"/>).</summary>
    public DeviceFault[] Batch { get; set; } = new DeviceFault[DeviceGeometry.BlockEntries];

    /// <summary>The driver's fill callback for this launch (made once per context, so a run allocates no delegate).</summary>
    public Action<MirrorEmu.Hmm.HmmRange>? Fill { get; set; }

    /// <summary>First pending entry.</summary>
    public int PendingStart { get; set; }

    /// <summary>One past the last pending entry.</summary>
    public int PendingEnd { get; set; }

    /// <summary>The launch's counters (added to the device's at the end).</summary>
    public long[] Stats { get; } = new long[Enum.GetValues<DeviceEvent>().Length];

    /// <summary>Sets up a launch of <paramref name="op"/> over <paramref name="items"/> work items touching the windows.</summary>
    /// <param name="op">The kernel.</param>
    /// <param name="items">Work items, above 0.</param>
    /// <param name="srcPage">First page of window 0.</param>
    /// <param name="srcPages">Pages of window 0.</param>
    /// <param name="dstPage">First page of window 1.</param>
    /// <param name="dstPages">Pages of window 1 (0: none).</param>
    public void Begin(DeviceOp op, int items, ulong srcPage, long srcPages, ulong dstPage, long dstPages)
    {
        Debug.Assert(items > 0, "a launch has work items");
        Op = op;
        Items = items;
        Window0 = new MirrorWindow(srcPage, srcPages, 0);
        Window1 = new MirrorWindow(dstPage, dstPages, MirrorWindow.BitsFor(srcPages));
        long bits = MirrorWindow.BitsFor(srcPages) + MirrorWindow.BitsFor(dstPages);
        DedupeWords = (bits + FaultSink.BitmapBitMask) >> FaultSink.BitmapWordShift;
        Dedupe.EnsureLength(DedupeWords);
        Dedupe.Clear(0, DedupeWords);
        Replay.EnsureLength(ReplayWords);
        Replay.Clear(0, ReplayWords);
        if (_recordsPlacement)
        {
            Placement.EnsureLength(items);
            Placement.Clear(0, items);
        }
        State.Clear(0, FaultBufferState.Length);
        Marked = false;
        PendingStart = PendingEnd = 0;
        Array.Clear(Stats);
        Data = default;
        Indices = default;
        SrcVa = DstVa = Value = 0;
        Elements = 0;
    }

    /// <summary>Adds to one of the launch's counters.</summary>
    /// <param name="e">The counter.</param>
    /// <param name="count">How many.</param>
    public void Count(DeviceEvent e, long count = 1) => Stats[(int)e] += count;

    /// <summary>The launch's counter <paramref name="e"/>.</summary>
    /// <param name="e">The counter.</param>
    public long this[DeviceEvent e] => Stats[(int)e];

    /// <summary>Writes the marked work items of the downloaded replay mask into the replay list (uploaded) and clears the
    /// mask on both sides.</summary>
    /// <param name="useList">False when every item is marked (the replay runs the identity; no list is needed).</param>
    /// <returns>Marked items.</returns>
    public int TakeMarked(out bool useList)
    {
        Span<ulong> mask = Replay.Host[..ReplayWords];
        int marked = 0;
        foreach (ulong w in mask)
        {
            marked += BitOperations.PopCount(w);
        }

        useList = marked != Items;
        if (useList && marked > 0)
        {
            ReplayList.EnsureLength(marked);
            Span<int> list = ReplayList.Host;
            int n = 0;
            for (int w = 0; w < mask.Length; w++)
            {
                ulong bits = mask[w];
                while (bits != 0)
                {
                    list[n++] = (w << FaultSink.BitmapWordShift) + BitOperations.TrailingZeroCount(bits);
                    bits &= bits - 1;
                }
            }

            ReplayList.Upload(0, marked);
        }

        Replay.Clear(0, ReplayWords);
        Marked = false;
        return marked;
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        Faults.Dispose();
        State.Dispose();
        Dedupe.Dispose();
        Replay.Dispose();
        ReplayList.Dispose();
        StageData.Dispose();
        StageIndices.Dispose();
        Placement.Dispose();
    }

    /// <summary>Counts where the launch's accesses went (after its last pass): downloads the placement bytes and adds
    /// <see cref="DeviceEvent.AccessesSystem"/> and <see cref="DeviceEvent.AccessesDevice"/>.</summary>
    public void CountPlacement()
    {
        if (!_recordsPlacement)
        {
            return; // counted pass by pass (the direct launcher)
        }

        Placement.Download(0, Items);
        ReadOnlySpan<byte> bytes = Placement.Host[..Items];
        long system = 0;
        long device = 0;
        for (int value = 1; value < 1 << (2 * AccessPlacement.ByteDeviceShift); value++)
        {
            int n = bytes.Count((byte)value); // a vectorized count of each byte a launch can produce (most are absent)
            system += (long)n * (value & 3);
            device += (long)n * (value >> AccessPlacement.ByteDeviceShift);
        }

        Count(DeviceEvent.AccessesSystem, system);
        Count(DeviceEvent.AccessesDevice, device);
    }
}
