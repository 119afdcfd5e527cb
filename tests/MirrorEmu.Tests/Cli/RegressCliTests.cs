using MirrorEmu.Regression;
using MirrorEmu.Tests.Helpers;

namespace MirrorEmu.Tests.Cli;

/// <summary><c>mirroremu regress</c>: exit 0 against the committed baseline, 1 on a counter regression with a table naming
/// it, 2 on bad input with one line on stderr; --save, --history and --chart.</summary>
public sealed class RegressCliTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("mirroremu-regress-").FullName;

    private static readonly string s_baselines = Path.Combine(RepoPaths.Root, "bench", "baselines");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static (int Code, string Out, string Err) Run(params string[] args) => CliRunner.Run(args);

    [Fact]
    public void TheCommittedBaselinePasses()
    {
        (int code, string output, string err) = Run("regress", "--baseline", s_baselines, "--scenarios", "hmm/uffd-*");
        Assert.True(code == 0, output + err);
        Assert.Contains("regressed", output);
        Assert.Contains("no figure moved.", output);
    }

    [Fact]
    public void ACounterRegressionExitsWithOneAndTheTableNamesIt()
    {
        RegressionRun committed = RegressionRun.Load(Path.Combine(s_baselines, "counters.json"), "baseline");
        RegressionRun changed = committed with
        {
            Counters = [.. committed.Counters.Select(c => c.Id == "hmm/uffd-batched:ebusyRestarts" ? c with { Value = 2048 } : c)],
        };
        File.WriteAllText(Path.Combine(_dir, "counters.json"), changed.ToJson());
        (int code, string output, string err) = Run("regress", "--baseline", _dir, "--scenarios", "hmm/uffd-batched");
        Assert.True(code == 1, output + err);
        string line = Assert.Single(output.Split('\n'), l => l.Contains("hmm/uffd-batched:ebusyRestarts"));
        Assert.Contains("REGRESSION", line);
        Assert.Contains("2,048", line);
        Assert.Contains("counters: ", output);
        Assert.Contains("1 regressed", output);
    }

    [Fact]
    public void SaveThenCompareRoundTripsAndAHistoryGetsAChart()
    {
        string history = Path.Combine(_dir, "history.jsonl");
        for (int i = 0; i < 3; i++)
        {
            (int code, _, string err) = Run("regress", "--scenarios", "hmm/uffd-rangeevent", "--save", _dir, "--append-history", history, "--commit", $"c{i}");
            Assert.True(code == 0, err);
        }

        (int again, string output, _) = Run("regress", "--baseline", _dir, "--scenarios", "hmm/uffd-rangeevent");
        Assert.True(again == 0, output);

        string chart = Path.Combine(_dir, "trend.png");
        (int h, string report, string herr) = Run("regress", "--history", history, "--chart", chart, "--figures", "hmm/uffd-rangeevent:roundTrips");
        Assert.True(h == 0, report + herr);
        Assert.Contains("3 runs", report);
        Assert.Contains("0 moved", report);
        byte[] png = File.ReadAllBytes(chart);
        Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], png[..4]);
    }

    [Theory]
    [InlineData("--threshold", "ten", "--threshold: 'ten'")]
    [InlineData("--noise", "5", "--noise: '5'")]
    [InlineData("--scenarios", "nope/*", "--scenarios 'nope/*' matches no scenario")]
    [InlineData("--bdn", "/nonexistent/results", "--bdn /nonexistent/results: no such file or folder")]
    [InlineData("--compare-json", "/nonexistent/c.json", "--compare-json /nonexistent/c.json: cannot be read")]
    [InlineData("--history", "/nonexistent/h.jsonl", "--history /nonexistent/h.jsonl: cannot be read")]
    [InlineData("--baseline", "/nonexistent/baselines", "--baseline /nonexistent/baselines: no such file or folder")]
    [InlineData("--chart", "t.png", "--chart needs --history")]
    [InlineData("--figures", "foo", "--figures needs --chart FILE and --history FILE")]
    public void BadInputIsOneLineOnStderrAndExitCodeTwo(string option, string value, string named)
    {
        (int code, string output, string err) = option == "--baseline" ? Run("regress", option, value) : Run("regress", "--baseline", s_baselines, option, value);
        Assert.Equal(2, code);
        Assert.Contains(named, err);
        Assert.Single(err.Trim().Split('\n'));
        Assert.DoesNotContain("   at ", err);
        Assert.Equal(string.Empty, output);
    }

    [Fact]
    public void ABaselineOfAnotherSchemaVersionIsRefused()
    {
        string file = Path.Combine(_dir, "old.json");
        File.WriteAllText(file, "{\"schemaVersion\": 0, \"counters\": []}");
        (int code, _, string err) = Run("regress", "--baseline", file);
        Assert.Equal(2, code);
        Assert.Contains("schemaVersion 0 is not the 1 this mirroremu reads", err);
    }

    [Fact]
    public void AMissingBenchmarkFailsTheRun()
    {
        string results = Directory.CreateDirectory(Path.Combine(_dir, "results")).FullName;
        File.WriteAllText(Path.Combine(results, "A-report-full.json"), """{"Benchmarks":[{"FullName":"A","Statistics":{"Median":10,"OriginalValues":[10,10.1,9.9]}}]}""");
        File.WriteAllText(Path.Combine(_dir, "timings.json"), new RegressionRun
        {
            Timings = [new TimingFigure { Id = "A", Source = "bdn", MedianNs = 10 }, new TimingFigure { Id = "B", Source = "bdn", MedianNs = 10 }],
        }.ToJson());
        (int code, string output, _) = Run("regress", "--baseline", _dir, "--no-counters", "--bdn", results);
        Assert.Equal(1, code);
        Assert.Contains("MISSING", Assert.Single(output.Split('\n'), l => l.Contains("│ B ")));
    }
}
