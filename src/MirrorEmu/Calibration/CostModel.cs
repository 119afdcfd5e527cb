using System.Globalization;

namespace MirrorEmu.Calibration;

/// <summary>
/// The cost model that turns a run's counters into what the Linux kernel would spend on them: a per-event and a per-page
/// cost for each mechanism (populate, first touch, the userfaultfd round trip, UFFDIO_COPY per page). Its constants come
/// from <c>mirroremu calibrate</c> (<see cref="KernelCalibration"/>) when a calibration exists, else from
/// <see cref="Defaults"/>. Every figure it gives is modeled, never measured, and is labelled so (docs/design.md,
/// invariant 3).
/// </summary>
/// <remarks>
/// The userfaultfd part is fitted on populate and on the 1-page round trip only: UFFDIO_COPY per page is taken to cost
/// what populate's per-page work costs (both allocate a page and write 4 KiB into it: mm/userfaultfd.c
/// mfill_atomic_pte_copy, mm/memory.c do_anonymous_page), and the round trip is the 1-page measurement less that. The
/// 8-, 64- and 512-page measurements are held out to check the model (<see cref="PredictUffdNsPerPage"/>).
/// </remarks>
/// <param name="Populate">MADV_POPULATE_WRITE (and hmm_range_fault over a regular VMA): per call and per page.</param>
/// <param name="FirstTouch">A CPU's first write to a fresh page: per fault (the exception) and per page.</param>
/// <param name="UffdRoundTripNs">One userfaultfd round trip with a monitor thread, without the copy.</param>
/// <param name="UffdCopyPerPageNs">UFFDIO_COPY per page.</param>
/// <param name="Source">"defaults", or "calibration" and where the file is.</param>
public sealed record CostModel(MechanismCost Populate, MechanismCost FirstTouch, double UffdRoundTripNs, double UffdCopyPerPageNs, string Source)
{
    /// <summary>The label of the built-in constants.</summary>
    public const string DefaultsLabel = "defaults";

    /// <summary>
    /// The built-in constants: the fit of <c>mirroremu calibrate</c> (21 rounds of 4,096 pages) on the development
    /// machine, a 2-core AMD EPYC virtual machine under Linux 6.18 shared with other builds (load 10 during the run),
    /// used where no calibration file exists. They describe that machine, not this one: run <c>mirroremu calibrate</c>
    /// for this one's.
    /// </summary>
    public static CostModel Defaults { get; } = new(
        Populate: new MechanismCost(PerEventNs: 570, PerPageNs: 1_230),
        FirstTouch: new MechanismCost(PerEventNs: 200, PerPageNs: 1_230),
        UffdRoundTripNs: 9_700,
        UffdCopyPerPageNs: 1_230,
        Source: DefaultsLabel);

    /// <summary>True for the built-in constants.</summary>
    public bool IsDefaults => Source == DefaultsLabel;

    /// <summary>Modeled nanoseconds for <paramref name="counts"/>.</summary>
    /// <param name="counts">Events and pages per mechanism.</param>
    public double ModelNs(ModelCounts counts) =>
        (counts.PopulateEvents * Populate.PerEventNs)
        + (counts.PopulatePages * Populate.PerPageNs)
        + (counts.FirstTouchPages * (FirstTouch.PerEventNs + FirstTouch.PerPageNs))
        + (counts.RoundTrips * UffdRoundTripNs)
        + (counts.CopiedPages * UffdCopyPerPageNs);

    /// <summary>Modeled nanoseconds per page of populating calls of <paramref name="pagesPerCall"/> pages.</summary>
    /// <param name="pagesPerCall">Pages per MADV_POPULATE_WRITE call, at least 1.</param>
    public double PredictPopulateNsPerPage(int pagesPerCall) => (Populate.PerEventNs / pagesPerCall) + Populate.PerPageNs;

    /// <summary>Modeled nanoseconds per page of userfaultfd with a monitor that resolves <paramref name="pagesPerEvent"/>
    /// pages per round trip: the round trip shared by the pages, plus the copy of each.</summary>
    /// <param name="pagesPerEvent">Pages per round trip, at least 1.</param>
    public double PredictUffdNsPerPage(int pagesPerEvent) => (UffdRoundTripNs / pagesPerEvent) + UffdCopyPerPageNs;

    /// <summary>Modeled nanoseconds per page of a CPU's first touch.</summary>
    public double PredictFirstTouchNsPerPage() => FirstTouch.PerEventNs + FirstTouch.PerPageNs;

    /// <summary>One line naming the constants: "populate 570 ns/call + 1230 ns/page; …" (the source is not named).</summary>
    public string Describe() => string.Create(
        CultureInfo.InvariantCulture,
        $"populate {Populate.PerEventNs:F0} ns/call + {Populate.PerPageNs:F0} ns/page; first touch {FirstTouch.PerEventNs:F0} ns/fault + {FirstTouch.PerPageNs:F0} ns/page; userfaultfd {UffdRoundTripNs:F0} ns/round trip + {UffdCopyPerPageNs:F0} ns/page copied");
}
