using MirrorEmu.Telemetry;
using MirrorEmu.Workloads;
using ScottPlot;

namespace MirrorEmu.Cli;

/// <summary>The charts of <c>mirroremu compare --chart FILE.png|FILE.svg</c> (ScottPlot, rendered headless through
/// SkiaSharp): the measured ns/page of each policy as a bar with its p10–p90 spread, or, for a sweep, ns/page against the
/// range's pages on log-log axes, one line per policy.</summary>
internal static class ChartWriter
{
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
        plot.Axes.Bottom.Label.Text = $"{report.Runs[0].Pages:N0} pages; bars: median, whiskers: p10–p90 over {report.Rounds} rounds";
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
}
