using BenchmarkDotNet.Attributes;
using MirrorEmu.Device;
using MirrorEmu.Kernels;
using MirrorEmu.Mm;

namespace MirrorEmu.Bench.Device;

/// <summary>
/// Issue 13's access target, same run, per access: the read and write kernels over 4,096 pages that were migrated to the
/// device's memory (<see cref="ReadDevicePages"/>, <see cref="WriteDevicePages"/>: device page-table entries of device
/// frames) against the same kernels over 4,096 system pages reached in place (<see cref="ReadSystemPages"/>, the
/// baseline, and <see cref="WriteSystemPages"/>), both mirrors already filled (no fault). On the CPU paths the device's
/// memory is host memory too, so the two should be equal within 10 %; on a GPU the ratio is the gap that makes drivers
/// migrate. The direct launcher, one thread (the like-for-like comparison), and the launch's counters confirm where the
/// accesses went.
/// </summary>
[BenchmarkCategory(BenchCategories.Kernel)]
public class DeviceResidentAccessBenchmarks
{
    public const int Pages = 4096;
    public const int Elements = Pages * DeviceGeometry.PageElements;
    private const ulong Bytes = (ulong)Pages << PageGeometry.PageShift;

    private AddressSpace _mm = null!;
    private DeviceLauncher _launcher = null!;
    private MirrorDevice _device = null!;
    private ulong _system;
    private ulong _resident;
    private ulong[] _buffer = null!;

    [GlobalSetup]
    public void Setup()
    {
        _mm = new AddressSpace(1UL << 30);
        _mm.MmapAnonymous(Bytes, Prot.ReadWrite, MapFlags.Private | MapFlags.Populate, out _system).ThrowIfError();
        _mm.MmapAnonymous(Bytes, Prot.ReadWrite, MapFlags.Private | MapFlags.Populate, out _resident).ThrowIfError();
        for (int p = 0; p < Pages; p++)
        {
            _mm.CpuWriteUInt64(_system + ((ulong)p << PageGeometry.PageShift), (ulong)p);
            _mm.CpuWriteUInt64(_resident + ((ulong)p << PageGeometry.PageShift), (ulong)p);
        }

        _launcher = new DirectLauncher(maxDegreeOfParallelism: 1);
        _device = new MirrorDevice(_mm, _launcher, new DeviceOptions { DeviceMemoryBytes = Bytes, Name = "resident" });
        _device.MigrateToDevice(_resident, Pages, out ulong moved).ThrowIfError();
        _buffer = new ulong[Elements];
        _device.LaunchRead(_system, _buffer, out _).ThrowIfError(); // fill the mirror of the system pages
        _device.LaunchRead(_resident, _buffer, out LaunchReport resident).ThrowIfError();
        _device.LaunchRead(_system, _buffer, out LaunchReport system).ThrowIfError();
        if (moved != Pages || resident.AccessesDevice != Elements || system.AccessesSystem != Elements || resident.FaultsAppended != 0 || system.FaultsAppended != 0
            || _buffer[(Pages - 1) * DeviceGeometry.PageElements] != Pages - 1)
        {
            throw new InvalidOperationException("the pages are not where the benchmark needs them, or a launch faulted");
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _device.Dispose();
        _launcher.Dispose();
        _mm.Dispose();
    }

    /// <summary>Reads 2 M elements of system pages in place.</summary>
    [Benchmark(Baseline = true, OperationsPerInvoke = Elements)]
    public long ReadSystemPages() => Read(_system);

    /// <summary>Reads 2 M elements of device-resident pages.</summary>
    [Benchmark(OperationsPerInvoke = Elements)]
    public long ReadDevicePages() => Read(_resident);

    /// <summary>Writes 2 M elements of system pages in place.</summary>
    [Benchmark(OperationsPerInvoke = Elements)]
    public long WriteSystemPages() => Write(_system);

    /// <summary>Writes 2 M elements of device-resident pages.</summary>
    [Benchmark(OperationsPerInvoke = Elements)]
    public long WriteDevicePages() => Write(_resident);

    private long Read(ulong va)
    {
        _device.LaunchRead(va, _buffer, out LaunchReport report).ThrowIfError();
        return report.AccessesDevice;
    }

    private long Write(ulong va)
    {
        _device.LaunchWrite(va, _buffer, out LaunchReport report).ThrowIfError();
        return report.AccessesDevice;
    }
}
