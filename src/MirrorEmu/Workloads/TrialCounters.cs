using MirrorEmu.Calibration;

namespace MirrorEmu.Workloads;

/// <summary>What one trial of a comparison did, from the counters its code paths incremented: the device's (a launch), the
/// hmm_range_fault calls' and the userfaultfd context's.</summary>
/// <param name="Pages">Pages the workload touches.</param>
/// <param name="DeviceFaults">Fault-buffer entries the kernel appended (0 at the hmm_range_fault level).</param>
/// <param name="FaultBatches">Batches the driver serviced.</param>
/// <param name="Replays">Replay passes.</param>
/// <param name="Runs">Runs serviced, each with one driver loop (at the hmm_range_fault level: hmm_range_fault calls).</param>
/// <param name="RoundTrips">userfaultfd round trips.</param>
/// <param name="EbusyRestarts">Walk restarts after a lock-dropping fault (-EBUSY inside hmm_range_fault).</param>
/// <param name="Walks">Walk passes of hmm_range_fault.</param>
/// <param name="LockDrops">mmap lock drops by the fault path.</param>
/// <param name="PagesFaulted">Pages the CPU fault path made present or writable for hmm_range_fault.</param>
/// <param name="PagesCopied">Pages the monitor filled with UFFDIO_COPY.</param>
public readonly record struct TrialCounters(
    long Pages,
    long DeviceFaults,
    long FaultBatches,
    long Replays,
    long Runs,
    long RoundTrips,
    long EbusyRestarts,
    long Walks,
    long LockDrops,
    long PagesFaulted,
    long PagesCopied)
{
    /// <summary>The mechanisms the cost model prices: a regular VMA's runs are batch faults (populate), a userfaultfd
    /// VMA's are round trips and copies.</summary>
    /// <param name="policy">The trial's policy.</param>
    public ModelCounts ToModelCounts(ComparePolicy policy) => policy == ComparePolicy.Regular
        ? new ModelCounts(PopulateEvents: Runs, PopulatePages: PagesFaulted, FirstTouchPages: 0, RoundTrips: 0, CopiedPages: 0)
        : new ModelCounts(PopulateEvents: 0, PopulatePages: 0, FirstTouchPages: 0, RoundTrips: RoundTrips, CopiedPages: PagesCopied);
}
