using System.Diagnostics;

namespace MirrorEmu.Device;

/// <summary>
/// The last <see cref="Capacity"/> durations of an event, measured with <see cref="Stopwatch"/>, for exact percentiles
/// over a recent window. Recording is lock-free and allocates nothing; reading copies and sorts.
/// </summary>
/// <remarks><para>Concurrency model:</para> a slot is claimed with one Interlocked.Increment and written with a plain
/// store; a reader may see a slot from the previous lap while it is being overwritten, which costs one sample's
/// accuracy, never a wrong unit.</remarks>
public sealed class LatencyRecorder
{
    /// <summary>Samples kept.</summary>
    public const int Capacity = 4096;

    private readonly long[] _ticks = new long[Capacity];
    private long _count;

    /// <summary>Samples recorded so far (all of them, not only those kept).</summary>
    public long Count => Interlocked.Read(ref _count);

    /// <summary>Records one duration.</summary>
    /// <param name="elapsedTicks">The duration in <see cref="Stopwatch"/> ticks.</param>
    public void Record(long elapsedTicks)
    {
        long n = Interlocked.Increment(ref _count) - 1;
        _ticks[n & (Capacity - 1)] = elapsedTicks;
    }

    /// <summary>The <paramref name="quantile"/> of the kept samples (nearest rank), or null when there are none.</summary>
    /// <param name="quantile">In [0, 1]: 0.5 for the median, 0.99 for p99.</param>
    public TimeSpan? Percentile(double quantile)
    {
        long n = Math.Min(Count, Capacity);
        if (n == 0)
        {
            return null;
        }

        long[] copy = _ticks[..(int)n];
        Array.Sort(copy);
        int rank = (int)Math.Clamp(Math.Ceiling(quantile * n) - 1, 0, n - 1);
        return Stopwatch.GetElapsedTime(0, copy[rank]);
    }

    /// <summary>Forgets every sample.</summary>
    public void Reset()
    {
        Interlocked.Exchange(ref _count, 0);
        Array.Clear(_ticks);
    }
}
