namespace MirrorEmu.Regression;

/// <summary>The first step of one figure in a history.</summary>
/// <param name="Kind">"counter" or "timing".</param>
/// <param name="Id">The figure.</param>
/// <param name="Run">The index of the first run at the new level (0 is the oldest).</param>
/// <param name="Before">The level before (median of the piece).</param>
/// <param name="After">The level after.</param>
public sealed record FigureStep(string Kind, string Id, int Run, double Before, double After);

/// <summary>
/// A history of runs: a JSON-lines file, one <see cref="RegressionRun"/> per line (commit, date, host and load, the
/// counters and the timings' medians, no samples), oldest first, as asv keeps one result per commit. New runs are
/// appended; nothing is rewritten.
/// </summary>
public sealed class RegressionHistory
{
    private RegressionHistory(IReadOnlyList<RegressionRun> runs) => Runs = runs;

    /// <summary>The runs, oldest first.</summary>
    public IReadOnlyList<RegressionRun> Runs { get; }

    /// <summary>Reads a history file.</summary>
    /// <param name="path">The file.</param>
    /// <returns>The history.</returns>
    /// <exception cref="RegressionInputException">Unreadable, empty, or a line that is not a run of this schema (named by
    /// its number).</exception>
    public static RegressionHistory Load(string path)
    {
        string text = RegressionRun.ReadText(path, "--history");
        var runs = new List<RegressionRun>();
        int number = 0;
        foreach (string line in text.Split('\n'))
        {
            number++;
            if (line.Trim().Length > 0)
            {
                runs.Add(RegressionRun.FromJson(line, $"--history {path} line {number}"));
            }
        }

        return runs.Count > 0 ? new RegressionHistory(runs) : throw new RegressionInputException($"--history {path}: the file holds no run");
    }

    /// <summary>A history of the runs given (tests, charts).</summary>
    /// <param name="runs">The runs, oldest first.</param>
    public static RegressionHistory Of(IReadOnlyList<RegressionRun> runs) => new(runs);

    /// <summary>Appends <paramref name="run"/> to the history file (creating it), as one line without samples.</summary>
    /// <param name="path">The file; its folder must exist.</param>
    /// <param name="run">The run.</param>
    /// <exception cref="IOException">It could not be appended (the message names the file and why).</exception>
    public static void Append(string path, RegressionRun run) => Telemetry.AtomicFile.Append(path, run.ToJsonLine() + "\n");

    /// <summary>The series of every figure, in the order first seen: a value per run, NaN where the run lacks it.</summary>
    public IReadOnlyList<(string Kind, string Id, double[] Values)> Series()
    {
        var order = new List<(string Kind, string Id)>();
        var values = new Dictionary<(string, string), double[]>();
        for (int i = 0; i < Runs.Count; i++)
        {
            foreach (CounterFigure c in Runs[i].Counters)
            {
                Slot("counter", c.Id)[i] = c.Value;
            }

            foreach (TimingFigure t in Runs[i].Timings.Where(t => t.Error is null))
            {
                Slot("timing", t.Id)[i] = t.MedianNs;
            }
        }

        return [.. order.Select(k => (k.Kind, k.Id, values[k]))];

        double[] Slot(string kind, string id)
        {
            if (!values.TryGetValue((kind, id), out double[]? v))
            {
                v = Enumerable.Repeat(double.NaN, Runs.Count).ToArray();
                values[(kind, id)] = v;
                order.Add((kind, id));
            }

            return v;
        }
    }

    /// <summary>The first step of every figure that moved. A counter is deterministic, so its first step is the first run
    /// whose count differs from the run before beyond the tolerance its scenario states (a change in a single run counts);
    /// a timing's is <see cref="StepDetector.FirstStep"/>'s, beyond the relative threshold, the noise floor and the noise of
    /// the pieces around the step (a single outlying run does not count).</summary>
    /// <param name="threshold">Relative threshold for timings (0.1 = 10 %).</param>
    /// <param name="noiseNs">Absolute noise floor for timings, in nanoseconds.</param>
    /// <returns>One step per figure that moved, in the order the figures were first seen.</returns>
    public IReadOnlyList<FigureStep> Steps(double threshold, double noiseNs)
    {
        var steps = new List<FigureStep>();
        foreach ((string kind, string id, double[] values) in Series())
        {
            int[] index = [.. Enumerable.Range(0, values.Length).Where(i => !double.IsNaN(values[i]))];
            double[] y = [.. index.Select(i => values[i])];
            if (kind == "counter")
            {
                double tolerance = Runs.SelectMany(r => r.Counters).FirstOrDefault(c => c.Id == id)?.Tolerance ?? 0;
                int k = Enumerable.Range(1, Math.Max(0, y.Length - 1)).FirstOrDefault(i => Math.Abs(y[i] - y[i - 1]) > tolerance * Math.Abs(y[i - 1]));
                if (k > 0)
                {
                    steps.Add(new FigureStep(kind, id, index[k], y[k - 1], y[k]));
                }
            }
            else if (StepDetector.FirstStep(y, threshold, noiseNs) is { } s)
            {
                steps.Add(new FigureStep(kind, id, index[s.Run], s.Before, s.After));
            }
        }

        return steps;
    }
}
