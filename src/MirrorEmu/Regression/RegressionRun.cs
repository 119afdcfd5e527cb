using System.Text.Json;
using MirrorEmu.Telemetry;

namespace MirrorEmu.Regression;

/// <summary>
/// The figures of one run: the counters of the fixed scenarios and the timings of benchmarks, with the commit, the date
/// and the host they came from. A committed baseline is one of these (bench/baselines/counters.json, timings.json); each
/// line of a history file is one too, without samples.
/// </summary>
public sealed record RegressionRun
{
    /// <summary>The schema's version; a reader refuses another.</summary>
    public const int CurrentSchemaVersion = 1;

    // The project's report conventions (camelCase, nulls written, an unknown field refused), on one line for a history.
    private static readonly JsonSerializerOptions s_indented = ReportJson.Options;
    private static readonly JsonSerializerOptions s_line = Line();

    /// <summary>The schema version.</summary>
    public int SchemaVersion { get; init; } = CurrentSchemaVersion;

    /// <summary>The tool and its version that wrote it ("mirroremu 0.1.0").</summary>
    public string Tool { get; init; } = string.Empty;

    /// <summary>The commit the figures were taken at (git rev-parse HEAD), or null where unknown.</summary>
    public string? Commit { get; init; }

    /// <summary>When the run ended.</summary>
    public DateTimeOffset Date { get; init; }

    /// <summary>The host and its load.</summary>
    public RunHost Host { get; init; } = new();

    /// <summary>The counter scenarios' figures (empty when none ran).</summary>
    public IReadOnlyList<CounterFigure> Counters { get; init; } = [];

    /// <summary>The timings (empty when none were given).</summary>
    public IReadOnlyList<TimingFigure> Timings { get; init; } = [];

    /// <summary>The run as indented JSON (a baseline file).</summary>
    public string ToJson() => JsonSerializer.Serialize(this, s_indented);

    /// <summary>The run as one line of JSON without samples (a history entry).</summary>
    public string ToJsonLine() =>
        JsonSerializer.Serialize(this with { Timings = [.. Timings.Select(t => t with { Samples = [] })] }, s_line);

    /// <summary>Reads a run, refusing malformed JSON, unknown fields and another schema version.</summary>
    /// <param name="json">The JSON.</param>
    /// <param name="what">What it is, for messages ("baseline bench/baselines/counters.json").</param>
    /// <returns>The run.</returns>
    /// <exception cref="RegressionInputException">It cannot be used; the message names the field and value.</exception>
    public static RegressionRun FromJson(string json, string what)
    {
        int version;
        try
        {
            using JsonDocument doc = JsonDocument.Parse(json);
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw new RegressionInputException($"{what}: expected a JSON object, found {doc.RootElement.ValueKind}");
            }

            if (!doc.RootElement.TryGetProperty("schemaVersion", out JsonElement v) || !v.TryGetInt32(out version))
            {
                throw new RegressionInputException($"{what}: no schemaVersion (is it a mirroremu regress file?)");
            }
        }
        catch (JsonException e)
        {
            throw new RegressionInputException($"{what}: not valid JSON ({OneLine(e.Message)})");
        }

        if (version != CurrentSchemaVersion)
        {
            throw new RegressionInputException(
                $"{what}: schemaVersion {version} is not the {CurrentSchemaVersion} this mirroremu reads; refresh it with this version (README \"Regression tracking\")");
        }

        RegressionRun? run;
        try
        {
            run = JsonSerializer.Deserialize<RegressionRun>(json, s_indented);
        }
        catch (JsonException e)
        {
            throw new RegressionInputException($"{what}: {(e.Path is { Length: > 0 } p ? $"at {p}: " : string.Empty)}{OneLine(e.Message)}");
        }

        if (run is null)
        {
            throw new RegressionInputException($"{what}: the run is null");
        }

        foreach (CounterFigure c in run.Counters)
        {
            if (string.IsNullOrWhiteSpace(c.Scenario) || string.IsNullOrWhiteSpace(c.Counter) || !(c.Tolerance >= 0))
            {
                throw new RegressionInputException($"{what}: counter '{c.Id}' needs a scenario, a counter and a tolerance of at least 0 (tolerance={c.Tolerance})");
            }
        }

        foreach (TimingFigure t in run.Timings)
        {
            if (string.IsNullOrWhiteSpace(t.Id) || (t.Error is null && !(t.MedianNs >= 0)) || t.Threshold is < 0 || t.NoiseNs is < 0)
            {
                throw new RegressionInputException($"{what}: timing '{t.Id}' needs an id, a median of at least 0 and no negative threshold or noise (medianNs={t.MedianNs})");
            }
        }

        return run;
    }

    /// <summary>Reads a run from a file.</summary>
    /// <param name="path">The file.</param>
    /// <param name="what">What it is, for messages ("baseline").</param>
    /// <exception cref="RegressionInputException">Missing, unreadable or unusable.</exception>
    public static RegressionRun Load(string path, string what) => FromJson(ReadText(path, what), $"{what} {path}");

    /// <summary>The text of <paramref name="path"/>, or a <see cref="RegressionInputException"/> naming it.</summary>
    /// <param name="path">The file.</param>
    /// <param name="what">What it is, for messages.</param>
    internal static string ReadText(string path, string what)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            throw new RegressionInputException($"{what} {path}: cannot be read ({OneLine(e.Message)})");
        }
    }

    /// <summary>Text made one line.</summary>
    /// <param name="text">The text.</param>
    internal static string OneLine(string text) => text.ReplaceLineEndings(" ");

    private static JsonSerializerOptions Line()
    {
        var o = new JsonSerializerOptions(ReportJson.Options) { WriteIndented = false };
        o.MakeReadOnly(populateMissingResolver: true);
        return o;
    }
}
