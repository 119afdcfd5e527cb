using System.Text.Json;

namespace MirrorEmu.Regression;

/// <summary>
/// Reads the report of <c>mirroremu compare --json</c> (schema version 1, README "JSON output") into timings: one per
/// policy row, identified as "compare:policy@workload/pages", its time the row's measured ns per page (median, p10, p90
/// over the rounds); the machine's load at the start and end becomes the run's host. Only the fields named here are read:
/// schemaVersion, machine.cores, machine.load.oneMinute, machine.loadAtEnd, machine.busy, and per run policy, workload,
/// pages, measuredNsPerPage and error.
/// </summary>
public static class CompareResults
{
    /// <summary>The compare report schema version read.</summary>
    public const int SchemaVersion = 1;

    /// <summary>Reads a report file.</summary>
    /// <param name="path">The file <c>compare --json FILE</c> wrote.</param>
    /// <param name="host">The machine and its load as the report states them.</param>
    /// <returns>One timing per row that has a measured time, and one with its error per row that failed.</returns>
    /// <exception cref="RegressionInputException">Unreadable, another schema version, or a field missing (named).</exception>
    public static IReadOnlyList<TimingFigure> Load(string path, out RunHost host) =>
        Parse(RegressionRun.ReadText(path, "--compare-json"), path, out host);

    /// <summary>Parses a report.</summary>
    /// <param name="json">The report.</param>
    /// <param name="file">Its name, for messages.</param>
    /// <param name="host">The machine and its load.</param>
    /// <returns>The timings.</returns>
    /// <exception cref="RegressionInputException">Another schema version, or a field missing (named).</exception>
    public static IReadOnlyList<TimingFigure> Parse(string json, string file, out RunHost host)
    {
        string what = $"--compare-json {file}";
        try
        {
            using JsonDocument doc = JsonDocument.Parse(json);
            JsonElement root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("schemaVersion", out JsonElement v) || !v.TryGetInt32(out int version))
            {
                throw new RegressionInputException($"{what}: no schemaVersion (is it the output of mirroremu compare --json?)");
            }

            if (version != SchemaVersion)
            {
                throw new RegressionInputException($"{what}: schemaVersion {version} is not the {SchemaVersion} this mirroremu reads");
            }

            JsonElement machine = Get(root, "machine", JsonValueKind.Object, what);
            int cores = Get(machine, "cores", JsonValueKind.Number, what, "machine").GetInt32();
            double? start = machine.TryGetProperty("load", out JsonElement load) && load.ValueKind == JsonValueKind.Object
                && load.TryGetProperty("oneMinute", out JsonElement one) && one.ValueKind == JsonValueKind.Number ? one.GetDouble() : null;
            double? end = machine.TryGetProperty("loadAtEnd", out JsonElement e) && e.ValueKind == JsonValueKind.Number ? e.GetDouble() : null;
            bool busy = machine.TryGetProperty("busy", out JsonElement b) && b.ValueKind == JsonValueKind.True;
            host = new RunHost { Machine = "compare report", Cores = cores, LoadAtStart = start, LoadAtEnd = end, Busy = busy };

            var timings = new List<TimingFigure>();
            int i = 0;
            foreach (JsonElement run in Get(root, "runs", JsonValueKind.Array, what).EnumerateArray())
            {
                string at = $"runs[{i++}]";
                string policy = Get(run, "policy", JsonValueKind.String, what, at).GetString()!;
                string workload = run.TryGetProperty("workload", out JsonElement w) && w.ValueKind == JsonValueKind.String ? w.GetString()! : "hmm";
                long pages = Get(run, "pages", JsonValueKind.Number, what, at).GetInt64();
                string id = $"compare:{policy}@{workload}/{pages}";
                string? error = run.TryGetProperty("error", out JsonElement err) && err.ValueKind == JsonValueKind.String ? err.GetString() : null;
                if (!run.TryGetProperty("measuredNsPerPage", out JsonElement m) || m.ValueKind != JsonValueKind.Object)
                {
                    timings.Add(new TimingFigure { Id = id, Source = "compare", Error = error ?? "no measured time" });
                    continue;
                }

                timings.Add(new TimingFigure
                {
                    Id = id,
                    Source = "compare",
                    MedianNs = Time(m, "median", what, at),
                    P10Ns = Time(m, "p10", what, at),
                    P90Ns = Time(m, "p90", what, at),
                    Error = error,
                });
            }

            return timings;
        }
        catch (JsonException ex)
        {
            throw new RegressionInputException($"{what}: not valid JSON ({RegressionRun.OneLine(ex.Message)})");
        }
    }

    private static double Time(JsonElement m, string name, string what, string at)
    {
        JsonElement e = Get(m, name, JsonValueKind.Number, what, at + ".measuredNsPerPage");
        double v = e.GetDouble();
        return double.IsFinite(v) && v >= 0 ? v : throw new RegressionInputException($"{what}: {at}.measuredNsPerPage.{name}={e.GetRawText()} is not a time of at least 0");
    }

    private static JsonElement Get(JsonElement parent, string name, JsonValueKind kind, string what, string at = "")
    {
        string field = at.Length > 0 ? $"{at}.{name}" : name;
        if (!parent.TryGetProperty(name, out JsonElement e))
        {
            throw new RegressionInputException($"{what}: {field} is missing");
        }

        return e.ValueKind == kind ? e : throw new RegressionInputException($"{what}: {field} is a {e.ValueKind}, not a {kind}");
    }
}
