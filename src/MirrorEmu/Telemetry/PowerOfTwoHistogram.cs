using System.Numerics;

namespace MirrorEmu.Telemetry;

/// <summary>
/// Counts of values bucketed by powers of two: bucket 0 holds 0 and 1, bucket k holds [2^k, 2^(k+1)),
/// the last bucket everything above. Pages per userfaultfd round trip, as the monitor resolved them
/// and as hmm_range_fault saw them, are counted in one of these each.
/// </summary>
/// <remarks><para>Concurrency model:</para> <see cref="Add"/> is an interlocked increment, so any thread may
/// count while another reads a <see cref="Snapshot"/>.</remarks>
public sealed class PowerOfTwoHistogram
{
    /// <summary>Buckets: values up to 2^20 and more.</summary>
    public const int Buckets = 20;

    private readonly long[] _counts = new long[Buckets];

    /// <summary>The bucket a value falls in.</summary>
    /// <param name="value">A count (negative counts as 0).</param>
    public static int BucketOf(long value) =>
        value <= 1 ? 0 : Math.Min(Buckets - 1, 63 - BitOperations.LeadingZeroCount((ulong)value));

    /// <summary>Counts one value.</summary>
    /// <param name="value">The value.</param>
    public void Add(long value) => Interlocked.Increment(ref _counts[BucketOf(value)]);

    /// <summary>A copy of the counts, bucket by bucket.</summary>
    public long[] Snapshot()
    {
        var copy = new long[Buckets];
        for (int i = 0; i < copy.Length; i++)
        {
            copy[i] = Interlocked.Read(ref _counts[i]);
        }

        return copy;
    }

    /// <summary>Values counted in all buckets.</summary>
    public long Total
    {
        get
        {
            long t = 0;
            for (int i = 0; i < _counts.Length; i++)
            {
                t += Interlocked.Read(ref _counts[i]);
            }

            return t;
        }
    }

    /// <summary>Sets every count to zero.</summary>
    public void Clear()
    {
        for (int i = 0; i < _counts.Length; i++)
        {
            Interlocked.Exchange(ref _counts[i], 0);
        }
    }
}
