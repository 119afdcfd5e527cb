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
/// <remarks>
/// A class with <c>[Params]</c> runs once per combination of their values, as BenchmarkDotNet would (each with its
/// own global setup and cleanup, and its own table). A class that needs what a paired run cannot give, benchmarks
/// with arguments, <c>[ParamsSource]</c> or <c>[ParamsAllValues]</c>, or setups aimed at some benchmarks only, is
/// refused with one line. Times are Stopwatch ticks at full resolution, per operation
/// (<see cref="BenchmarkAttribute.OperationsPerInvoke"/>); each includes one reflection call.
/// </remarks>
public static class PairedRun
{
    /// <summary>Rounds when the command line gives none.</summary>
    public const int DefaultRounds = 300;

    private const int WarmupRounds = 30;

    private static readonly double s_nanosecondsPerTick = 1e9 / Stopwatch.Frequency;

    /// <summary><c>--paired &lt;BenchmarkClass&gt; [rounds]</c>: checks the arguments and runs the class.</summary>
    /// <param name="args">The arguments after <c>--paired</c>.</param>
    /// <param name="classes">The benchmark classes to choose from (<see cref="Program.BenchmarkClasses"/>).</param>
    /// <param name="output">Where the tables go.</param>
    /// <param name="error">Where a bad argument is named, in one line.</param>
    /// <returns>0, or 2 for a bad argument.</returns>
    public static int Parse(string[] args, Type[] classes, TextWriter output, TextWriter error)
    {
        if (args.Length is < 1 or > 2)
        {
            error.WriteLine("--paired: usage: --paired <BenchmarkClass> [rounds]");
            return 2;
        }

        int rounds = DefaultRounds;
        if (args.Length == 2 && (!int.TryParse(args[1], NumberStyles.None, CultureInfo.InvariantCulture, out rounds) || rounds < 1))
        {
            error.WriteLine($"--paired: rounds='{args[1]}' must be a whole number of at least 1");
            return 2;
        }

        Type? type = classes.FirstOrDefault(t => t.Name == args[0]);
        if (type is null)
        {
            error.WriteLine($"--paired: no benchmark class named '{args[0]}' (there are {string.Join(", ", classes.Select(t => t.Name))})");
            return 2;
        }

        return Run(type, rounds, output, error);
    }

    /// <summary>Runs <paramref name="type"/>'s benchmarks, once per combination of its <c>[Params]</c>, and prints per-benchmark medians.</summary>
    /// <param name="type">A class with <c>[Benchmark]</c> methods, one of them the baseline.</param>
    /// <param name="rounds">Measured rounds, at least 1.</param>
    /// <param name="output">Where the tables go.</param>
    /// <param name="error">Where a refusal is said, in one line.</param>
    /// <returns>0, or 2 when the class cannot run paired.</returns>
    public static int Run(Type type, int rounds, TextWriter output, TextWriter error)
    {
        MethodInfo[] benchmarks = Benchmarks(type);
        MethodInfo? baseline = benchmarks.FirstOrDefault(m => m.GetCustomAttribute<BenchmarkAttribute>()!.Baseline);
        string? refusal =
            baseline is null ? $"{type.Name} has no baseline benchmark"
            : benchmarks.FirstOrDefault(m => m.GetParameters().Length > 0) is { } withArguments ? $"{type.Name}.{withArguments.Name} takes arguments, which --paired does not give"
            : Members(type).FirstOrDefault(m => m.IsDefined(typeof(ParamsSourceAttribute)) || m.IsDefined(typeof(ParamsAllValuesAttribute))) is { } source ? $"{type.Name}.{source.Name} takes its values from [ParamsSource] or [ParamsAllValues]; --paired runs [Params] only"
            : Setups(type).Any(m => m.GetCustomAttributes<TargetedAttribute>().Any(a => a.Targets is { Length: > 0 })) ? $"{type.Name} has a setup or cleanup aimed at some benchmarks only, which --paired would run for all"
            : null;
        if (refusal is not null)
        {
            error.WriteLine($"--paired: {refusal}");
            return 2;
        }

        foreach ((MemberInfo Member, object? Value)[] combination in Combinations(type))
        {
            RunCombination(type, combination, benchmarks, baseline!, rounds, output);
        }

        return 0;
    }

    private static void RunCombination(Type type, (MemberInfo Member, object? Value)[] combination, MethodInfo[] benchmarks, MethodInfo baseline, int rounds, TextWriter output)
    {
        object instance = Activator.CreateInstance(type)!;
        foreach ((MemberInfo member, object? value) in combination)
        {
            if (member is PropertyInfo p)
            {
                p.SetValue(instance, value);
            }
            else
            {
                ((FieldInfo)member).SetValue(instance, value);
            }
        }

        Invoke(type, instance, typeof(GlobalSetupAttribute));
        var times = benchmarks.ToDictionary(m => m, _ => new List<double>());
        var ratios = benchmarks.ToDictionary(m => m, _ => new List<double>());
        var round = new Dictionary<MethodInfo, double>();
        try
        {
            for (int r = 0; r < WarmupRounds + rounds; r++)
            {
                round.Clear();
                for (int k = 0; k < benchmarks.Length; k++)
                {
                    // Setup and cleanup around every call, as BenchmarkDotNet runs them around every iteration: benchmarks
                    // that share what the setup resets (PopulateBenchmarks' range) must each find it reset.
                    MethodInfo m = benchmarks[(r + k) % benchmarks.Length];
                    int ops = m.GetCustomAttribute<BenchmarkAttribute>()!.OperationsPerInvoke;
                    Invoke(type, instance, typeof(IterationSetupAttribute));
                    long t0 = Stopwatch.GetTimestamp();
                    m.Invoke(instance, null);
                    long ticks = Stopwatch.GetTimestamp() - t0;
                    Invoke(type, instance, typeof(IterationCleanupAttribute));
                    round[m] = ticks * s_nanosecondsPerTick / ops;
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

        string parameters = combination.Length == 0 ? string.Empty : $" ({string.Join(", ", combination.Select(c => string.Create(CultureInfo.InvariantCulture, $"{c.Member.Name}={c.Value}")))})";
        output.WriteLine($"{type.Name}{parameters}: {rounds} rounds (after {WarmupRounds} warm-up rounds), each benchmark once per round in rotating order; ratio = benchmark / {baseline.Name} of the same round");
        output.WriteLine("| benchmark | median ns/op | median ratio | ratio p10–p90 |");
        output.WriteLine("|---|---|---|---|");
        foreach (MethodInfo m in benchmarks)
        {
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {m.Name} | {Nanoseconds(Quantile(times[m], 0.5))} | {Ratio(Quantile(ratios[m], 0.5))} | {Ratio(Quantile(ratios[m], 0.1))}–{Ratio(Quantile(ratios[m], 0.9))} |"));
        }
    }

    /// <summary>Every combination of the values of the class's <c>[Params]</c> members (one empty one when it has none).</summary>
    private static IEnumerable<(MemberInfo Member, object? Value)[]> Combinations(Type type)
    {
        IEnumerable<(MemberInfo Member, object? Value)[]> combinations = [[]];
        foreach (MemberInfo member in Members(type).Where(m => m.IsDefined(typeof(ParamsAttribute))))
        {
            object?[] values = member.GetCustomAttribute<ParamsAttribute>()!.Values;
            combinations = [.. combinations.SelectMany(c => values.Select(v => c.Append((member, v)).ToArray()))];
        }

        return combinations;
    }

    private static MethodInfo[] Benchmarks(Type type) =>
        [.. type.GetMethods().Where(m => m.IsDefined(typeof(BenchmarkAttribute)))];

    private static IEnumerable<MemberInfo> Members(Type type) =>
        type.GetMembers(BindingFlags.Public | BindingFlags.Instance).Where(m => m is PropertyInfo or FieldInfo);

    private static IEnumerable<MethodInfo> Setups(Type type) =>
        type.GetMethods().Where(m => m.IsDefined(typeof(TargetedAttribute)));

    private static void Invoke(Type type, object instance, Type attribute)
    {
        foreach (MethodInfo m in type.GetMethods().Where(m => m.IsDefined(attribute)))
        {
            m.Invoke(instance, null);
        }
    }

    private static string Nanoseconds(double ns) => ns.ToString(ns < 10 ? "F3" : "F1", CultureInfo.InvariantCulture);

    private static string Ratio(double r) => r.ToString(r < 0.1 ? "0.#####" : "F2", CultureInfo.InvariantCulture);

    private static double Quantile(List<double> values, double q)
    {
        var sorted = values.Order().ToList();
        return sorted[(int)Math.Min(sorted.Count - 1, Math.Floor(q * sorted.Count))];
    }
}
