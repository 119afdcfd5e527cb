using MirrorEmu.Cli;
using MirrorEmu.Workloads;
using static MirrorEmu.Tests.Helpers.CliRunner;

namespace MirrorEmu.Tests.Cli;

/// <summary><c>mirroremu footprint</c>: its --mapping-gib range is what the emulated address space maps, and a result over
/// the bytes-per-page budget says so.</summary>
public class FootprintCliTests
{
    [Fact]
    public void TheLargestMappingTheOptionAcceptsIsOneMmapAccepts()
    {
        // 131,072 GiB was once in range and then failed with -ENOMEM ("larger than the user address space").
        int max = FootprintProbe.MaxMappingGib;
        Assert.True(FootprintProbe.CheckMapping((ulong)max << 30).IsOk);
        Assert.False(FootprintProbe.CheckMapping((ulong)(max + 1) << 30).IsOk);

        (int code, string output, string err) = Run("footprint", "--mapping-gib", (max + 1).ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(CliApp.UsageError, code);
        Assert.Equal($"mirroremu: --mapping-gib: '{max + 1}' is not a whole number from 1 to {max}", err.TrimEnd());
        Assert.Equal(string.Empty, output);

        (int help, string text, _) = Run("footprint", "--help");
        Assert.Equal(0, help);
        Assert.Contains($"Size of the mapping in GiB (1 to {max}).", text);
    }

    [Fact]
    public void AResultOverTheBudgetSaysSo()
    {
        // One cluster in a GiB pays for whole page-table pages: about 168 bytes per touched page against a budget of 16.
        (int code, string output, string err) = Run("footprint", "--mapping-gib", "1", "--touched-pages", "512");
        Assert.True(code == 0, err); // the exit code does not change: the figure is a measurement, not a check
        string line = Assert.Single(output.Split('\n'), l => l.StartsWith("bytes per page:", StringComparison.Ordinal));
        Assert.EndsWith("budget 16: over budget)", line.TrimEnd());
    }
}
