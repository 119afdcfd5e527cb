using MirrorEmu.Regression;
using MirrorEmu.Telemetry;
using MirrorEmu.Workloads;

namespace MirrorEmu.Tests.Regression;

/// <summary>Timings are read from BenchmarkDotNet's full JSON export and from <c>compare --json</c>, with every missing or
/// malformed field named.</summary>
public class TimingInputTests
{
    /// <summary>The shape of a BenchmarkDotNet 0.15.8 full export (the fields it writes, trimmed to what matters), with
    /// one class run under two jobs.</summary>
    private const string BdnExport = """
        {
          "Title": "MirrorEmu.Bench.Hmm.WalkerBenchmarks-20261128-104000",
          "HostEnvironmentInfo": { "BenchmarkDotNetVersion": "0.15.8", "ProcessorName": "AMD EPYC", "LogicalCoreCount": 2 },
          "Benchmarks": [
            {
              "DisplayInfo": "WalkerBenchmarks.Scan: Scalar(EnvironmentVariables=DOTNET_EnableHWIntrinsic=0)",
              "Namespace": "MirrorEmu.Bench.Hmm", "Type": "WalkerBenchmarks", "Method": "Scan", "MethodTitle": "Scan", "Parameters": "",
              "FullName": "MirrorEmu.Bench.Hmm.WalkerBenchmarks.Scan",
              "Statistics": { "OriginalValues": [1.1, 1.2, 1.0, 1.15, 1.12, 1.08, 1.11, 1.13, 1.09, 1.1, 1.14, 1.12], "N": 12, "Median": 1.115 },
              "Memory": { "Gen0Collections": 0, "Gen1Collections": 0, "Gen2Collections": 0, "TotalOperations": 8192, "BytesAllocatedPerOperation": 0 },
              "Measurements": []
            },
            {
              "DisplayInfo": "WalkerBenchmarks.Scan: Vector512(EnvironmentVariables=DOTNET_PreferredVectorBitWidth=512)",
              "FullName": "MirrorEmu.Bench.Hmm.WalkerBenchmarks.Scan",
              "Statistics": { "OriginalValues": [0.14, 0.13, 0.15], "N": 3, "Median": 0.14 },
              "Memory": { "BytesAllocatedPerOperation": 0 }
            },
            {
              "DisplayInfo": "PolicyBenchmarks.SinglePage: DefaultJob",
              "FullName": "MirrorEmu.Bench.Hmm.PolicyBenchmarks.SinglePage",
              "Statistics": null
            }
          ]
        }
        """;

    [Fact]
    public void ABdnExportGivesMediansSamplesAllocationAndAJobWhereANameRepeats()
    {
        IReadOnlyList<TimingFigure> t = BdnResults.Parse(BdnExport, "x-report-full.json");
        Assert.Equal(["MirrorEmu.Bench.Hmm.WalkerBenchmarks.Scan@Scalar", "MirrorEmu.Bench.Hmm.WalkerBenchmarks.Scan@Vector512", "MirrorEmu.Bench.Hmm.PolicyBenchmarks.SinglePage"], t.Select(x => x.Id));
        Assert.Equal(1.115, t[0].MedianNs);
        Assert.Equal(12, t[0].Samples.Count);
        Assert.NotNull(t[0].MValue);
        Assert.Null(t[1].MValue); // fewer than 12 samples: no modality
        Assert.Equal(0, t[0].BytesPerOp);
        Assert.NotNull(t[2].Error);
    }

    [Theory]
    [InlineData("{}", "Benchmarks is missing")]
    [InlineData("{\"Benchmarks\":[{\"Statistics\":{\"Median\":1}}]}", "Benchmarks[0].FullName is missing")]
    [InlineData("{\"Benchmarks\":[{\"FullName\":\"A\",\"Statistics\":{}}]}", "Benchmarks[0].Statistics.Median is missing")]
    [InlineData("{\"Benchmarks\":[{\"FullName\":\"A\",\"Statistics\":{\"Median\":\"fast\"}}]}", "Median is a String")]
    [InlineData("{\"Benchmarks\":[{\"FullName\":\"A\",\"Statistics\":{\"Median\":-1}}]}", "Median=-1 is not a time")]
    [InlineData("{\"Benchmarks\":", "not valid JSON")]
    public void AMalformedBdnExportIsNamedInOneLine(string json, string named)
    {
        var e = Assert.Throws<RegressionInputException>(() => BdnResults.Parse(json, "r-report-full.json"));
        Assert.Contains(named, e.Message);
        Assert.StartsWith("--bdn r-report-full.json: ", e.Message);
    }

    [Fact]
    public void AFolderWithoutExportsIsRefused()
    {
        string dir = Directory.CreateTempSubdirectory("mirroremu-bdn-").FullName;
        try
        {
            var e = Assert.Throws<RegressionInputException>(() => BdnResults.Load(dir, out _));
            Assert.Contains("holds no *-report-full.json", e.Message);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void AFolderGivesItsExportsAndTheHostTheRunnerRecorded()
    {
        string dir = Directory.CreateTempSubdirectory("mirroremu-bdn-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(dir, "A-report-full.json"), BdnExport);
            File.WriteAllText(Path.Combine(dir, BdnResults.HostFileName), System.Text.Json.JsonSerializer.Serialize(new RunHost { Machine = "m", Cores = 2, LoadAtStart = 3.5, LoadAtEnd = 4, Busy = true }, BdnResults.HostJson));
            IReadOnlyList<TimingFigure> t = BdnResults.Load(dir, out RunHost? host);
            Assert.Equal(3, t.Count);
            Assert.True(host!.Busy);
            Assert.Equal(3.5, host.LoadAtStart);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    /// <summary>A report as <c>compare --json</c> writes it (<see cref="CompareReport.ToJson"/>), three rows.</summary>
    private static string CompareJson() => new CompareReport
    {
        Tool = "mirroremu 0.1.0",
        Machine = new MachineReport { Cores = 2, Load = new LoadReport(0.4, 0.5, 0.6), LoadAtEnd = 0.7, Busy = false },
        Runs =
        [
            new RunReport { Policy = "regular", Workload = "seq", Pages = 65536, MeasuredNsPerPage = new Spread(180.5, 170.1, 190.2), Verified = true },
            new RunReport { Policy = ComparePolicy.UffdUnsupported.Name(), Workload = "seq", Pages = 65536, Error = "-EFAULT" },
            new RunReport { Policy = "uffd-batched", Workload = "seq", Pages = 65536, MeasuredNsPerPage = new Spread(210.0, 200.0, 230.0), Verified = true },
            new RunReport { Policy = "uffd-single", Workload = "seq", Pages = 65536, MeasuredNsPerPage = new Spread(2100.0, 2000.0, 2300.0), Verified = false },
        ],
    }.ToJson();

    [Fact]
    public void ACompareReportGivesOneTimingPerPolicyAndItsHost()
    {
        IReadOnlyList<TimingFigure> t = CompareResults.Parse(CompareJson(), "c.json", out RunHost host);
        Assert.Equal(["compare:regular@seq/65536", "compare:uffd-batched@seq/65536", "compare:uffd-single@seq/65536"], t.Select(x => x.Id));
        Assert.Equal((180.5, 170.1, 190.2), (t[0].MedianNs, t[0].P10Ns!.Value, t[0].P90Ns!.Value));
        Assert.Empty(t[1].Samples);
        Assert.Equal("the data was not verified", t[2].Error); // a wrong byte is a failure, not a time
        Assert.Equal((0.4, 0.7, false), (host.LoadAtStart!.Value, host.LoadAtEnd!.Value, host.Busy));
    }

    [Theory]
    [InlineData("\"schemaVersion\": 1", "\"schemaVersion\": 3", "schemaVersion 3 is not 1")]
    [InlineData("\"rounds\":", "\"roundz\":", "roundz")]
    [InlineData("\"pages\": 65536", "\"pages\": \"many\"", "--compare-json c.json: ")]
    public void ABadCompareReportIsNamed(string replace, string with, string named)
    {
        string json = CompareJson();
        Assert.Contains(replace, json);
        var e = Assert.Throws<RegressionInputException>(() => CompareResults.Parse(json.Replace(replace, with, StringComparison.Ordinal), "c.json", out _));
        Assert.Contains(named, e.Message);
        Assert.StartsWith("--compare-json c.json: ", e.Message);
    }
}
