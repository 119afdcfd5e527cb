using BenchmarkDotNet.Running;

namespace MirrorEmu.Bench;

/// <summary>Entry point: <c>dotnet run -c Release --project bench/MirrorEmu.Bench -- --filter '*'</c>.</summary>
public static class Program
{
    /// <summary>Runs the benchmarks the arguments select (BenchmarkSwitcher).</summary>
    public static void Main(string[] args)
    {
#if DEBUG
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args, new BenchmarkDotNet.Configs.DebugInProcessConfig());
#else
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args, BenchConfig.Create());
#endif
    }
}
