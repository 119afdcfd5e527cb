using MirrorEmu.Calibration;
using MirrorEmu.Telemetry;

namespace MirrorEmu.Workloads;

/// <summary>One row of the real kernel's figures beside a comparison: a calibration measurement and the model's figure for
/// it, each as a slowdown against the kernel's populate.</summary>
public sealed record KernelReport
{
    /// <summary>"populate" or "userfaultfd".</summary>
    public string Mechanism { get; init; } = string.Empty;

    /// <summary>Pages per populate call or per userfaultfd round trip.</summary>
    public int PagesPerEvent { get; init; }

    /// <summary>Measured by <c>mirroremu calibrate</c>: ns per page over its rounds.</summary>
    public Spread MeasuredNsPerPage { get; init; }

    /// <summary>The cost model's figure, µs per page (modeled).</summary>
    public double ModeledUsPerPage { get; init; }

    /// <summary>Against the kernel's populate row: measured (ratio of medians) and modeled.</summary>
    public SlowdownReport SlowdownVsRegular { get; init; } = new(null, null);

    /// <summary>The kernel rows for a comparison: populate at 512 pages per call, userfaultfd at 1 page per event, and at
    /// the measured size nearest <paramref name="monitorBatch"/>.</summary>
    /// <param name="calibration">The calibration.</param>
    /// <param name="model">The model fitted from it.</param>
    /// <param name="monitorBatch">The comparison's monitor batch.</param>
    public static IReadOnlyList<KernelReport> From(CalibrationReport calibration, CostModel model, int monitorBatch)
    {
        ArgumentNullException.ThrowIfNull(calibration);
        ArgumentNullException.ThrowIfNull(model);
        int populateK = KernelCalibration.PopulatePagesPerCall[^1];
        int batched = KernelCalibration.UffdPagesPerEvent.MinBy(k => Math.Abs(Math.Log2(k) - Math.Log2(monitorBatch)));
        CalibrationMeasurement? populate = calibration.Find(KernelCalibration.Populate, populateK);
        if (populate is null)
        {
            return [];
        }

        double populateModel = model.PredictPopulateNsPerPage(populateK);
        var rows = new List<KernelReport> { Row(populate, populateModel, populate, populateModel) };
        foreach (int k in new[] { 1, batched }.Distinct())
        {
            if (calibration.Find(KernelCalibration.Userfaultfd, k) is { } m)
            {
                rows.Add(Row(m, model.PredictUffdNsPerPage(k), populate, populateModel));
            }
        }

        return rows;
    }

    /// <summary>One row: a measurement and its modeled figure, each against populate.</summary>
    private static KernelReport Row(CalibrationMeasurement m, double modeledNs, CalibrationMeasurement populate, double populateModelNs) => new()
    {
        Mechanism = m.Mechanism,
        PagesPerEvent = m.PagesPerEvent,
        MeasuredNsPerPage = m.NsPerPage,
        ModeledUsPerPage = Math.Round(modeledNs / 1000, 4),
        SlowdownVsRegular = new SlowdownReport(Math.Round(m.NsPerPage.Median / populate.NsPerPage.Median, 3), Math.Round(modeledNs / populateModelNs, 3)),
    };
}
