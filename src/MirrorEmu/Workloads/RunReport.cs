using MirrorEmu.Calibration;
using MirrorEmu.Telemetry;

namespace MirrorEmu.Workloads;

/// <summary>One run of a <see cref="CompareReport"/>: a policy over a range, its counters, its measured time and spread,
/// its modeled time, its slowdowns against the regular VMA, and whether its data was verified.</summary>
public sealed record RunReport
{
    /// <summary>The policy's name (regular, uffd-unsupported, uffd-single, uffd-batched, uffd-range).</summary>
    public string Policy { get; init; } = string.Empty;

    /// <summary>The workload ("seq", "stride:4", …).</summary>
    public string Workload { get; init; } = string.Empty;

    /// <summary>Pages the workload touches (every page of the range for seq and random).</summary>
    public long Pages { get; init; }

    /// <summary>Fault-buffer entries the kernel appended (one per touched page and launch: the buffer deduplicates).</summary>
    public long DeviceFaults { get; init; }

    /// <summary>Batches the driver serviced.</summary>
    public long FaultBatches { get; init; }

    /// <summary>Replay passes.</summary>
    public long Replays { get; init; }

    /// <summary>userfaultfd round trips.</summary>
    public long RoundTrips { get; init; }

    /// <summary>hmm_range_fault walk restarts after a lock-dropping fault (-EBUSY).</summary>
    public long EbusyRestarts { get; init; }

    /// <summary>hmm_range_fault walk passes.</summary>
    public long Walks { get; init; }

    /// <summary>Measured nanoseconds per touched page over the rounds (null when the run failed).</summary>
    public Spread? MeasuredNsPerPage { get; init; }

    /// <summary>What the cost model says the kernel would spend on this run's counters, µs per touched page (modeled; null
    /// when the run failed).</summary>
    public double? ModeledUsPerPage { get; init; }

    /// <summary>The slowdown against the regular VMA: measured (the median of per-round ratios) and modeled.</summary>
    public SlowdownReport? SlowdownVsRegular { get; init; }

    /// <summary>True when every round succeeded and every byte of the range was as the workload left it.</summary>
    public bool Verified { get; init; }

    /// <summary>The errno name the run ended with ("-EFAULT"), or null.</summary>
    public string? Error { get; init; }

    /// <summary>Builds the entry of <paramref name="row"/>.</summary>
    /// <param name="row">The row.</param>
    /// <param name="options">What ran.</param>
    /// <param name="model">The cost model.</param>
    /// <param name="regularModelNs">The regular row's modeled nanoseconds in total.</param>
    public static RunReport From(PolicyResult row, ComparisonOptions options, CostModel model, double regularModelNs)
    {
        ArgumentNullException.ThrowIfNull(row);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(model);
        TrialCounters c = row.Counters;
        bool ok = row.Error is null && row.Measured is not null;
        double modelNs = model.ModelNs(c.ToModelCounts(row.Policy));
        return new RunReport
        {
            Policy = row.Policy.Name(),
            Workload = options.Level == CompareLevel.Device ? options.Workload.ToString() : "hmm-range",
            Pages = c.Pages,
            DeviceFaults = c.DeviceFaults,
            FaultBatches = c.FaultBatches,
            Replays = c.Replays,
            RoundTrips = c.RoundTrips,
            EbusyRestarts = c.EbusyRestarts,
            Walks = c.Walks,
            MeasuredNsPerPage = ok ? row.Measured!.Value.Rounded(1) : null,
            ModeledUsPerPage = ok ? Math.Round(modelNs / Math.Max(1, c.Pages) / 1000, 4) : null,
            SlowdownVsRegular = ok ? new SlowdownReport(Math.Round(row.Ratio?.Median ?? double.NaN, 3), Math.Round(regularModelNs > 0 ? modelNs / regularModelNs : double.NaN, 3)) : null,
            Verified = row.Verified,
            Error = row.Error,
        };
    }
}
