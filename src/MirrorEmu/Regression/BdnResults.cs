using System.Text.Json;
using Perfolizer.Mathematics.Multimodality;

namespace MirrorEmu.Regression;

/// <summary>
/// Reads BenchmarkDotNet's full JSON export (<c>JsonExporter.Full</c>, the <c>*-report-full.json</c> files of
/// BenchmarkDotNet.Artifacts/results) into timings: per benchmark its FullName, Statistics.Median and
/// Statistics.OriginalValues (the measured iterations per operation, in nanoseconds, which dotnet/performance's
/// ResultsComparer tests), and Memory.BytesAllocatedPerOperation. A benchmark that failed in its run has no Statistics and
/// is kept with an error, so a comparison reports it instead of passing over it.
/// </summary>
public static class BdnResults
{
    /// <summary>The ending of a full export's file name.</summary>
    public const string FullJsonSuffix = "-report-full.json";

    /// <summary>The name of the file the benchmark runner writes beside its exports with the host's load at the start and
    /// the end of the run (bench/MirrorEmu.Bench's Program).</summary>
    public const string HostFileName = "mirroremu-host.json";

    /// <summary>Reads a full export, or every <c>*-report-full.json</c> under a folder.</summary>
    /// <param name="path">A file or a folder.</param>
    /// <param name="host">The host recorded beside the exports (<see cref="HostFileName"/> in the folder or beside the
    /// file), or null where there is none.</param>
    /// <returns>The timings, in the files' order.</returns>
    /// <exception cref="RegressionInputException">No such file, no export in the folder, malformed JSON or a missing
    /// field (named), or two benchmarks with one identity.</exception>
    public static IReadOnlyList<TimingFigure> Load(string path, out RunHost? host)
    {
        string[] files;
        string folder;
        if (Directory.Exists(path))
        {
            files = [.. Directory.GetFiles(path, "*" + FullJsonSuffix, SearchOption.AllDirectories).Order(StringComparer.Ordinal)];
            if (files.Length == 0)
            {
                throw new RegressionInputException($"--bdn {path}: the folder holds no *{FullJsonSuffix} file (run the benchmarks first; BenchmarkDotNet writes them to BenchmarkDotNet.Artifacts/results)");
            }

            folder = path;
        }
        else if (File.Exists(path))
        {
            files = [path];
            folder = Path.GetDirectoryName(Path.GetFullPath(path))!;
        }
        else
        {
            throw new RegressionInputException($"--bdn {path}: no such file or folder");
        }

        var timings = new List<TimingFigure>();
        foreach (string file in files)
        {
            timings.AddRange(Parse(RegressionRun.ReadText(file, "--bdn"), file));
        }

        string? duplicate = timings.GroupBy(t => t.Id).FirstOrDefault(g => g.Count() > 1)?.Key;
        if (duplicate is not null)
        {
            throw new RegressionInputException($"--bdn {path}: benchmark '{duplicate}' appears in more than one result (give one run's results)");
        }

        string hostFile = Path.Combine(folder, HostFileName);
        host = File.Exists(hostFile) ? ReadHost(hostFile) : null;
        return timings;
    }

    /// <summary>Parses one full export.</summary>
    /// <param name="json">The file's text.</param>
    /// <param name="file">Its name, for messages.</param>
    /// <returns>Its benchmarks' timings.</returns>
    /// <exception cref="RegressionInputException">Malformed, or a field missing or of the wrong kind (named).</exception>
    public static IReadOnlyList<TimingFigure> Parse(string json, string file)
    {
        try
        {
            using JsonDocument doc = JsonDocument.Parse(json);
            JsonElement benchmarks = Required(doc.RootElement, "Benchmarks", JsonValueKind.Array, file, "");
            var rows = new List<(string FullName, string Job, TimingFigure Figure)>();
            int i = 0;
            foreach (JsonElement b in benchmarks.EnumerateArray())
            {
                string at = $"Benchmarks[{i++}]";
                string fullName = Required(b, "FullName", JsonValueKind.String, file, at).GetString()!;
                string job = JobOf(b.TryGetProperty("DisplayInfo", out JsonElement d) && d.ValueKind == JsonValueKind.String ? d.GetString()! : string.Empty);
                long? bytes = b.TryGetProperty("Memory", out JsonElement m) && m.ValueKind == JsonValueKind.Object
                    && m.TryGetProperty("BytesAllocatedPerOperation", out JsonElement ba) && ba.TryGetInt64(out long bv) ? bv : null;
                if (!b.TryGetProperty("Statistics", out JsonElement s) || s.ValueKind != JsonValueKind.Object)
                {
                    rows.Add((fullName, job, new TimingFigure { Id = fullName, Source = "bdn", Error = "the benchmark did not run to the end (no Statistics)" }));
                    continue;
                }

                double median = Number(Required(s, "Median", JsonValueKind.Number, file, at + ".Statistics"), file, at + ".Statistics.Median");
                double[] samples = s.TryGetProperty("OriginalValues", out JsonElement ov) && ov.ValueKind == JsonValueKind.Array
                    ? [.. ov.EnumerateArray().Select((v, k) => Number(v, file, $"{at}.Statistics.OriginalValues[{k}]"))]
                    : [];
                double? p10 = null, p90 = null;
                if (samples.Length > 0)
                {
                    double[] sorted = [.. samples.Order()];
                    p10 = Quantile(sorted, 0.1);
                    p90 = Quantile(sorted, 0.9);
                }

                rows.Add((fullName, job, new TimingFigure
                {
                    Id = fullName,
                    Source = "bdn",
                    MedianNs = median,
                    P10Ns = p10,
                    P90Ns = p90,
                    Samples = samples,
                    BytesPerOp = bytes,
                    // dotnet/performance's ResultsComparer (Helper.GetModalInfo): "not enough data to tell" below 12.
                    MValue = samples.Length >= 12 ? Math.Round(MValueCalculator.Calculate(samples), 3) : null,
                }));
            }

            // One class run under several jobs (the walker's one job per ISA) repeats its FullNames: the job names them apart.
            var repeated = rows.GroupBy(r => r.FullName).Where(g => g.Count() > 1).Select(g => g.Key).ToHashSet();
            return [.. rows.Select(r => repeated.Contains(r.FullName) ? r.Figure with { Id = $"{r.FullName}@{r.Job}" } : r.Figure)];
        }
        catch (JsonException e)
        {
            throw new RegressionInputException($"--bdn {file}: not valid JSON ({RegressionRun.OneLine(e.Message)})");
        }
    }

    /// <summary>The job of a benchmark's DisplayInfo ("WalkerBenchmarks.Scan: Vector512(EnvironmentVariables=...)" →
    /// "Vector512").</summary>
    private static string JobOf(string displayInfo)
    {
        int colon = displayInfo.LastIndexOf(": ", StringComparison.Ordinal);
        if (colon < 0)
        {
            return "job";
        }

        string job = displayInfo[(colon + 2)..];
        int paren = job.IndexOf('(', StringComparison.Ordinal);
        return (paren >= 0 ? job[..paren] : job).Trim();
    }

    private static RunHost ReadHost(string file)
    {
        try
        {
            return JsonSerializer.Deserialize<RunHost>(RegressionRun.ReadText(file, "host file"), HostJson) ?? throw new RegressionInputException($"{file}: the host is null");
        }
        catch (JsonException e)
        {
            throw new RegressionInputException($"{file}: {RegressionRun.OneLine(e.Message)}");
        }
    }

    /// <summary>The JSON conventions of <see cref="HostFileName"/> (the project's report conventions).</summary>
    public static JsonSerializerOptions HostJson => Telemetry.ReportJson.Options;

    private static JsonElement Required(JsonElement parent, string name, JsonValueKind kind, string file, string at)
    {
        if (parent.ValueKind != JsonValueKind.Object || !parent.TryGetProperty(name, out JsonElement e))
        {
            throw new RegressionInputException($"--bdn {file}: {(at.Length > 0 ? at + "." : string.Empty)}{name} is missing (is it BenchmarkDotNet's full JSON export?)");
        }

        if (e.ValueKind != kind)
        {
            throw new RegressionInputException($"--bdn {file}: {(at.Length > 0 ? at + "." : string.Empty)}{name} is a {e.ValueKind}, not a {kind}");
        }

        return e;
    }

    private static double Number(JsonElement e, string file, string at) =>
        e.ValueKind == JsonValueKind.Number && e.TryGetDouble(out double v) && double.IsFinite(v) && v >= 0
            ? v
            : throw new RegressionInputException($"--bdn {file}: {at}={e.GetRawText()} is not a time of at least 0");

    private static double Quantile(double[] sorted, double q) => sorted[(int)Math.Min(sorted.Length - 1, Math.Floor(q * sorted.Length))];
}
