using MirrorEmu.Uffd;

namespace MirrorEmu.Workloads;

/// <summary>A mapping's userfaultfd registration and the monitor thread that serves it.</summary>
public sealed record ScenarioUserfaultfd
{
    /// <summary>How the monitor resolves a fault: page, block or run; null for the one the device's policy implies (page
    /// for uffd-single, block for uffd-batched, run for uffd-range).</summary>
    public string? Monitor { get; init; }

    /// <summary>Pages per block when the monitor resolves blocks (a power of two, 1 to 512).</summary>
    public int MonitorBatch { get; init; } = 64;

    /// <summary>The byte the monitor fills pages with (0 to 255).</summary>
    public int FillByte { get; init; } = 0x5A;

    /// <summary>The monitor's resolution for a device under <paramref name="policy"/>.</summary>
    /// <param name="policy">The device's policy.</param>
    public UffdResolution Resolution(ComparePolicy policy) => Monitor switch
    {
        "page" => UffdResolution.SinglePage,
        "block" => UffdResolution.Block,
        "run" => UffdResolution.WholeRun,
        _ => ComparePolicies.MonitorResolution(policy.ToUffd() ?? Hmm.UffdFaultPolicy.SinglePage),
    };

    /// <summary>The first bad value, as "field: why", or null.</summary>
    internal string? Check() =>
        Monitor is not null and not "page" and not "block" and not "run" ? $"monitor: '{Monitor}' is not one of page, block, run"
        : MonitorBatch < 1 || MonitorBatch > 512 || (MonitorBatch & (MonitorBatch - 1)) != 0 ? $"monitorBatch: {MonitorBatch} must be a power of two from 1 to 512"
        : FillByte is < 0 or > 255 ? $"fillByte: {FillByte} must be between 0 and 255"
        : null;
}
