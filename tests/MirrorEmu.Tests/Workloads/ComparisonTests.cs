using MirrorEmu.Device;
using MirrorEmu.Workloads;

namespace MirrorEmu.Tests.Workloads;

/// <summary>The comparison's counters follow the policy definitions exactly (docs/design.md "The policies compared"): for
/// P pages touched in order, the driver's batches of B entries cut runs of at most B pages inside one 2 MiB block, each
/// serviced by one driver loop; a regular VMA faults each run in batch, uffd-single makes one round trip and one walk
/// restart per page, uffd-batched one round trip per monitor block, uffd-range one per run, and uffd-unsupported fails
/// with -EFAULT. Every byte is verified in every round.</summary>
public class ComparisonTests
{
    private static CompareResult Run(ComparisonOptions o)
    {
        using var launcher = new DirectLauncher();
        return Comparison.Run(o, launcher, null, TestContext.Current.CancellationToken);
    }

    [Theory]
    [InlineData(1024, 256, 64)]
    [InlineData(1000, 256, 32)]
    [InlineData(1536, 128, 128)]
    public void SequentialCountersFollowEachPolicysDefinition(int pages, int faultBatch, int monitorBatch)
    {
        CompareResult r = Run(new ComparisonOptions { Pages = pages, FaultBatch = faultBatch, MonitorBatch = monitorBatch, Repeat = 2 });
        long batches = (pages + faultBatch - 1) / faultBatch;
        long runs = batches; // a batch of B ≤ 512 consecutive pages stays inside one 2 MiB block (B divides 512)
        foreach (PolicyResult row in r.Rows)
        {
            TrialCounters c = row.Counters;
            string name = row.Policy.Name();
            Assert.True(row.CountersStable, $"{name}: the counters differed between rounds");
            Assert.Equal(pages, c.Pages);
            Assert.Equal(pages, c.DeviceFaults); // one fault-buffer entry per page: the buffer deduplicates per launch
            if (row.Policy == ComparePolicy.UffdUnsupported)
            {
                Assert.Equal("-EFAULT", row.Error);
                Assert.Null(row.Measured);
                Assert.Equal(0, c.RoundTrips);
                Assert.True(row.AsExpected);
                continue;
            }

            Assert.True(row.Verified, $"{name}: {row.VerifyFailure ?? row.ErrorMessage}");
            Assert.Equal(2, row.NsPerPage.Count);
            Assert.Equal(batches, c.FaultBatches);
            Assert.Equal(1, c.Replays); // replay once, after the buffer is drained
            Assert.Equal(runs, c.Runs);
            Assert.Equal(pages, c.PagesFaulted);
            (long trips, long restarts, long walks) = row.Policy switch
            {
                ComparePolicy.Regular => (0L, 0L, 2 * runs),                          // walk, fault the run, re-walk
                ComparePolicy.UffdSingle => (pages, pages, pages + runs),             // a round trip, a restart and a walk per page
                ComparePolicy.UffdBatched => ((pages + monitorBatch - 1) / monitorBatch, 0L, 2 * runs), // one per aligned block
                _ => (runs, 0L, 2 * runs),                                             // uffd-range: one per missing run
            };
            Assert.True(trips == c.RoundTrips, $"{name}: {c.RoundTrips} round trips, expected {trips}");
            Assert.True(restarts == c.EbusyRestarts, $"{name}: {c.EbusyRestarts} -EBUSY restarts, expected {restarts}");
            Assert.True(walks == c.Walks, $"{name}: {c.Walks} walks, expected {walks}");
            Assert.Equal(row.Policy == ComparePolicy.Regular ? 0 : pages, c.PagesCopied);
        }

        Assert.True(r.AsExpected);
    }

    [Fact]
    public void AStridedWorkloadFaultsOnePageInNAndEachIsItsOwnRun()
    {
        const int pages = 1024, stride = 3, monitorBatch = 64;
        CompareResult r = Run(new ComparisonOptions { Pages = pages, Workload = new Workload(WorkloadKind.Stride, stride), MonitorBatch = monitorBatch, Repeat = 1 });
        long touched = (pages + stride - 1) / stride;
        foreach (PolicyResult row in r.Rows.Where(x => x.Policy != ComparePolicy.UffdUnsupported))
        {
            TrialCounters c = row.Counters;
            Assert.True(row.Verified, $"{row.Policy.Name()}: {row.VerifyFailure ?? row.ErrorMessage}");
            Assert.Equal(touched, c.Pages);
            Assert.Equal(touched, c.DeviceFaults);
            Assert.Equal(touched, c.Runs); // no two touched pages are neighbours
            long expectedTrips = row.Policy switch
            {
                ComparePolicy.Regular => 0,
                ComparePolicy.UffdBatched => pages / monitorBatch, // every 64-page block holds a touched page
                _ => touched,
            };
            Assert.Equal(expectedTrips, c.RoundTrips);

            // A batched monitor fills whole blocks: the untouched pages of each block hold the fill (verified above).
            Assert.Equal(row.Policy == ComparePolicy.UffdBatched ? pages : row.Policy == ComparePolicy.Regular ? 0 : touched, c.PagesCopied);
        }
    }

    [Theory]
    [InlineData("random")]
    [InlineData("zipf:1.1")]
    [InlineData("sparse:0.3")]
    public void EveryWorkloadLeavesEveryByteAsItsItemsWroteIt(string workload)
    {
        Assert.True(Workload.TryParse(workload, out Workload? w, out string? error), error);
        CompareResult r = Run(new ComparisonOptions { Pages = 700, Workload = w!, Repeat = 1, Seed = Helpers.TestSeeds.Get() });
        Assert.True(r.AsExpected, string.Join("; ", r.Rows.Select(x => $"{x.Policy.Name()}: {x.Error} {x.VerifyFailure}")));
        Assert.All(r.Rows, x => Assert.Equal(r.Rows[0].Counters.Pages, x.Counters.Pages));
    }

    [Fact]
    public void TheHmmLevelCountsAsTheDriverLoopDid()
    {
        const int pages = 512, monitorBatch = 64;
        CompareResult r = Comparison.Run(new ComparisonOptions { Level = CompareLevel.Hmm, Pages = pages, MonitorBatch = monitorBatch, Repeat = 1 }, null, null, TestContext.Current.CancellationToken);
        Assert.True(r.AsExpected);
        TrialCounters Of(ComparePolicy p) => r.Rows.Single(x => x.Policy == p).Counters;
        Assert.Equal(0, Of(ComparePolicy.Regular).RoundTrips);
        Assert.Equal(pages, Of(ComparePolicy.UffdSingle).RoundTrips);
        Assert.Equal(pages, Of(ComparePolicy.UffdSingle).EbusyRestarts);
        Assert.Equal(pages / monitorBatch, Of(ComparePolicy.UffdBatched).RoundTrips);
        Assert.Equal(1, Of(ComparePolicy.UffdRange).RoundTrips);
        Assert.Equal(0, Of(ComparePolicy.Regular).DeviceFaults);
    }

    [Fact]
    public void EachRatioIsTheMedianOfPerRoundRatios()
    {
        CompareResult r = Run(new ComparisonOptions { Pages = 256, Repeat = 5, Policies = [ComparePolicy.UffdBatched] });
        PolicyResult regular = r.Rows[0], batched = r.Rows[1];
        Assert.Equal(5, regular.NsPerPage.Count);
        Assert.All(regular.Ratios, x => Assert.Equal(1.0, x));
        double[] perRound = batched.NsPerPage.Zip(regular.NsPerPage, (b, g) => b / g).ToArray();
        Assert.Equal(perRound, batched.Ratios);
        Assert.Equal(MirrorEmu.Telemetry.Spread.Of(perRound).Median, batched.Ratio!.Value.Median);
    }

    /// <summary>At either level: the hmm level's driver loop takes the token too (checked between calls and by a fault
    /// waiting for its monitor), so a long single-page trial stops mid-trial rather than at its end.</summary>
    [Theory]
    [InlineData(CompareLevel.Device, ComparePolicy.UffdSingle)]
    [InlineData(CompareLevel.Hmm, ComparePolicy.UffdSingle)]
    [InlineData(CompareLevel.Hmm, ComparePolicy.UffdBatched)]
    public void ACancelledComparisonStopsWithinASecond(CompareLevel level, ComparePolicy policy)
    {
        using var cts = new CancellationTokenSource();
        using var launcher = new DirectLauncher();
        var sw = System.Diagnostics.Stopwatch.StartNew();
        cts.CancelAfter(300);
        Assert.ThrowsAny<OperationCanceledException>(() =>
            Comparison.Run(new ComparisonOptions { Pages = 262_144, Repeat = 1000, Level = level, Policies = [policy] }, launcher, null, cts.Token));
        Assert.True(sw.Elapsed < TimeSpan.FromMilliseconds(300 + 1000), $"stopped {sw.Elapsed.TotalMilliseconds:F0} ms after the start, 300 ms of them before the cancel");
    }

    [Fact]
    public void TheLogLogSlopeOfLinearTimeIsOne()
    {
        Assert.Equal(1.0, Comparison.LogLogSlope([(1024, 1e6), (2048, 2e6), (4096, 4e6)]), 9);
        Assert.Equal(2.0, Comparison.LogLogSlope([(1024, 1), (2048, 4), (4096, 16)]), 9);
        Assert.True(double.IsNaN(Comparison.LogLogSlope([(1024, 1)])));
    }
}
