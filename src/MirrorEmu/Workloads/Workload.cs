using System.Globalization;

namespace MirrorEmu.Workloads;

/// <summary>The shape of a workload: which pages of the range a device kernel touches, and in what order.</summary>
public enum WorkloadKind
{
    /// <summary>Every page, in order.</summary>
    Seq,

    /// <summary>Every page, in a seeded random order.</summary>
    Random,

    /// <summary>One page in N (pages 0, N, 2N, …), in order.</summary>
    Stride,

    /// <summary>As many accesses as pages, drawn from a Zipf distribution with exponent S over the pages (ranked in a
    /// seeded random order): a few hot pages touched often, many never.</summary>
    Zipf,

    /// <summary>Each page with probability P, in order.</summary>
    Sparse,
}

/// <summary>
/// A device workload over a fresh range: <c>seq</c>, <c>random</c>, <c>stride:N</c>, <c>zipf:S</c> or <c>sparse:P</c>.
/// <see cref="Generate"/> turns it into work items, one per access, each an atomic add to one 8-byte element of its page
/// (a read and a write: the page is faulted writable); the element's place in the page comes from the seed too.
/// </summary>
/// <param name="Kind">The shape.</param>
/// <param name="Parameter">N for stride (a whole number ≥ 1), S for zipf (0 to 10), P for sparse (in (0, 1]); 0 otherwise.</param>
public sealed record Workload(WorkloadKind Kind, double Parameter)
{
    /// <summary>The default: every page in order.</summary>
    public static Workload Seq { get; } = new(WorkloadKind.Seq, 0);

    /// <summary>The accepted forms, for messages.</summary>
    public const string Forms = "seq, random, stride:N (N ≥ 1), zipf:S (S from 0 to 10), sparse:P (0 < P ≤ 1)";

    /// <summary>Parses <c>seq</c>, <c>random</c>, <c>stride:N</c>, <c>zipf:S</c> or <c>sparse:P</c>.</summary>
    /// <param name="text">The text.</param>
    /// <param name="workload">The workload.</param>
    /// <param name="error">Why it is not one, in words that name the text.</param>
    /// <returns>True when parsed.</returns>
    public static bool TryParse(string text, out Workload? workload, out string? error)
    {
        workload = null;
        string t = text.Trim().ToLowerInvariant();
        int colon = t.IndexOf(':', StringComparison.Ordinal);
        string name = colon < 0 ? t : t[..colon];
        string? arg = colon < 0 ? null : t[(colon + 1)..];
        WorkloadKind? kind = name switch
        {
            "seq" => WorkloadKind.Seq,
            "random" => WorkloadKind.Random,
            "stride" => WorkloadKind.Stride,
            "zipf" => WorkloadKind.Zipf,
            "sparse" => WorkloadKind.Sparse,
            _ => null,
        };
        if (kind is not { } k)
        {
            error = $"'{text}' is not one of {Forms}";
            return false;
        }

        bool takesArgument = k is WorkloadKind.Stride or WorkloadKind.Zipf or WorkloadKind.Sparse;
        if (!takesArgument)
        {
            error = arg is null ? null : $"'{text}': {name} takes no parameter";
            workload = error is null ? new Workload(k, 0) : null;
            return error is null;
        }

        if (arg is null || !double.TryParse(arg, NumberStyles.Float, CultureInfo.InvariantCulture, out double value) || !double.IsFinite(value))
        {
            error = $"'{text}': {name} needs a number after the colon ({Forms})";
            return false;
        }

        error = k switch
        {
            WorkloadKind.Stride when value < 1 || value != Math.Floor(value) || value > int.MaxValue => $"'{text}': N must be a whole number of pages, at least 1",
            WorkloadKind.Zipf when value < 0 || value > 10 => $"'{text}': S must be between 0 and 10",
            WorkloadKind.Sparse when value <= 0 || value > 1 => $"'{text}': P must be more than 0 and at most 1",
            _ => null,
        };
        workload = error is null ? new Workload(k, value) : null;
        return error is null;
    }

    /// <summary>The text form (what <see cref="TryParse"/> reads).</summary>
    public override string ToString() => Kind switch
    {
        WorkloadKind.Seq => "seq",
        WorkloadKind.Random => "random",
        WorkloadKind.Stride => string.Create(CultureInfo.InvariantCulture, $"stride:{Parameter:0}"),
        WorkloadKind.Zipf => string.Create(CultureInfo.InvariantCulture, $"zipf:{Parameter:0.###}"),
        _ => string.Create(CultureInfo.InvariantCulture, $"sparse:{Parameter:0.######}"),
    };

    /// <summary>The work items over a range of <paramref name="pages"/> pages.</summary>
    /// <param name="pages">Pages in the range, 1 to <see cref="WorkItems.MaxPages"/>.</param>
    /// <param name="seed">Seeds the order (random), the draws (zipf, sparse) and each page's element.</param>
    /// <returns>The work items; a sparse workload over a small range may touch no page at all
    /// (<see cref="WorkItems.TouchedPages"/> is 0), which a caller refuses.</returns>
    /// <exception cref="ArgumentOutOfRangeException">Pages out of range.</exception>
    public WorkItems Generate(int pages, int seed)
    {
        if (pages < 1 || pages > WorkItems.MaxPages)
        {
            throw new ArgumentOutOfRangeException(nameof(pages), $"pages={pages} must be between 1 and {WorkItems.MaxPages}");
        }

        var rng = new Random(seed);
        int[] order = Kind switch
        {
            WorkloadKind.Seq => Sequence(pages, 1),
            WorkloadKind.Random => Shuffled(pages, rng),
            WorkloadKind.Stride => Sequence(pages, (int)Math.Min(Parameter, pages)),
            WorkloadKind.Zipf => ZipfDraws(pages, Parameter, rng),
            _ => SparseDraws(pages, Parameter, rng),
        };
        return new WorkItems(pages, order, seed);
    }

    /// <summary>Pages 0, stride, 2 stride, … below pages.</summary>
    private static int[] Sequence(int pages, int stride)
    {
        int[] order = new int[((pages - 1) / stride) + 1];
        for (int i = 0; i < order.Length; i++)
        {
            order[i] = i * stride;
        }

        return order;
    }

    /// <summary>Every page once, in a seeded random order.</summary>
    private static int[] Shuffled(int pages, Random rng)
    {
        int[] order = Sequence(pages, 1);
        rng.Shuffle(order);
        return order;
    }

    /// <summary>pages draws of rank k with probability ∝ 1/k^s (inverse CDF by binary search), each rank a page of a
    /// seeded permutation.</summary>
    private static int[] ZipfDraws(int pages, double s, Random rng)
    {
        double[] cdf = new double[pages];
        double sum = 0;
        for (int k = 0; k < pages; k++)
        {
            sum += 1.0 / Math.Pow(k + 1, s);
            cdf[k] = sum;
        }

        int[] pageOfRank = Shuffled(pages, rng);
        int[] order = new int[pages];
        for (int i = 0; i < pages; i++)
        {
            double u = rng.NextDouble() * sum;
            int rank = Array.BinarySearch(cdf, u);
            rank = rank < 0 ? Math.Min(~rank, pages - 1) : rank;
            order[i] = pageOfRank[rank];
        }

        return order;
    }

    /// <summary>Each page with probability p, in order.</summary>
    private static int[] SparseDraws(int pages, double p, Random rng)
    {
        var order = new List<int>();
        for (int i = 0; i < pages; i++)
        {
            if (rng.NextDouble() < p)
            {
                order.Add(i);
            }
        }

        return [.. order];
    }
}
