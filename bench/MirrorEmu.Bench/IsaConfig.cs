using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;

namespace MirrorEmu.Bench;

/// <summary>One job per ISA for SIMD benchmarks, and no other: Scalar (the baseline,
/// DOTNET_EnableHWIntrinsic=0), Vector128 (DOTNET_EnableAVX2=0), Vector256 (DOTNET_EnableAVX512=0) and Vector512
/// (DOTNET_PreferredVectorBitWidth=512, which turns Vector512 on where the runtime would otherwise prefer 256 bits).
/// Each is <see cref="BenchConfig.BaseJob"/> plus its variable. Knob names verified on .NET 10
/// (DOTNET_EnableAVX512F=0 does nothing; DOTNET_EnableAVX512=0 does; .ci/run checks each with <c>mirroremu info</c>).
/// In a run in this process (<see cref="BenchConfig.InProcess"/>) the variables cannot take effect, so the class names
/// no job and runs once, with the run's job, at the ISA of this process.</summary>
public sealed class IsaConfig : ManualConfig
{
    /// <summary>The four jobs.</summary>
    public IsaConfig()
    {
        if (BenchConfig.InProcess)
        {
            return;
        }

        AddJob(BenchConfig.BaseJob.WithEnvironmentVariable("DOTNET_EnableHWIntrinsic", "0").WithId("Scalar").AsBaseline());
        AddJob(BenchConfig.BaseJob.WithEnvironmentVariable("DOTNET_EnableAVX2", "0").WithId("Vector128"));
        AddJob(BenchConfig.BaseJob.WithEnvironmentVariable("DOTNET_EnableAVX512", "0").WithId("Vector256"));
        AddJob(BenchConfig.BaseJob.WithEnvironmentVariable("DOTNET_PreferredVectorBitWidth", "512").WithId("Vector512"));
    }
}
