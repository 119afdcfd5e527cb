using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using MirrorEmu.Bench;

namespace MirrorEmu.Tests.Bench;

/// <summary>Small benchmark classes for the runner's tests.</summary>
public static class Probes
{
    /// <summary>Benchmark invocations since the last reset.</summary>
    public static int Calls;

    /// <summary>A class with no job of its own.</summary>
    [BenchmarkCategory(BenchCategories.Walk)]
    public class NoJobs
    {
        [Benchmark]
        public int Benchmark() => Interlocked.Increment(ref Calls);
    }

    /// <summary>A class with two jobs of its own.</summary>
    [BenchmarkCategory(BenchCategories.Walk)]
    [Config(typeof(TwoJobsConfig))]
    public class TwoJobs
    {
        [Benchmark]
        public int Benchmark() => Interlocked.Increment(ref Calls);
    }

    /// <summary>Two long jobs, as IsaConfig's are, without environment variables (so they can run in this process).</summary>
    public sealed class TwoJobsConfig : ManualConfig
    {
        public TwoJobsConfig()
        {
            AddJob(BenchConfig.BaseJob.WithId("A"));
            AddJob(BenchConfig.BaseJob.WithId("B"));
        }
    }

    /// <summary>A benchmark that throws.</summary>
    [BenchmarkCategory(BenchCategories.Walk)]
    public class Throws
    {
        [Benchmark]
        public int Benchmark() => throw new InvalidOperationException("probe");
    }

    /// <summary>A benchmark that allocates 32 bytes per call on a path that must not allocate.</summary>
    [BenchmarkCategory(BenchCategories.Walk)]
    public class Allocates
    {
        [Benchmark]
        [MustNotAllocate]
        public object Benchmark() => new byte[8];
    }

    /// <summary>A class with two [Params] for paired runs; it records every combination it ran with.</summary>
    public class WithParams
    {
        /// <summary>(Size, Name) pairs seen by the global setup and by the benchmarks.</summary>
        public static readonly List<string> Seen = [];

        [Params(1, 3)]
        public int Size { get; set; }

        [Params("a", "b")]
        public string Name = string.Empty;

        [GlobalSetup]
        public void Setup()
        {
            lock (Seen)
            {
                Seen.Add($"setup {Size}{Name}");
            }
        }

        [Benchmark(Baseline = true)]
        public int Baseline() => Size;

        [Benchmark]
        public int Other()
        {
            lock (Seen)
            {
                Seen.Add($"run {Size}{Name}");
            }

            return Size;
        }
    }

    /// <summary>Two benchmarks that share what the iteration setup resets: each must find it reset.</summary>
    public class SharedState
    {
        /// <summary>What each call found: "Baseline fresh", "Other used", ...</summary>
        public static readonly List<string> Found = [];

        private bool _used;

        [IterationSetup]
        public void Reset() => _used = false;

        [Benchmark(Baseline = true)]
        public int Baseline() => Use(nameof(Baseline));

        [Benchmark]
        public int Other() => Use(nameof(Other));

        private int Use(string name)
        {
            lock (Found)
            {
                Found.Add($"{name} {(_used ? "used" : "fresh")}");
            }

            _used = true;
            return 0;
        }
    }

    /// <summary>A class whose benchmark takes arguments, which a paired run cannot give.</summary>
    public class WithArguments
    {
        [Benchmark(Baseline = true)]
        [Arguments(1)]
        public int Baseline(int x) => x;
    }

    /// <summary>Two empty benchmarks: each takes a few tens of nanoseconds.</summary>
    public class Empty
    {
        [Benchmark(Baseline = true)]
        public int Baseline() => 0;

        [Benchmark]
        public int Other() => 1;
    }
}
