using System.Globalization;
using Perfolizer.Horology;
using Perfolizer.Mathematics.Common;
using Perfolizer.Mathematics.SignificanceTesting;
using Perfolizer.Mathematics.SignificanceTesting.MannWhitney;
using Perfolizer.Metrology;
using Pragmastat;

namespace MirrorEmu.Regression;

/// <summary>
/// A current run compared with a baseline. Counters are compared exactly, or within the tolerance their scenario states:
/// they are deterministic, so a change is a regression or an intended change, never noise. Timings are compared as
/// dotnet/performance's ResultsComparer does (src/tools/ResultsComparer): a two one-sided Mann–Whitney test (TOST) of the
/// two runs' iterations at the relative threshold, and again at the absolute noise floor; only a difference that both
/// tests call real is reported, as slower or faster, with the ratio of the medians, the geometric mean of the ratios, and
/// the modality BenchmarkDotNet's mValue suggests. Where a side has too few samples for the test (a compare row, a dry
/// run) the ratio of the medians is held against the threshold and the noise floor instead, and the row says so.
/// </summary>
public sealed class RegressionComparison
{
    private RegressionComparison(RegressionRun baseline, RegressionRun current, IReadOnlyList<ComparisonRow> rows)
    {
        Baseline = baseline;
        Current = current;
        Rows = rows;
    }

    /// <summary>The baseline.</summary>
    public RegressionRun Baseline { get; }

    /// <summary>The current run.</summary>
    public RegressionRun Current { get; }

    /// <summary>Every figure compared: counters first, then timings, each in the baseline's order, new figures last.</summary>
    public IReadOnlyList<ComparisonRow> Rows { get; }

    /// <summary>Counters that moved beyond their tolerance.</summary>
    public int CounterRegressions => Rows.Count(r => r.Kind == "counter" && r.Verdict == Verdict.Regression);

    /// <summary>Figures the baseline has and the current run does not, or whose benchmark failed.</summary>
    public int Errors => Rows.Count(r => r.Verdict is Verdict.Missing or Verdict.Failed);

    /// <summary>Timings slower beyond the threshold and the noise floor.</summary>
    public int Slower => Rows.Count(r => r.Verdict == Verdict.Slower);

    /// <summary>Timings faster beyond the threshold and the noise floor.</summary>
    public int Faster => Rows.Count(r => r.Verdict == Verdict.Faster);

    /// <summary>True when either run's host was busy (its timings are marked).</summary>
    public bool BusyHost => (Baseline.Timings.Count > 0 && Baseline.Host.Busy) || (Current.Timings.Count > 0 && Current.Host.Busy);

    /// <summary>The geometric mean of current/baseline over the slower timings (ResultsComparer's "worse" geomean), or null.</summary>
    public double? SlowerGeomean => Geomean(Rows.Where(r => r.Verdict == Verdict.Slower).Select(r => r.Ratio!.Value));

    /// <summary>The geometric mean of baseline/current over the faster timings (ResultsComparer's "better" geomean), or null.</summary>
    public double? FasterGeomean => Geomean(Rows.Where(r => r.Verdict == Verdict.Faster).Select(r => 1 / r.Ratio!.Value));

    /// <summary>The geometric mean of current/baseline over every timing compared, or null when none was.</summary>
    public double? AllGeomean => Geomean(Rows.Where(r => r.Kind == "timing" && r.Ratio is > 0).Select(r => r.Ratio!.Value));

    /// <summary>The exit code: 1 on a counter regression, a missing figure or a failed benchmark, or (when
    /// <paramref name="failOnTime"/>) a slower timing; 0 otherwise. Timings alone only warn.</summary>
    /// <param name="failOnTime">Whether slower timings fail the run too.</param>
    public int ExitCode(bool failOnTime) => Rows.Any(r => r.IsError) || (failOnTime && Slower > 0) ? 1 : 0;

    /// <summary>Compares <paramref name="current"/> with <paramref name="baseline"/>.</summary>
    /// <param name="baseline">The baseline.</param>
    /// <param name="current">The current run.</param>
    /// <param name="options">Thresholds and filters.</param>
    /// <param name="scenarioFilter">Only the baseline counters of scenarios matching this pattern are expected (null: all
    /// of them, when the current run has counters).</param>
    /// <returns>The comparison.</returns>
    public static RegressionComparison Compare(RegressionRun baseline, RegressionRun current, RegressionOptions options, string? scenarioFilter = null)
    {
        ArgumentNullException.ThrowIfNull(baseline);
        ArgumentNullException.ThrowIfNull(current);
        ArgumentNullException.ThrowIfNull(options);
        var rows = new List<ComparisonRow>();
        if (current.Counters.Count > 0)
        {
            CompareCounters(baseline, current, scenarioFilter, rows);
        }

        CompareTimings(baseline, current, options, rows);
        return new RegressionComparison(baseline, current, rows);
    }

    private static void CompareCounters(RegressionRun baseline, RegressionRun current, string? scenarioFilter, List<ComparisonRow> rows)
    {
        var now = current.Counters.ToDictionary(c => c.Id);
        var seen = new HashSet<string>();
        foreach (CounterFigure b in baseline.Counters)
        {
            if (scenarioFilter is not null && !Wildcard.IsMatch(b.Scenario, scenarioFilter))
            {
                continue;
            }

            seen.Add(b.Id);
            if (!now.TryGetValue(b.Id, out CounterFigure? c))
            {
                rows.Add(new ComparisonRow("counter", b.Id, b.Value, null, Verdict.Missing, current.Counters.Any(x => x.Scenario == b.Scenario) ? "the scenario no longer reports this counter" : "the scenario did not run"));
                continue;
            }

            // The tolerance is the one the scenario states now (the code), the baseline's where the code states none.
            double tolerance = c.Tolerance > 0 ? c.Tolerance : b.Tolerance;
            bool same = (b with { Tolerance = tolerance }).Accepts(c.Value);
            rows.Add(new ComparisonRow("counter", b.Id, b.Value, c.Value, same ? Verdict.Same : Verdict.Regression, tolerance == 0 ? "exact" : string.Create(CultureInfo.InvariantCulture, $"±{tolerance:P0}")));
        }

        foreach (CounterFigure c in current.Counters.Where(c => !seen.Contains(c.Id)))
        {
            rows.Add(new ComparisonRow("counter", c.Id, null, c.Value, Verdict.New, "not in the baseline"));
        }
    }

    private static void CompareTimings(RegressionRun baseline, RegressionRun current, RegressionOptions options, List<ComparisonRow> rows)
    {
        // A source's timings are compared when the current run has that source (a compare report does not make every
        // BenchmarkDotNet baseline entry missing), and only those the filters select.
        var sources = current.Timings.Select(t => t.Source).ToHashSet();
        bool Selected(TimingFigure t) => sources.Contains(t.Source) && (options.TimingFilters.Count == 0 || options.TimingFilters.Any(f => Wildcard.IsMatch(t.Id, f)));
        var now = current.Timings.Where(Selected).ToDictionary(t => t.Id);
        var seen = new HashSet<string>();
        string? busy = current.Host.Busy || baseline.Host.Busy
            ? $"busy host ({(baseline.Host.Busy ? "baseline" : string.Empty)}{(baseline.Host.Busy && current.Host.Busy ? ", " : string.Empty)}{(current.Host.Busy ? "current" : string.Empty)})"
            : null;
        foreach (TimingFigure b in baseline.Timings.Where(Selected))
        {
            seen.Add(b.Id);
            if (!now.TryGetValue(b.Id, out TimingFigure? c))
            {
                rows.Add(new ComparisonRow("timing", b.Id, b.MedianNs, null, Verdict.Missing, "not in the current results"));
                continue;
            }

            if (c.Error is not null)
            {
                rows.Add(new ComparisonRow("timing", b.Id, b.MedianNs, null, Verdict.Failed, c.Error));
                continue;
            }

            if (b.Error is not null)
            {
                rows.Add(new ComparisonRow("timing", b.Id, null, c.MedianNs, Verdict.New, $"failed in the baseline ({b.Error})"));
                continue;
            }

            double threshold = b.Threshold ?? options.Threshold;
            double noise = b.NoiseNs ?? options.NoiseNs;
            (Verdict verdict, string how) = Test(b, c, threshold, noise);
            var notes = new List<string> { how };
            if ((b.Modality ?? c.Modality) is { } modality)
            {
                notes.Add(modality);
            }

            if (busy is not null)
            {
                notes.Add(busy);
            }

            rows.Add(new ComparisonRow("timing", b.Id, b.MedianNs, c.MedianNs, verdict, string.Join("; ", notes)));
        }

        foreach (TimingFigure c in current.Timings.Where(t => Selected(t) && !seen.Contains(t.Id)))
        {
            rows.Add(new ComparisonRow("timing", c.Id, null, c.Error is null ? c.MedianNs : null, c.Error is null ? Verdict.New : Verdict.Failed, c.Error ?? "not in the baseline"));
        }
    }

    /// <summary>ResultsComparer's decision for one benchmark (GetNotSameResults): not the same when the TOST at the
    /// threshold and the TOST at the noise floor both say the two differ; the direction is the test's.</summary>
    /// <returns>The verdict and how it was reached (for the note).</returns>
    internal static (Verdict Verdict, string How) Test(TimingFigure b, TimingFigure c, double threshold, double noiseNs)
    {
        string limits = string.Create(CultureInfo.InvariantCulture, $"{threshold:P0}/{noiseNs:0.###} ns");
        if (b.Samples.Count >= 2 && c.Samples.Count >= 2)
        {
            var x = new Sample([.. b.Samples], TimeUnit.Nanosecond);
            var y = new Sample([.. c.Samples], TimeUnit.Nanosecond);
            var tost = new SimpleEquivalenceTest(MannWhitneyTest.Instance);
            ComparisonResult atThreshold = tost.Perform(x, y, Threshold.Parse(string.Create(CultureInfo.InvariantCulture, $"{threshold * 100:0.####}%")), SignificanceLevel.P05);
            if (atThreshold != ComparisonResult.Unknown)
            {
                string how = $"Mann-Whitney TOST {limits}";
                if (atThreshold == ComparisonResult.Indistinguishable)
                {
                    return (Verdict.Same, how);
                }

                ComparisonResult atNoise = tost.Perform(x, y, Threshold.Parse(string.Create(CultureInfo.InvariantCulture, $"{noiseNs:0.######}ns")), SignificanceLevel.P05);
                if (atNoise == ComparisonResult.Indistinguishable)
                {
                    return (Verdict.Same, how);
                }

                // Perform(x, y): Lesser means x (the baseline) is below y (the current run): the current run is slower.
                return (atThreshold == ComparisonResult.Lesser ? Verdict.Slower : Verdict.Faster, how);
            }
        }

        string rule = $"ratio of medians {limits} (too few samples to test)";
        double d = c.MedianNs - b.MedianNs;
        if (Math.Abs(d) <= noiseNs || b.MedianNs <= 0)
        {
            return (Verdict.Same, rule);
        }

        double r = c.MedianNs / b.MedianNs;
        return (r > 1 + threshold ? Verdict.Slower : r < 1 / (1 + threshold) ? Verdict.Faster : Verdict.Same, rule);
    }

    private static double? Geomean(IEnumerable<double> ratios)
    {
        double[] r = [.. ratios.Where(v => v > 0 && double.IsFinite(v))];
        return r.Length == 0 ? null : Math.Exp(r.Average(Math.Log));
    }
}
