using System.Diagnostics;
using System.Runtime.InteropServices;
using MirrorEmu.Telemetry;

namespace MirrorEmu.Calibration;

/// <summary>What <see cref="KernelCalibration.Measure"/> measures and how often.</summary>
public sealed record KernelCalibrationOptions
{
    /// <summary>Pages per measurement (a multiple of 512, so every block size divides it).</summary>
    public int Pages { get; init; } = 4096;

    /// <summary>Rounds: each measurement once per round, in an order that rotates.</summary>
    public int Rounds { get; init; } = 21;

    /// <summary>Says why userfaultfd cannot be used here, or null when it can. Null means the real probe
    /// (<see cref="KernelCalibration.WhyUnavailable"/>); a test passes one that refuses, as a host without permission does.</summary>
    public Func<string?>? Probe { get; init; }
}

/// <summary>
/// Measures this machine's kernel (Linux): MADV_POPULATE_WRITE at 1 and 512 pages per call, a CPU's first write to each
/// fresh page, and userfaultfd with a monitor thread answering each fault with one UFFDIO_COPY of 1, 8, 64 or 512 pages
/// (<see cref="LinuxUffd"/>); several rounds, each measurement once per round in a rotating order, medians and spread.
/// Then fits the <see cref="CostModel"/> on populate and the 1-page userfaultfd measurement only, and reports how well it
/// predicts the 8-, 64- and 512-page measurements it was not fitted on.
/// </summary>
/// <remarks>Every mapping is MADV_NOHUGEPAGE, so the kernel faults 4 KiB pages as the emulator does, and is emptied with
/// MADV_DONTNEED (untimed) before each measurement, so every page is fresh.</remarks>
public static class KernelCalibration
{
    /// <summary>Mechanism name of MADV_POPULATE_WRITE.</summary>
    public const string Populate = "populate";

    /// <summary>Mechanism name of a CPU's first write.</summary>
    public const string FirstTouch = "firstTouch";

    /// <summary>Mechanism name of userfaultfd with a monitor.</summary>
    public const string Userfaultfd = "userfaultfd";

    /// <summary>Pages per userfaultfd round trip measured; the model is fitted on the first, the rest are held out.</summary>
    public static IReadOnlyList<int> UffdPagesPerEvent { get; } = [1, 8, 64, 512];

    /// <summary>Pages per populate call measured (the model's per-call and per-page costs are fitted on both).</summary>
    public static IReadOnlyList<int> PopulatePagesPerCall { get; } = [1, 512];

    private const int LargestBlock = 512;

    /// <summary>Why the kernel's userfaultfd cannot be measured here (not Linux, no permission, MADV_POPULATE_WRITE
    /// missing), in one line; null when it can.</summary>
    public static string? WhyUnavailable()
    {
        if (!OperatingSystem.IsLinux())
        {
            return $"userfaultfd is Linux's, and this is {RuntimeInformation.OSDescription}";
        }

        nuint bytes = (nuint)LinuxUffd.PageSize;
        nint at = LinuxUffd.MapAnonymous(bytes);
        try
        {
            if (LinuxUffd.PopulateWrite(at, bytes) is int rc and < 0)
            {
                return $"MADV_POPULATE_WRITE failed ({rc}); it needs Linux 5.14 or later";
            }

            _ = LinuxUffd.DontNeed(at, bytes);
            using LinuxUffd? uffd = LinuxUffd.TryOpen(at, bytes, 1, 0, out string why);
            return uffd is null ? why : null;
        }
        finally
        {
            LinuxUffd.Unmap(at, bytes);
        }
    }

    /// <summary>Measures, fits and checks.</summary>
    /// <param name="options">Sizes and rounds.</param>
    /// <param name="progress">Told (done, total) after each measurement; may be null.</param>
    /// <param name="cancellation">Stops between measurements (<see cref="OperationCanceledException"/>).</param>
    /// <param name="refused">Why userfaultfd is not permitted here, one line; null when it is.</param>
    /// <returns>The report, or null with <paramref name="refused"/> saying why userfaultfd is not permitted here.</returns>
    /// <exception cref="ArgumentOutOfRangeException">Pages not a positive multiple of 512, or rounds below 1.</exception>
    public static CalibrationReport? Measure(KernelCalibrationOptions options, Action<int, int>? progress, CancellationToken cancellation, out string? refused)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Pages < LargestBlock || options.Pages % LargestBlock != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(options), $"pages={options.Pages} must be a positive multiple of {LargestBlock}");
        }

        if (options.Rounds < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(options), $"rounds={options.Rounds} must be at least 1");
        }

        refused = (options.Probe ?? WhyUnavailable)();
        if (refused is not null)
        {
            return null;
        }

        HostLoad start = HostLoad.Current();
        using var bench = new Bench(options.Pages);
        var measurements = bench.Run(options.Rounds, progress, cancellation);
        HostLoad end = HostLoad.Current();
        return Fit(options.Pages, options.Rounds, measurements, MachineReport.Create(start, end, accelerator: null), DateTimeOffset.UtcNow);
    }

    /// <summary>Fits the model on populate (1 and 512 pages per call) and the 1-page userfaultfd measurement, and checks it
    /// against the other userfaultfd measurements.</summary>
    /// <param name="pages">Pages per measurement.</param>
    /// <param name="rounds">Rounds.</param>
    /// <param name="measurements">Every measurement (see <see cref="Measure"/>).</param>
    /// <param name="machine">The machine.</param>
    /// <param name="created">When.</param>
    /// <returns>The report.</returns>
    /// <exception cref="ArgumentException">A measurement the fit needs is missing.</exception>
    public static CalibrationReport Fit(int pages, int rounds, IReadOnlyList<CalibrationMeasurement> measurements, MachineReport machine, DateTimeOffset created)
    {
        double Median(string mechanism, int perEvent) =>
            measurements.FirstOrDefault(m => m.Mechanism == mechanism && m.PagesPerEvent == perEvent)?.NsPerPage.Median
            ?? throw new ArgumentException($"no {mechanism} measurement at {perEvent} pages per event", nameof(measurements));

        // Populate: y(k) = e/k + p per page, from k = 1 and k = 512.
        int kMax = PopulatePagesPerCall[^1];
        double y1 = Median(Populate, 1);
        double yMax = Median(Populate, kMax);
        double perCall = Math.Max(0, (y1 - yMax) * kMax / (kMax - 1));
        double perPage = Math.Max(0, y1 - perCall);

        // UFFDIO_COPY per page = populate's per page; the round trip is the 1-page measurement less one copy.
        double copy = perPage;
        double roundTrip = Math.Max(0, Median(Userfaultfd, 1) - copy);
        double touch = Math.Max(0, Median(FirstTouch, 1) - perPage);
        var model = new CalibrationModel
        {
            Populate = new MechanismCost(Math.Round(perCall, 1), Math.Round(perPage, 1)),
            FirstTouch = new MechanismCost(Math.Round(touch, 1), Math.Round(perPage, 1)),
            UffdRoundTripNs = Math.Round(roundTrip, 1),
            UffdCopyPerPageNs = Math.Round(copy, 1),
            FittedOn = $"populate at 1 and {kMax} pages per call; userfaultfd at 1 page per event (UFFDIO_COPY per page taken as populate's per-page cost); first touch's fault cost is its own measurement less populate's per-page cost",
        };
        CostModel cost = new(model.Populate, model.FirstTouch, model.UffdRoundTripNs, model.UffdCopyPerPageNs, "fit");
        var heldOut = new List<HeldOutCheck>();
        foreach (int k in UffdPagesPerEvent.Skip(1))
        {
            double measured = Median(Userfaultfd, k);
            double predicted = cost.PredictUffdNsPerPage(k);
            double error = (predicted - measured) / measured * 100;
            heldOut.Add(new HeldOutCheck(k, Math.Round(measured, 1), Math.Round(predicted, 1), Math.Round(error, 1), Math.Abs(error) <= CalibrationReport.GoalPercent));
        }

        return new CalibrationReport
        {
            CreatedUtc = created,
            Machine = machine,
            Pages = pages,
            Rounds = rounds,
            Measurements = measurements,
            Model = model,
            HeldOut = heldOut,
        };
    }

    /// <summary>The mappings and contexts of one calibration, and the measuring loop.</summary>
    private sealed unsafe class Bench : IDisposable
    {
        private readonly int _pages;
        private readonly nuint _bytes;
        private readonly List<(nint Raw, nuint Length)> _maps = [];
        private readonly List<LinuxUffd> _contexts = [];
        private readonly List<(string Mechanism, int PerEvent, nint Start, LinuxUffd? Uffd)> _items = [];

        /// <summary>Maps one range per measurement and opens a userfaultfd context (with its monitor) per block size.</summary>
        public Bench(int pages)
        {
            _pages = pages;
            _bytes = (nuint)pages * (nuint)LinuxUffd.PageSize;
            try
            {
                foreach (int k in PopulatePagesPerCall)
                {
                    _items.Add((Populate, k, MapAligned(), null));
                }

                _items.Add((FirstTouch, 1, MapAligned(), null));
                foreach (int k in UffdPagesPerEvent)
                {
                    nint at = MapAligned();
                    LinuxUffd uffd = LinuxUffd.TryOpen(at, _bytes, k, (byte)(0x40 + k % 0x3F), out string why)
                        ?? throw new InvalidOperationException($"userfaultfd could not be opened: {why}");
                    _contexts.Add(uffd);
                    _items.Add((Userfaultfd, k, at, uffd));
                }
            }
            catch
            {
                Dispose();
                throw;
            }
        }

        /// <summary>Every item once per round, rotating the order; returns nanoseconds per page per item.</summary>
        public List<CalibrationMeasurement> Run(int rounds, Action<int, int>? progress, CancellationToken cancellation)
        {
            var samples = _items.Select(_ => new double[rounds]).ToArray();
            int total = rounds * _items.Count;
            int done = 0;
            for (int r = 0; r < rounds; r++)
            {
                for (int j = 0; j < _items.Count; j++)
                {
                    cancellation.ThrowIfCancellationRequested();
                    int i = (j + r) % _items.Count;
                    samples[i][r] = MeasureOnce(_items[i]) / _pages;
                    progress?.Invoke(++done, total);
                }
            }

            return _items.Select((it, i) => new CalibrationMeasurement(it.Mechanism, it.PerEvent, Spread.Of(samples[i]).Rounded(1), rounds)).ToList();
        }

        /// <summary>Empties the item's range (untimed), then times one pass over it; nanoseconds.</summary>
        private double MeasureOnce((string Mechanism, int PerEvent, nint Start, LinuxUffd? Uffd) item)
        {
            Check(LinuxUffd.DontNeed(item.Start, _bytes), "MADV_DONTNEED");
            long roundTrips = item.Uffd?.RoundTrips ?? 0;
            long t0 = Stopwatch.GetTimestamp();
            switch (item.Mechanism)
            {
                case Populate:
                    nuint call = (nuint)item.PerEvent * (nuint)LinuxUffd.PageSize;
                    for (nuint off = 0; off < _bytes; off += call)
                    {
                        Check(LinuxUffd.PopulateWrite(item.Start + (nint)off, call), "MADV_POPULATE_WRITE");
                    }

                    break;
                case FirstTouch:
                    byte* p = (byte*)item.Start;
                    for (nuint off = 0; off < _bytes; off += (nuint)LinuxUffd.PageSize)
                    {
                        p[off] = 1;
                    }

                    break;
                default:
                    Check(LinuxUffd.PopulateWrite(item.Start, _bytes), "MADV_POPULATE_WRITE of a registered range");
                    break;
            }

            double ns = Stopwatch.GetElapsedTime(t0).TotalNanoseconds;
            if (item.Uffd is { } uffd)
            {
                uffd.ThrowIfMonitorFailed();
                long expected = _pages / item.PerEvent;
                if (uffd.RoundTrips - roundTrips != expected)
                {
                    throw new InvalidOperationException($"userfaultfd at {item.PerEvent} pages per event made {uffd.RoundTrips - roundTrips} round trips for {_pages} pages, not {expected}");
                }
            }

            return ns;
        }

        /// <summary>Throws naming <paramref name="what"/> unless <paramref name="rc"/> is 0.</summary>
        private static void Check(int rc, string what)
        {
            if (rc != 0)
            {
                throw new InvalidOperationException($"{what} failed: {rc}");
            }
        }

        /// <summary>A mapping of the measurement's size that starts on a 512-page boundary, with transparent huge pages off.</summary>
        private nint MapAligned()
        {
            nuint align = (nuint)LargestBlock * (nuint)LinuxUffd.PageSize;
            nuint length = _bytes + align;
            nint raw = LinuxUffd.MapAnonymous(length);
            _maps.Add((raw, length));
            nint start = (nint)(((nuint)raw + align - 1) & ~(align - 1));
            Check(LinuxUffd.NoHugePage(start, _bytes), "MADV_NOHUGEPAGE");
            return start;
        }

        /// <summary>Closes the contexts and unmaps the ranges.</summary>
        public void Dispose()
        {
            foreach (LinuxUffd uffd in _contexts)
            {
                uffd.Dispose();
            }

            foreach ((nint raw, nuint length) in _maps)
            {
                LinuxUffd.Unmap(raw, length);
            }
        }
    }
}
