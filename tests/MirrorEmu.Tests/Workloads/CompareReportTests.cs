using System.Text.Json;
using System.Text.RegularExpressions;
using MirrorEmu.Tests.Helpers;
using MirrorEmu.Workloads;
using static MirrorEmu.Tests.Helpers.CliRunner;

namespace MirrorEmu.Tests.Workloads;

/// <summary>The JSON report of <c>compare --json</c> has exactly the fields the README documents (the names regression
/// tracking reads), camelCase, and reads back into the same report.</summary>
public class CompareReportTests
{
    private static readonly string[] s_top = ["schemaVersion", "tool", "options", "machine", "model", "rounds", "wallSeconds", "runs", "kernel", "sweep"];
    private static readonly string[] s_run = ["policy", "workload", "pages", "deviceFaults", "faultBatches", "replays", "roundTrips", "ebusyRestarts", "walks", "measuredNsPerPage", "modeledUsPerPage", "slowdownVsRegular", "verified", "error"];
    private static readonly string[] s_machine = ["cores", "isa", "load", "freeCores", "loadAtEnd", "busy", "kernelVersion", "runtime", "accelerator"];
    private static readonly string[] s_options = ["level", "pages", "workload", "policies", "launcher", "monitorBatch", "faultBatch", "replay", "seed", "fillByte", "repeat", "sweep"];
    private static readonly string[] s_model = ["source", "file", "populate", "firstTouch", "uffdRoundTripNs", "uffdCopyPerPageNs"];
    private static readonly string[] s_kernel = ["mechanism", "pagesPerEvent", "measuredNsPerPage", "modeledUsPerPage", "slowdownVsRegular"];

    private static string RunJson(params string[] extra)
    {
        string file = Path.Combine(EmptyConfigDirectory(), "report.json");
        (int code, string output, string err) = Run(["compare", "--pages", "512", "--repeat", "2", "--json", file, .. extra]);
        Assert.True(code == 0, output + err);
        Assert.Contains($"wrote {file}", output);
        return File.ReadAllText(file);
    }

    [Fact]
    public void TheReportHasExactlyTheDocumentedFields()
    {
        using var doc = JsonDocument.Parse(RunJson());
        JsonElement root = doc.RootElement;
        AssertFields(root, s_top, "the report");
        AssertFields(root.GetProperty("machine"), s_machine, "machine");
        AssertFields(root.GetProperty("machine").GetProperty("load"), ["oneMinute", "fiveMinutes", "fifteenMinutes"], "machine.load");
        AssertFields(root.GetProperty("options"), s_options, "options");
        AssertFields(root.GetProperty("model"), s_model, "model");
        Assert.Equal(1, root.GetProperty("schemaVersion").GetInt32());
        Assert.Equal("defaults", root.GetProperty("model").GetProperty("source").GetString());
        Assert.Equal(JsonValueKind.Null, root.GetProperty("sweep").ValueKind);
        Assert.Equal(0, root.GetProperty("kernel").GetArrayLength()); // no calibration in this test's configuration folder
        JsonElement runs = root.GetProperty("runs");
        Assert.Equal(["regular", "uffd-unsupported", "uffd-single", "uffd-batched", "uffd-range"], runs.EnumerateArray().Select(r => r.GetProperty("policy").GetString()));
        foreach (JsonElement run in runs.EnumerateArray())
        {
            AssertFields(run, s_run, "runs[]");
            bool failed = run.GetProperty("error").ValueKind == JsonValueKind.String;
            Assert.Equal(failed, run.GetProperty("measuredNsPerPage").ValueKind == JsonValueKind.Null);
            if (!failed)
            {
                AssertFields(run.GetProperty("measuredNsPerPage"), ["median", "p10", "p90"], "measuredNsPerPage");
                AssertFields(run.GetProperty("slowdownVsRegular"), ["measured", "modeled"], "slowdownVsRegular");
                Assert.True(run.GetProperty("verified").GetBoolean());
            }
        }

        Assert.Equal("-EFAULT", runs[1].GetProperty("error").GetString());
        Assert.Equal(1.0, runs[0].GetProperty("slowdownVsRegular").GetProperty("measured").GetDouble());
    }

    [Fact]
    public void TheReportReadsBackIntoTheSameReport()
    {
        string json = RunJson("--workload", "stride:2", "--policies", "uffd-range");
        CompareReport report = CompareReport.FromJson(json);
        Assert.Equal(json.TrimEnd(), report.ToJson());
        Assert.Equal("stride:2", report.Runs[1].Workload);
        Assert.Equal(256, report.Runs[1].Pages);
        Assert.Equal(256, report.Runs[1].RoundTrips); // one run (and round trip) per strided page
    }

    [Fact]
    public void AReportWithAnUnknownFieldOrAnotherVersionIsRefused()
    {
        string json = RunJson("--policies", "uffd-batched");
        Assert.Throws<JsonException>(() => CompareReport.FromJson(json.Replace("\"tool\":", "\"tool2\":", StringComparison.Ordinal)));
        Assert.Throws<JsonException>(() => CompareReport.FromJson(json.Replace("\"schemaVersion\": 1", "\"schemaVersion\": 2", StringComparison.Ordinal)));
    }

    [Fact]
    public void TheReadmeDocumentsEveryFieldAndNoOther()
    {
        string readme = Readme.Text;
        Match section = Regex.Match(readme, @"<!-- json-schema begin -->(?<s>.*?)<!-- json-schema end -->", RegexOptions.Singleline);
        Assert.True(section.Success, "the README has no JSON schema section between its markers");
        var documented = Regex.Matches(section.Groups["s"].Value, @"^\| `(?<path>[a-zA-Z0-9.\[\]]+)` \|", RegexOptions.Multiline).Select(m => m.Groups["path"].Value).ToHashSet();
        var actual = new HashSet<string>();
        foreach (string f in s_top)
        {
            actual.Add(f);
        }

        foreach ((string prefix, string[] fields) in new[] { ("machine", s_machine), ("options", s_options), ("model", s_model), ("runs[]", s_run), ("kernel[]", s_kernel) })
        {
            foreach (string f in fields)
            {
                actual.Add($"{prefix}.{f}");
            }
        }

        foreach (string f in new[] { "machine.load.oneMinute", "machine.load.fiveMinutes", "machine.load.fifteenMinutes", "sweep.sizes", "sweep.slopes[].policy", "sweep.slopes[].slope", "sweep.slopes[].withinGoal" })
        {
            actual.Add(f);
        }

        Assert.True(actual.SetEquals(documented), $"undocumented: {string.Join(", ", actual.Except(documented))}; documented but absent: {string.Join(", ", documented.Except(actual))}");
    }

    [Fact]
    public void ModeledTimesPriceEachRowsCountersWithTheModel()
    {
        // regular: 4 runs (populate events) over 1,024 pages; uffd-batched: 16 round trips and 1,024 copied pages.
        var model = new MirrorEmu.Calibration.CostModel(new(1_000, 100), new(0, 0), 5_000, 200, "test");
        var regular = new PolicyResult { Policy = ComparePolicy.Regular, Counters = new TrialCounters(1024, 1024, 4, 1, 4, 0, 0, 8, 0, 1024, 0), NsPerPage = [100], Ratios = [1], Verified = true };
        var batched = new PolicyResult { Policy = ComparePolicy.UffdBatched, Counters = new TrialCounters(1024, 1024, 4, 1, 4, 16, 0, 8, 16, 1024, 1024), NsPerPage = [150], Ratios = [1.5], Verified = true };
        double regularNs = model.ModelNs(regular.Counters.ToModelCounts(ComparePolicy.Regular));
        Assert.Equal((4 * 1_000) + (1024 * 100), regularNs);
        RunReport r = RunReport.From(regular, new ComparisonOptions(), model, regularNs);
        RunReport b = RunReport.From(batched, new ComparisonOptions(), model, regularNs);
        Assert.Equal(Math.Round(((4 * 1_000) + (1024 * 100)) / 1024.0 / 1000, 4), r.ModeledUsPerPage);
        Assert.Equal(Math.Round(((16 * 5_000) + (1024 * 200)) / 1024.0 / 1000, 4), b.ModeledUsPerPage);
        Assert.Equal(Math.Round(((16 * 5_000) + (1024 * 200)) / (double)regularNs, 3), b.SlowdownVsRegular!.Modeled);
        Assert.Equal(1.5, b.SlowdownVsRegular.Measured);
        Assert.Equal(new MirrorEmu.Telemetry.Spread(150, 150, 150), b.MeasuredNsPerPage);
    }

    private static void AssertFields(JsonElement e, string[] expected, string what)
    {
        string[] names = e.EnumerateObject().Select(p => p.Name).ToArray();
        Assert.True(expected.Order().SequenceEqual(names.Order()), $"{what}: fields {string.Join(", ", names)}, expected {string.Join(", ", expected)}");
    }
}
