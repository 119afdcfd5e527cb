using System.Globalization;
using MirrorEmu.Bench;

namespace MirrorEmu.Tests.Bench;

/// <summary><c>--paired</c>: bad input is one line and exit code 2, [Params] are honoured combination by combination,
/// and times have the Stopwatch's full resolution.</summary>
public class PairedRunTests
{
    [Theory]
    [InlineData("0")]
    [InlineData("-3")]
    [InlineData("abc")]
    [InlineData("1.5")]
    public void BadRoundsValueIsOneLineAndExitCodeTwo(string rounds)
    {
        (int code, string output, string error) = Run(["--paired", "UffdRoundTripBenchmarks", rounds]);
        Assert.Equal(2, code);
        Assert.Equal(string.Empty, output);
        Assert.Equal($"--paired: rounds='{rounds}' must be a whole number of at least 1", error.TrimEnd());
    }

    [Fact]
    public void UnknownClassIsOneLineAndExitCodeTwo()
    {
        (int code, _, string error) = Run(["--paired", "NoSuchBenchmarks", "5"]);
        Assert.Equal(2, code);
        Assert.Single(error.TrimEnd().Split('\n'));
        Assert.StartsWith("--paired: no benchmark class named 'NoSuchBenchmarks' (there are ", error);
    }

    [Fact]
    public void ClassWithArgumentsIsRefused()
    {
        var error = new StringWriter();
        Assert.Equal(2, PairedRun.Run(typeof(Probes.WithArguments), 3, new StringWriter(), error));
        Assert.Equal("--paired: WithArguments.Baseline takes arguments, which --paired does not give", error.ToString().TrimEnd());
    }

    [Fact]
    public void EveryParamsCombinationRunsWithItsOwnValues()
    {
        Probes.WithParams.Seen.Clear();
        var output = new StringWriter();
        Assert.Equal(0, PairedRun.Run(typeof(Probes.WithParams), 3, output, new StringWriter()));
        foreach (string combination in new[] { "1a", "1b", "3a", "3b" })
        {
            Assert.Contains($"setup {combination}", Probes.WithParams.Seen);
            Assert.Contains($"run {combination}", Probes.WithParams.Seen);
        }

        string text = output.ToString();
        Assert.Contains("WithParams (Size=1, Name=a): 3 rounds", text);
        Assert.Contains("WithParams (Size=3, Name=b): 3 rounds", text);
        Assert.DoesNotContain("run 0", string.Join(' ', Probes.WithParams.Seen)); // never with the unset default
    }

    [Fact]
    public void EveryCallFindsWhatTheIterationSetupResets()
    {
        Probes.SharedState.Found.Clear();
        Assert.Equal(0, PairedRun.Run(typeof(Probes.SharedState), 5, new StringWriter(), new StringWriter()));
        Assert.NotEmpty(Probes.SharedState.Found);
        Assert.DoesNotContain(Probes.SharedState.Found, f => f.EndsWith(" used", StringComparison.Ordinal));
    }

    [Fact]
    public void TimesAreNotRoundedToTenthsOfAMicrosecond()
    {
        var output = new StringWriter();
        Assert.Equal(0, PairedRun.Run(typeof(Probes.Empty), 200, output, new StringWriter()));
        double[] medians = [.. output.ToString().Split('\n').Where(l => l.StartsWith("| Baseline", StringComparison.Ordinal) || l.StartsWith("| Other", StringComparison.Ordinal))
            .Select(l => double.Parse(l.Split('|')[2], CultureInfo.InvariantCulture))];
        Assert.Equal(2, medians.Length);
        Assert.All(medians, m => Assert.True(m > 0, "a median of 0 ns: the clock's resolution is lost"));
        Assert.True(medians.Any(m => Math.Abs(Math.IEEERemainder(m, 100)) > 1e-9), $"medians {string.Join(", ", medians)} are whole multiples of 100 ns");
    }

    private static (int Code, string Output, string Error) Run(string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = MirrorEmu.Bench.Program.Run(args, output, error);
        return (code, output.ToString(), error.ToString());
    }
}
