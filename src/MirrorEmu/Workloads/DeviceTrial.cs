using MirrorEmu.Device;
using MirrorEmu.Kernels;
using MirrorEmu.Mm;
using MirrorEmu.Telemetry;

namespace MirrorEmu.Workloads;

/// <summary>
/// One trial of the device comparison: a fresh private anonymous range (2 MiB aligned, so monitor blocks and the driver's
/// 2 MiB runs line up) in its own address space over a shared frame pool, registered with userfaultfd and served by a
/// monitor under a userfaultfd policy, and a <see cref="MirrorDevice"/> whose atomic-add kernel runs the workload's items
/// over it: every item faults through the fault buffer, the driver's batches, hmm_range_fault and the policy.
/// </summary>
public sealed class DeviceTrial : ICompareTrial
{
    /// <summary>What each work item adds to its element.</summary>
    public const ulong Addend = 1;

    private readonly MonitoredRange? _uffd;
    private readonly WorkItems _items;
    private readonly ComparePolicy _policy;
    private readonly byte _fill;
    private LaunchReport _report;

    /// <summary>Sets the trial up (untimed).</summary>
    /// <param name="memory">The frame pool (a contiguous arena, as a launcher needs).</param>
    /// <param name="launcher">The launcher the device runs on.</param>
    /// <param name="options">The comparison's options (batch sizes, replay policy, fill byte).</param>
    /// <param name="policy">The row.</param>
    /// <param name="items">The work items; their range size is the range's.</param>
    public DeviceTrial(PhysicalMemory memory, DeviceLauncher launcher, ComparisonOptions options, ComparePolicy policy, WorkItems items)
    {
        ArgumentNullException.ThrowIfNull(options);
        _items = items ?? throw new ArgumentNullException(nameof(items));
        _policy = policy;
        _fill = policy == ComparePolicy.Regular ? (byte)0 : options.FillByte;
        Mm = new AddressSpace(memory);
        try
        {
            ulong bytes = (ulong)items.RangePages << PageGeometry.PageShift;
            Start = MapAligned(Mm, bytes);
            if (policy.ToUffd() is { } p)
            {
                _uffd = new MonitoredRange(Mm, Start, bytes, ComparePolicies.MonitorResolution(p), options.FillByte, options.MonitorBatch);
            }

            Device = new MirrorDevice(Mm, launcher, new DeviceOptions
            {
                FaultBatchSize = options.FaultBatch,
                ReplayPolicy = options.Replay,
                UffdPolicy = policy.ToUffd() ?? Hmm.UffdFaultPolicy.SinglePage,
            });
        }
        catch
        {
            _uffd?.Dispose();
            Mm.Dispose();
            throw;
        }
    }

    /// <summary>The address space.</summary>
    public AddressSpace Mm { get; }

    /// <summary>The device.</summary>
    public MirrorDevice Device { get; }

    /// <summary>The range's start (2 MiB aligned).</summary>
    public ulong Start { get; }

    /// <summary>The launch's report (after <see cref="Run"/>).</summary>
    public LaunchReport Report => _report;

    /// <inheritdoc/>
    public KResult Run(CancellationToken cancellation) =>
        Device.LaunchAtomicAdd(Start, (long)_items.RangePages * WorkItems.ElementsPerPage, _items.Elements, Addend, out _report, cancellation);

    /// <inheritdoc/>
    public TrialCounters Counters => new(
        Pages: _items.TouchedPages,
        DeviceFaults: Device.Counters[DeviceEvent.FaultsAppended],
        FaultBatches: Device.Counters[DeviceEvent.Batches],
        Replays: Device.Counters[DeviceEvent.Replays],
        Runs: Device.Counters[DeviceEvent.Runs],
        RoundTrips: Device.Counters[DeviceEvent.HmmRoundTrips],
        EbusyRestarts: Device.Counters[DeviceEvent.HmmEbusyRestarts],
        Walks: Device.Counters[DeviceEvent.HmmWalks],
        LockDrops: Device.Counters[DeviceEvent.HmmLockDrops],
        PagesFaulted: Device.Counters[DeviceEvent.HmmPagesFaulted],
        PagesCopied: _uffd?.Context.Stats[UffdStat.PagesCopied] ?? 0);

    /// <inheritdoc/>
    /// <remarks>Besides every byte, checks that the device maps each touched page to the very frame the CPU maps,
    /// writable.</remarks>
    public string? Verify() => RangeCheck.Verify(Mm, Start, RangeExpectation.After(_items, Addend), _fill, requireWritable: true, (va, pfn) =>
    {
        DevicePte pte = Device.Lookup(va);
        return pte.IsValid && pte.IsWritable && pte.Frame == pfn
            ? null
            : $"{_policy.Name()}: the device maps page 0x{va:X16} as {pte}, not the CPU's frame 0x{pfn:X} writable";
    });

    /// <summary>Maps <paramref name="bytes"/> of private anonymous memory starting on a 2 MiB boundary: maps 2 MiB more and
    /// unmaps the slack on either side.</summary>
    /// <param name="mm">The address space.</param>
    /// <param name="bytes">Page-aligned length.</param>
    /// <returns>The start.</returns>
    public static ulong MapAligned(AddressSpace mm, ulong bytes)
    {
        ArgumentNullException.ThrowIfNull(mm);
        mm.MmapAnonymous(bytes + PageGeometry.PmdSize, Prot.ReadWrite, MapFlags.Private, out ulong raw).ThrowIfError();
        ulong start = (raw + PageGeometry.PmdMask) & ~PageGeometry.PmdMask;
        if (start > raw)
        {
            mm.Munmap(raw, start - raw).ThrowIfError();
        }

        ulong tail = raw + bytes + PageGeometry.PmdSize - (start + bytes);
        if (tail > 0)
        {
            mm.Munmap(start + bytes, tail).ThrowIfError();
        }

        return start;
    }

    /// <summary>Closes the device, the monitor and the address space (its frames go back to the pool).</summary>
    public void Dispose()
    {
        Device.Dispose();
        _uffd?.Dispose();
        Mm.Dispose();
    }
}
