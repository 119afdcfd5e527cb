using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Toolchains.InProcess.Emit;

namespace MirrorEmu.Bench;

/// <summary>
/// The options <see cref="Program"/> reads itself before BenchmarkDotNet sees the command line, because
/// BenchmarkDotNet 0.15 would not let them replace the configured jobs: <c>--job &lt;name&gt;</c> (ignored whenever the
/// global configuration has a default job, as <see cref="BenchConfig"/>'s is; without one it ran beside it) and
/// <c>--inProcess</c>/<c>-i</c> (it adds an in-process job beside a class's own jobs, which then run at full length).
/// Both go into the run's default job, which BenchmarkDotNet applies to every class's jobs.
/// </summary>
/// <param name="Job">The run's job: <see cref="BenchConfig.BaseJob"/> unless <c>--job</c> names another, with the
/// in-process toolchain under <c>--inProcess</c>.</param>
/// <param name="InProcess">Whether the benchmarks run in this process.</param>
/// <param name="BenchmarkDotNetArguments">The rest of the command line, for BenchmarkSwitcher.</param>
public sealed record RunOptions(Job Job, bool InProcess, string[] BenchmarkDotNetArguments)
{
    /// <summary>The job names <c>--job</c> takes, as BenchmarkDotNet's own <c>--job</c> does.</summary>
    public static IReadOnlyDictionary<string, Job> Jobs { get; } = new Dictionary<string, Job>(StringComparer.OrdinalIgnoreCase)
    {
        ["dry"] = Job.Dry,
        ["short"] = Job.ShortRun,
        ["medium"] = Job.MediumRun,
        ["long"] = Job.LongRun,
        ["verylong"] = Job.VeryLongRun,
        ["default"] = Job.Default,
    };

    /// <summary>Reads <c>--job</c> (also <c>-j</c>, <c>--job=name</c>) out of <paramref name="args"/> and notes <c>--inProcess</c>.</summary>
    /// <param name="args">The command line after the program name.</param>
    /// <param name="options">The options, when the line is good.</param>
    /// <param name="error">One line naming the bad argument, otherwise.</param>
    public static bool TryParse(string[] args, out RunOptions options, out string error)
    {
        Job job = BenchConfig.BaseJob;
        bool inProcess = false;
        var rest = new List<string>(args.Length);
        for (int i = 0; i < args.Length; i++)
        {
            string arg = args[i];
            string? name = null;
            if (arg is "--job" or "-j")
            {
                if (i + 1 == args.Length || args[i + 1].StartsWith('-'))
                {
                    return Fail($"{arg} needs a job name: {string.Join(", ", Jobs.Keys)}", out options, out error);
                }

                name = args[++i];
            }
            else if (arg.StartsWith("--job=", StringComparison.Ordinal))
            {
                name = arg["--job=".Length..];
            }
            else if (arg is "--inProcess" or "-i")
            {
                inProcess = true;
                continue;
            }
            else
            {
                rest.Add(arg);
                continue;
            }

            if (!Jobs.TryGetValue(name, out Job? named))
            {
                return Fail($"--job: '{name}' is not one of {string.Join(", ", Jobs.Keys)}", out options, out error);
            }

            job = named;
        }

        options = new RunOptions(inProcess ? job.WithToolchain(InProcessEmitToolchain.Instance) : job, inProcess, [.. rest]);
        error = string.Empty;
        return true;
    }

    private static bool Fail(string message, out RunOptions options, out string error)
    {
        options = new RunOptions(BenchConfig.BaseJob, false, []);
        error = message;
        return false;
    }
}
