using MirrorEmu.Hmm;
using MirrorEmu.Mm;

namespace MirrorEmu.Device;

/// <summary>How a <see cref="MirrorDevice"/> runs launches and services faults. Defaults follow NVIDIA UVM and dmirror.</summary>
public sealed record DeviceOptions
{
    /// <summary>Fault entries the driver fetches and services as one batch (uvm_perf_fault_batch_count, 256).</summary>
    public int FaultBatchSize { get; init; } = 256;

    /// <summary>When faulted work items are replayed (uvm_perf_fault_replay_policy; UVM's default is
    /// <see cref="ReplayPolicy.BatchFlush"/>).</summary>
    public ReplayPolicy ReplayPolicy { get; init; } = ReplayPolicy.BatchFlush;

    /// <summary>Entries the fault buffer holds per pass; appends beyond it are dropped and raised again by the replay.</summary>
    public int FaultBufferEntries { get; init; } = 1 << 16;

    /// <summary>Work items per slice: a pass holds the driver lock for one slice at a time, so a blocking invalidation
    /// waits for at most one slice.</summary>
    public int SliceItems { get; init; } = 1 << 16;

    /// <summary>Budget of one run's read_begin → hmm_range_fault → read_retry loop in milliseconds
    /// (HMM_RANGE_DEFAULT_TIMEOUT); when it runs out the launch ends with -EBUSY.</summary>
    public int FaultTimeoutMs { get; init; } = HmmFault.DefaultTimeoutMs;

    /// <summary>Budget of a whole launch in milliseconds; when it runs out the launch ends with -EBUSY.</summary>
    public int LaunchTimeoutMs { get; init; } = 60_000;

    /// <summary>Most milliseconds a blocking invalidation waits for the slice in flight before it declares the device
    /// stuck (an exception naming the device: invariant 1 cannot be kept by returning).</summary>
    public int InvalidateTimeoutMs { get; init; } = 30_000;

    /// <summary>How hmm_range_fault faults pages of userfaultfd VMAs (the 4/7 policies, unchanged).</summary>
    public UffdFaultPolicy UffdPolicy { get; init; } = UffdFaultPolicy.SinglePage;

    /// <summary>Which pages a run's fault covers.</summary>
    public FaultExtent FaultExtent { get; init; } = FaultExtent.Kernel;

    /// <summary>Map a 2 MiB PMD that hmm_range_fault reports (order 9) as one huge leaf.</summary>
    public bool MapHuge { get; init; } = true;

    /// <summary>Bytes of the device's own memory (a multiple of 4 KiB): where migrations put pages, all of it usable (the
    /// frame allocator's zero page comes on top; dmirror allocates 256 MiB chunks as it needs them). On a GPU it is allocated up front in its memory; on the
    /// CPU paths address space is reserved and committed in 64 MiB chunks as pages are allocated.</summary>
    public ulong DeviceMemoryBytes { get; init; } = 1UL << 30;

    /// <summary>The smallest <see cref="DeviceMemoryBytes"/> (one page): for a device that never migrates, so that it
    /// reserves one chunk of address space rather than a gigabyte (which a process under an address-space limit may not
    /// have to spare).</summary>
    public const ulong MinDeviceMemoryBytes = PageGeometry.PageSize;

    /// <summary>The device's name in messages ("device 0").</summary>
    public string Name { get; init; } = "mirror device";

    /// <summary>Checks every field; throws naming the first bad one and its value.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A field out of range.</exception>
    public void Validate()
    {
        Check(FaultBatchSize >= 1, nameof(FaultBatchSize), FaultBatchSize, "at least 1");
        Check(FaultBufferEntries >= 1, nameof(FaultBufferEntries), FaultBufferEntries, "at least 1");
        Check(SliceItems >= 1, nameof(SliceItems), SliceItems, "at least 1");
        Check(FaultTimeoutMs >= 1, nameof(FaultTimeoutMs), FaultTimeoutMs, "at least 1 ms");
        Check(LaunchTimeoutMs >= 1, nameof(LaunchTimeoutMs), LaunchTimeoutMs, "at least 1 ms");
        Check(InvalidateTimeoutMs >= 1, nameof(InvalidateTimeoutMs), InvalidateTimeoutMs, "at least 1 ms");
        Check(Enum.IsDefined(ReplayPolicy), nameof(ReplayPolicy), (int)ReplayPolicy, "a ReplayPolicy");
        if (DeviceMemoryBytes < MinDeviceMemoryBytes || !PageGeometry.IsPageAligned(DeviceMemoryBytes) || (DeviceMemoryBytes >> PageGeometry.PageShift) >= DevicePagemap.MaxPages)
        {
            throw new ArgumentOutOfRangeException(nameof(DeviceMemoryBytes), $"DeviceOptions.DeviceMemoryBytes=0x{DeviceMemoryBytes:X} must be page aligned, at least one page and less than 64 GiB");
        }
    }

    private static void Check(bool ok, string field, long value, string rule)
    {
        if (!ok)
        {
            throw new ArgumentOutOfRangeException(field, $"DeviceOptions.{field}={value} must be {rule}");
        }
    }
}
