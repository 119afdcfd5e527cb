using System.Text.Json;
using MirrorEmu.Cli;
using MirrorEmu.Tests.Helpers;
using static MirrorEmu.Tests.Helpers.CliRunner;

namespace MirrorEmu.Tests.Cli;

/// <summary>The mirroremu command: real output, and bad input as one line on stderr with exit code 2, no stack trace and no
/// output file.</summary>
public class CliTests
{
    [Fact]
    public void InfoPrintsTheSimdWidthsAndTheCpuAccelerator()
    {
        (int code, string output, _) = Run("info");
        Assert.Equal(0, code);
        Assert.Contains("Vector128:", output);
        Assert.Contains("Vector512:", output);
        Assert.Contains($"cores:        {Environment.ProcessorCount}", output);
        Assert.Contains("CPU", output);
    }

    [Fact]
    public void DevicesListsTheCpuAcceleratorTheLaunchersAndTheSimdWidths()
    {
        (int code, string output, string err) = Run("devices");
        Assert.True(code == 0, err);
        Assert.Contains("CPU", output);
        Assert.Contains("warp size", output);
        Assert.Contains("frames in place", output);
        Assert.Matches(@"direct\s+yes", output);
        Assert.Matches(@"cpu\s+yes", output);
        Assert.Matches(@"opencl\s+(yes|no)", output);
        Assert.Contains("Vector512", output);
    }

    [Fact]
    public void CompareRunsEveryPolicyThroughTheDeviceAndVerifiesTheData()
    {
        (int code, string output, string err) = Run("compare", "--pages", "1024", "--monitor-batch", "32", "--repeat", "2");
        Assert.True(code == 0, err + output);
        foreach (string row in new[] { "regular", "uffd-unsupported", "uffd-single", "uffd-batched", "uffd-range" })
        {
            Assert.Contains(row, output);
        }

        Assert.Contains("a device kernel", output);
        Assert.Contains("-EFAULT", output);
        Assert.Contains("verified", output);
        Assert.Contains("modeled", output);
        Assert.Contains("built-in defaults", output);
        Assert.Matches(@"load [\d.]+ [\d.]+ [\d.]+ on \d+ cores \([\d.]+ free\)|load unknown", output);
        Assert.DoesNotContain("WRONG", output);
        Assert.Equal(string.Empty, err);
    }

    [Fact]
    public void TheUnsupportedRowShowsItsErrorAndNoTime()
    {
        (int code, string output, _) = Run("compare", "--pages", "256", "--policies", "uffd-unsupported", "--repeat", "1");
        Assert.Equal(0, code);
        string row = output.Split('\n').Single(l => l.Contains("│ uffd-unsupported │", StringComparison.Ordinal));
        string[] cells = row.Split('│', StringSplitOptions.TrimEntries);
        Assert.Equal("-EFAULT", cells[^2]);
        Assert.Equal("-", cells[Array.IndexOf(HeaderCells(output), "ns/page (measured)")]);
    }

    [Fact]
    public void TheHmmLevelKeepsTheDriverLoopTable()
    {
        (int code, string output, string err) = Run("compare", "--level", "hmm", "--pages", "512", "--repeat", "1");
        Assert.True(code == 0, err);
        Assert.Contains("--level hmm", output);
        Assert.Contains("lock drops", output);
        Assert.DoesNotContain("device faults", output);
        Assert.Contains("verified", output);
    }

    [Fact]
    public void ATableOfAMillionPagesNeverWrapsACell()
    {
        // The header line and every row are single lines of the same width (a wrapped cell would add lines).
        (int code, string output, string err) = Run("compare", "--level", "hmm", "--pages", "1M", "--policies", "uffd-range", "--repeat", "1");
        Assert.True(code == 0, err);
        string[] lines = output.Split('\n').Where(l => l.StartsWith('│')).ToArray();
        Assert.Equal(3, lines.Length); // header, regular, uffd-range
        Assert.Single(lines.Select(l => l.TrimEnd().Length).Distinct());
        Assert.Contains("1,048,576", output);
    }

    [Fact]
    public void JsonToStandardOutputIsTheReportAlone()
    {
        (int code, string output, _) = Run("compare", "--pages", "512", "--policies", "uffd-single,uffd-batched", "--json", "-", "--repeat", "1");
        Assert.Equal(0, code);
        using var doc = JsonDocument.Parse(output);
        JsonElement runs = doc.RootElement.GetProperty("runs");
        Assert.Equal(3, runs.GetArrayLength());
        Assert.Equal("uffd-single", runs[1].GetProperty("policy").GetString());
        Assert.Equal(512, runs[1].GetProperty("roundTrips").GetInt64()); // uffd-single: one per page
        Assert.Equal(512, runs[1].GetProperty("ebusyRestarts").GetInt64());
        Assert.Equal(8, runs[2].GetProperty("roundTrips").GetInt64());   // uffd-batched(64): one per block
    }

    [Fact]
    public void TheExitCodeFollowsTheVerificationInJsonModeToo()
    {
        // A report is as expected only when uffd-unsupported ends with -EFAULT and every other run verified; the exit code
        // is that, whatever the output mode.
        string dir = EmptyConfigDirectory();
        string json = Path.Combine(dir, "r.json");
        (int code, _, _) = Run("compare", "--pages", "256", "--repeat", "1", "--json", json);
        Assert.Equal(0, code);
        var report = MirrorEmu.Workloads.CompareReport.FromJson(File.ReadAllText(json));
        Assert.True(report.AsExpected);
        var broken = report with { Runs = [.. report.Runs.Select(r => r.Policy == "uffd-batched" ? r with { Verified = false } : r)] };
        Assert.False(broken.AsExpected, "a run that was not verified must fail the report");
    }

    [Theory]
    [InlineData(new[] { "compare", "--pages", "0" }, "--pages: '0' is not a whole number from 1 to 4194303")]
    [InlineData(new[] { "compare", "--pages", "2^40" }, "--pages: '2^40' is not a whole number")]
    [InlineData(new[] { "compare", "--pages", "1099511627776" }, "--pages: '1099511627776' is not a whole number")]
    [InlineData(new[] { "compare", "--pages", "abc" }, "--pages: 'abc'")]
    [InlineData(new[] { "compare", "--monitor-batch", "3" }, "--monitor-batch=3 must be a power of two")]
    [InlineData(new[] { "compare", "--policies", "bogus" }, "--policies: 'bogus' is not one of regular, uffd-unsupported, uffd-single, uffd-batched, uffd-range")]
    [InlineData(new[] { "compare", "--workload", "zipf" }, "--workload: 'zipf': zipf needs a number")]
    [InlineData(new[] { "compare", "--workload", "sparse:2" }, "--workload: 'sparse:2': P must be more than 0 and at most 1")]
    [InlineData(new[] { "compare", "--workload", "wavy" }, "--workload: 'wavy' is not one of seq, random")]
    [InlineData(new[] { "compare", "--workload", "sparse:0.000001", "--pages", "64" }, "--workload sparse:0.000001 touches no page")]
    [InlineData(new[] { "compare", "--workload", "sparse:0.0000001", "--pages", "64" }, "--workload sparse:0.0000001 touches no page")] // as given, not rounded to "sparse:0"
    [InlineData(new[] { "compare", "--workload", "zipf:11" }, "--workload: 'zipf:11': S must be between 0 and 10")]
    [InlineData(new[] { "compare", "--launcher", "tpu" }, "--launcher: 'tpu' is not one of direct, cpu, cuda, opencl, auto")]
    [InlineData(new[] { "compare", "--replay", "sometimes" }, "--replay: 'sometimes' is not one of once, batch-flush, batch, block")]
    [InlineData(new[] { "compare", "--fault-batch", "0" }, "--fault-batch: '0'")]
    [InlineData(new[] { "compare", "--repeat", "0" }, "--repeat: '0'")]
    [InlineData(new[] { "compare", "--fill-byte", "256" }, "--fill-byte: '256'")]
    [InlineData(new[] { "compare", "--sweep", "1k-1M" }, "--sweep: '1k-1M' is not A..B")]
    [InlineData(new[] { "compare", "--sweep", "3..64" }, "--sweep: '3..64' must run from a power of two")]
    [InlineData(new[] { "compare", "--sweep", "1k..1M", "--pages", "4096" }, "--pages and --sweep cannot be used together")]
    [InlineData(new[] { "compare", "--level", "hmm", "--launcher", "cpu" }, "--launcher applies to --level device only")]
    [InlineData(new[] { "compare", "--chart", "out.gif" }, "--chart: 'out.gif' must end in .png or .svg")]
    [InlineData(new[] { "compare", "--json", "/nonexistent-dir/r.json" }, "--json: the folder of '/nonexistent-dir/r.json' does not exist")]
    [InlineData(new[] { "compare", "--calibration", "/nonexistent-dir/c.json" }, "--calibration: /nonexistent-dir/c.json does not exist")]
    [InlineData(new[] { "compare", "--bogus" }, "'compare' has no option or argument '--bogus'; see 'mirroremu compare --help'")]
    [InlineData(new[] { "frobnicate" }, "unknown command 'frobnicate' (commands: compare, calibrate, run, devices, info, footprint, regress); see 'mirroremu --help'")]
    [InlineData(new string[0], "name a command (compare, calibrate, run, devices, info, footprint, regress); see 'mirroremu --help'")]
    [InlineData(new[] { "calibrate", "--pages", "1000" }, "--pages=1000 must be a multiple of 512")]
    [InlineData(new[] { "footprint", "--touched-pages", "5" }, "--touched-pages=5 must be a positive multiple of 512 that fits the mapping")]
    public void BadInputIsOneLineOnStderrAndExitCodeTwo(string[] args, string message)
    {
        (int code, string output, string err) = Run(args);
        Assert.Equal(CliApp.UsageError, code);
        string line = Assert.Single(err.TrimEnd().Split('\n'));
        Assert.StartsWith("mirroremu: " + message, line, StringComparison.Ordinal);
        Assert.DoesNotContain(";", line.Replace("; see", string.Empty, StringComparison.Ordinal)); // one message, not several joined
        Assert.DoesNotContain("   at ", err);
        Assert.DoesNotContain("System.", err);
        Assert.Equal(string.Empty, output);
    }

    [Fact]
    public void BadInputLeavesNoOutputFile()
    {
        string dir = EmptyConfigDirectory();
        string json = Path.Combine(dir, "r.json");
        string chart = Path.Combine(dir, "c.png");
        (int code, _, _) = Run("compare", "--pages", "0", "--json", json, "--chart", chart);
        Assert.Equal(CliApp.UsageError, code);
        Assert.Empty(Directory.EnumerateFileSystemEntries(dir));
    }

    [Fact]
    public void AMalformedCalibrationFileIsBadInputNamingItsLine()
    {
        string dir = EmptyConfigDirectory();
        string file = Path.Combine(dir, "mirroremu", "calibration.json");
        Directory.CreateDirectory(Path.GetDirectoryName(file)!);
        File.WriteAllText(file, "{\n  \"schemaVersion\": 1,\n  \"bogus\": 2\n}\n");
        (int code, _, string err) = Run(["compare", "--pages", "64", "--repeat", "1"], c => c with { ConfigDirectory = dir });
        Assert.Equal(CliApp.UsageError, code);
        Assert.StartsWith($"mirroremu: calibration {file}:3: not a calibration file", err, StringComparison.Ordinal);
    }

    [Fact]
    public void HelpNamesTheToolAsUsersTypeIt()
    {
        (int code, string output, _) = Run("compare", "--help");
        Assert.Equal(0, code);
        Assert.Contains("mirroremu compare [options]", output);
        Assert.DoesNotContain("MirrorEmu.Cli", output);
        foreach (string option in new[] { "--pages", "--workload", "--policies", "--launcher", "--monitor-batch", "--fault-batch", "--replay", "--seed", "--fill-byte", "--repeat", "--sweep", "--json", "--chart", "--no-progress", "--level", "--calibration" })
        {
            Assert.Contains(option, output);
        }
    }

    [Fact]
    public void HelpGivesZipfItsWholeRange()
    {
        // The parser caps S at 10; the help once said only S ≥ 0.
        (int code, string output, _) = Run("compare", "--help");
        Assert.Equal(0, code);
        Assert.Contains("zipf:S (S from 0 to 10)", output);
    }

    [Fact]
    public void OneRoundIsOneRoundInTheTable()
    {
        (int code, string output, string err) = Run("compare", "--pages", "256", "--repeat", "1");
        Assert.True(code == 0, err);
        Assert.Contains("over 1 round after a warm-up", output);
    }

    [Fact]
    public void VersionPrintsTheVersion()
    {
        (int code, string output, _) = Run("--version");
        Assert.Equal(0, code);
        Assert.Equal(CliApp.Version, output.Trim());
    }

    [Fact]
    public void NoProgressReachesAnOutputThatIsNotATerminal()
    {
        // Both writers are pipes here: nothing but the results on stdout, nothing at all on stderr.
        (int code, string output, string err) = Run("compare", "--pages", "256", "--repeat", "1");
        Assert.Equal(0, code);
        Assert.StartsWith("mirroremu compare:", output, StringComparison.Ordinal);
        Assert.DoesNotContain("warming up", output);
        Assert.DoesNotContain("round 1", output);
        Assert.Equal(string.Empty, err);
    }

    [Fact]
    public void CountsAcceptBinarySuffixesAndHex()
    {
        Assert.True(CliOptions.TryParseCount("64k", binarySuffixes: true, out long a) && a == 65_536);
        Assert.True(CliOptions.TryParseCount("1M", binarySuffixes: true, out long b) && b == 1_048_576);
        Assert.True(CliOptions.TryParseCount("0x5A", binarySuffixes: false, out long c) && c == 0x5A);
        Assert.True(CliOptions.TryParseCount("65,536", binarySuffixes: false, out long d) && d == 65_536);
        Assert.False(CliOptions.TryParseCount("64k", binarySuffixes: false, out _));
        Assert.False(CliOptions.TryParseCount("-1", binarySuffixes: true, out _));
        Assert.Equal([1024, 2048, 4096], CompareCommand.ParseSweep("1k..4k"));
    }

    private static string[] HeaderCells(string output) =>
        output.Split('\n').First(l => l.Contains("│", StringComparison.Ordinal) && l.Contains("policy", StringComparison.Ordinal)).Split('│', StringSplitOptions.TrimEntries);
}
