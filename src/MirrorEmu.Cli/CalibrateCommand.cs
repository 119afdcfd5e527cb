using System.CommandLine;
using System.Globalization;
using MirrorEmu.Calibration;
using MirrorEmu.Telemetry;
using Spectre.Console;

namespace MirrorEmu.Cli;

/// <summary><c>mirroremu calibrate</c>: measures this machine's kernel, fits the cost model on populate and the 1-page
/// userfaultfd measurement, reports how well it predicts the held-out 8-, 64- and 512-page measurements, and saves the
/// calibration for <c>compare</c> (README "calibrate").</summary>
internal static class CalibrateCommand
{
    private static readonly CultureInfo s_inv = CultureInfo.InvariantCulture;

    /// <summary>The command.</summary>
    /// <param name="context">The streams, configuration folder, Ctrl-C token and userfaultfd probe.</param>
    public static Command Create(CliContext context)
    {
        var d = new KernelCalibrationOptions();
        var output = new Option<string?>("--output") { Description = $"Where to save the calibration (default: {CalibrationFile.DefaultPath("$XDG_CONFIG_HOME")}, ~/.config when XDG_CONFIG_HOME is unset)." };
        var rounds = CliOptions.Int("--rounds", "Rounds: every measurement once per round, in a rotating order.", d.Rounds, 1, 1000);
        var pages = CliOptions.Int("--pages", "Pages per measurement (a multiple of 512).", d.Pages, 512, 1 << 20, binarySuffixes: true);
        var noProgress = new Option<bool>("--no-progress") { Description = "Never show the progress bar." };
        var command = new Command("calibrate", "Measure this machine's kernel (populate, first touch, userfaultfd at 1/8/64/512 pages per event), fit the cost model, and save it for compare.")
        {
            output, rounds, pages, noProgress,
        };
        command.SetAction(r => Run(context, r.GetValue(output), r.GetValue(rounds), r.GetValue(pages), !r.GetValue(noProgress)));
        return command;
    }

    /// <summary>Measures (or says why not), prints, and saves.</summary>
    private static int Run(CliContext context, string? output, int rounds, int pages, bool progress)
    {
        if (pages % 512 != 0)
        {
            throw new CliUsageException($"--pages={pages} must be a multiple of 512 (the largest block measured)");
        }

        string path = output ?? CalibrationFile.DefaultPath(context.ConfigDirectory);
        // The default folder may not exist yet (Save creates it); a path the user named must be writable before the
        // minutes of measuring, not after.
        OutputFiles.Check("--output", output);

        var options = new KernelCalibrationOptions { Pages = pages, Rounds = rounds, Probe = context.UserfaultfdProbe };
        string? refused = null;
        CalibrationReport? report = CliConsole.WithProgress(context, progress, report =>
            KernelCalibration.Measure(options, (done, total) => report(done, total, $"measuring the kernel: {done}/{total}"), context.Cancellation, out refused));
        if (report is null)
        {
            context.Out.WriteLine($"mirroremu calibrate: userfaultfd is not permitted here ({refused}); nothing was measured or saved, and compare uses its built-in defaults");
            return 0;
        }

        Print(context, report);
        context.Cancellation.ThrowIfCancellationRequested();
        OutputFiles.Write(output is null ? "calibrate" : "--output", () => CalibrationFile.Save(report, path));
        context.Out.WriteLine($"saved {path}; 'mirroremu compare' now models with it and shows these kernel rows beside its own");
        return 0;
    }

    /// <summary>Prints the measurements, the fitted model and the held-out checks.</summary>
    private static void Print(CliContext context, CalibrationReport report)
    {
        TextWriter o = context.Out;
        MachineReport m = report.Machine;
        o.WriteLine($"mirroremu calibrate: kernel {m.KernelVersion} ({m.Isa}), {CliApp.Count(report.Rounds, "round")} of {report.Pages.ToString("N0", s_inv)} fresh pages per measurement, load {m.Load.OneMinute?.ToString("F2", s_inv) ?? "unknown"} on {m.Cores} cores ({m.FreeCores.ToString("F1", s_inv)} free)");
        if (m.Busy)
        {
            o.WriteLine("warning: the machine was busy: the userfaultfd hand-off (a faulting thread and a monitor thread) shares the cores with other work, and its figures are not this kernel's own");
        }

        IAnsiConsole console = CliConsole.Results(context);
        o.WriteLine("measured, ns per page over the rounds:");
        var measured = new Table().Border(TableBorder.Rounded);
        foreach (string h in new[] { "mechanism", "pages/event", "median", "p10–p90" })
        {
            measured.AddColumn(new TableColumn(h).RightAligned().NoWrap());
        }

        foreach (CalibrationMeasurement x in report.Measurements)
        {
            measured.AddRow(x.Mechanism, x.PagesPerEvent.ToString("N0", s_inv), x.NsPerPage.Median.ToString("N0", s_inv), $"{x.NsPerPage.P10.ToString("N0", s_inv)}–{x.NsPerPage.P90.ToString("N0", s_inv)}");
        }

        console.Write(measured);
        CalibrationModel f = report.Model;
        o.WriteLine($"model, fitted on populate and the 1-page userfaultfd measurement only: populate {f.Populate.PerEventNs.ToString("F0", s_inv)} ns/call + {f.Populate.PerPageNs.ToString("F0", s_inv)} ns/page; first touch {f.FirstTouch.PerEventNs.ToString("F0", s_inv)} ns/fault + {f.FirstTouch.PerPageNs.ToString("F0", s_inv)} ns/page; userfaultfd {f.UffdRoundTripNs.ToString("F0", s_inv)} ns/round trip + {f.UffdCopyPerPageNs.ToString("F0", s_inv)} ns/page copied (UFFDIO_COPY taken to cost populate's per-page work)");
        o.WriteLine($"held out: the model's predictions of userfaultfd at 8, 64 and 512 pages per event, which it was not fitted on (goal ±{CalibrationReport.GoalPercent.ToString("F0", s_inv)} %):");
        var heldOut = new Table().Border(TableBorder.Rounded);
        foreach (string h in new[] { "pages/event", "measured ns/page", "predicted ns/page", "error", "within goal" })
        {
            heldOut.AddColumn(new TableColumn(h).RightAligned().NoWrap());
        }

        foreach (HeldOutCheck h in report.HeldOut)
        {
            heldOut.AddRow(h.PagesPerEvent.ToString("N0", s_inv), h.MeasuredNsPerPage.ToString("N0", s_inv), h.PredictedNsPerPage.ToString("N0", s_inv), h.ErrorPercent.ToString("+0.0;-0.0", s_inv) + " %", h.WithinGoal ? "yes" : "[red]no[/]");
        }

        console.Write(heldOut);
        int missed = report.HeldOut.Count(h => !h.WithinGoal);
        o.WriteLine(missed == 0
            ? "the model predicts every held-out measurement within the goal"
            : $"the model misses the goal at {missed} of {report.HeldOut.Count} held-out sizes: a per-event plus per-page cost does not explain this kernel's userfaultfd there{(m.Busy ? " (or the load did)" : string.Empty)}");
    }
}
