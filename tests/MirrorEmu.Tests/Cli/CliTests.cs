using MirrorEmu.Cli;

namespace MirrorEmu.Tests.Cli;

/// <summary>The mirroremu command: real output, and bad input as one line on stderr with exit code 2.</summary>
public class CliTests
{
    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = CliApp.Run(args, o, e);
        return (code, o.ToString(), e.ToString());
    }

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
    public void CompareRunsEveryPolicyAndVerifiesTheData()
    {
        (int code, string output, string err) = Run("compare", "--pages", "1024", "--monitor-batch", "32");
        Assert.True(code == 0, err);
        foreach (string row in new[] { "regular", "Unsupported", "SinglePage", "Batched", "RangeEvent" })
        {
            Assert.Contains(row, output);
        }

        Assert.Contains("-EFAULT", output);
        Assert.Contains("verified", output);
        Assert.DoesNotContain("WRONG", output);
    }

    [Fact]
    public void CompareJsonCarriesTheCounters()
    {
        (int code, string output, _) = Run("compare", "--pages", "512", "--policies", "singlepage,batched", "--json");
        Assert.Equal(0, code);
        using var doc = System.Text.Json.JsonDocument.Parse(output);
        var rows = doc.RootElement.GetProperty("Rows").EnumerateArray().ToArray();
        Assert.Equal(3, rows.Length);
        Assert.Equal(512, rows[1].GetProperty("RoundTrips").GetInt64()); // SinglePage: one per page
        Assert.Equal(512, rows[1].GetProperty("EbusyRestarts").GetInt64());
        Assert.Equal(8, rows[2].GetProperty("RoundTrips").GetInt64());   // Batched(64): one per block
    }

    [Theory]
    [InlineData("--pages", "0", "--pages=0")]
    [InlineData("--monitor-batch", "3", "--monitor-batch=3")]
    [InlineData("--policies", "bogus", "'bogus'")]
    [InlineData("--pages", "abc", "abc")]
    public void BadCompareValuesAreOneLineAndExitCodeTwo(string option, string value, string named)
    {
        (int code, string output, string err) = Run("compare", option, value);
        Assert.Equal(CliApp.UsageError, code);
        Assert.Contains(named, err);
        Assert.Single(err.TrimEnd().Split('\n'));
        Assert.DoesNotContain("   at ", err);
        Assert.Equal(string.Empty, output);
    }

    [Fact]
    public void UnknownCommandIsAUsageError()
    {
        (int code, _, string err) = Run("frobnicate");
        Assert.Equal(CliApp.UsageError, code);
        Assert.StartsWith("mirroremu: ", err);
    }

    [Fact]
    public void VersionPrintsTheVersion()
    {
        (int code, string output, _) = Run("--version");
        Assert.Equal(0, code);
        Assert.Equal(CliApp.Version, output.Trim());
    }
}
