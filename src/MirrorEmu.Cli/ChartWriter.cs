using MirrorEmu.Regression;
using MirrorEmu.Telemetry;
using MirrorEmu.Workloads;
using ScottPlot;

namespace MirrorEmu.Cli;

/// <summary>The charts of <c>mirroremu compare --chart FILE.png|FILE.svg</c> (ScottPlot, rendered headless through
/// SkiaSharp): the measured ns/page of each policy as a bar with its p10–p90 spread, or, for a sweep, ns/page against the
/// range's pages on log-log axes, one line per policy; and the trend of <c>mirroremu regress --history FILE --chart</c>.</summary>
internal static class ChartWriter
{
    /// <summary>The most figures a trend chart draws.</summary>
    public const int TrendFigures = 8;

    private const int Width = 900;
    private const int Height = 520;

    /// <summary>Writes the chart of <paramref name="report"/> to <paramref name="path"/> (PNG or SVG by its extension),
    /// whole or not at all.</summary>
    /// <param name="report">The report.</param>
    /// <param name="path">Where; ends in .png or .svg.</param>
    /// <param name="cancellation">A cancelled write leaves no file.</param>
    public static void Write(CompareReport report, string path, CancellationToken cancellation)
    {
        Plot plot = report.Sweep is null ? Bars(report) : LogLog(report);
        bool svg = Path.GetExtension(path).Equals(".svg", StringComparison.OrdinalIgnoreCase);
        AtomicFile.Write(
            path,
            stream =>
            {
                byte[] bytes = svg
                    ? System.Text.Encoding.UTF8.GetBytes(plot.GetSvgXml(Width, Height))
                    : plot.GetImageBytes(Width, Height, ImageFormat.Png);
                stream.Write(bytes);
            },
            cancellation);
    }

    /// <summary>The chart's title: what ran, where, and the load.</summary>
    private static string Title(CompareReport report) =>
        $"{report.Tool} compare: {(report.Options.Level == "device" ? $"device kernel ({report.Options.Launcher}), workload {report.Options.Workload}" : "hmm_range_fault driver loop")}, {report.Machine.Cores} cores, load {report.Machine.Load.OneMinute:F1}";

    /// <summary>Bars of measured ns/page per policy, whiskers from p10 to p90.</summary>
    private static Plot Bars(CompareReport report)
    {
        var plot = new Plot();
        var runs = report.Runs.Where(r => r.MeasuredNsPerPage is not null).ToList();
        var bars = new List<Bar>();
        double[] xs = new double[runs.Count];
        double[] ys = new double[runs.Count];
        double[] low = new double[runs.Count];
        double[] high = new double[runs.Count];
        for (int i = 0; i < runs.Count; i++)
        {
            Spread m = runs[i].MeasuredNsPerPage!.Value;
            xs[i] = i;
            ys[i] = m.Median;
            low[i] = m.Median - m.P10;
            high[i] = m.P90 - m.Median;
            bars.Add(new Bar { Position = i, Value = m.Median, FillColor = Colors.SteelBlue, Label = $"{m.Median:N0}" });
        }

        ScottPlot.Plottables.BarPlot barPlot = plot.Add.Bars(bars);
        barPlot.ValueLabelStyle.FontSize = 11;
        var spread = plot.Add.ErrorBar(xs, ys, high);
        spread.YErrorNegative = low;
        spread.YErrorPositive = high;
        spread.Color = Colors.Black;
        plot.Axes.Bottom.SetTicks(xs, runs.Select(r => r.Policy).ToArray());
        plot.Axes.Left.Label.Text = "ns per page, measured";
        plot.Axes.Left.Label.FontSize = 14;
        plot.Axes.Bottom.Label.Text = $"{report.Runs[0].Pages:N0} pages; bars: median, whiskers: p10–p90 over {CliApp.Count(report.Rounds, "round")}";
        plot.Axes.Bottom.Label.FontSize = 14;
        plot.Axes.Margins(bottom: 0);
        plot.Title(Title(report), size: 13);
        return plot;
    }

    /// <summary>A sweep's ns/page against pages on log-log axes, one line per policy.</summary>
    private static Plot LogLog(CompareReport report)
    {
        var plot = new Plot();
        double minX = double.MaxValue, maxX = double.MinValue, minY = double.MaxValue, maxY = double.MinValue;
        foreach (IGrouping<string, RunReport> policy in report.Runs.Where(r => r.MeasuredNsPerPage is not null).GroupBy(r => r.Policy))
        {
            double[] xs = policy.Select(r => Math.Log10(r.Pages)).ToArray();
            double[] ys = policy.Select(r => Math.Log10(r.MeasuredNsPerPage!.Value.Median)).ToArray();
            var line = plot.Add.Scatter(xs, ys);
            double? slope = report.Sweep!.Slopes.FirstOrDefault(s => s.Policy == policy.Key)?.Slope;
            line.LegendText = slope is { } v ? $"{policy.Key} (slope of total time {v:F2})" : policy.Key;
            line.MarkerSize = 7;
            (minX, maxX) = (Math.Min(minX, xs.Min()), Math.Max(maxX, xs.Max()));
            (minY, maxY) = (Math.Min(minY, ys.Min()), Math.Max(maxY, ys.Max()));
        }

        var xTicks = report.Sweep!.Sizes.Select(s => (Math.Log10(s), PagesLabel(s))).ToArray();
        plot.Axes.Bottom.SetTicks(xTicks.Select(t => t.Item1).ToArray(), xTicks.Select(t => t.Item2).ToArray());
        var yTicks = new List<(double, string)>();
        for (int e = (int)Math.Floor(minY); e <= (int)Math.Ceiling(maxY); e++)
        {
            foreach (int m in new[] { 1, 2, 5 })
            {
                yTicks.Add((e + Math.Log10(m), $"{m * Math.Pow(10, e):N0}"));
            }
        }

        plot.Axes.Left.SetTicks(yTicks.Select(t => t.Item1).ToArray(), yTicks.Select(t => t.Item2).ToArray());
        plot.Axes.SetLimits(minX - 0.1, maxX + 0.1, minY - 0.15, maxY + 0.15);
        plot.Axes.Left.Label.Text = "ns per page, measured median (log)";
        plot.Axes.Left.Label.FontSize = 14;
        plot.Axes.Bottom.Label.Text = "pages in the range (log)";
        plot.Axes.Bottom.Label.FontSize = 14;
        plot.ShowLegend(Alignment.UpperRight);
        plot.Title(Title(report), size: 13);
        return plot;
    }

    /// <summary>"1k", "64k", "1M".</summary>
    private static string PagesLabel(int pages) => pages >= 1 << 20 ? $"{pages >> 20}M" : pages >= 1 << 10 ? $"{pages >> 10}k" : $"{pages}";

    /// <summary>Writes the trend of a history to <paramref name="path"/> (PNG), whole or not at all: each chosen figure as a
    /// line of its value relative to its first run, on a log2 axis (a counter that went 16x and a timing that halved both
    /// show), a dashed line before each figure's first step, and an asterisk under runs whose host was busy.</summary>
    /// <param name="history">The history.</param>
    /// <param name="steps">Its steps (<see cref="RegressionHistory.Steps"/>).</param>
    /// <param name="patterns">The figures to draw (patterns); empty: those that moved, else the timings.</param>
    /// <param name="path">Where; ends in .png.</param>
    /// <param name="cancellation">A cancelled write leaves no file.</param>
    /// <exception cref="CliUsageException">No figure to draw.</exception>
    public static void WriteTrend(RegressionHistory history, IReadOnlyList<FigureStep> steps, IReadOnlyList<string> patterns, string path, CancellationToken cancellation = default)
    {
        // A figure relative to its first run needs a first value that is not 0.
        var series = history.Series().Where(s => s.Values.FirstOrDefault(v => !double.IsNaN(v)) is > 0).ToList();
        List<(string Kind, string Id, double[] Values)> chosen = patterns.Count > 0
            ? [.. series.Where(s => patterns.Any(p => Wildcard.IsMatch(s.Id, p)))]
            : [.. series.Where(s => steps.Any(x => x.Id == s.Id))];
        if (chosen.Count == 0 && patterns.Count == 0)
        {
            chosen = [.. series.Where(s => s.Kind == "timing")];
        }

        if (chosen.Count == 0)
        {
            throw new CliUsageException(patterns.Count > 0
                ? $"--figures {string.Join(' ', patterns)}: no figure of the history with a first value above 0 matches"
                : "--chart: the history has no figure that moved and no timing to draw");
        }

        var plot = new Plot();
        double[] xs = [.. Enumerable.Range(0, history.Runs.Count).Select(i => (double)i)];
        double low = 0, high = 0;
        foreach ((string kind, string id, double[] values) in chosen.Take(TrendFigures))
        {
            double first = values.First(v => !double.IsNaN(v));
            double[] ys = [.. values.Select(v => v > 0 ? Math.Log2(v / first) : double.NaN)];
            low = Math.Min(low, ys.Where(double.IsFinite).DefaultIfEmpty(0).Min());
            high = Math.Max(high, ys.Where(double.IsFinite).DefaultIfEmpty(0).Max());
            var line = plot.Add.Scatter(xs, ys);
            line.LegendText = $"{(kind == "timing" ? "time" : "count")} {RegressCommand.Shorten(id)}";
            line.MarkerSize = 6;
            line.LineWidth = 2;
            line.LinePattern = kind == "timing" ? LinePattern.Dotted : LinePattern.Solid;
            if (steps.FirstOrDefault(s => s.Id == id) is { } step)
            {
                var mark = plot.Add.VerticalLine(step.Run - 0.5);
                mark.Color = line.Color;
                mark.LinePattern = LinePattern.Dashed;
            }
        }

        var ticks = new List<(double, string)>();
        for (int e = (int)Math.Floor(low); e <= (int)Math.Ceiling(high); e++)
        {
            ticks.Add((e, e >= 0 ? $"{1 << e}x" : $"1/{1 << -e}x"));
        }

        plot.Axes.Left.SetTicks([.. ticks.Select(t => t.Item1)], [.. ticks.Select(t => t.Item2)]);
        plot.Axes.SetLimitsY(Math.Floor(low) - 0.25, Math.Ceiling(high) + 0.25);
        string[] labels = [.. history.Runs.Select((r, i) => $"{i}{(r.Host.Busy ? "*" : string.Empty)}\n{Short(r.Commit)}")];
        plot.Axes.Bottom.SetTicks(xs, labels);
        plot.Axes.Bottom.Label.Text = "run and commit (* busy host); counts solid, times dotted; dashed: before the first run where the figure moved";
        plot.Axes.Bottom.Label.FontSize = 13;
        plot.Axes.Left.Label.Text = "relative to the figure's first run (log2)";
        plot.Axes.Left.Label.FontSize = 13;
        plot.Title($"mirroremu regress --history: {history.Runs.Count} runs", size: 14);
        plot.ShowLegend(Edge.Right);
        AtomicFile.Write(path, stream => stream.Write(plot.GetImageBytes(Width + 400, Height, ImageFormat.Png)), cancellation);
    }

    /// <summary>A commit as a chart or table names it: seven hex digits, "+" when the tree was dirty.</summary>
    /// <param name="commit">The commit, or null.</param>
    internal static string Short(string? commit) => commit switch
    {
        null => "?",
        { Length: > 7 } c => c[..7] + (c.EndsWith("+dirty", StringComparison.Ordinal) ? "+" : string.Empty),
        { } c => c,
    };
}
