namespace MirrorEmu.Regression;

/// <summary>One figure compared: a counter (exact or within its tolerance) or a timing (ResultsComparer's test).</summary>
/// <param name="Kind">"counter" or "timing".</param>
/// <param name="Id">The figure ("hmm/uffd-batched:roundTrips", a benchmark's full name).</param>
/// <param name="Baseline">The baseline's value (a count, or median nanoseconds per operation), or null.</param>
/// <param name="Current">The current value, or null.</param>
/// <param name="Verdict">What the comparison concluded.</param>
/// <param name="Note">What else the reader must know (tolerance, modality, a busy host, the noise floor), or null.</param>
public sealed record ComparisonRow(string Kind, string Id, double? Baseline, double? Current, Verdict Verdict, string? Note)
{
    /// <summary>Current divided by baseline, or null where either is missing or the baseline is 0.</summary>
    public double? Ratio => Baseline is > 0 && Current is { } c ? c / Baseline.Value : null;

    /// <summary>True for a verdict that fails the run whatever the options.</summary>
    public bool IsError => Verdict is Verdict.Regression or Verdict.Missing or Verdict.Failed;
}
