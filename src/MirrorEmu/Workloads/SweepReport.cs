namespace MirrorEmu.Workloads;

/// <summary>A sweep's sizes and, per policy, the log-log slope of its total time against the range's pages (1.0: the time
/// per page stays the same as the range grows; the goal is 0.9–1.1).</summary>
public sealed record SweepReport
{
    /// <summary>The goal's bounds.</summary>
    public const double GoalLow = 0.9;

    /// <summary>The goal's upper bound.</summary>
    public const double GoalHigh = 1.1;

    /// <summary>Range sizes in pages, ascending.</summary>
    public IReadOnlyList<int> Sizes { get; init; } = [];

    /// <summary>One slope per policy that succeeded at every size.</summary>
    public IReadOnlyList<SweepSlope> Slopes { get; init; } = [];

    /// <summary>The report of a sweep's results.</summary>
    /// <param name="results">One per size, ascending.</param>
    public static SweepReport From(IReadOnlyList<CompareResult> results)
    {
        ArgumentNullException.ThrowIfNull(results);
        var slopes = new List<SweepSlope>();
        foreach (ComparePolicy policy in results[0].Options.Rows)
        {
            var points = new List<(double Pages, double TotalNs)>();
            foreach (CompareResult r in results)
            {
                if (r.Rows.FirstOrDefault(x => x.Policy == policy)?.Measured is { } m)
                {
                    points.Add((r.Rows[0].Counters.Pages, m.Median * r.Rows[0].Counters.Pages));
                }
            }

            if (points.Count == results.Count && points.Count >= 2)
            {
                double slope = Math.Round(Comparison.LogLogSlope(points), 3);
                slopes.Add(new SweepSlope(policy.Name(), slope, slope is >= GoalLow and <= GoalHigh));
            }
        }

        return new SweepReport { Sizes = results.Select(r => r.Options.Pages).ToList(), Slopes = slopes };
    }
}
