using MirrorEmu.Regression;

namespace MirrorEmu.Tests.Regression;

/// <summary>The fixed scenarios give the same counters on every run, and those counters follow the policy definitions
/// (docs/design.md, "The policies compared"): they are what CI gates on.</summary>
public class CounterScenarioTests
{
    private static Dictionary<string, long> Run(string filter) => CounterScenarios.Run(filter).ToDictionary(f => f.Id, f => f.Value);

    [Fact]
    public void EveryScenarioGivesTheSameCountersTwice()
    {
        IReadOnlyList<CounterFigure> first = CounterScenarios.Run("*", cancellation: TestContext.Current.CancellationToken);
        Dictionary<string, long> second = Run("*");
        Assert.Equal(CounterScenarios.All.Count, first.Select(f => f.Scenario).Distinct().Count());
        Assert.All(first, f => Assert.True(f.Accepts(second[f.Id]), $"{f.Id} was {f.Value}, then {second[f.Id]}: the scenario is not deterministic within its stated tolerance ({f.Tolerance})"));
        Assert.All(first.Where(f => !f.Id.StartsWith("alloc/device-launch", StringComparison.Ordinal)), f => Assert.Equal(0, f.Tolerance));
    }

    [Fact]
    public void ThePolicyScenariosCountAsThePoliciesAreDefined()
    {
        Dictionary<string, long> c = Run("hmm/*");
        const int pages = 2048;
        Assert.Equal(0, c["hmm/regular:roundTrips"]);
        Assert.Equal(14, c["hmm/uffd-unsupported:errno"]); // -EFAULT
        Assert.Equal(pages, c["hmm/uffd-singlepage:roundTrips"]);
        Assert.Equal(pages, c["hmm/uffd-singlepage:ebusyRestarts"]);
        Assert.Equal(pages / 64, c["hmm/uffd-batched:roundTrips"]);
        Assert.Equal(0, c["hmm/uffd-batched:ebusyRestarts"]);
        Assert.Equal(4, c["hmm/uffd-rangeevent:roundTrips"]); // three pre-filled pages split the range into four runs
        Assert.Equal(3, c["hmm/invalidate-batched:ebusyReturns"]);
        Assert.Equal(3, c["hmm/invalidate-singlepage:ebusyReturns"]);
    }

    [Fact]
    public void TheFaultAndInvalidatePathsAllocateNothing()
    {
        Dictionary<string, long> c = Run("alloc/*");
        foreach (string path in new[] { "range-fault-populated", "interval-query", "invalidate-start-end", "cpu-read-word" })
        {
            Assert.True(c[$"alloc/{path}:bytesPerOp"] == 0, $"alloc/{path} allocated {c[$"alloc/{path}:bytesPerOp"]} bytes per call (hot paths do not allocate: docs/design.md)");
        }
    }

    [Fact]
    public void TheDeviceScenariosCountFaultsBatchesAndReplays()
    {
        Dictionary<string, long> c = Run("device/*");
        Assert.Equal(1024, c["device/first-touch-once:launch.deviceFaults"]);
        Assert.Equal(4, c["device/first-touch-once:launch.faultBatches"]); // 1,024 faults in batches of 256
        Assert.Equal(1, c["device/first-touch-once:launch.replays"]);
        Assert.Equal(4, c["device/first-touch-batchflush:launch.replays"]); // one per batch
        Assert.Equal(16, c["device/uffd-batched:device.hmmRoundTrips"]);
        Assert.Equal(256, c["device/invalidate-refault:device.entriesCleared"]);
        Assert.Equal(256, c["device/invalidate-refault:launch.deviceFaults"]);
    }
}
