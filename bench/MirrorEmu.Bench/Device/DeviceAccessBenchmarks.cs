using BenchmarkDotNet.Attributes;
using ILGPU;
using MirrorEmu.Device;
using MirrorEmu.Kernels;
using MirrorEmu.Mm;

namespace MirrorEmu.Bench.Device;

/// <summary>
/// Issue 5/7's access-rate target, same run: the <c>direct</c> launcher's translated accesses per second at least 50 % of a
/// plain C# loop doing the same lookups (the same 4-level walk of the same device page table) and the same copies over
/// the same memory, on a mirror that is already filled (no faults). <see cref="DirectOneThread"/> is the direct launcher
/// held to one thread, the like-for-like comparison; <see cref="PlainParallel"/> is the plain loop split over the cores
/// the way the direct launcher splits its work; <see cref="IlgpuCpu"/> is ILGPU's CPU
/// accelerator running the same kernel, on a smaller buffer (it is about 100x slower), per access.
/// </summary>
[BenchmarkCategory(BenchCategories.Kernel)]
public unsafe class DeviceAccessBenchmarks
{
    public const int Pages = 4096;
    public const int Elements = Pages * DeviceGeometry.PageElements;
    public const int CpuElements = 16 * DeviceGeometry.PageElements;

    private AddressSpace _mm = null!;
    private DeviceLauncher _direct = null!;
    private DeviceLauncher _directOneThread = null!;
    private MirrorDevice _directOneThreadDevice = null!;
    private DeviceLauncher _cpu = null!;
    private MirrorDevice _directDevice = null!;
    private MirrorDevice _cpuDevice = null!;
    private ulong _va;
    private ulong[] _output = null!;
    private ulong[] _cpuOutput = null!;
    private ArrayView<ulong> _frames;
    private ArrayView<ulong> _outputView;

    [GlobalSetup]
    public void Setup()
    {
        _mm = new AddressSpace(1UL << 30);
        _mm.MmapAnonymous((ulong)Pages << PageGeometry.PageShift, Prot.ReadWrite, MapFlags.Private | MapFlags.Populate, out _va).ThrowIfError();
        for (int p = 0; p < Pages; p++)
        {
            _mm.CpuWriteUInt64(_va + ((ulong)p << PageGeometry.PageShift), (ulong)p);
        }

        _direct = DeviceLauncher.Create(LauncherKind.Direct);
        _directOneThread = new DirectLauncher(maxDegreeOfParallelism: 1);
        _cpu = DeviceLauncher.Create(LauncherKind.Cpu);
        _directDevice = new MirrorDevice(_mm, _direct);
        _directOneThreadDevice = new MirrorDevice(_mm, _directOneThread);
        _cpuDevice = new MirrorDevice(_mm, _cpu);
        _output = GC.AllocateArray<ulong>(Elements, pinned: true);
        _outputView = HostMemoryBuffer.View<ulong>(null, System.Runtime.InteropServices.Marshal.UnsafeAddrOfPinnedArrayElement(_output, 0), Elements);
        _frames = HostMemoryBuffer.View<ulong>(null, _mm.Memory.Arena.BaseAddress, (long)(_mm.Memory.Arena.SpanBytes >> DeviceGeometry.ElementShift));
        _cpuOutput = new ulong[CpuElements];
        _directDevice.LaunchRead(_va, _output, out _).ThrowIfError(); // fill the mirrors
        _directOneThreadDevice.LaunchRead(_va, _output, out _).ThrowIfError();
        _cpuDevice.LaunchRead(_va, _cpuOutput, out _).ThrowIfError();
        // Both paths must read what the CPU wrote: the last page's first element holds its page number.
        if (PlainLoop() != Pages - 1 || Direct() != Pages - 1 || IlgpuCpu() != (CpuElements / DeviceGeometry.PageElements) - 1)
        {
            throw new InvalidOperationException("a benchmark path read something other than what the CPU wrote");
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _directDevice.Dispose();
        _directOneThreadDevice.Dispose();
        _cpuDevice.Dispose();
        _direct.Dispose();
        _directOneThread.Dispose();
        _cpu.Dispose();
        _mm.Dispose();
    }

    /// <summary>The walk of <see cref="MirrorMmu.Walk"/> and the copy of the read kernel, over raw pointers, on one thread.</summary>
    [Benchmark(Baseline = true, OperationsPerInvoke = Elements)]
    public ulong PlainLoop()
    {
        Translate(0, Elements);
        return _output[(Pages - 1) * DeviceGeometry.PageElements];
    }

    /// <summary>The plain loop through ILGPU views instead of pointers (the walk of <see cref="MirrorMmu.Walk"/>, the frame
    /// read and the output write each through an ArrayView indexer), one thread: what the views themselves cost.</summary>
    [Benchmark(OperationsPerInvoke = Elements)]
    public ulong PlainLoopOverViews()
    {
        ArrayView<ulong> table = _directDevice.Table.View;
        ArrayView<ulong> frames = _frames;
        ArrayView<ulong> output = _outputView;
        for (int i = 0; i < Elements; i++)
        {
            ulong va = _va + ((ulong)i << DeviceGeometry.ElementShift);
            DevicePte leaf = MirrorMmu.Walk(table, va);
            output[i] = frames[(long)((leaf.Frame << DeviceGeometry.PageElementShift) | ((va & DeviceGeometry.PageMask) >> DeviceGeometry.ElementShift))];
        }

        return _output[(Pages - 1) * DeviceGeometry.PageElements];
    }

    /// <summary>The plain loop split over the cores in chunks of 4,096 elements, as the direct launcher splits its work.</summary>
    [Benchmark(OperationsPerInvoke = Elements)]
    public ulong PlainParallel()
    {
        Parallel.For(0, Elements / 4096, c => Translate(c * 4096, 4096));
        return _output[(Pages - 1) * DeviceGeometry.PageElements];
    }

    /// <summary>The read kernel on the direct launcher: a full launch (slices, driver lock, fault-buffer check).</summary>
    [Benchmark(OperationsPerInvoke = Elements)]
    public ulong Direct()
    {
        _directDevice.LaunchRead(_va, _output, out _).ThrowIfError();
        return _output[(Pages - 1) * DeviceGeometry.PageElements];
    }

    /// <summary>The read kernel on the direct launcher held to one thread: the same work as <see cref="PlainLoop"/>.</summary>
    [Benchmark(OperationsPerInvoke = Elements)]
    public ulong DirectOneThread()
    {
        _directOneThreadDevice.LaunchRead(_va, _output, out _).ThrowIfError();
        return _output[(Pages - 1) * DeviceGeometry.PageElements];
    }

    /// <summary>The read kernel on ILGPU's CPU accelerator, over 16 pages.</summary>
    [Benchmark(OperationsPerInvoke = CpuElements)]
    public ulong IlgpuCpu()
    {
        _cpuDevice.LaunchRead(_va, _cpuOutput, out _).ThrowIfError();
        return _cpuOutput[CpuElements - DeviceGeometry.PageElements];
    }

    private void Translate(int start, int count)
    {
        ReadOnlySpan<ulong> poolSpan = _directDevice.Table.Pool;
        fixed (ulong* pool = poolSpan)
        fixed (ulong* output = _output)
        {
            var frames = (ulong*)_mm.Memory.Arena.BaseAddress;
            for (int i = start; i < start + count; i++)
            {
                ulong va = _va + ((ulong)i << DeviceGeometry.ElementShift);
                ulong vpn = va >> DeviceGeometry.PageShift;
                long block = 0;
                DevicePte leaf = DevicePte.None;
                for (int level = DeviceGeometry.Levels - 1; level >= 0; level--)
                {
                    leaf = new DevicePte(pool[(block << DeviceGeometry.LevelBits) + DeviceGeometry.Index(vpn, level)]);
                    if (!leaf.IsTable)
                    {
                        leaf = leaf.PageOf(vpn);
                        break;
                    }

                    block = (long)leaf.Frame;
                }

                if (!leaf.IsValid)
                {
                    throw new InvalidOperationException($"va=0x{va:X} is not mirrored");
                }

                output[i] = frames[(leaf.Frame << DeviceGeometry.PageElementShift) | ((va & DeviceGeometry.PageMask) >> DeviceGeometry.ElementShift)];
            }
        }
    }
}
