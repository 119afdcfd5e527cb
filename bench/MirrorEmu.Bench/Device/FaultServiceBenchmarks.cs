using BenchmarkDotNet.Attributes;
using MirrorEmu.Device;
using MirrorEmu.Kernels;
using MirrorEmu.Mm;

namespace MirrorEmu.Bench.Device;

/// <summary>
/// Issue 5/7's fault-servicing cost per page, by fault batch size (1, 16, 256, 1,024) and replay policy: one work item per
/// page (a gather of each page's first element) over 4,096 pages whose CPU PTEs are present but which the device does not
/// mirror (the iteration setup invalidates them with an mprotect that changes nothing else), so every page is one device
/// fault and the time is the driver's: fetch, sort, batches, runs of hmm_range_fault, fills, replays. The direct launcher.
/// </summary>
[BenchmarkCategory(BenchCategories.Fault)]
public class FaultServiceBenchmarks
{
    public const int Pages = 4096;
    private const ulong Bytes = (ulong)Pages << PageGeometry.PageShift;

    private AddressSpace _mm = null!;
    private DeviceLauncher _launcher = null!;
    private readonly Dictionary<ReplayPolicy, MirrorDevice> _devices = [];
    private ulong _va;
    private int[] _indices = null!;
    private ulong[] _output = null!;

    /// <summary>Fault entries per batch.</summary>
    [Params(1, 16, 256, 1024)]
    public int BatchSize { get; set; } = 256;

    [GlobalSetup]
    public void Setup()
    {
        _mm = new AddressSpace(1UL << 30);
        _mm.MmapAnonymous(Bytes, Prot.ReadWrite, MapFlags.Private | MapFlags.Populate, out _va).ThrowIfError();
        _launcher = DeviceLauncher.Create(LauncherKind.Direct);
        foreach (ReplayPolicy policy in Enum.GetValues<ReplayPolicy>())
        {
            _devices[policy] = new MirrorDevice(_mm, _launcher, new DeviceOptions { FaultBatchSize = BatchSize, ReplayPolicy = policy, Name = $"{policy} device" });
        }

        _indices = [.. Enumerable.Range(0, Pages).Select(p => p * DeviceGeometry.PageElements)];
        _output = new ulong[Pages];
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        foreach (MirrorDevice device in _devices.Values)
        {
            device.Dispose();
        }

        _launcher.Dispose();
        _mm.Dispose();
    }

    /// <summary>Clears every device's mirror of the range: read-only and back (two PROTECTION_VMA invalidations; Linux, and
    /// so the emulator, raises none for an mprotect that changes nothing). The CPU PTEs stay present, read-only.</summary>
    [IterationSetup]
    public void Invalidate()
    {
        _mm.Mprotect(_va, Bytes, Prot.Read).ThrowIfError();
        _mm.Mprotect(_va, Bytes, Prot.ReadWrite).ThrowIfError();
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Pages)]
    public long BatchFlush() => Gather(ReplayPolicy.BatchFlush);

    [Benchmark(OperationsPerInvoke = Pages)]
    public long Batch() => Gather(ReplayPolicy.Batch);

    [Benchmark(OperationsPerInvoke = Pages)]
    public long Block() => Gather(ReplayPolicy.Block);

    [Benchmark(OperationsPerInvoke = Pages)]
    public long Once() => Gather(ReplayPolicy.Once);

    private long Gather(ReplayPolicy policy)
    {
        _devices[policy].LaunchGather(_va, (long)Pages * DeviceGeometry.PageElements, _indices, _output, out LaunchReport report).ThrowIfError();
        if (report.PagesMapped != Pages)
        {
            throw new InvalidOperationException($"{policy}: mapped {report.PagesMapped} pages, expected {Pages} (the setup did not invalidate)");
        }

        return report.Replays;
    }
}
