using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using BenchmarkDotNet.Attributes;

namespace MirrorEmu.Bench;

/// <summary>
/// Runs the benchmarks of one class in a single process, round-robin: each round runs the class's
/// iteration setup, then every benchmark once, in an order that rotates from round to round, and
/// divides each by the baseline's time of the same round. BenchmarkDotNet runs each benchmark in its
/// own process, minutes apart; on a shared machine the baseline of one process and the benchmark of
/// another can see different neighbours, and a ratio of two such figures moves with them. A ratio
/// taken within a round compares two runs made milliseconds apart.
/// <c>dotnet run -c Release --project bench/MirrorEmu.Bench -- --paired UffdRoundTripBenchmarks [rounds]</c>.
/// </summary>
public static class PairedRun
{
    /// <summary>Rounds when the command line gives none.</summary>
    public const int DefaultRounds = 300;

    private const int WarmupRounds = 30;

    /// <summary>Runs the class named <paramref name="className"/> (its short name) and prints per-benchmark medians.</summary>
    /// <param name="className">A benchmark class of this assembly.</param>
    /// <param name="rounds">Measured rounds.</param>
    /// <returns>0, or 2 for a bad argument.</returns>
    public static int Run(string className, int rounds)
    {
        Type? type = typeof(PairedRun).Assembly.GetTypes().FirstOrDefault(t => t.Name == className && t.GetMethods().Any(m => m.GetCustomAttribute<BenchmarkAttribute>() is not null));
        if (type is null || rounds < 1)
        {
            Console.Error.WriteLine($"--paired: no benchmark class named '{className}', or rounds={rounds} is below 1");
            return 2;
        }

        MethodInfo[] benchmarks = [.. type.GetMethods().Where(m => m.GetCustomAttribute<BenchmarkAttribute>() is not null)];
        MethodInfo? baseline = benchmarks.FirstOrDefault(m => m.GetCustomAttribute<BenchmarkAttribute>()!.Baseline);
        if (baseline is null)
        {
            Console.Error.WriteLine($"--paired: {className} has no baseline benchmark");
            return 2;
        }

        object instance = Activator.CreateInstance(type)!;
        Invoke(type, instance, typeof(GlobalSetupAttribute));
        var times = benchmarks.ToDictionary(m => m, _ => new List<double>());
        var ratios = benchmarks.ToDictionary(m => m, _ => new List<double>());
        var round = new Dictionary<MethodInfo, double>();
        try
        {
            for (int r = 0; r < WarmupRounds + rounds; r++)
            {
                Invoke(type, instance, typeof(IterationSetupAttribute));
                round.Clear();
                for (int k = 0; k < benchmarks.Length; k++)
                {
                    MethodInfo m = benchmarks[(r + k) % benchmarks.Length];
                    int ops = m.GetCustomAttribute<BenchmarkAttribute>()!.OperationsPerInvoke;
                    long t0 = Stopwatch.GetTimestamp();
                    m.Invoke(instance, null);
                    round[m] = Stopwatch.GetElapsedTime(t0).TotalNanoseconds / ops;
                }

                if (r >= WarmupRounds)
                {
                    foreach (MethodInfo m in benchmarks)
                    {
                        times[m].Add(round[m]);
                        ratios[m].Add(round[m] / round[baseline]);
                    }
                }
            }
        }
        finally
        {
            Invoke(type, instance, typeof(GlobalCleanupAttribute));
        }

        Console.WriteLine($"{className}: {rounds} rounds (after {WarmupRounds} warm-up rounds), each benchmark once per round in rotating order; ratio = benchmark / {baseline.Name} of the same round");
        Console.WriteLine("| benchmark | median ns/op | median ratio | ratio p10–p90 |");
        Console.WriteLine("|---|---|---|---|");
        foreach (MethodInfo m in benchmarks)
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {m.Name} | {Quantile(times[m], 0.5):F1} | {Quantile(ratios[m], 0.5):F2} | {Quantile(ratios[m], 0.1):F2}–{Quantile(ratios[m], 0.9):F2} |"));
        }

        return 0;
    }

    private static void Invoke(Type type, object instance, Type attribute)
    {
        foreach (MethodInfo m in type.GetMethods().Where(m => m.GetCustomAttribute(attribute) is not null))
        {
            m.Invoke(instance, null);
        }
    }

    private static double Quantile(List<double> values, double q)
    {
        var sorted = values.Order().ToList();
        return sorted[(int)Math.Min(sorted.Count - 1, Math.Floor(q * sorted.Count))];
    }
}
