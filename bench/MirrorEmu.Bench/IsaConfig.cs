using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;

namespace MirrorEmu.Bench;

/// <summary>One job per ISA for SIMD benchmarks (STYLE.md rule 23): Scalar (the baseline, hardware
/// intrinsics off), Vector128 (AVX2 off), Vector256 (AVX-512 off) and Vector512 (everything on).
/// Knob names verified on .NET 10 (DOTNET_EnableAVX512F=0 does nothing; DOTNET_EnableAVX512=0 does).</summary>
public sealed class IsaConfig : ManualConfig
{
    public IsaConfig()
    {
        Job baseJob = Job.Default.WithWarmupCount(1).WithIterationTime(Perfolizer.Horology.TimeInterval.FromMilliseconds(250)).WithIterationCount(15);
        AddJob(baseJob.WithEnvironmentVariable("DOTNET_EnableHWIntrinsic", "0").WithId("Scalar").AsBaseline());
        AddJob(baseJob.WithEnvironmentVariable("DOTNET_EnableAVX2", "0").WithId("Vector128"));
        AddJob(baseJob.WithEnvironmentVariable("DOTNET_EnableAVX512", "0").WithId("Vector256"));
        AddJob(baseJob.WithEnvironmentVariable("DOTNET_PreferredVectorBitWidth", "512").WithId("Vector512"));
    }
}
