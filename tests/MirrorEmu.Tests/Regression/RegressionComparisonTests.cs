using MirrorEmu.Regression;
using MirrorEmu.Tests.Helpers;

namespace MirrorEmu.Tests.Regression;

/// <summary>Counters are compared exactly (or within their stated tolerance) against the committed baseline; timings as
/// ResultsComparer compares them (threshold, noise floor); a figure that is not there is an error, never a pass. Timings
/// here are synthetic: no test asserts a measured time.</summary>
public class RegressionComparisonTests
{
    private static readonly string s_committed = Path.Combine(RepoPaths.Root, "bench", "baselines", "counters.json");

    private static RegressionRun Current(IReadOnlyList<CounterFigure>? counters = null, IReadOnlyList<TimingFigure>? timings = null, bool busy = false) =>
        new() { Counters = counters ?? [], Timings = timings ?? [], Host = new RunHost { Cores = 2, Busy = busy } };

    [Fact]
    public void TheScenariosMatchTheCommittedBaseline()
    {
        RegressionRun baseline = RegressionRun.Load(s_committed, "baseline");
        RegressionComparison c = RegressionComparison.Compare(baseline, Current(CounterScenarios.Run("hmm/*", cancellation: TestContext.Current.CancellationToken)), new RegressionOptions(), "hmm/*");
        Assert.True(c.Rows.Count > 50, "the committed baseline has too few hmm counters");
        Assert.True(c.ExitCode(failOnTime: false) == 0, "a counter moved against bench/baselines/counters.json (refresh it if intended): "
            + string.Join("; ", c.Rows.Where(r => r.Verdict != Verdict.Same).Select(r => $"{r.Id} {r.Baseline} -> {r.Current} {r.Verdict}")));
    }

    [Theory]
    [InlineData("hmm/uffd-batched:roundTrips", 1)]
    [InlineData("hmm/uffd-batched:ebusyRestarts", 64)]
    [InlineData("hmm/uffd-batched:walks", -1)]
    public void ACounterChangeInjectedIntoACopyOfTheBaselineIsARegression(string id, long delta)
    {
        RegressionRun committed = RegressionRun.Load(s_committed, "baseline");
        RegressionRun copy = RegressionRun.FromJson(committed.ToJson(), "copy");
        copy = copy with { Counters = [.. copy.Counters.Select(f => f.Id == id ? f with { Value = f.Value + delta } : f)] };
        RegressionComparison c = RegressionComparison.Compare(copy, Current(CounterScenarios.Run("hmm/uffd-batched", cancellation: TestContext.Current.CancellationToken)), new RegressionOptions(), "hmm/uffd-batched");
        ComparisonRow row = Assert.Single(c.Rows, r => r.Verdict != Verdict.Same);
        Assert.Equal(id, row.Id);
        Assert.Equal(Verdict.Regression, row.Verdict);
        Assert.Equal(1, c.CounterRegressions);
        Assert.Equal(1, c.ExitCode(failOnTime: false));
    }

    [Fact]
    public void ACounterWithinItsStatedToleranceIsTheSame()
    {
        var baseline = Current([new CounterFigure("s", "bytesPerOp", 100, 0.25)]);
        Assert.Equal(Verdict.Same, RegressionComparison.Compare(baseline, Current([new CounterFigure("s", "bytesPerOp", 120, 0.25)]), new()).Rows[0].Verdict);
        Assert.Equal(Verdict.Regression, RegressionComparison.Compare(baseline, Current([new CounterFigure("s", "bytesPerOp", 126, 0.25)]), new()).Rows[0].Verdict);
        Assert.Equal(Verdict.Regression, RegressionComparison.Compare(baseline, Current([new CounterFigure("s", "bytesPerOp", 74, 0.25)]), new()).Rows[0].Verdict);
    }

    [Fact]
    public void AMissingScenarioIsAnErrorNotAPass()
    {
        var baseline = Current([new CounterFigure("a", "x", 1), new CounterFigure("gone", "x", 1)]);
        RegressionComparison c = RegressionComparison.Compare(baseline, Current([new CounterFigure("a", "x", 1)]), new());
        Assert.Equal(Verdict.Missing, Assert.Single(c.Rows, r => r.Id == "gone:x").Verdict);
        Assert.Equal(1, c.Errors);
        Assert.Equal(1, c.ExitCode(failOnTime: false));
    }

    [Fact]
    public void AMissingOrFailedBenchmarkIsAnErrorNotAPass()
    {
        TimingFigure a = Timing("A", 100, 1, seed: 1), b = Timing("B", 100, 1, seed: 2), f = Timing("F", 100, 1, seed: 3);
        RegressionComparison c = RegressionComparison.Compare(
            Current(timings: [a, b, f]),
            Current(timings: [a, f with { Error = "the benchmark did not run to the end (no Statistics)", Samples = [] }]),
            new());
        Assert.Equal(Verdict.Missing, Assert.Single(c.Rows, r => r.Id == "B").Verdict);
        Assert.Equal(Verdict.Failed, Assert.Single(c.Rows, r => r.Id == "F").Verdict);
        Assert.Equal(2, c.Errors);
        Assert.Equal(1, c.ExitCode(failOnTime: false));
    }

    [Fact]
    public void AFilterLimitsWhichBenchmarksAreExpected()
    {
        TimingFigure a = Timing("Hmm.A", 100, 1, seed: 1), b = Timing("Mm.B", 100, 1, seed: 2);
        RegressionComparison c = RegressionComparison.Compare(Current(timings: [a, b]), Current(timings: [a]), new RegressionOptions { TimingFilters = ["Hmm.*"] });
        Assert.Equal("Hmm.A", Assert.Single(c.Rows).Id);
        Assert.Equal(0, c.ExitCode(failOnTime: true));
    }

    [Fact]
    public void NoiseBelowTheFloorIsNotReported()
    {
        // 0.8 ns slower on 100 ns with a spread of ±0.1 ns: the test at a 0.1 % threshold calls it real, the noise floor of
        // 1 ns does not, so it is not reported (ResultsComparer's two tests).
        TimingFigure b = Timing("X", 100, 0.1, seed: 4), c = Timing("X", 100.8, 0.1, seed: 5);
        Assert.Equal(Verdict.Slower, RegressionComparison.Test(b, c, threshold: 0.001, noiseNs: 0.01).Verdict);
        Assert.Equal(Verdict.Same, RegressionComparison.Test(b, c, threshold: 0.001, noiseNs: 1).Verdict);
        RegressionComparison whole = RegressionComparison.Compare(Current(timings: [b]), Current(timings: [c]), new RegressionOptions { Threshold = 0.001, NoiseNs = 1 });
        Assert.Equal(Verdict.Same, Assert.Single(whole.Rows).Verdict);
    }

    [Fact]
    public void AChangeBelowTheThresholdIsNotReportedAndOneAboveIsInItsDirection()
    {
        TimingFigure b = Timing("X", 100, 1, seed: 6);
        Assert.Equal(Verdict.Same, RegressionComparison.Test(b, Timing("X", 104, 1, seed: 7), 0.10, 1).Verdict);
        Assert.Equal(Verdict.Slower, RegressionComparison.Test(b, Timing("X", 130, 1, seed: 8), 0.10, 1).Verdict);
        Assert.Equal(Verdict.Faster, RegressionComparison.Test(b, Timing("X", 70, 1, seed: 9), 0.10, 1).Verdict);
    }

    [Fact]
    public void WithoutSamplesTheRatioOfMediansMeetsTheSameThresholdAndFloor()
    {
        var b = new TimingFigure { Id = "compare:uffd-batched@seq/65536", Source = "compare", MedianNs = 200 };
        (Verdict v, string how) = RegressionComparison.Test(b, b with { MedianNs = 260 }, 0.10, 1);
        Assert.Equal(Verdict.Slower, v);
        Assert.Contains("ratio of medians", how);
        Assert.Equal(Verdict.Same, RegressionComparison.Test(b, b with { MedianNs = 215 }, 0.10, 1).Verdict);
        Assert.Equal(Verdict.Same, RegressionComparison.Test(b with { MedianNs = 2 }, b with { MedianNs = 2.9 }, 0.10, 1).Verdict); // +45 %, under 1 ns
        Assert.Equal(Verdict.Faster, RegressionComparison.Test(b, b with { MedianNs = 150 }, 0.10, 1).Verdict);
    }

    [Fact]
    public void TimingsOnlyWarnUnlessFailOnTimeAndABusyHostIsMarked()
    {
        RegressionComparison c = RegressionComparison.Compare(Current(timings: [Timing("X", 100, 1, seed: 10)]), Current(timings: [Timing("X", 150, 1, seed: 11)], busy: true), new());
        ComparisonRow row = Assert.Single(c.Rows);
        Assert.Equal(Verdict.Slower, row.Verdict);
        Assert.Contains("busy host", row.Note);
        Assert.True(c.BusyHost);
        Assert.Equal(0, c.ExitCode(failOnTime: false));
        Assert.Equal(1, c.ExitCode(failOnTime: true));
        Assert.Equal(1.5, c.SlowerGeomean!.Value, 1);
    }

    [Fact]
    public void ABimodalSampleIsFlagged()
    {
        double[] two = [.. Enumerable.Range(0, 20).Select(i => i % 2 == 0 ? 100.0 + (i * 0.01) : 200.0 + (i * 0.01))];
        var b = new TimingFigure { Id = "X", Source = "bdn", MedianNs = 150, Samples = two, MValue = Perfolizer.Mathematics.Multimodality.MValueCalculator.Calculate(two) };
        Assert.NotNull(b.Modality);
        RegressionComparison c = RegressionComparison.Compare(Current(timings: [b]), Current(timings: [b]), new());
        Assert.Contains(b.Modality!, Assert.Single(c.Rows).Note);
        Assert.Null(Timing("Y", 100, 1, seed: 12).Modality);
    }

    [Fact]
    public void ABaselineOfAnotherSchemaVersionIsRefusedWithAClearMessage()
    {
        string json = RegressionRun.Load(s_committed, "baseline").ToJson().Replace("\"schemaVersion\": 1", "\"schemaVersion\": 2", StringComparison.Ordinal);
        var e = Assert.Throws<RegressionInputException>(() => RegressionRun.FromJson(json, "baseline b.json"));
        Assert.Contains("baseline b.json: schemaVersion 2 is not the 1", e.Message);
        Assert.Contains("refresh", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Theory]
    [InlineData("{\"schemaVersion\":1,\"counters\":[{\"scenario\":\"s\",\"counter\":\"c\",\"value\":1,\"tolerance\":0}],\"bogus\":1}", "bogus")]
    [InlineData("{\"schemaVersion\":1,\"counters\":[{\"scenario\":\"s\",\"counter\":\"c\",\"value\":1,\"tolerance\":-1}]}", "tolerance=-1")]
    [InlineData("{\"counters\":[]}", "no schemaVersion")]
    [InlineData("[1,2]", "expected a JSON object")]
    [InlineData("{\"schemaVersion\":1,", "not valid JSON")]
    public void AMalformedBaselineIsNamedInOneLine(string json, string named)
    {
        var e = Assert.Throws<RegressionInputException>(() => RegressionRun.FromJson(json, "baseline x.json"));
        Assert.Contains(named, e.Message);
        Assert.StartsWith("baseline x.json: ", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    /// <summary>15 samples around <paramref name="median"/> spread ±<paramref name="spread"/>, from a seed.</summary>
    internal static TimingFigure Timing(string id, double median, double spread, int seed)
    {
        var rng = new Random(seed);
        double[] samples = [.. Enumerable.Range(0, 15).Select(_ => median + ((rng.NextDouble() * 2) - 1) * spread)];
        return new TimingFigure { Id = id, Source = "bdn", MedianNs = samples.Order().ElementAt(7), Samples = samples };
    }
}
