using MirrorEmu.Telemetry;

namespace MirrorEmu.Workloads;

/// <summary>One row of a comparison: the counters of its first measured round, the time of every round, and whether every
/// round's data was right.</summary>
public sealed record PolicyResult
{
    /// <summary>The row.</summary>
    public required ComparePolicy Policy { get; init; }

    /// <summary>The counters of the first measured round.</summary>
    public TrialCounters Counters { get; init; }

    /// <summary>True when every round's counters equalled the first's (they follow from the workload, so they should).</summary>
    public bool CountersStable { get; init; } = true;

    /// <summary>Nanoseconds per touched page of each round that succeeded (Stopwatch around the launch).</summary>
    public IReadOnlyList<double> NsPerPage { get; init; } = [];

    /// <summary>Per-round ratios to the regular VMA's time of the same round.</summary>
    public IReadOnlyList<double> Ratios { get; init; } = [];

    /// <summary>The spread of <see cref="NsPerPage"/>, or null when no round succeeded.</summary>
    public Spread? Measured => NsPerPage.Count == 0 ? null : Spread.Of([.. NsPerPage]);

    /// <summary>The spread of <see cref="Ratios"/> (its median is the row's ratio), or null.</summary>
    public Spread? Ratio => Ratios.Count == 0 ? null : Spread.Of([.. Ratios]);

    /// <summary>The errno name the runs ended with ("-EFAULT"), or null when they succeeded.</summary>
    public string? Error { get; init; }

    /// <summary>The full message of that error, or null.</summary>
    public string? ErrorMessage { get; init; }

    /// <summary>True when every round succeeded and every byte of every round's range was as the workload left it.</summary>
    public bool Verified { get; init; }

    /// <summary>The first mismatch verification found, or null.</summary>
    public string? VerifyFailure { get; init; }

    /// <summary>True when the row ended as its policy must: uffd-unsupported with -EFAULT, every other verified.</summary>
    public bool AsExpected => Policy.ExpectedErrno() is int e and not 0
        ? Error == Errno.Name(-e)
        : Error is null && Verified;
}
