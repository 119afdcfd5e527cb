using MirrorEmu.Regression;

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

    private const string CompareReport = """
        {
          "schemaVersion": 1,
          "tool": "mirroremu 0.1.0",
          "machine": { "cores": 2, "isa": "X64 AVX-512", "load": { "oneMinute": 0.4, "fiveMinutes": 0.5, "fifteenMinutes": 0.6 }, "freeCores": 1.6, "loadAtEnd": 0.7, "busy": false },
          "runs": [
            { "policy": "regular", "workload": "seq", "pages": 65536, "roundTrips": 0, "measuredNsPerPage": { "median": 180.5, "p10": 170.1, "p90": 190.2 }, "verified": true, "error": null },
            { "policy": "uffd-unsupported", "workload": "seq", "pages": 65536, "measuredNsPerPage": null, "verified": false, "error": "-EFAULT" },
            { "policy": "uffd-batched", "workload": "seq", "pages": 65536, "measuredNsPerPage": { "median": 210.0, "p10": 200.0, "p90": 230.0 }, "verified": true, "error": null }
          ]
        }
        """;

    [Fact]
    public void ACompareReportGivesOneTimingPerPolicyAndItsHost()
    {
        IReadOnlyList<TimingFigure> t = CompareResults.Parse(CompareReport, "c.json", out RunHost host);
        Assert.Equal(["compare:regular@seq/65536", "compare:uffd-unsupported@seq/65536", "compare:uffd-batched@seq/65536"], t.Select(x => x.Id));
        Assert.Equal((180.5, 170.1, 190.2), (t[0].MedianNs, t[0].P10Ns!.Value, t[0].P90Ns!.Value));
        Assert.Equal("-EFAULT", t[1].Error);
        Assert.Empty(t[2].Samples);
        Assert.Equal((0.4, 0.7, false), (host.LoadAtStart!.Value, host.LoadAtEnd!.Value, host.Busy));
    }

    [Theory]
    [InlineData("\"schemaVersion\": 1", "\"schemaVersion\": 3", "schemaVersion 3 is not the 1")]
    [InlineData("\"policy\": \"regular\", ", "", "runs[0].policy is missing")]
    [InlineData("\"median\": 210.0", "\"median\": -5", "runs[2].measuredNsPerPage.median=-5")]
    public void ABadCompareReportIsNamed(string replace, string with, string named)
    {
        var e = Assert.Throws<RegressionInputException>(() => CompareResults.Parse(CompareReport.Replace(replace, with, StringComparison.Ordinal), "c.json", out _));
        Assert.Contains(named, e.Message);
    }
}
