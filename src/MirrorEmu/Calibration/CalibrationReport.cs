using MirrorEmu.Telemetry;

namespace MirrorEmu.Calibration;

/// <summary>
/// What <c>mirroremu calibrate</c> measured on this machine's kernel, the model it fitted, and how well the model predicts
/// the measurements it was not fitted on. Saved as JSON (README "Calibration file") and read by <c>mirroremu compare</c>.
/// </summary>
public sealed record CalibrationReport
{
    /// <summary>The version of this schema; a file of another version is refused.</summary>
    public const int CurrentSchemaVersion = 1;

    /// <summary>The held-out goal: each prediction within this many percent of the measurement.</summary>
    public const double GoalPercent = 30;

    /// <summary>The schema version (<see cref="CurrentSchemaVersion"/>).</summary>
    public int SchemaVersion { get; init; } = CurrentSchemaVersion;

    /// <summary>When it was measured (UTC, ISO 8601).</summary>
    public DateTimeOffset CreatedUtc { get; init; }

    /// <summary>The machine and its load.</summary>
    public MachineReport Machine { get; init; } = new();

    /// <summary>Pages per measurement.</summary>
    public int Pages { get; init; }

    /// <summary>Rounds: every measurement once per round, in an order that rotates.</summary>
    public int Rounds { get; init; }

    /// <summary>Every measurement, nanoseconds per page over the rounds.</summary>
    public IReadOnlyList<CalibrationMeasurement> Measurements { get; init; } = [];

    /// <summary>The model fitted on populate and the 1-page userfaultfd measurement.</summary>
    public CalibrationModel Model { get; init; } = new();

    /// <summary>The model's predictions of the held-out userfaultfd measurements (8, 64 and 512 pages per event).</summary>
    public IReadOnlyList<HeldOutCheck> HeldOut { get; init; } = [];

    /// <summary>The cost model these constants make.</summary>
    /// <param name="path">Where the calibration was read from, for the label.</param>
    public CostModel ToCostModel(string path) =>
        new(Model.Populate, Model.FirstTouch, Model.UffdRoundTripNs, Model.UffdCopyPerPageNs, $"calibration {path}");

    /// <summary>The measurement of <paramref name="mechanism"/> at <paramref name="pagesPerEvent"/>, or null.</summary>
    /// <param name="mechanism">A <see cref="CalibrationMeasurement.Mechanism"/> name.</param>
    /// <param name="pagesPerEvent">Pages per event.</param>
    public CalibrationMeasurement? Find(string mechanism, int pagesPerEvent) =>
        Measurements.FirstOrDefault(m => m.Mechanism == mechanism && m.PagesPerEvent == pagesPerEvent);
}
