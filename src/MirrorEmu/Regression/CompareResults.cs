using System.Text.Json;
using MirrorEmu.Workloads;

namespace MirrorEmu.Regression;

/// <summary>
/// Reads the report of <c>mirroremu compare --json</c> (<see cref="CompareReport"/>, README "JSON output") into timings:
/// one per run row, identified as "compare:policy@workload/pages", its time the row's measured ns per page (median, p10,
/// p90 over the rounds: no samples, so the comparison holds the ratio of medians against the threshold and the noise
/// floor); the report's machine and load become the run's host.
/// </summary>
public static class CompareResults
{
    /// <summary>Reads a report file.</summary>
    /// <param name="path">The file <c>compare --json FILE</c> wrote.</param>
    /// <param name="host">The machine and its load as the report states them.</param>
    /// <returns>One timing per row with a measured time and verified data, one with its error per other row (but the
    /// uffd-unsupported row, whose -EFAULT is its expected outcome).</returns>
    /// <exception cref="RegressionInputException">Unreadable, another schema version, an unknown field, or malformed.</exception>
    public static IReadOnlyList<TimingFigure> Load(string path, out RunHost host) =>
        Parse(RegressionRun.ReadText(path, "--compare-json"), path, out host);

    /// <summary>Parses a report.</summary>
    /// <param name="json">The report.</param>
    /// <param name="file">Its name, for messages.</param>
    /// <param name="host">The machine and its load.</param>
    /// <returns>The timings.</returns>
    /// <exception cref="RegressionInputException">Another schema version, an unknown field, or malformed.</exception>
    public static IReadOnlyList<TimingFigure> Parse(string json, string file, out RunHost host)
    {
        CompareReport report;
        try
        {
            report = CompareReport.FromJson(json);
        }
        catch (JsonException e)
        {
            throw new RegressionInputException($"--compare-json {file}: {(e.Path is { Length: > 1 } p ? $"at {p}: " : string.Empty)}{RegressionRun.OneLine(e.Message)}");
        }

        host = new RunHost
        {
            Machine = report.Tool,
            Cores = report.Machine.Cores,
            LoadAtStart = report.Machine.Load.OneMinute,
            LoadAtEnd = report.Machine.LoadAtEnd,
            Busy = report.Machine.Busy,
            Runtime = report.Machine.Runtime,
        };
        var timings = new List<TimingFigure>();
        foreach (RunReport r in report.Runs)
        {
            if (r.Policy == ComparePolicy.UffdUnsupported.Name() && r.Error == Errno.Name(-Errno.EFAULT))
            {
                continue; // the kernel before the patch: -EFAULT is its outcome, and it has no time to compare
            }

            timings.Add(r.MeasuredNsPerPage is { } m && r.Error is null && r.Verified
                ? new TimingFigure { Id = Id(r), Source = "compare", MedianNs = m.Median, P10Ns = m.P10, P90Ns = m.P90 }
                : new TimingFigure { Id = Id(r), Source = "compare", Error = r.Error ?? "the data was not verified" });
        }

        return timings;
    }

    private static string Id(RunReport r) => $"compare:{r.Policy}@{r.Workload}/{r.Pages}";
}
