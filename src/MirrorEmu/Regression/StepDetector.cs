namespace MirrorEmu.Regression;

/// <summary>One piece of a piecewise-constant fit: runs [Start, End) at level <see cref="Value"/>.</summary>
/// <param name="Start">The first run of the piece (an index into the series).</param>
/// <param name="End">One past its last run.</param>
/// <param name="Value">The piece's level: the median of its runs.</param>
/// <param name="Error">asv's l1 error estimate of the piece: the mean absolute deviation from <see cref="Value"/>.</param>
public readonly record struct StepSegment(int Start, int End, double Value, double Error);

/// <summary>
/// Finds where a figure's series moved, as asv does (asv/step_detect.py): the series is fitted by a piecewise-constant
/// function minimizing γ·(pieces) + Σ|y − μ| (the l1 Potts problem, solved exactly by dynamic programming as in
/// Friedrich et al. 2008), with γ chosen by asv's information criterion β·k + ln(σ₀ + Σ|y − μ|), β = 4·ln(n)/n, over a
/// grid of γ from γ₀·0.1/n to γ₀ (γ₀ the one-piece cost); then a boundary counts as a step only when the jump between the
/// two pieces exceeds both pieces' errors, the relative threshold and the absolute noise floor, and both pieces hold at
/// least <see cref="MinRuns"/> runs (asv's detect_regressions filter and its min_size, in both directions: one outlying
/// run is not a step). Differences from asv, for a history of tens of runs: the exact solver instead of the
/// windowed approximation, a grid instead of a golden-section search, and no AR(1) noise-correlation term.
/// </summary>
public static class StepDetector
{
    /// <summary>The fewest runs on each side of a step (asv's min_size).</summary>
    public const int MinRuns = 2;

    private const int GammaGrid = 41;

    /// <summary>The piecewise-constant fit of <paramref name="y"/>.</summary>
    /// <param name="y">The series, oldest first.</param>
    /// <returns>The pieces, in order, covering the series.</returns>
    public static IReadOnlyList<StepSegment> Segments(IReadOnlyList<double> y)
    {
        ArgumentNullException.ThrowIfNull(y);
        int n = y.Count;
        if (n == 0)
        {
            return [];
        }

        var cost = new Cost(y);
        double gamma0 = cost.Dist(0, n);
        if (gamma0 == 0)
        {
            return [new StepSegment(0, n, y[0], 0)];
        }

        double beta = 4 * Math.Log(n) / n;
        double a = Math.Log(0.1 / n);
        IReadOnlyList<StepSegment>? best = null;
        double bestObjective = double.PositiveInfinity;
        for (int g = 0; g < GammaGrid; g++)
        {
            double gamma = gamma0 * Math.Exp(a * (1 - (g / (double)(GammaGrid - 1))));
            IReadOnlyList<StepSegment> pieces = SolvePotts(cost, n, gamma);
            double s = pieces.Sum(p => p.Error * (p.End - p.Start));
            double sigma0;
            if (pieces.Count > 2)
            {
                sigma0 = 0.1 * Enumerable.Range(0, pieces.Count - 1).Min(j => Math.Abs(pieces[j + 1].Value - pieces[j].Value));
            }
            else
            {
                sigma0 = 0.001 * pieces.Min(p => Math.Abs(p.Value));
            }

            double objective = (beta * pieces.Count) + Math.Log(Math.Max(1e-300, sigma0) + s);
            if (objective < bestObjective)
            {
                bestObjective = objective;
                best = pieces;
            }
        }

        return best!;
    }

    /// <summary>The first run where the series moved beyond its noise, or null when it did not.</summary>
    /// <param name="y">The series, oldest first.</param>
    /// <param name="threshold">The relative change below which a jump is not a step (0.1 = 10 %; 0 for counters).</param>
    /// <param name="noise">The absolute change below which a jump is not a step (a counter's tolerance in counts, a
    /// timing's noise floor in nanoseconds).</param>
    /// <returns>The step: the index of the first run at the new level, and the levels before and after.</returns>
    public static (int Run, double Before, double After)? FirstStep(IReadOnlyList<double> y, double threshold, double noise)
    {
        IReadOnlyList<StepSegment> pieces = Segments(y);
        for (int j = 0; j + 1 < pieces.Count; j++)
        {
            StepSegment before = pieces[j], after = pieces[j + 1];
            double jump = Math.Abs(after.Value - before.Value);
            if (before.End - before.Start >= MinRuns && after.End - after.Start >= MinRuns
                && jump > Math.Max(Math.Max(before.Error, after.Error), Math.Max(threshold * Math.Abs(before.Value), noise)))
            {
                return (after.Start, before.Value, after.Value);
            }
        }

        return null;
    }

    /// <summary>The exact l1 Potts solution for one γ (Bellman recursion over the last piece's start).</summary>
    private static IReadOnlyList<StepSegment> SolvePotts(Cost cost, int n, double gamma)
    {
        var best = new double[n + 1];
        var start = new int[n + 1];
        best[0] = -gamma;
        for (int r = 1; r <= n; r++)
        {
            best[r] = double.PositiveInfinity;
            for (int l = 0; l < r; l++)
            {
                double b = best[l] + gamma + cost.Dist(l, r);
                if (b <= best[r])
                {
                    best[r] = b;
                    start[r] = l;
                }
            }
        }

        var pieces = new List<StepSegment>();
        for (int r = n; r > 0; r = start[r])
        {
            int l = start[r];
            pieces.Add(new StepSegment(l, r, cost.Median(l, r), cost.Dist(l, r) / (r - l)));
        }

        pieces.Reverse();
        return pieces;
    }

    /// <summary>Medians and l1 distances of every window [l, r) of the series, computed once.</summary>
    private sealed class Cost
    {
        private readonly double[,] _median;
        private readonly double[,] _dist;

        public Cost(IReadOnlyList<double> y)
        {
            int n = y.Count;
            _median = new double[n, n + 1];
            _dist = new double[n, n + 1];
            var window = new List<double>(n);
            for (int l = 0; l < n; l++)
            {
                window.Clear();
                for (int r = l + 1; r <= n; r++)
                {
                    // Insert y[r-1] in order: the window stays sorted, so its median is read directly.
                    double v = y[r - 1];
                    int at = window.BinarySearch(v);
                    window.Insert(at < 0 ? ~at : at, v);
                    int k = window.Count;
                    double m = (k & 1) == 1 ? window[k / 2] : (window[(k / 2) - 1] + window[k / 2]) / 2;
                    double d = 0;
                    foreach (double w in window)
                    {
                        d += Math.Abs(w - m);
                    }

                    _median[l, r] = m;
                    _dist[l, r] = d;
                }
            }
        }

        public double Median(int l, int r) => _median[l, r];

        public double Dist(int l, int r) => _dist[l, r];
    }
}
