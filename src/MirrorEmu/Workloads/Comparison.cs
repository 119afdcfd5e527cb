using System.Diagnostics;
using MirrorEmu.Device;
using MirrorEmu.Mm;
using MirrorEmu.Telemetry;

namespace MirrorEmu.Workloads;

/// <summary>
/// The headline comparison, measured honestly: a fresh range faulted under the regular VMA and each userfaultfd policy,
/// either by a device kernel (<see cref="DeviceTrial"/>) or by the driver loop alone (<see cref="HmmTrial"/>).
/// </summary>
/// <remarks>
/// <para>How it measures: every trial draws its frames from one pool that a populate made resident first, so no trial
/// pays the host's first touch of fresh memory; a warm-up runs every policy once before anything is timed (the JIT, the
/// monitor threads); then the policies run in rounds, each round every policy once in an order that rotates, so a
/// neighbour's burst or a slow phase of the machine falls on all of them alike. Each row reports the median and the
/// 10th–90th percentiles of its rounds, and its ratio to the regular VMA is the median of the ratios within each round.
/// Only the launch (or the driver loop) is timed; setup, verification and teardown are not.</para>
/// <para>Every round's range is checked byte by byte (<see cref="ICompareTrial.Verify"/>).</para>
/// </remarks>
public static class Comparison
{
    /// <summary>Pages the warm-up trials fault (or the range, when smaller).</summary>
    public const int WarmupPages = 8192;

    /// <summary>Bytes a comparison of <paramref name="pages"/> pages needs: the pool's frames, the work items, the snapshot
    /// used to verify, the device page table, and a margin for the monitors' buffers and the runtime.</summary>
    /// <param name="pages">Pages in the largest range.</param>
    public static long EstimateBytes(long pages) => (pages * (PageGeometry.PageSizeInt + 48)) + (192L << 20);

    /// <summary>Runs the comparison.</summary>
    /// <param name="options">What to run (validated by the caller: <see cref="ComparisonOptions.Validate"/>).</param>
    /// <param name="launcher">The launcher for the device level (not owned); null at the hmm_range_fault level.</param>
    /// <param name="progress">Told before each trial; may be null.</param>
    /// <param name="cancellation">Stops the run within one trial's launch (<see cref="OperationCanceledException"/>).</param>
    /// <returns>The rows.</returns>
    /// <exception cref="ArgumentException">Invalid options, or a device level without a launcher.</exception>
    /// <exception cref="OperationCanceledException">Cancelled.</exception>
    public static CompareResult Run(ComparisonOptions options, DeviceLauncher? launcher, Action<CompareProgress>? progress, CancellationToken cancellation)
    {
        ArgumentNullException.ThrowIfNull(options);
        return Sweep(options, [options.Pages], launcher, progress, cancellation)[0]; // a sweep of one size: its whole budget, its setup in Wall
    }

    /// <summary>Runs the comparison at each size in <paramref name="sizes"/> (one pool for all, one warm-up), for a sweep.</summary>
    /// <param name="options">What to run; <see cref="ComparisonOptions.Pages"/> is replaced by each size.</param>
    /// <param name="sizes">Range sizes in pages, ascending.</param>
    /// <param name="launcher">As for <see cref="Run"/>.</param>
    /// <param name="progress">As for <see cref="Run"/>.</param>
    /// <param name="cancellation">As for <see cref="Run"/>.</param>
    /// <returns>One result per size.</returns>
    public static IReadOnlyList<CompareResult> Sweep(ComparisonOptions options, IReadOnlyList<int> sizes, DeviceLauncher? launcher, Action<CompareProgress>? progress, CancellationToken cancellation)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(sizes);
        long t0 = Stopwatch.GetTimestamp();
        using var pool = CreatePool(sizes.Max());
        var run = new Runner(options, launcher, pool, progress, cancellation);
        run.Warmup(sizes[0]);
        var results = new List<CompareResult>();
        TimeSpan perSize = options.TimeBudget / sizes.Count;
        foreach (int pages in sizes)
        {
            CompareResult r = run.Measure(options with { Pages = pages, TimeBudget = perSize });
            results.Add(results.Count == 0 ? r with { Wall = Stopwatch.GetElapsedTime(t0) } : r); // the first carries the setup
        }

        return results;
    }

    /// <summary>The least-squares slope of log(time) against log(pages): 1 when the time per page stays the same as the
    /// range grows.</summary>
    /// <param name="points">(pages, nanoseconds in total) per size; at least two sizes.</param>
    /// <returns>The slope, or NaN for fewer than two points.</returns>
    public static double LogLogSlope(IReadOnlyList<(double Pages, double TotalNs)> points)
    {
        ArgumentNullException.ThrowIfNull(points);
        if (points.Count < 2)
        {
            return double.NaN;
        }

        double mx = points.Average(p => Math.Log(p.Pages));
        double my = points.Average(p => Math.Log(p.TotalNs));
        double sxy = points.Sum(p => (Math.Log(p.Pages) - mx) * (Math.Log(p.TotalNs) - my));
        double sxx = points.Sum(p => Math.Pow(Math.Log(p.Pages) - mx, 2));
        return sxy / sxx;
    }

    /// <summary>A pool for ranges of up to <paramref name="pages"/> pages, its frames made resident by one populate.</summary>
    private static PhysicalMemory CreatePool(int pages)
    {
        ulong bytes = (ulong)pages << PageGeometry.PageShift;
        var pool = new PhysicalMemory(bytes + (64UL << 20));
        try
        {
            using var warm = new AddressSpace(pool);
            warm.MmapAnonymous(bytes, Prot.ReadWrite, MapFlags.Private | MapFlags.Populate, out _).ThrowIfError();
        }
        catch
        {
            pool.Dispose();
            throw;
        }

        return pool;
    }

    /// <summary>The rounds of one comparison over one pool.</summary>
    private sealed class Runner(ComparisonOptions options, DeviceLauncher? launcher, PhysicalMemory pool, Action<CompareProgress>? progress, CancellationToken cancellation)
    {
        private readonly string? _accelerator = options.Level == CompareLevel.Device
            ? (launcher ?? throw new ArgumentException("a device comparison needs a launcher", nameof(launcher))).Description
            : null;

        private int _done;
        private int _total;

        /// <summary>Every policy once over a small range, untimed.</summary>
        public void Warmup(int pages)
        {
            ComparisonOptions small = options with { Pages = Math.Min(pages, WarmupPages), Workload = Workload.Seq };
            WorkItems items = Workload.Seq.Generate(small.Pages, small.Seed);
            _total = small.Rows.Count;
            foreach (ComparePolicy policy in small.Rows)
            {
                Report($"warming up: {policy.Name()}");
                using ICompareTrial trial = Create(small, policy, items);
                KResult rc = trial.Run(cancellation);
                cancellation.ThrowIfCancellationRequested();
                _ = rc.IsOk ? trial.Verify() : null;
            }
        }

        /// <summary>The measured rounds at <paramref name="o"/>'s size.</summary>
        public CompareResult Measure(ComparisonOptions o)
        {
            HostLoad start = HostLoad.Current();
            long t0 = Stopwatch.GetTimestamp();
            IReadOnlyList<ComparePolicy> rows = o.Rows;
            WorkItems items = o.Workload.Generate(o.Pages, o.Seed);
            var acc = rows.Select(p => new Accumulator(p)).ToArray();
            int rounds = o.Repeat ?? ComparisonOptions.MinRounds;
            _done = 0;
            _total = rounds * rows.Count;
            for (int r = 0; r < rounds; r++)
            {
                var roundNs = new double[rows.Count];
                for (int j = 0; j < rows.Count; j++)
                {
                    int i = (j + r) % rows.Count;
                    Report($"{o.Pages:N0} pages, round {r + 1}/{rounds}: {rows[i].Name()}");
                    roundNs[i] = RunTrial(o, rows[i], items, acc[i], first: r == 0);
                }

                double regularNs = roundNs[0];
                for (int i = 0; i < rows.Count; i++)
                {
                    if (!double.IsNaN(roundNs[i]))
                    {
                        acc[i].Ns.Add(roundNs[i]);
                        if (!double.IsNaN(regularNs))
                        {
                            acc[i].Ratios.Add(roundNs[i] / regularNs);
                        }
                    }
                }

                if (o.Repeat is null)
                {
                    // The rounds so far say how many fit the budget (the first is often the slowest: recomputed each round).
                    double perRound = Stopwatch.GetElapsedTime(t0).TotalSeconds / (r + 1);
                    rounds = (int)Math.Clamp(Math.Ceiling(o.TimeBudget.TotalSeconds / Math.Max(perRound, 1e-6)), Math.Max(ComparisonOptions.MinRounds, r + 1), ComparisonOptions.MaxRounds);
                    _total = rounds * rows.Count;
                }
            }

            return new CompareResult
            {
                Options = o,
                Rows = acc.Select(a => a.ToResult()).ToList(),
                Rounds = rounds,
                Accelerator = _accelerator,
                LoadAtStart = start,
                LoadAtEnd = HostLoad.Current(),
                Wall = Stopwatch.GetElapsedTime(t0),
            };
        }

        /// <summary>One trial: set up, time the run, count, verify, tear down. Returns ns per touched page, or NaN on error.</summary>
        private double RunTrial(ComparisonOptions o, ComparePolicy policy, WorkItems items, Accumulator acc, bool first)
        {
            cancellation.ThrowIfCancellationRequested();
            using ICompareTrial trial = Create(o, policy, items);
            long t0 = Stopwatch.GetTimestamp();
            KResult rc = trial.Run(cancellation);
            double ns = Stopwatch.GetElapsedTime(t0).TotalNanoseconds;
            cancellation.ThrowIfCancellationRequested();
            TrialCounters counters = trial.Counters;
            if (first)
            {
                acc.Counters = counters;
            }
            else if (counters != acc.Counters)
            {
                acc.CountersStable = false;
            }

            _done++;
            if (!rc.IsOk)
            {
                acc.Error ??= Errno.Name(rc.Code);
                acc.ErrorMessage ??= rc.Message;
                return double.NaN;
            }

            acc.VerifyFailure ??= trial.Verify();
            return ns / Math.Max(1, counters.Pages);
        }

        /// <summary>A trial of <paramref name="policy"/> at <paramref name="o"/>'s level.</summary>
        private ICompareTrial Create(ComparisonOptions o, ComparePolicy policy, WorkItems items) => o.Level == CompareLevel.Device
            ? new DeviceTrial(pool, launcher!, o, policy, items)
            : new HmmTrial(pool, o, policy);

        /// <summary>Tells the progress callback what runs now.</summary>
        private void Report(string now) => progress?.Invoke(new CompareProgress(_done, Math.Max(_total, _done + 1), now));
    }

    /// <summary>What the rounds of one row collected.</summary>
    private sealed class Accumulator(ComparePolicy policy)
    {
        /// <summary>Nanoseconds per touched page of each round that succeeded.</summary>
        public List<double> Ns { get; } = [];

        /// <summary>Each such round's ratio to the regular VMA's time.</summary>
        public List<double> Ratios { get; } = [];

        /// <summary>The first round's counters.</summary>
        public TrialCounters Counters { get; set; }

        /// <summary>False once a round's counters differed from the first's.</summary>
        public bool CountersStable { get; set; } = true;

        /// <summary>The first error's errno name, or null.</summary>
        public string? Error { get; set; }

        /// <summary>The first error's message, or null.</summary>
        public string? ErrorMessage { get; set; }

        /// <summary>The first mismatch verification found, or null.</summary>
        public string? VerifyFailure { get; set; }

        /// <summary>The row's result.</summary>
        public PolicyResult ToResult() => new()
        {
            Policy = policy,
            Counters = Counters,
            CountersStable = CountersStable,
            NsPerPage = Ns,
            Ratios = Ratios,
            Error = Error,
            ErrorMessage = ErrorMessage,
            Verified = Error is null && VerifyFailure is null && Ns.Count > 0,
            VerifyFailure = VerifyFailure,
        };
    }
}
