using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Diagnosers;
using BenchmarkDotNet.Exporters.Json;
using BenchmarkDotNet.Jobs;
using Perfolizer.Horology;

namespace MirrorEmu.Bench;

/// <summary>The project's benchmark configuration: warmup 1, 250 ms iterations,
/// 15 iterations, memory diagnoser, full JSON plus Markdown, categories column, mandatory categories.
/// Results land in BenchmarkDotNet.Artifacts (ignored by git).</summary>
/// <remarks>
/// <para>The job is BenchmarkDotNet's <em>default</em> job (<see cref="JobExtensions.AsDefault(Job, bool)"/>): it runs only
/// for a class that names no job of its own, so a class with <see cref="IsaConfig"/> runs exactly IsaConfig's four
/// jobs (a plain job here was merged with them into a fifth, unnamed one).</para>
/// <para>A job named on the command line (<c>--job dry</c>, <c>--job short</c>, ...) replaces this one
/// (<see cref="RunOptions"/>): it becomes the default job, which BenchmarkDotNet also applies to each of IsaConfig's
/// jobs as a mutator, so it is never run beside them.</para>
/// </remarks>
public static class BenchConfig
{
    /// <summary>Warmup 1, 250 ms iterations, 15 iterations: the base of every job the benchmarks run.</summary>
    public static Job BaseJob { get; } = Job.Default
        .WithWarmupCount(1)
        .WithIterationTime(TimeInterval.FromMilliseconds(250))
        .WithIterationCount(15);

    /// <summary>Whether this run's benchmarks run in this process (<c>--inProcess</c>): then no environment variable can
    /// reach them, and <see cref="IsaConfig"/> names no job. Set by <see cref="Program"/> before BenchmarkDotNet reads
    /// the classes' configurations.</summary>
    public static bool InProcess { get; set; }

    /// <summary>The configuration <see cref="Program"/> hands to BenchmarkSwitcher.</summary>
    /// <param name="job">The run's job: <see cref="BaseJob"/>, or the one <c>--job</c> names.</param>
    public static IConfig Create(Job job) =>
        DefaultConfig.Instance
            .AddJob(job.AsDefault())
            .AddDiagnoser(MemoryDiagnoser.Default)
            .AddExporter(JsonExporter.Full)
            .AddColumn(CategoriesColumn.Default)
            .AddColumn(StatisticColumn.Median)
            .AddValidator(new MandatoryCategoryValidator());
}
