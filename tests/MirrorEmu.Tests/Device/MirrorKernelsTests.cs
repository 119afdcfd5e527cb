using System.Runtime.InteropServices;
using ILGPU;
using MirrorEmu.Device;
using MirrorEmu.Kernels;
using MirrorEmu.Mm;

namespace MirrorEmu.Tests.Device;

/// <summary>The kernels and the device MMU called directly over host views (what the direct launcher does, without the
/// driver): exact per-pass dedupe, a full buffer, replay marks, all-or-nothing copies, and errors recorded, not thrown.</summary>
public sealed class MirrorKernelsTests : IDisposable
{
    private const int PageElements = DeviceGeometry.PageElements;
    private readonly PhysicalMemory _memory = new(64UL << 20);
    private readonly PhysicalMemory _deviceMemory = new(16UL << 20);
    private readonly byte[] _placement = Pinned<byte>(8 * DeviceGeometry.PageElements);
    private readonly DevicePageTable _table = new();
    private readonly ulong[] _faults = Pinned<ulong>(4 * 64); // room for 64 DeviceFault entries (16 bytes each)
    private readonly int[] _state = Pinned<int>(FaultBufferState.Length);
    private readonly ulong[] _dedupe = Pinned<ulong>(64);
    private readonly ulong[] _replay = Pinned<ulong>(64);

    public void Dispose()
    {
        _table.Dispose();
        _memory.Dispose();
        _deviceMemory.Dispose();
    }

    private static T[] Pinned<T>(int n)
        where T : unmanaged => GC.AllocateArray<T>(n, pinned: true);

    private static ArrayView<T> View<T>(T[] pinned)
        where T : unmanaged => HostMemoryBuffer.View<T>(null, Marshal.UnsafeAddrOfPinnedArrayElement(pinned, 0), pinned.Length);

    private ArrayView<ulong> Table => _table.View;

    private ArrayView<ulong> Frames => HostMemoryBuffer.View<ulong>(null, _memory.Arena.BaseAddress, (long)(_memory.Arena.SpanBytes / sizeof(ulong)));

    private ArrayView<ulong> DeviceFrames => HostMemoryBuffer.View<ulong>(null, _deviceMemory.Arena.BaseAddress, (long)(_deviceMemory.Arena.SpanBytes / sizeof(ulong)));

    private ArrayView<byte> Placement => View(_placement);

    /// <summary>A fault sink with one window of <paramref name="pages"/> pages at <paramref name="va"/> (and an optional second)
    /// and a fault buffer of <paramref name="capacity"/> entries.</summary>
    private FaultSink Sink(ulong va, long pages, int capacity = 64, ulong va1 = 0, long pages1 = 0)
    {
        ArrayView<DeviceFault> faults = View(_faults).Cast<DeviceFault>().SubView(0, capacity);
        return new FaultSink(faults, View(_state), View(_dedupe), View(_replay),
            new MirrorWindow(va >> DeviceGeometry.PageShift, pages, 0), new MirrorWindow(va1 >> DeviceGeometry.PageShift, pages1, MirrorWindow.BitsFor(pages)));
    }

    private DeviceFault[] Appended() => [.. MemoryMarshal.Cast<ulong, DeviceFault>(_faults.AsSpan())[..Math.Min(_state[FaultBufferState.Count], 64)]];

    private int Marked() => _replay.Sum(System.Numerics.BitOperations.PopCount);

    private ulong MapPage(ulong va, bool writable, ulong fill)
    {
        Assert.True(_memory.TryAllocate(out ulong pfn));
        MemoryMarshal.Cast<byte, ulong>(_memory.Frame(pfn)).Fill(fill);
        _table.Map(va, DevicePte.SystemFrame(pfn, writable));
        return pfn;
    }

    [Fact]
    public void EachMissingPageAndAccessIsAppendedOncePerPassAndEveryFaultingItemIsMarked()
    {
        ulong va = 0x4000_0000UL;
        FaultSink sink = Sink(va, 3);
        var output = Pinned<ulong>(3 * PageElements);
        for (int i = 0; i < output.Length; i++)
        {
            MirrorKernels.ReadKernel(i, Table, Frames, DeviceFrames, sink, new WorkList(default, 0, 0), Placement, View(output), va);
        }

        DeviceFault[] f = Appended();
        Assert.Equal(3, f.Length);
        Assert.Equal([va >> 12, (va >> 12) + 1, (va >> 12) + 2], f.Select(e => e.Page).Order());
        Assert.All(f, e => Assert.Equal(DeviceAccess.Read, e.Access));
        Assert.Equal(0, f[0].WorkItem % PageElements); // the first item of its page appended it
        Assert.Equal(3 * PageElements, Marked());
        Assert.All(output, v => Assert.Equal(0UL, v)); // a faulting item does nothing else
    }

    [Fact]
    public void AMappedPageIsReadInPlaceAndAReadOnlyPageFaultsForWrites()
    {
        ulong va = 0x4000_0000UL;
        MapPage(va, writable: false, fill: 0x77);
        FaultSink sink = Sink(va, 1);
        var output = Pinned<ulong>(PageElements);
        MirrorKernels.ReadKernel(5, Table, Frames, DeviceFrames, sink, new WorkList(default, 0, 0), Placement, View(output), va);
        Assert.Equal(0x77UL, output[5]);
        Assert.Equal(0, Marked());

        var input = Pinned<ulong>(PageElements);
        MirrorKernels.WriteKernel(5, Table, Frames, DeviceFrames, sink, new WorkList(default, 0, 0), Placement, View(input), va);
        Assert.Equal([new DeviceFault(va >> 12, 5, DeviceAccess.Write)], Appended());
        Assert.Equal(1, Marked());
    }

    [Fact]
    public void AFullBufferCountsDroppedAppendsAndStillMarksTheItems()
    {
        ulong va = 0x4000_0000UL;
        FaultSink sink = Sink(va, 8, capacity: 2);
        var output = Pinned<ulong>(8 * PageElements);
        for (int p = 0; p < 8; p++)
        {
            MirrorKernels.ReadKernel(p * PageElements, Table, Frames, DeviceFrames, sink, new WorkList(default, 0, 0), Placement, View(output), va);
        }

        Assert.Equal(8, _state[FaultBufferState.Count]);
        Assert.Equal(6, _state[FaultBufferState.Dropped]);
        Assert.Equal(8, Marked());
    }

    [Fact]
    public void ACopyChecksBothPagesBeforeTouchingEither()
    {
        ulong src = 0x4000_0000UL;
        ulong dst = 0x8000_0000UL;
        MapPage(src, writable: true, fill: 0x11);
        ulong dstPfn = MapPage(dst, writable: false, fill: 0x22); // mapped, but not for writing
        FaultSink sink = Sink(src, 1, va1: dst, pages1: 1);
        MirrorKernels.StreamCopyKernel(9, Table, Frames, DeviceFrames, sink, new WorkList(default, 0, 0), Placement, src, dst);
        Assert.Equal(0x22UL, MemoryMarshal.Cast<byte, ulong>(_memory.Frame(dstPfn))[9]);
        Assert.Equal([new DeviceFault(dst >> 12, 9, DeviceAccess.Write)], Appended());
    }

    [Fact]
    public void AnIndexOutOfRangeIsRecordedForTheFirstBadItemWithoutThrowing()
    {
        ulong va = 0x4000_0000UL;
        FaultSink sink = Sink(va, 1);
        int[] indices = Pinned<int>(4);
        indices[0] = 1;
        indices[1] = 512;
        indices[2] = -3;
        var output = Pinned<ulong>(4);
        for (int i = 0; i < 3; i++)
        {
            MirrorKernels.GatherKernel(i, Table, Frames, DeviceFrames, sink, new WorkList(default, 0, 0), Placement, View(indices), View(output), va, PageElements);
        }

        Assert.Equal(2, _state[FaultBufferState.ErrorItem]); // item 1, plus one
        Assert.Equal(FaultBufferState.ErrorIndexOutOfRange, _state[FaultBufferState.ErrorKind]);
        Assert.Equal(512, _state[FaultBufferState.ErrorValue]);
        Assert.Equal(1, Marked()); // only item 0 faulted (page not mapped); the bad items are not replayed
    }

    [Fact]
    public void AReplayListRunsOnlyTheListedItems()
    {
        ulong va = 0x4000_0000UL;
        MapPage(va, writable: true, fill: 0);
        FaultSink sink = Sink(va, 1);
        int[] list = Pinned<int>(2);
        list[0] = 7;
        list[1] = 300;
        var input = Pinned<ulong>(PageElements);
        Array.Fill(input, 5UL);
        for (int i = 0; i < list.Length; i++)
        {
            MirrorKernels.WriteKernel(i, Table, Frames, DeviceFrames, sink, new WorkList(View(list), 0, 1), Placement, View(input), va);
        }

        Span<ulong> page = MemoryMarshal.Cast<byte, ulong>(_memory.Frame(_table.Lookup(va).Frame));
        Assert.Equal(2, page.Count(5UL));
        Assert.Equal(5UL, page[7]);
        Assert.Equal(5UL, page[300]);
    }

    [Fact]
    public void ADeviceFrameEntryIsReadAndWrittenInDeviceMemoryAndRecordedAsDevice()
    {
        ulong va = 0x4000_0000UL;
        Assert.True(_deviceMemory.TryAllocate(out ulong frame));
        MemoryMarshal.Cast<byte, ulong>(_deviceMemory.Frame(frame)).Fill(0x99);
        _table.Map(va, DevicePte.DeviceFrame(frame, writable: true));
        MapPage(va + DeviceGeometry.PageSize, writable: true, fill: 0x44);
        Assert.Equal(MirrorMmu.DeviceElement | (long)((frame << DeviceGeometry.PageElementShift) + 3), MirrorMmu.Translate(Table, va + 24, DeviceAccess.Read));
        FaultSink sink = Sink(va, 2);
        var output = Pinned<ulong>(2 * PageElements);
        for (int i = 0; i < output.Length; i++)
        {
            MirrorKernels.ReadKernel(i, Table, Frames, DeviceFrames, sink, new WorkList(default, 0, 0), Placement, View(output), va);
        }

        Assert.All(output.AsSpan(0, PageElements).ToArray(), v => Assert.Equal(0x99UL, v));
        Assert.All(output.AsSpan(PageElements).ToArray(), v => Assert.Equal(0x44UL, v));
        Assert.Equal(PageElements, _placement.AsSpan(0, PageElements).Count(AccessPlacement.ToByte(AccessPlacement.Device)));
        Assert.Equal(PageElements, _placement.AsSpan(PageElements, PageElements).Count(AccessPlacement.ToByte(AccessPlacement.System)));

        var input = Pinned<ulong>(PageElements);
        Array.Fill(input, 7UL);
        MirrorKernels.WriteKernel(11, Table, Frames, DeviceFrames, sink, new WorkList(default, 0, 0), Placement, View(input), va);
        Assert.Equal(7UL, MemoryMarshal.Cast<byte, ulong>(_deviceMemory.Frame(frame))[11]);
        Assert.Equal(0, Marked());
    }

    [Fact]
    public void AnAtomicEntryLetsAtomicsThroughButNotPlainStores()
    {
        ulong va = 0x4000_0000UL;
        Assert.True(_memory.TryAllocate(out ulong pfn));
        _memory.Frame(pfn).Clear();
        _table.Map(va, DevicePte.Atomic(pfn));
        FaultSink sink = Sink(va, 1);
        int[] indices = Pinned<int>(2);
        indices[0] = 4;
        indices[1] = 4;
        for (int i = 0; i < 2; i++)
        {
            MirrorKernels.AtomicAddKernel(i, Table, Frames, DeviceFrames, sink, new WorkList(default, 0, 0), Placement, View(indices), va, PageElements, 5);
        }

        Assert.Equal(10UL, MemoryMarshal.Cast<byte, ulong>(_memory.Frame(pfn))[4]);
        var input = Pinned<ulong>(PageElements);
        MirrorKernels.WriteKernel(3, Table, Frames, DeviceFrames, sink, new WorkList(default, 0, 0), Placement, View(input), va);
        Assert.Equal([new DeviceFault(va >> 12, 3, DeviceAccess.Write)], Appended());
        Assert.Equal(-1, MirrorMmu.Translate(Table, va, DeviceAccess.Write));
        Assert.True(MirrorMmu.Translate(Table, va, DeviceAccess.Atomic) >= 0);
    }
}
