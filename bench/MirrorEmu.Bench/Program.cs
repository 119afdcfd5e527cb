using BenchmarkDotNet.Running;

namespace MirrorEmu.Bench;

/// <summary>Entry point: <c>dotnet run -c Release --project bench/MirrorEmu.Bench -- --filter '*'</c>.</summary>
public static class Program
{
    /// <summary>Runs the benchmarks the arguments select (BenchmarkSwitcher), or with <c>--paired Class [rounds]</c>
    /// one class round-robin in this process (<see cref="PairedRun"/>).</summary>
    public static int Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "--paired")
        {
            if (args.Length < 2 || args.Length > 3)
            {
                Console.Error.WriteLine("usage: --paired <BenchmarkClass> [rounds]");
                return 2;
            }

            int rounds = PairedRun.DefaultRounds;
            if (args.Length == 3 && !int.TryParse(args[2], out rounds))
            {
                Console.Error.WriteLine($"--paired: rounds='{args[2]}' is not a number");
                return 2;
            }

            return PairedRun.Run(args[1], rounds);
        }

#if DEBUG
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args, new BenchmarkDotNet.Configs.DebugInProcessConfig());
#else
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args, BenchConfig.Create());
#endif
        return 0;
    }
}
