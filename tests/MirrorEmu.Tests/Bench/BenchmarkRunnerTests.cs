using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using MirrorEmu.Bench;

namespace MirrorEmu.Tests.Bench;

/// <summary>
/// The benchmark runner: which jobs a run runs (a job named on the command line replaces the configured ones, a class
/// with IsaConfig runs exactly its four), and what fails a run (a benchmark that throws, one that allocates on a path
/// that must not). The runs are real BenchmarkDotNet runs of small probe classes, in this process.
/// </summary>
[Collection(BenchmarkDotNetCollection.Name)]
public class BenchmarkRunnerTests
{
    [Fact]
    public void IsaConfigRunsExactlyItsFourJobs()
    {
        BenchConfig.InProcess = false; // as Program sets it for a run out of process
        ImmutableConfig config = ImmutableConfigBuilder.Create(ManualConfig.Union(BenchConfig.Create(BenchConfig.BaseJob), new IsaConfig()));
        string[] ids = [.. config.GetJobs().Select(j => j.Id).Order(StringComparer.Ordinal)];
        Assert.True(ids.SequenceEqual(["Scalar", "Vector128", "Vector256", "Vector512"]), $"jobs run: {string.Join(", ", ids)} (the configured job must not join them)");
        Job scalar = config.GetJobs().Single(j => j.Id == "Scalar");
        Assert.Contains(scalar.Environment.EnvironmentVariables!, v => v.Key == "DOTNET_EnableHWIntrinsic" && v.Value == "0");
        Assert.True(config.GetJobs().All(j => j.Run.IterationCount == BenchConfig.BaseJob.Run.IterationCount), "every ISA job is BaseJob plus its variable");
    }

    [Fact]
    public void JobOnTheCommandLineReplacesTheConfiguredJob()
    {
        Probes.Calls = 0;
        (int code, string output, string error) = Run(["--filter", "*NoJobs*", "--job", "dry", "--inProcess"], typeof(Probes.NoJobs));
        Assert.True(code == 0, error);
        Assert.Contains("benchmarks: 1 ran, 0 failed", output); // one job, not the configured one beside it
        Assert.True(Probes.Calls < 50, $"the benchmark ran {Probes.Calls} times: the configured 15-iteration job ran, not the dry one");
    }

    [Fact]
    public void JobOnTheCommandLineAppliesToEachJobOfTheClass()
    {
        Probes.Calls = 0;
        (int code, string output, string error) = Run(["--filter", "*TwoJobs*", "--job", "dry", "--inProcess"], typeof(Probes.TwoJobs));
        Assert.True(code == 0, error);
        Assert.Contains("benchmarks: 2 ran, 0 failed", output); // the class's two jobs, dry; no third
        Assert.True(Probes.Calls < 100, $"the benchmark ran {Probes.Calls} times: a class job kept its own iteration count");
    }

    [Fact]
    public void IsaConfigNamesNoJobInARunInThisProcess()
    {
        BenchConfig.InProcess = true; // as Program sets it under --inProcess: the variables could not take effect
        try
        {
            Assert.Empty(new IsaConfig().GetJobs());
        }
        finally
        {
            BenchConfig.InProcess = false;
        }
    }

    [Fact]
    public void BadJobNameIsOneLineAndExitCodeTwo()
    {
        (int code, string output, string error) = Run(["--job", "fast"], typeof(Probes.NoJobs));
        Assert.Equal(2, code);
        Assert.Equal(string.Empty, output);
        Assert.Equal("--job: 'fast' is not one of dry, short, medium, long, verylong, default", error.TrimEnd());
    }

    [Fact]
    public void BenchmarkThatThrowsFailsTheRun()
    {
        (int code, string output, string error) = Run(["--filter", "*Throws*", "--job", "dry", "--inProcess"], typeof(Probes.Throws));
        Assert.Equal(1, code);
        Assert.Contains("benchmarks: 0 ran, 1 failed", output);
        Assert.Contains("Throws.Benchmark", error);
    }

    [Fact]
    public void BenchmarkThatAllocatesWhereItMustNotFailsTheRun()
    {
        (int code, string output, string error) = Run(GateArguments("*Allocates*"), typeof(Probes.Allocates));
        Assert.Equal(1, code);
        Assert.Contains("must-not-allocate gate: 1 checked, 1 allocated", output);
        Assert.Contains("Allocates.Benchmark", error);
        Assert.Contains("must not allocate", error);
    }

    [Fact]
    public void BenchmarkThatDoesNotAllocatePassesTheGate()
    {
        (int code, string output, string error) = Run(GateArguments("*Clean*"), typeof(Probes.Clean));
        Assert.True(code == 0, error);
        Assert.Contains("must-not-allocate gate: 1 checked, 0 allocated", output);
    }

    /// <summary>The gate's job in .ci/run: enough invocations that an allocation per call adds up past the allocation quantum.</summary>
    private static string[] GateArguments(string filter) =>
        ["--filter", filter, "--job", "short", "--warmupCount", "1", "--iterationCount", "1", "--iterationTime", "20", "--inProcess"];

    private static (int Code, string Output, string Error) Run(string[] args, params Type[] types)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = MirrorEmu.Bench.Program.Run(args, output, error, types);
        return (code, output.ToString(), error.ToString());
    }
}
