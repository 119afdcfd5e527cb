using System.Diagnostics;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using MirrorEmu.Bench;
using MirrorEmu.Tests.Helpers;

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
    public async Task BenchmarkThatDoesNotAllocatePassesTheGate()
    {
        // The memory diagnoser counts the whole process's allocations (GC.GetTotalAllocatedBytes). Under `dotnet test` the
        // test host's channel to the runner allocates about 9 KB in a 20 ms iteration (seen three times in a row on a probe
        // that only increments a field), so a clean run gets a process of its own, as in CI's gate: the benchmark runner
        // on a real must-not-allocate benchmark. (The failing side, a probe that allocates, runs in this process above.)
        Assert.SkipUnless(File.Exists(BenchAssembly), $"{BenchAssembly} is not built beside the tests");
        string artifacts = Directory.CreateTempSubdirectory("mirroremu-gate-").FullName;
        try
        {
            using Process child = ChildProcess.Start(ChildProcess.Dotnet, [BenchAssembly, .. GateArguments("*RangeWalkBenchmarks.RangeFault"), "--artifacts", artifacts], artifacts);
            using var limit = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
            limit.CancelAfter(TimeSpan.FromSeconds(180));
            Task<string> stdout = child.StandardOutput.ReadToEndAsync(limit.Token);
            Task<string> stderr = child.StandardError.ReadToEndAsync(limit.Token);
            try
            {
                await child.WaitForExitAsync(limit.Token);
            }
            catch (OperationCanceledException)
            {
                child.Kill(entireProcessTree: true);
                Assert.Fail("the benchmark runner did not finish in 180 s");
            }

            string output = await stdout;
            Assert.True(child.ExitCode == 0, $"exit {child.ExitCode}: {await stderr}{output[Math.Max(0, output.Length - 2000)..]}");
            Assert.Contains("must-not-allocate gate: 1 checked, 0 allocated", output);
        }
        finally
        {
            Directory.Delete(artifacts, recursive: true);
        }
    }

    private static string BenchAssembly => Path.Combine(AppContext.BaseDirectory, "MirrorEmu.Bench.dll");

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
