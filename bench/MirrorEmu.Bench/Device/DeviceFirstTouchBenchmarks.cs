using BenchmarkDotNet.Attributes;
using MirrorEmu.Device;
using MirrorEmu.Kernels;
using MirrorEmu.Mm;

namespace MirrorEmu.Bench.Device;

/// <summary>
/// Issue 5/7's first-touch target, same run, per element written: the write kernel over 4,096 pages (2 M elements) of a
/// regular VMA whose pages are all missing (<see cref="FirstTouch"/>: every page a device fault, a CPU fault that
/// allocates and zeroes a frame, a replay) at most 3x the same launch over pages the CPU populated beforehand
/// (<see cref="Prepopulated"/>: device faults that find present PTEs), under the Once replay policy (one replay after
/// the fault buffer is drained) and under UVM's default BatchFlush (a replay after each batch of 256 faults, which runs
/// every still-stalled work item again). <see cref="Mirrored"/> is the same launch on a mirror that is already filled
/// (no fault at all), for scale. The direct launcher.
/// </summary>
[BenchmarkCategory(BenchCategories.Fault)]
public class DeviceFirstTouchBenchmarks
{
    public const int Pages = 4096;
    public const int Elements = Pages * DeviceGeometry.PageElements;
    private const ulong Bytes = (ulong)Pages << PageGeometry.PageShift;

    private AddressSpace _mm = null!;
    private DeviceLauncher _launcher = null!;
    private MirrorDevice _once = null!;
    private MirrorDevice _batchFlush = null!;
    private ulong _fresh;              // Once's
    private ulong _populated;          // Once's
    private ulong _freshBatchFlush;    // BatchFlush's own ranges: a range first touched by one device is populated for the other
    private ulong _populatedBatchFlush;
    private ulong _mirrored;
    private ulong[] _values = null!;

    [GlobalSetup]
    public void Setup()
    {
        _mm = new AddressSpace(4UL << 30);
        _mm.MmapAnonymous(Bytes, Prot.ReadWrite, MapFlags.Private, out _fresh).ThrowIfError();
        _mm.MmapAnonymous(Bytes, Prot.ReadWrite, MapFlags.Private, out _populated).ThrowIfError();
        _mm.MmapAnonymous(Bytes, Prot.ReadWrite, MapFlags.Private, out _freshBatchFlush).ThrowIfError();
        _mm.MmapAnonymous(Bytes, Prot.ReadWrite, MapFlags.Private, out _populatedBatchFlush).ThrowIfError();
        _mm.MmapAnonymous(Bytes, Prot.ReadWrite, MapFlags.Private, out _mirrored).ThrowIfError();
        _launcher = DeviceLauncher.Create(LauncherKind.Direct);
        _once = new MirrorDevice(_mm, _launcher, new DeviceOptions { ReplayPolicy = ReplayPolicy.Once, Name = "Once" });
        _batchFlush = new MirrorDevice(_mm, _launcher, new DeviceOptions { ReplayPolicy = ReplayPolicy.BatchFlush, Name = "BatchFlush" });
        _values = new ulong[Elements];
        Array.Fill(_values, 0x5A5AUL);
        _once.LaunchWrite(_mirrored, _values, out _).ThrowIfError();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _once.Dispose();
        _batchFlush.Dispose();
        _launcher.Dispose();
        _mm.Dispose();
    }

    /// <summary>Empties the first range (its frames go back to the pool and the device's entries are invalidated), and
    /// empties then populates the second (present PTEs, no device entries). Every benchmark of the class has it, so all
    /// run in one job and the ratios are against the baseline of the same run.</summary>
    [IterationSetup]
    public void Reset()
    {
        foreach (ulong fresh in new[] { _fresh, _freshBatchFlush })
        {
            _mm.Madvise(fresh, Bytes, Advice.DontNeed).ThrowIfError();
        }

        foreach (ulong populated in new[] { _populated, _populatedBatchFlush })
        {
            _mm.Madvise(populated, Bytes, Advice.DontNeed).ThrowIfError();
            _mm.Madvise(populated, Bytes, Advice.PopulateWrite).ThrowIfError();
        }
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Elements)]
    public long Prepopulated() => Write(_once, _populated);

    [Benchmark(OperationsPerInvoke = Elements)]
    public long FirstTouch() => Write(_once, _fresh);

    [Benchmark(OperationsPerInvoke = Elements)]
    public long PrepopulatedBatchFlush() => Write(_batchFlush, _populatedBatchFlush);

    [Benchmark(OperationsPerInvoke = Elements)]
    public long FirstTouchBatchFlush() => Write(_batchFlush, _freshBatchFlush);

    [Benchmark(OperationsPerInvoke = Elements)]
    public long Mirrored() => Write(_once, _mirrored);

    private long Write(MirrorDevice device, ulong va)
    {
        device.LaunchWrite(va, _values, out LaunchReport report).ThrowIfError();
        return report.PagesMapped;
    }
}
