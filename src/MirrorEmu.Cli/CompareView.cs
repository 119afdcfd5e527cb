using System.Globalization;
using MirrorEmu.Calibration;
using MirrorEmu.Telemetry;
using MirrorEmu.Workloads;
using Spectre.Console;

namespace MirrorEmu.Cli;

/// <summary>What <c>mirroremu compare</c> prints: a header naming what runs and the machine's load, the table (one row per
/// policy, or per size and policy for a sweep), the real kernel's rows when a calibration exists, and footnotes saying
/// what is measured and what is modeled.</summary>
internal sealed class CompareView(CliContext context, ComparisonOptions options, CostModel model, CalibrationReport? calibration)
{
    private static readonly CultureInfo s_inv = CultureInfo.InvariantCulture;
    private readonly IAnsiConsole _console = CliConsole.Results(context);

    /// <summary>The lines before the run.</summary>
    /// <param name="accelerator">The launcher's description, or null at the hmm level.</param>
    /// <param name="load">The load now.</param>
    /// <param name="sizes">A sweep's sizes, or null.</param>
    public void Header(string? accelerator, HostLoad load, IReadOnlyList<int>? sizes)
    {
        TextWriter o = context.Out;
        string range = sizes is null
            ? $"{options.Pages.ToString("N0", s_inv)} fresh pages ({Size(options.Pages)})"
            : $"fresh ranges of {sizes[0].ToString("N0", s_inv)} to {sizes[^1].ToString("N0", s_inv)} pages (powers of two)";
        if (options.Level == CompareLevel.Device)
        {
            o.WriteLine($"mirroremu compare: a device kernel (an atomic add per work item: a read and a write) faults {range}, workload {options.Workload}, seed {options.Seed}");
            o.WriteLine($"device: {accelerator}; fault batches of {options.FaultBatch}, replay {ReplayPolicies.Name(options.Replay)}; monitor: a page (uffd-single), {options.MonitorBatch}-page blocks (uffd-batched), the whole run (uffd-range); fill byte 0x{options.FillByte:X2}");
        }
        else
        {
            o.WriteLine($"mirroremu compare --level hmm: the driver loop (read_begin → hmm_range_fault → driver lock → read_retry) faults {range} writable, no device");
            o.WriteLine($"monitor: a page (uffd-single), {options.MonitorBatch}-page blocks (uffd-batched), the whole run (uffd-range); fill byte 0x{options.FillByte:X2}");
        }

        o.WriteLine($"host: {MachineInfo.Isa}, kernel {MachineInfo.KernelVersion}, {load.Describe()}");
        if (load.IsBusy)
        {
            o.WriteLine(BusyWarning(load));
        }

        o.Flush();
    }

    /// <summary>The tables and footnotes after the run.</summary>
    /// <param name="results">One result, or one per size of a sweep.</param>
    /// <param name="report">The report built from them.</param>
    /// <param name="loadAtStart">The load the header printed.</param>
    public void Results(IReadOnlyList<CompareResult> results, CompareReport report, HostLoad loadAtStart)
    {
        bool sweep = results.Count > 1;
        var table = new Table().Border(TableBorder.Rounded);
        var columns = Columns(sweep);
        foreach ((string header, _) in columns)
        {
            table.AddColumn(new TableColumn(header).RightAligned().NoWrap());
        }

        int at = 0;
        foreach (CompareResult r in results)
        {
            foreach (PolicyResult row in r.Rows)
            {
                RunReport run = report.Runs[at++];
                table.AddRow(columns.Select(c => c.Cell(new Line(r, row, run))).ToArray());
            }
        }

        _console.Write(table);
        TextWriter o = context.Out;
        if (calibration is not null && report.Kernel.Count > 0)
        {
            KernelTable(report);
        }

        CompareResult last = results[^1];
        o.WriteLine($"measured: a Stopwatch around each {(options.Level == CompareLevel.Device ? "launch" : "driver loop")}, per touched page; median and p10–p90 over {Rounds(results)} after a warm-up, the policies interleaved in each round; vs regular: the median of per-round ratios. Wall time {report.WallSeconds.ToString("F1", s_inv)} s.");
        o.WriteLine($"modeled: the kernel cost model applied to each row's counters, {(model.IsDefaults ? "built-in defaults (the development machine's; run 'mirroremu calibrate' for this one's)" : model.Source)}: {model.Describe()}");
        foreach (PolicyResult row in last.Rows)
        {
            if (row.ErrorMessage is not null)
            {
                o.WriteLine($"{row.Policy.Name()}: {row.ErrorMessage}{(row.AsExpected ? " (expected: without FAULT_FLAG_ALLOW_RETRY handle_userfault answers VM_FAULT_SIGBUS)" : string.Empty)}");
            }

            if (row.VerifyFailure is not null)
            {
                o.WriteLine($"{row.Policy.Name()}: WRONG DATA: {row.VerifyFailure}");
            }

            if (!row.CountersStable)
            {
                o.WriteLine($"{row.Policy.Name()}: warning: the counters differed between rounds; the table shows the first round's");
            }
        }

        if (report.Sweep is { } s)
        {
            o.WriteLine("log-log slope of total time against pages (1.00: the time per page stays the same; goal 0.9–1.1): "
                + string.Join(", ", s.Slopes.Select(x => $"{x.Policy} {x.Slope.ToString("F2", s_inv)}{(x.WithinGoal ? string.Empty : " (outside the goal)")}")));
        }

        HostLoad end = last.LoadAtEnd;
        if (end.IsBusy && !loadAtStart.IsBusy)
        {
            o.WriteLine(BusyWarning(end));
        }
    }

    /// <summary>The rounds measured: "12", or "3–99" across a sweep's sizes.</summary>
    private static string Rounds(IReadOnlyList<CompareResult> results)
    {
        int min = results.Min(r => r.Rounds);
        int max = results.Max(r => r.Rounds);
        return min == max ? CliApp.Count(min, "round") : $"{min}–{max} rounds";
    }

    /// <summary>The warning line for a busy machine.</summary>
    private static string BusyWarning(HostLoad load) =>
        string.Create(s_inv, $"warning: the machine is busy (load {load.OneMinute:F2} on {load.Cores} cores, {load.FreeCores:F1} free): ratios that involve the userfaultfd hand-off (uffd-*) are not meaningful now");

    /// <summary>The real kernel's rows from the calibration, measured and modeled.</summary>
    private void KernelTable(CompareReport report)
    {
        context.Out.WriteLine($"the real kernel, measured by mirroremu calibrate ({calibration!.CreatedUtc.ToString("yyyy-MM-dd HH:mm", s_inv)} UTC, kernel {calibration.Machine.KernelVersion}, load {calibration.Machine.Load.OneMinute?.ToString("F2", s_inv) ?? "unknown"} on {calibration.Machine.Cores} cores), beside the model's figures for it:");
        var table = new Table().Border(TableBorder.Rounded);
        foreach (string h in new[] { "kernel", "pages/event", "ns/page (measured)", "p10–p90", "µs/page (modeled)", "vs populate (measured)", "vs populate (modeled)" })
        {
            table.AddColumn(new TableColumn(h).RightAligned().NoWrap());
        }

        foreach (KernelReport k in report.Kernel)
        {
            table.AddRow(
                k.Mechanism,
                k.PagesPerEvent.ToString("N0", s_inv),
                k.MeasuredNsPerPage.Median.ToString("N0", s_inv),
                $"{k.MeasuredNsPerPage.P10.ToString("N0", s_inv)}–{k.MeasuredNsPerPage.P90.ToString("N0", s_inv)}",
                k.ModeledUsPerPage.ToString("N3", s_inv),
                Ratio(k.SlowdownVsRegular.Measured),
                Ratio(k.SlowdownVsRegular.Modeled));
        }

        _console.Write(table);
    }

    /// <summary>The columns of the table at this level (a sweep adds the size first and drops the device counters).</summary>
    private List<(string Header, Func<Line, string> Cell)> Columns(bool sweep)
    {
        var c = new List<(string, Func<Line, string>)>();
        if (sweep)
        {
            c.Add(("range pages", x => N(x.Result.Options.Pages)));
        }

        c.Add(("policy", x => x.Row.Policy.Name()));
        c.Add(("pages", x => N(x.Run.Pages)));
        if (options.Level == CompareLevel.Device && !sweep)
        {
            c.Add(("device faults", x => N(x.Run.DeviceFaults)));
            c.Add(("fault batches", x => N(x.Run.FaultBatches)));
            c.Add(("replays", x => N(x.Run.Replays)));
        }

        c.Add(("round trips", x => N(x.Run.RoundTrips)));
        c.Add(("-EBUSY restarts", x => N(x.Run.EbusyRestarts)));
        c.Add(("walks", x => N(x.Run.Walks)));
        if (options.Level == CompareLevel.Hmm)
        {
            c.Add(("lock drops", x => N(x.Row.Counters.LockDrops)));
        }

        c.Add(("ns/page (measured)", x => x.Run.MeasuredNsPerPage is { } m ? m.Median.ToString("N0", s_inv) : "-"));
        c.Add(("p10–p90", x => x.Run.MeasuredNsPerPage is { } m ? $"{m.P10.ToString("N0", s_inv)}–{m.P90.ToString("N0", s_inv)}" : "-"));
        c.Add(("µs/page (modeled)", x => x.Run.ModeledUsPerPage is { } u ? u.ToString("N3", s_inv) : "-"));
        c.Add(("vs regular (measured)", x => x.Run.SlowdownVsRegular is { } s ? Ratio(s.Measured) : "-"));
        c.Add(("vs regular (modeled)", x => x.Run.SlowdownVsRegular is { } s ? Ratio(s.Modeled) : "-"));
        c.Add(("data", x => x.Row.Error is { } e ? Markup.Escape(e) : x.Row.Verified ? "verified" : "[red]WRONG[/]"));
        return c;
    }

    /// <summary>A count with thousands separators.</summary>
    private static string N(long v) => v.ToString("N0", s_inv);

    /// <summary>A ratio as "1.23x", or "-".</summary>
    private static string Ratio(double? r) => r is { } v && double.IsFinite(v) ? v.ToString("N2", s_inv) + "x" : "-";

    /// <summary>Pages as KiB, MiB or GiB.</summary>
    private static string Size(long pages)
    {
        long bytes = pages << Mm.PageGeometry.PageShift;
        return bytes >= 1L << 30 ? $"{(bytes / (double)(1L << 30)).ToString("0.##", s_inv)} GiB" : bytes >= 1L << 20 ? $"{(bytes / (double)(1L << 20)).ToString("0.##", s_inv)} MiB" : $"{bytes / 1024} KiB";
    }

    /// <summary>One line of the table: the result it came from, the policy's result, and its report entry.</summary>
    private readonly record struct Line(CompareResult Result, PolicyResult Row, RunReport Run);
}
