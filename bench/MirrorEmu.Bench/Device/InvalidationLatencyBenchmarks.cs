using System.Globalization;
using BenchmarkDotNet.Attributes;
using MirrorEmu.Device;
using MirrorEmu.Kernels;
using MirrorEmu.Mm;

namespace MirrorEmu.Bench.Device;

/// <summary>
/// Issue 5/7's invalidation latency during a running launch: an mprotect (one PROTECTION_VMA invalidation, same
/// protection) of a page while a background thread runs read launches back to back over 4,096 mirrored pages, against
/// the same mprotect in an address space whose device is idle. Each operation first sleeps 1 ms, so that the
/// invalidations come one at a time into a launch that is running (back to back they would starve it of the CPU).
/// A blocking invalidation waits for the slice in flight (at most one slice: <see cref="SliceItems"/> work items),
/// never for the whole launch. The global cleanup prints the device callback's own latency (p50, p99, from
/// <see cref="MirrorDevice.InvalidationLatencyDuringLaunch"/>) beside the slices' (<see cref="MirrorDevice.SliceDuration"/>),
/// both Stopwatch samples, and the launches the background thread completed. The direct launcher.
/// </summary>
[BenchmarkCategory(BenchCategories.Invalidate)]
public class InvalidationLatencyBenchmarks
{
    public const int Pages = 4096;
    private const ulong Bytes = (ulong)Pages << PageGeometry.PageShift;

    private AddressSpace _busy = null!;
    private AddressSpace _idle = null!;
    private DeviceLauncher _launcher = null!;
    private MirrorDevice _busyDevice = null!;
    private MirrorDevice _idleDevice = null!;
    private ulong _busyRange;
    private ulong _busyPage;
    private ulong _idlePage;
    private Thread _background = null!;
    private volatile bool _stop;
    private long _launches;

    /// <summary>Work items per slice (the most an invalidation waits for).</summary>
    [Params(4096, 65536)]
    public int SliceItems { get; set; } = 65536;

    [GlobalSetup]
    public void Setup()
    {
        _launcher = DeviceLauncher.Create(LauncherKind.Direct);
        var options = new DeviceOptions { SliceItems = SliceItems };
        _busy = new AddressSpace(1UL << 30);
        _busy.MmapAnonymous(Bytes, Prot.ReadWrite, MapFlags.Private | MapFlags.Populate, out _busyRange).ThrowIfError();
        _busy.MmapAnonymous(PageGeometry.PageSize, Prot.ReadWrite, MapFlags.Private | MapFlags.Populate, out _busyPage).ThrowIfError();
        _busyDevice = new MirrorDevice(_busy, _launcher, options with { Name = "busy" });
        _idle = new AddressSpace(1UL << 30);
        _idle.MmapAnonymous(PageGeometry.PageSize, Prot.ReadWrite, MapFlags.Private | MapFlags.Populate, out _idlePage).ThrowIfError();
        _idleDevice = new MirrorDevice(_idle, _launcher, options with { Name = "idle" });
        var output = new ulong[Pages * DeviceGeometry.PageElements];
        _busyDevice.LaunchRead(_busyRange, output, out _).ThrowIfError();
        _background = new Thread(() =>
        {
            while (!_stop)
            {
                _busyDevice.LaunchRead(_busyRange, output, out _).ThrowIfError();
                Interlocked.Increment(ref _launches);
            }
        }) { IsBackground = true, Name = "device launches" };
        _background.Start();
        SpinWait.SpinUntil(() => _busyDevice.LaunchesRunning > 0, 10_000);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _stop = true;
        _background.Join();
        LatencyRecorder during = _busyDevice.InvalidationLatencyDuringLaunch;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"// SliceItems={SliceItems}: invalidate callback during a launch: p50 {during.Percentile(0.5)?.TotalMicroseconds:F1} µs, p99 {during.Percentile(0.99)?.TotalMicroseconds:F1} µs over the last {Math.Min(during.Count, LatencyRecorder.Capacity)} of {during.Count} samples; " +
            $"slices: p50 {_busyDevice.SliceDuration.Percentile(0.5)?.TotalMicroseconds:F1} µs, p99 {_busyDevice.SliceDuration.Percentile(0.99)?.TotalMicroseconds:F1} µs; idle callback p50 {_idleDevice.InvalidationLatency.Percentile(0.5)?.TotalMicroseconds:F1} µs; {_launches} background launches"));
        _busyDevice.Dispose();
        _idleDevice.Dispose();
        _launcher.Dispose();
        _busy.Dispose();
        _idle.Dispose();
    }

    [Benchmark(Baseline = true)]
    public KResult InvalidateIdle()
    {
        Thread.Sleep(1);
        return _idle.Mprotect(_idlePage, PageGeometry.PageSize, Prot.ReadWrite);
    }

    [Benchmark]
    public KResult InvalidateDuringLaunch()
    {
        Thread.Sleep(1);
        return _busy.Mprotect(_busyPage, PageGeometry.PageSize, Prot.ReadWrite);
    }
}
