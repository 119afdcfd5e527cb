namespace MirrorEmu.Tests.Bench;

/// <summary>Tests that run BenchmarkDotNet in this process run one at a time: it sets process-wide state (priority,
/// the console, BenchConfig.InProcess).</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class BenchmarkDotNetCollection
{
    /// <summary>The collection's name.</summary>
    public const string Name = "BenchmarkDotNet";
}
