using MirrorEmu.Regression;
using MirrorEmu.Tests.Helpers;

namespace MirrorEmu.Tests.Regression;

/// <summary>The step detector (asv's piecewise-constant fit) names the first run where a figure moved beyond its noise,
/// and nothing in a series that only has noise; a history round-trips through its JSON-lines file.</summary>
public class StepDetectorTests
{
    [Theory]
    [InlineData(30, 17, 25.0)]
    [InlineData(12, 6, 30.0)]
    [InlineData(8, 5, 50.0)]
    [InlineData(40, 2, -30.0)]
    public void AStepInANoisySyntheticHistoryIsFoundAtTheRightRun(int runs, int stepAt, double stepPercent)
    {
        int seed = TestSeeds.Get();
        var rng = new Random(seed);
        double[] y = [.. Enumerable.Range(0, runs).Select(i => (i < stepAt ? 100 : 100 + stepPercent) + ((rng.NextDouble() * 2) - 1) * 3)];
        (int Run, double Before, double After)? step = StepDetector.FirstStep(y, threshold: 0.10, noise: 1);
        Assert.True(step is not null, $"no step found in {string.Join(", ", y.Select(v => v.ToString("F1")))}");
        Assert.Equal(stepAt, step.Value.Run);
        Assert.InRange(step.Value.After, 100 + stepPercent - 3, 100 + stepPercent + 3); // the new level, within the noise
    }

    [Fact]
    public void NoiseAloneIsNoStep()
    {
        int seed = TestSeeds.Get();
        var rng = new Random(seed);
        for (int trial = 0; trial < 20; trial++)
        {
            double[] y = [.. Enumerable.Range(0, 25).Select(_ => 100 + ((rng.NextDouble() * 2) - 1) * 5)];
            Assert.True(StepDetector.FirstStep(y, threshold: 0.10, noise: 1) is null, $"a step in pure noise (±5 %): {string.Join(", ", y.Select(v => v.ToString("F1")))}");
        }
    }

    [Fact]
    public void OneOutlyingRunIsNotAStep()
    {
        Assert.Null(StepDetector.FirstStep([100, 101, 99, 300, 100, 101, 99, 100], threshold: 0.10, noise: 1));
        Assert.Equal(3, StepDetector.FirstStep([100, 101, 99, 300, 302, 301, 299, 300], threshold: 0.10, noise: 1)!.Value.Run);
    }

    [Fact]
    public void AStepSmallerThanTheThresholdIsNotReported()
    {
        double[] y = [100, 100.5, 99.5, 100, 105, 105.5, 104.5, 105];
        Assert.Null(StepDetector.FirstStep(y, threshold: 0.10, noise: 1));
        Assert.Equal(4, StepDetector.FirstStep(y, threshold: 0.02, noise: 1)!.Value.Run);
    }

    [Fact]
    public void AHistoryNamesTheFirstRunWhereEachFigureMoved()
    {
        // Six runs: the Batched round trips jump at run 3 (and come back at run 5: a counter's single change still
        // counts), a timing steps up at run 3 and stays, another only has noise.
        long[] roundTrips = [32, 32, 32, 2048, 2048, 32];
        double[] slow = [200, 203, 198, 420, 415, 418];
        double[] flat = [50, 51, 49, 50.5, 49.5, 50];
        var runs = Enumerable.Range(0, 6).Select(i => new RegressionRun
        {
            Commit = $"commit{i}",
            Date = DateTimeOffset.UnixEpoch.AddDays(i),
            Counters = [new CounterFigure("hmm/uffd-batched", "roundTrips", roundTrips[i]), new CounterFigure("hmm/regular", "walks", 2)],
            Timings = [new TimingFigure { Id = "Slow", Source = "bdn", MedianNs = slow[i] }, new TimingFigure { Id = "Flat", Source = "bdn", MedianNs = flat[i] }],
        }).ToList();
        IReadOnlyList<FigureStep> steps = RegressionHistory.Of(runs).Steps(threshold: 0.10, noiseNs: 1);
        Assert.Equal(2, steps.Count);
        FigureStep counter = Assert.Single(steps, s => s.Id == "hmm/uffd-batched:roundTrips");
        Assert.Equal((3, 32.0, 2048.0), (counter.Run, counter.Before, counter.After));
        FigureStep timing = Assert.Single(steps, s => s.Id == "Slow");
        Assert.Equal(3, timing.Run);
        Assert.Equal("commit3", runs[timing.Run].Commit);
    }

    [Fact]
    public void AHistoryRoundTripsThroughItsFileWithoutSamples()
    {
        string path = Path.Combine(Path.GetTempPath(), $"mirroremu-history-{Guid.NewGuid():N}.jsonl");
        try
        {
            for (int i = 0; i < 3; i++)
            {
                RegressionHistory.Append(path, new RegressionRun
                {
                    Commit = $"c{i}",
                    Host = new RunHost { Cores = 2, LoadAtStart = 1.5, LoadAtEnd = 2.5 },
                    Counters = [new CounterFigure("s", "n", i)],
                    Timings = [RegressionComparisonTests.Timing("T", 100 + i, 1, seed: i)],
                });
            }

            Assert.Equal(3, File.ReadAllLines(path).Length);
            RegressionHistory h = RegressionHistory.Load(path);
            Assert.Equal(["c0", "c1", "c2"], h.Runs.Select(r => r.Commit));
            Assert.All(h.Runs, r => Assert.Empty(r.Timings[0].Samples));
            Assert.Equal(2.5, h.Runs[2].Host.LoadAtEnd);
            Assert.Equal(2, h.Series().Single(s => s.Id == "s:n").Values[2]);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void AHistoryLineOfAnotherSchemaIsNamedByItsNumber()
    {
        string path = Path.Combine(Path.GetTempPath(), $"mirroremu-history-{Guid.NewGuid():N}.jsonl");
        try
        {
            File.WriteAllText(path, new RegressionRun().ToJsonLine() + "\n{\"schemaVersion\":7}\n");
            var e = Assert.Throws<RegressionInputException>(() => RegressionHistory.Load(path));
            Assert.Contains("line 2: schemaVersion 7", e.Message);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
