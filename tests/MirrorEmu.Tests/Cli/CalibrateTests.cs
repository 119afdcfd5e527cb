using System.Text.Json;
using MirrorEmu.Calibration;
using MirrorEmu.Cli;
using MirrorEmu.Telemetry;
using static MirrorEmu.Tests.Helpers.CliRunner;

namespace MirrorEmu.Tests.Cli;

/// <summary>calibrate: skips cleanly (one line, exit 0, nothing saved) where userfaultfd is refused; where it is permitted,
/// measures, fits on populate and the 1-page measurement only, reports the held-out errors, saves a calibration that
/// compare then models with and shows beside its own rows.</summary>
public class CalibrateTests
{
    [Fact]
    public void WhereUserfaultfdIsRefusedCalibrateSaysSoInOneLineAndExitsZero()
    {
        string dir = EmptyConfigDirectory();
        (int code, string output, string err) = Run(
            ["calibrate", "--rounds", "1", "--pages", "512"],
            c => c with { ConfigDirectory = dir, UserfaultfdProbe = () => "userfaultfd(2) failed: errno 1 (EPERM: vm.unprivileged_userfaultfd=0, simulated)" });
        Assert.Equal(0, code);
        string line = Assert.Single(output.TrimEnd().Split('\n'));
        Assert.Equal("mirroremu calibrate: userfaultfd is not permitted here (userfaultfd(2) failed: errno 1 (EPERM: vm.unprivileged_userfaultfd=0, simulated)); nothing was measured or saved, and compare uses its built-in defaults", line);
        Assert.Equal(string.Empty, err);
        Assert.Empty(Directory.EnumerateFileSystemEntries(dir)); // nothing saved

        // compare still runs, with the defaults.
        (code, output, _) = Run(["compare", "--pages", "128", "--repeat", "1"], c => c with { ConfigDirectory = dir });
        Assert.Equal(0, code);
        Assert.Contains("built-in defaults", output);
    }

    [Fact]
    public void CalibrateMeasuresFitsSavesAndCompareModelsWithIt()
    {
        Assert.SkipUnless(KernelCalibration.WhyUnavailable() is null, $"the host's userfaultfd cannot be measured here: {KernelCalibration.WhyUnavailable()}");
        string dir = EmptyConfigDirectory();
        (int code, string output, string err) = Run(["calibrate", "--rounds", "3", "--pages", "512"], c => c with { ConfigDirectory = dir });
        Assert.True(code == 0, err);
        string file = CalibrationFile.DefaultPath(dir);
        Assert.Contains($"saved {file}", output);
        Assert.Contains("held out", output);
        Assert.True(CalibrationFile.TryLoad(file, out CalibrationReport? report, out string? error), error);
        Assert.Equal(7, report!.Measurements.Count);
        Assert.Equal([8, 64, 512], report.HeldOut.Select(h => h.PagesPerEvent));
        Assert.All(report.Measurements, m => Assert.True(m.NsPerPage.Median > 0 && m.NsPerPage.P10 <= m.NsPerPage.Median && m.NsPerPage.Median <= m.NsPerPage.P90, $"{m.Mechanism}@{m.PagesPerEvent}: {m.NsPerPage}"));
        Assert.Equal(report.Find(KernelCalibration.Userfaultfd, 1)!.NsPerPage.Median, report.Model.UffdRoundTripNs + report.Model.UffdCopyPerPageNs, 0.2);

        (code, output, err) = Run(["compare", "--pages", "256", "--repeat", "1", "--json", "-"], c => c with { ConfigDirectory = dir });
        Assert.True(code == 0, err);
        using var doc = JsonDocument.Parse(output);
        Assert.Equal("calibration", doc.RootElement.GetProperty("model").GetProperty("source").GetString());
        Assert.Equal(file, doc.RootElement.GetProperty("model").GetProperty("file").GetString());
        Assert.Equal(["populate", "userfaultfd", "userfaultfd"], doc.RootElement.GetProperty("kernel").EnumerateArray().Select(k => k.GetProperty("mechanism").GetString()));
        Assert.Equal([512, 1, 64], doc.RootElement.GetProperty("kernel").EnumerateArray().Select(k => k.GetProperty("pagesPerEvent").GetInt32()));
    }

    [Fact]
    public void TheFitUsesOnlyPopulateAndTheOnePageMeasurementAndChecksTheRest()
    {
        // A kernel that is exactly per event + per page: populate 1,000 ns/call + 300 ns/page, a round trip 8,000 ns, a
        // copy 300 ns/page; the held-out sizes are then predicted exactly, whatever they measured being nonsense would show.
        static CalibrationMeasurement M(string mech, int k, double ns) => new(mech, k, new Spread(ns, ns, ns), 1);
        CalibrationMeasurement[] exact =
        [
            M(KernelCalibration.Populate, 1, 1_300), M(KernelCalibration.Populate, 512, 300 + (1_000 / 512.0)),
            M(KernelCalibration.FirstTouch, 1, 700),
            M(KernelCalibration.Userfaultfd, 1, 8_300), M(KernelCalibration.Userfaultfd, 8, 1_300), M(KernelCalibration.Userfaultfd, 64, 425), M(KernelCalibration.Userfaultfd, 512, 315.625),
        ];
        CalibrationReport r = KernelCalibration.Fit(512, 1, exact, new MachineReport(), DateTimeOffset.UnixEpoch);
        Assert.Equal(1_000, r.Model.Populate.PerEventNs, 0.5);
        Assert.Equal(300, r.Model.Populate.PerPageNs, 0.5);
        Assert.Equal(8_000, r.Model.UffdRoundTripNs, 0.5);
        Assert.Equal(400, r.Model.FirstTouch.PerEventNs, 0.5);
        Assert.All(r.HeldOut, h => Assert.True(Math.Abs(h.ErrorPercent) < 0.1 && h.WithinGoal, $"{h.PagesPerEvent}: {h.ErrorPercent} %"));

        // The held-out measurements do not move the model: change them and only the errors change.
        CalibrationMeasurement[] off = [.. exact.Select(m => m.Mechanism == KernelCalibration.Userfaultfd && m.PagesPerEvent > 1 ? m with { NsPerPage = new Spread(2_000, 2_000, 2_000) } : m)];
        CalibrationReport r2 = KernelCalibration.Fit(512, 1, off, new MachineReport(), DateTimeOffset.UnixEpoch);
        Assert.Equal(r.Model, r2.Model);
        Assert.Equal(-35.0, r2.HeldOut[0].ErrorPercent, 0.1); // 1,300 predicted against 2,000 measured
        Assert.False(r2.HeldOut[0].WithinGoal);
    }

    [Fact]
    public void CalibrateRefusesAnOutputInAFolderThatDoesNotExist()
    {
        (int code, _, string err) = Run("calibrate", "--output", "/nonexistent-dir/c.json");
        Assert.Equal(CliApp.UsageError, code);
        Assert.Equal("mirroremu: --output: the folder of '/nonexistent-dir/c.json' does not exist", err.TrimEnd());
    }
}
