using System.Text.Json.Serialization;

namespace MirrorEmu.Regression;

/// <summary>
/// One benchmark's time per operation from one run: a BenchmarkDotNet benchmark (its full JSON export) or a
/// <c>mirroremu compare</c> policy row. Times are nanoseconds per operation.
/// </summary>
public sealed record TimingFigure
{
    /// <summary>The benchmark's stable identity: BenchmarkDotNet's FullName (with "@job" when one class runs several jobs),
    /// or "compare:policy@workload/pages".</summary>
    public string Id { get; init; } = string.Empty;

    /// <summary>Where it came from: "bdn" or "compare".</summary>
    public string Source { get; init; } = string.Empty;

    /// <summary>The median time per operation, in nanoseconds.</summary>
    public double MedianNs { get; init; }

    /// <summary>The 10th percentile, in nanoseconds (null where the source gives none).</summary>
    public double? P10Ns { get; init; }

    /// <summary>The 90th percentile, in nanoseconds (null where the source gives none).</summary>
    public double? P90Ns { get; init; }

    /// <summary>The measured iterations' times per operation (BenchmarkDotNet's Statistics.OriginalValues), in
    /// nanoseconds; empty where the source has no samples (a compare row). The statistical test needs them.</summary>
    public IReadOnlyList<double> Samples { get; init; } = [];

    /// <summary>Managed bytes allocated per operation (BenchmarkDotNet's memory diagnoser), or null.</summary>
    public long? BytesPerOp { get; init; }

    /// <summary>BenchmarkDotNet's mValue of <see cref="Samples"/> (null below 12 samples, where it says nothing).</summary>
    public double? MValue { get; init; }

    /// <summary>The relative threshold for this benchmark (0.1 = 10 %), overriding the command's; null: the command's.</summary>
    public double? Threshold { get; init; }

    /// <summary>The absolute noise floor for this benchmark in nanoseconds, overriding the command's; null: the command's.</summary>
    public double? NoiseNs { get; init; }

    /// <summary>Why the benchmark has no time (it failed in its run), or null.</summary>
    public string? Error { get; init; }

    /// <summary>"multimodal", "bimodal", "several?" or null, from <see cref="MValue"/> with the cut-offs of
    /// BenchmarkDotNet's MultimodalDistributionAnalyzer (which dotnet/performance's ResultsComparer prints as Modality).</summary>
    [JsonIgnore]
    public string? Modality => MValue switch
    {
        > 4.2 => "multimodal",
        > 3.2 => "bimodal",
        > 2.8 => "several?",
        _ => null,
    };
}
