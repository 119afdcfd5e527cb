using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using MirrorEmu.Regression;
using MirrorEmu.Telemetry;

namespace MirrorEmu.Bench;

/// <summary>Entry point: <c>dotnet run -c Release --project bench/MirrorEmu.Bench -- --filter '*'</c>.</summary>
public static class Program
{
    /// <summary>Runs the benchmarks the arguments select (BenchmarkSwitcher) and then <see cref="RunGate"/>, or with
    /// <c>--paired Class [rounds]</c> one class round-robin in this process (<see cref="PairedRun"/>).</summary>
    /// <returns>0; 1 when a benchmark failed or allocated where it must not; 2 for a bad argument.</returns>
    public static int Main(string[] args) => Run(args, Console.Out, Console.Error);

    /// <summary><see cref="Main"/> with its writers given, over this assembly's benchmarks.</summary>
    /// <param name="args">The command line after the program name.</param>
    /// <param name="output">Standard output.</param>
    /// <param name="error">Standard error: bad input is one line there.</param>
    public static int Run(string[] args, TextWriter output, TextWriter error) =>
        Run(args, output, error, BenchmarkClasses(typeof(Program).Assembly.GetTypes()));

    /// <summary><see cref="Main"/> over the benchmark classes among <paramref name="types"/> (tests pass their own).</summary>
    /// <param name="args">The command line after the program name.</param>
    /// <param name="output">Standard output.</param>
    /// <param name="error">Standard error: bad input is one line there.</param>
    /// <param name="types">Where the benchmark classes are.</param>
    public static int Run(string[] args, TextWriter output, TextWriter error, Type[] types)
    {
        if (args.Length > 0 && args[0] == "--paired")
        {
            return PairedRun.Parse(args[1..], types, output, error);
        }

        if (!RunOptions.TryParse(args, out RunOptions options, out string message))
        {
            error.WriteLine(message);
            return 2;
        }

        BenchConfig.InProcess = options.InProcess;
        HostLoad loadAtStart = HostLoad.Current();
#if DEBUG
        IEnumerable<Summary> summaries = BenchmarkSwitcher.FromTypes(types).Run(options.BenchmarkDotNetArguments, new BenchmarkDotNet.Configs.DebugInProcessConfig());
#else
        IEnumerable<Summary> summaries = BenchmarkSwitcher.FromTypes(types).Run(options.BenchmarkDotNetArguments, BenchConfig.Create(options.Job));
#endif
        RecordHost(summaries, loadAtStart);
        return RunGate.Check(summaries, output, error);
    }

    /// <summary>Writes the host and its load at the start and the end of the run beside each results folder's exports
    /// (<see cref="BdnResults.HostFileName"/>), where <c>mirroremu regress --bdn</c> reads it: BenchmarkDotNet's JSON
    /// records the machine but not how busy it was, and a timing from a busy host is marked, not compared silently.</summary>
    private static void RecordHost(IEnumerable<Summary> summaries, HostLoad loadAtStart)
    {
        RunHost host = RunHost.Here(loadAtStart, HostLoad.Current());
        foreach (string folder in summaries.Select(s => s.ResultsDirectoryPath).Where(Directory.Exists).Distinct())
        {
            File.WriteAllText(Path.Combine(folder, BdnResults.HostFileName), System.Text.Json.JsonSerializer.Serialize(host, BdnResults.HostJson));
        }
    }

    /// <summary>The benchmark classes among <paramref name="types"/>: public, concrete, with <c>[Benchmark]</c> methods.</summary>
    /// <param name="types">Candidate types.</param>
    public static Type[] BenchmarkClasses(IEnumerable<Type> types) =>
        [.. types.Where(t => t.IsPublic && t.IsClass && !t.IsAbstract && !t.IsGenericTypeDefinition && t.GetMethods().Any(m => m.IsDefined(typeof(BenchmarkAttribute), inherit: true)))
            .OrderBy(t => t.Name, StringComparer.Ordinal)];
}
