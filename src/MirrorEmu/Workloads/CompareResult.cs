using MirrorEmu.Telemetry;

namespace MirrorEmu.Workloads;

/// <summary>What a comparison measured: one row per policy, the regular VMA first.</summary>
public sealed record CompareResult
{
    /// <summary>What ran.</summary>
    public required ComparisonOptions Options { get; init; }

    /// <summary>The rows.</summary>
    public required IReadOnlyList<PolicyResult> Rows { get; init; }

    /// <summary>Measured rounds.</summary>
    public int Rounds { get; init; }

    /// <summary>The launcher's description, or null at the hmm_range_fault level.</summary>
    public string? Accelerator { get; init; }

    /// <summary>The machine's load when the run started.</summary>
    public HostLoad LoadAtStart { get; init; }

    /// <summary>The machine's load when it ended.</summary>
    public HostLoad LoadAtEnd { get; init; }

    /// <summary>Wall-clock time of the comparison, the pool's populate, the warm-up, setup and verification included (for a
    /// sweep: this size's rounds, the first size also the pool and the warm-up).</summary>
    public TimeSpan Wall { get; init; }

    /// <summary>True when every row ended as its policy must (<see cref="PolicyResult.AsExpected"/>).</summary>
    public bool AsExpected => Rows.All(r => r.AsExpected);
}
