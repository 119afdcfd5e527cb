using MirrorEmu.Hmm;

namespace MirrorEmu.Regression;

/// <summary>The fixed counter scenarios <c>mirroremu regress</c> runs and CI gates on, in a stable order.</summary>
public static class CounterScenarios
{
    /// <summary>Every scenario.</summary>
    public static IReadOnlyList<CounterScenario> All { get; } =
    [
        new HmmPolicyScenario(null),
        new HmmPolicyScenario(UffdFaultPolicy.Unsupported),
        new HmmPolicyScenario(UffdFaultPolicy.SinglePage),
        new HmmPolicyScenario(UffdFaultPolicy.Batched),
        new HmmPolicyScenario(UffdFaultPolicy.RangeEvent),
        new InvalidationScenario(UffdFaultPolicy.SinglePage),
        new InvalidationScenario(UffdFaultPolicy.Batched),
        new DeviceScenario(DeviceScenarioKind.FirstTouchOnce),
        new DeviceScenario(DeviceScenarioKind.FirstTouchBatchFlush),
        new DeviceScenario(DeviceScenarioKind.UffdBatched),
        new DeviceScenario(DeviceScenarioKind.InvalidateRefault),
        new DeviceScenario(DeviceScenarioKind.MigrateRoundTrip),
        new AllocationScenario(AllocationOp.RangeFaultPopulated),
        new AllocationScenario(AllocationOp.IntervalQuery),
        new AllocationScenario(AllocationOp.InvalidateStartEnd),
        new AllocationScenario(AllocationOp.CpuReadWord),
        new AllocationScenario(AllocationOp.DeviceLaunchMirrored),
    ];

    /// <summary>Runs the scenarios whose names match <paramref name="filter"/> (every one when null), in order.</summary>
    /// <param name="filter">A name pattern with * wildcards, or null.</param>
    /// <param name="progress">Told each scenario's name as it starts; may be null.</param>
    /// <param name="cancellation">Checked before each scenario and after the last (a scenario takes well under a second,
    /// so Ctrl-C stops the run about as fast as a check inside one would).</param>
    /// <returns>Their counters, scenario by scenario.</returns>
    /// <exception cref="OperationCanceledException">Cancelled: no figures, not a partial set that could be saved.</exception>
    public static IReadOnlyList<CounterFigure> Run(string? filter = null, Action<string>? progress = null, CancellationToken cancellation = default)
    {
        var figures = new List<CounterFigure>();
        foreach (CounterScenario s in All)
        {
            if (filter is null || Wildcard.IsMatch(s.Name, filter))
            {
                cancellation.ThrowIfCancellationRequested();
                progress?.Invoke(s.Name);
                figures.AddRange(s.Run());
            }
        }

        cancellation.ThrowIfCancellationRequested();
        return figures;
    }
}
