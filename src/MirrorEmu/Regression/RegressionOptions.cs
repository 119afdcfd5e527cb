namespace MirrorEmu.Regression;

/// <summary>How timings are compared (counters carry their own tolerance).</summary>
public sealed record RegressionOptions
{
    /// <summary>The relative threshold below which a timing change is not reported (0.10 = 10 %), as ResultsComparer's
    /// --threshold; a baseline entry's own <see cref="TimingFigure.Threshold"/> overrides it.</summary>
    public double Threshold { get; init; } = 0.10;

    /// <summary>The absolute noise floor in nanoseconds below which a timing change is not reported, as ResultsComparer's
    /// --noise; a baseline entry's own <see cref="TimingFigure.NoiseNs"/> overrides it.</summary>
    public double NoiseNs { get; init; } = 1.0;

    /// <summary>Patterns (with * wildcards) a timing must match to be compared; empty compares every baseline timing.</summary>
    public IReadOnlyList<string> TimingFilters { get; init; } = [];
}
