namespace MirrorEmu.Telemetry;

/// <summary>The median and the 10th and 90th percentiles of a set of samples: how a report states a measured figure and
/// its spread. Percentiles interpolate linearly between the two nearest ranks (Hyndman and Fan's type 7, what numpy
/// and Excel use), so three samples give their minimum, median and maximum stretched by a fifth.</summary>
/// <param name="Median">The 50th percentile.</param>
/// <param name="P10">The 10th percentile.</param>
/// <param name="P90">The 90th percentile.</param>
public readonly record struct Spread(double Median, double P10, double P90)
{
    /// <summary>Computes the spread of <paramref name="samples"/> (copied and sorted; the input is untouched).</summary>
    /// <param name="samples">At least one sample; NaN is not allowed.</param>
    /// <returns>The median, p10 and p90.</returns>
    /// <exception cref="ArgumentException">No samples, or a NaN among them.</exception>
    public static Spread Of(ReadOnlySpan<double> samples)
    {
        if (samples.IsEmpty)
        {
            throw new ArgumentException("a spread needs at least one sample", nameof(samples));
        }

        double[] sorted = samples.ToArray();
        Array.Sort(sorted);
        if (double.IsNaN(sorted[^1]) || double.IsNaN(sorted[0]))
        {
            throw new ArgumentException("a sample is NaN", nameof(samples));
        }

        return new Spread(Quantile(sorted, 0.5), Quantile(sorted, 0.1), Quantile(sorted, 0.9));
    }

    /// <summary>The <paramref name="q"/> quantile of sorted samples, interpolating between the nearest ranks.</summary>
    /// <param name="sorted">Samples in ascending order, at least one.</param>
    /// <param name="q">In [0, 1].</param>
    public static double Quantile(ReadOnlySpan<double> sorted, double q)
    {
        double h = (sorted.Length - 1) * Math.Clamp(q, 0, 1);
        int lo = (int)Math.Floor(h);
        int hi = Math.Min(lo + 1, sorted.Length - 1);
        return sorted[lo] + ((h - lo) * (sorted[hi] - sorted[lo]));
    }

    /// <summary>This spread with every figure rounded to <paramref name="digits"/> decimals (for reports).</summary>
    /// <param name="digits">Decimals kept.</param>
    public Spread Rounded(int digits) => new(Math.Round(Median, digits), Math.Round(P10, digits), Math.Round(P90, digits));
}
