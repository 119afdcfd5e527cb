using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Diagnosers;
using BenchmarkDotNet.Exporters.Json;
using BenchmarkDotNet.Jobs;
using Perfolizer.Horology;

namespace MirrorEmu.Bench;

/// <summary>The project's benchmark configuration (STYLE.md rule 22): warmup 1, 250 ms iterations,
/// 15 iterations, memory diagnoser, full JSON plus Markdown, categories column, mandatory categories.
/// Results land in BenchmarkDotNet.Artifacts (ignored by git).</summary>
public static class BenchConfig
{
    public static IConfig Create() =>
        DefaultConfig.Instance
            .AddJob(Job.Default
                .WithWarmupCount(1)
                .WithIterationTime(TimeInterval.FromMilliseconds(250))
                .WithIterationCount(15))
            .AddDiagnoser(MemoryDiagnoser.Default)
            .AddExporter(JsonExporter.Full)
            .AddColumn(CategoriesColumn.Default)
            .AddColumn(StatisticColumn.Median)
            .AddValidator(new MandatoryCategoryValidator());
}
