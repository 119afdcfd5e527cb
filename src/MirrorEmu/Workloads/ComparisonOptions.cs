using MirrorEmu.Device;

namespace MirrorEmu.Workloads;

/// <summary>What a comparison runs (<c>mirroremu compare</c>'s options, README "compare").</summary>
public sealed record ComparisonOptions
{
    /// <summary>The most pages a range may have.</summary>
    public const int MaxPages = WorkItems.MaxPages;

    /// <summary>Where the range is faulted.</summary>
    public CompareLevel Level { get; init; } = CompareLevel.Device;

    /// <summary>Pages in the fresh range (65,536: 256 MiB).</summary>
    public int Pages { get; init; } = 65_536;

    /// <summary>Which pages the kernel touches, in what order (device level only).</summary>
    public Workload Workload { get; init; } = Workload.Seq;

    /// <summary>The rows; <see cref="ComparePolicy.Regular"/> is always run, as the baseline of every ratio.</summary>
    public IReadOnlyList<ComparePolicy> Policies { get; init; } = ComparePolicies.All;

    /// <summary>The launcher the device's kernels run on (device level only).</summary>
    public LauncherKind Launcher { get; init; } = LauncherKind.Direct;

    /// <summary>Pages the monitor resolves per event under uffd-batched (a power of two, 1 to 512).</summary>
    public int MonitorBatch { get; init; } = 64;

    /// <summary>Fault entries the driver services per batch (UVM's 256).</summary>
    public int FaultBatch { get; init; } = 256;

    /// <summary>When the driver replays faulted work items. <see cref="ReplayPolicy.Once"/> by default: a replay re-runs the
    /// stalled items on the host, so UVM's per-batch replays would cost far more than on a GPU and hide the fault path.</summary>
    public ReplayPolicy Replay { get; init; } = ReplayPolicy.Once;

    /// <summary>Seeds the workload (order, draws, and each page's element).</summary>
    public int Seed { get; init; } = 12345;

    /// <summary>The byte the userfaultfd monitor fills pages with.</summary>
    public byte FillByte { get; init; } = 0x5A;

    /// <summary>Measured rounds; null for as many as fit <see cref="TimeBudget"/> (at least <see cref="MinRounds"/>).</summary>
    public int? Repeat { get; init; }

    /// <summary>How long the measured rounds should take when <see cref="Repeat"/> is null (about 10 s).</summary>
    public TimeSpan TimeBudget { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>The fewest rounds a time budget gives.</summary>
    public const int MinRounds = 3;

    /// <summary>The most rounds a time budget gives.</summary>
    public const int MaxRounds = 1000;

    /// <summary>The rows in order: regular first, then the others as given, each once.</summary>
    public IReadOnlyList<ComparePolicy> Rows =>
        [ComparePolicy.Regular, .. Policies.Where(p => p != ComparePolicy.Regular).Distinct()];

    /// <summary>Checks every option; returns the first problem in words naming the option, or null.</summary>
    public string? Validate()
    {
        if (Pages < 1 || Pages > MaxPages)
        {
            return $"--pages={Pages} must be between 1 and {MaxPages} (the kernel indexes 8-byte elements with 32-bit indices)";
        }

        if (MonitorBatch < 1 || MonitorBatch > 512 || (MonitorBatch & (MonitorBatch - 1)) != 0)
        {
            return $"--monitor-batch={MonitorBatch} must be a power of two from 1 to 512";
        }

        if (FaultBatch < 1 || FaultBatch > 65_536)
        {
            return $"--fault-batch={FaultBatch} must be between 1 and 65536";
        }

        if (Repeat is < 1 or > MaxRounds)
        {
            return $"--repeat={Repeat} must be between 1 and {MaxRounds}";
        }

        if (Policies.Count == 0)
        {
            return "--policies: name at least one policy";
        }

        return null;
    }
}
