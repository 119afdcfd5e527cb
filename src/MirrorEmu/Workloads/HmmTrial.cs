using MirrorEmu.Mm;
using MirrorEmu.Telemetry;

namespace MirrorEmu.Workloads;

/// <summary>One trial at the hmm_range_fault level (<c>mirroremu compare --level hmm</c>): the driver loop faults the whole
/// fresh range writable with no device (<see cref="PolicyScenario"/>).</summary>
public sealed class HmmTrial : ICompareTrial
{
    private readonly PolicyScenario _scenario;

    /// <summary>Sets the trial up (untimed).</summary>
    /// <param name="memory">The frame pool.</param>
    /// <param name="options">The comparison's options (pages, monitor batch, fill byte).</param>
    /// <param name="policy">The row.</param>
    public HmmTrial(PhysicalMemory memory, ComparisonOptions options, ComparePolicy policy)
    {
        ArgumentNullException.ThrowIfNull(options);
        _scenario = new PolicyScenario(memory, options.Pages, policy.ToUffd(), options.FillByte, options.MonitorBatch);
    }

    /// <inheritdoc/>
    public KResult Run(CancellationToken cancellation) => _scenario.Fault(cancellation);

    /// <inheritdoc/>
    public TrialCounters Counters
    {
        get
        {
            Hmm.HmmFaultStats s = _scenario.Range.Stats;
            return new TrialCounters(
                Pages: _scenario.Range.PageCount,
                DeviceFaults: 0,
                FaultBatches: 0,
                Replays: 0,
                Runs: s.Calls,
                RoundTrips: s.RoundTrips,
                EbusyRestarts: s.EbusyRestarts,
                Walks: s.Walks,
                LockDrops: s.LockDrops,
                PagesFaulted: s.PagesFaulted,
                PagesCopied: _scenario.Userfault?.Context.Stats[UffdStat.PagesCopied] ?? 0);
        }
    }

    /// <inheritdoc/>
    public string? Verify() => _scenario.Verify() ? null : $"a page of the range is not valid, writable and filled with 0x{_scenario.Fill:X2}";

    /// <inheritdoc/>
    public void Dispose() => _scenario.Dispose();
}
