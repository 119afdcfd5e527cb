namespace MirrorEmu.Workloads;

/// <summary>The scenario's device: how hmm_range_fault treats userfaultfd pages, and how the driver batches and replays.</summary>
public sealed record ScenarioDevice
{
    /// <summary>hmm_range_fault's userfaultfd policy: uffd-unsupported, uffd-single (the default: the 2026 patch),
    /// uffd-batched or uffd-range.</summary>
    public string Policy { get; init; } = "uffd-single";

    /// <summary>Fault entries per driver batch.</summary>
    public int FaultBatch { get; init; } = 256;

    /// <summary>Replay policy: once, batch-flush, batch or block.</summary>
    public string Replay { get; init; } = "once";
}
