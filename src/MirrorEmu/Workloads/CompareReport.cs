using System.Text.Json;
using System.Text.Json.Serialization;
using MirrorEmu.Calibration;
using MirrorEmu.Telemetry;

namespace MirrorEmu.Workloads;

/// <summary>
/// The report of <c>mirroremu compare</c>: what the table prints and what <c>--json</c> writes, with the names regression
/// tracking reads (README "JSON output"; schema version <see cref="CurrentSchemaVersion"/>). Every measured figure comes
/// from a Stopwatch, every counter from the code path that does the work, and every modeled figure from the
/// <see cref="CostModel"/> named in <see cref="Model"/>.
/// </summary>
public sealed record CompareReport
{
    /// <summary>The schema's version; a reader refuses another.</summary>
    public const int CurrentSchemaVersion = 1;

    /// <summary>The schema version.</summary>
    public int SchemaVersion { get; init; } = CurrentSchemaVersion;

    /// <summary>The tool and its version ("mirroremu 0.1.0").</summary>
    public string Tool { get; init; } = string.Empty;

    /// <summary>What ran.</summary>
    public CompareReportOptions Options { get; init; } = new();

    /// <summary>The machine and its load.</summary>
    public MachineReport Machine { get; init; } = new();

    /// <summary>The cost model's constants and where they came from.</summary>
    public ModelReport Model { get; init; } = new();

    /// <summary>Measured rounds (per size, for a sweep: the fewest of any size).</summary>
    public int Rounds { get; init; }

    /// <summary>Wall-clock seconds of the whole run.</summary>
    public double WallSeconds { get; init; }

    /// <summary>One entry per policy (per policy and size, for a sweep), the regular VMA first.</summary>
    public IReadOnlyList<RunReport> Runs { get; init; } = [];

    /// <summary>The real kernel's figures from the calibration, beside the model's (empty without a calibration).</summary>
    public IReadOnlyList<KernelReport> Kernel { get; init; } = [];

    /// <summary>The sweep's slopes, or null when no sweep ran.</summary>
    public SweepReport? Sweep { get; init; }

    /// <summary>Builds the report of one comparison, or of a sweep (one result per size).</summary>
    /// <param name="results">The comparison's result, or the sweep's, smallest size first.</param>
    /// <param name="model">The cost model.</param>
    /// <param name="calibration">The calibration the model came from, or null for the defaults.</param>
    /// <param name="tool">The tool and its version.</param>
    /// <param name="sweepText">The sweep as the user wrote it ("1k..1M"), or null.</param>
    /// <returns>The report.</returns>
    public static CompareReport Build(IReadOnlyList<CompareResult> results, CostModel model, CalibrationReport? calibration, string tool, string? sweepText)
    {
        ArgumentNullException.ThrowIfNull(results);
        ArgumentNullException.ThrowIfNull(model);
        CompareResult first = results[0];
        ComparisonOptions o = first.Options;
        var runs = new List<RunReport>();
        foreach (CompareResult r in results)
        {
            PolicyResult regular = r.Rows[0];
            double regularModel = model.ModelNs(regular.Counters.ToModelCounts(ComparePolicy.Regular));
            foreach (PolicyResult row in r.Rows)
            {
                runs.Add(RunReport.From(row, r.Options, model, regularModel));
            }
        }

        return new CompareReport
        {
            Tool = tool,
            Options = CompareReportOptions.From(o, sweepText),
            Machine = MachineReport.Create(first.LoadAtStart, results[^1].LoadAtEnd, first.Accelerator),
            Model = ModelReport.From(model),
            Rounds = results.Min(r => r.Rounds),
            WallSeconds = Math.Round(results.Sum(r => r.Wall.TotalSeconds), 2),
            Runs = runs,
            Kernel = calibration is null ? [] : KernelReport.From(calibration, model, o.MonitorBatch),
            Sweep = results.Count > 1 ? SweepReport.From(results) : null,
        };
    }

    /// <summary>The report as JSON (<see cref="ReportJson.Options"/>).</summary>
    public string ToJson() => JsonSerializer.Serialize(this, ReportJson.Options);

    /// <summary>Reads a report, refusing unknown fields and another schema version.</summary>
    /// <param name="json">The JSON.</param>
    /// <returns>The report.</returns>
    /// <exception cref="JsonException">Malformed, an unknown field, or another schema version.</exception>
    public static CompareReport FromJson(string json)
    {
        CompareReport report = JsonSerializer.Deserialize<CompareReport>(json, ReportJson.Options) ?? throw new JsonException("the report is null");
        return report.SchemaVersion == CurrentSchemaVersion
            ? report
            : throw new JsonException($"schemaVersion {report.SchemaVersion} is not {CurrentSchemaVersion}");
    }

    /// <summary>True when every run ended as its policy must (uffd-unsupported with -EFAULT, every other verified).</summary>
    [JsonIgnore]
    public bool AsExpected => Runs.All(r => r.Policy == ComparePolicy.UffdUnsupported.Name()
        ? r.Error == Errno.Name(-Errno.EFAULT)
        : r.Error is null && r.Verified);
}
