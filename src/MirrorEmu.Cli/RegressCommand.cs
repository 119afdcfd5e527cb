using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using MirrorEmu.Regression;
using MirrorEmu.Telemetry;
using Spectre.Console;

namespace MirrorEmu.Cli;

/// <summary>
/// <c>mirroremu regress</c> (README "Regression tracking"): runs the fixed counter scenarios, reads timings from
/// BenchmarkDotNet's full JSON and <c>compare --json</c>, and compares them with a committed baseline; or saves them as the
/// baseline; or reads a history of runs, names the first run where each figure moved, and draws the trend.
/// Exit codes: 0; 1 on a counter regression, a missing figure or a failed benchmark (and on a slower timing with
/// --fail-on-time); 2 on bad input.
/// </summary>
internal static class RegressCommand
{
    /// <summary>Where the committed baseline lives, relative to the repository root.</summary>
    public const string DefaultBaseline = "bench/baselines";

    /// <summary>The counters baseline's file name in a baseline folder.</summary>
    public const string CountersFile = "counters.json";

    /// <summary>The timings baseline's file name in a baseline folder.</summary>
    public const string TimingsFile = "timings.json";

    /// <summary>The command.</summary>
    /// <param name="context">The streams and the Ctrl-C token.</param>
    public static Command Create(CliContext context)
    {
        TextWriter stdout = context.Out;
        var baseline = new Option<string>("--baseline") { Description = $"The baseline: a folder with {CountersFile} and {TimingsFile}, or one baseline file.", DefaultValueFactory = _ => DefaultBaseline };
        var bdn = new Option<string?>("--bdn") { Description = "Current timings: a BenchmarkDotNet *-report-full.json, or a folder of them (BenchmarkDotNet.Artifacts/results)." };
        var compareJson = new Option<string?>("--compare-json") { Description = "Current timings: a report written by 'mirroremu compare --json FILE'." };
        var noCounters = new Option<bool>("--no-counters") { Description = "Do not run the counter scenarios (compare timings only)." };
        var scenarios = new Option<string?>("--scenarios") { Description = "Run only the counter scenarios whose names match this pattern (* wildcards), e.g. 'hmm/*'." };
        var filter = new Option<string[]>("--filter") { Description = "Compare only the timings whose names match one of these patterns (* wildcards).", AllowMultipleArgumentsPerToken = true };
        var threshold = new Option<string>("--threshold") { Description = "Relative threshold below which a timing change is not reported (ResultsComparer's --threshold).", DefaultValueFactory = _ => "10%" };
        var noise = new Option<string>("--noise") { Description = "Absolute noise floor below which a timing change is not reported (ResultsComparer's --noise).", DefaultValueFactory = _ => "1ns" };
        var failOnTime = new Option<bool>("--fail-on-time") { Description = "Exit 1 on a slower timing too (timings only warn otherwise)." };
        var all = new Option<bool>("--all") { Description = "Print every figure compared, not only those that moved." };
        var save = new Option<string?>("--save") { Description = $"Write the current figures as the baseline into this folder ({CountersFile}, {TimingsFile}) instead of comparing." };
        var appendHistory = new Option<string?>("--append-history") { Description = "Append the current run (commit, date, host, load, figures) to this JSON-lines history." };
        var commit = new Option<string?>("--commit") { Description = "The commit to record (default: git rev-parse HEAD, with +dirty for uncommitted changes)." };
        var history = new Option<string?>("--history") { Description = "Report the first run where each figure of this history moved, instead of comparing." };
        var chart = new Option<string?>("--chart") { Description = "With --history: draw the figures' trend, each relative to its first run, to FILE.png." };
        var figures = new Option<string[]>("--figures") { Description = $"With --chart: the figures to draw (patterns; default: those that moved, else the timings; at most {ChartWriter.TrendFigures}).", AllowMultipleArgumentsPerToken = true };
        var command = new Command("regress", "Compare counters of fixed scenarios (exact) and benchmark timings (threshold, noise floor) with a baseline; or save a baseline; or find steps in a history.")
        {
            baseline, bdn, compareJson, noCounters, scenarios, filter, threshold, noise, failOnTime, all, save, appendHistory, commit, history, chart, figures,
        };
        command.SetAction(r =>
        {
            try
            {
                double t = ParseThreshold(r.GetValue(threshold)!);
                double n = ParseNoise(r.GetValue(noise)!);
                if (CliOptions.Given(r, figures) && r.GetValue(chart) is null)
                {
                    // As --chart without --history is refused: a choice of figures for a chart no one asked for would
                    // otherwise be dropped without a word.
                    throw new CliUsageException("--figures needs --chart FILE and --history FILE (it picks the figures the chart draws)");
                }

                if (r.GetValue(history) is { } h)
                {
                    foreach (Option o in new Option[] { bdn, compareJson, save, appendHistory, noCounters, scenarios, failOnTime })
                    {
                        if (CliOptions.Given(r, o))
                        {
                            throw new CliUsageException($"{o.Name} does not apply to --history (it reads a history, it runs nothing)");
                        }
                    }

                    return History(stdout, h, r.GetValue(chart), r.GetValue(figures) ?? [], t, n, context.Cancellation);
                }

                if (r.GetValue(chart) is not null)
                {
                    throw new CliUsageException("--chart needs --history FILE (the chart is the history's trend)");
                }

                var options = new RegressionOptions { Threshold = t, NoiseNs = n, TimingFilters = r.GetValue(filter) ?? [] };
                // Bad input is refused before any scenario runs: the timings' files are read, then the baseline.
                (IReadOnlyList<TimingFigure> timings, RunHost? timingHost) = ReadTimings(r.GetValue(noCounters), r.GetValue(scenarios), r.GetValue(bdn), r.GetValue(compareJson));
                RegressionRun? reference = r.GetValue(save) is null ? LoadBaseline(r.GetValue(baseline)!, !r.GetValue(noCounters), timings.Count > 0) : null;
                // So are outputs that cannot be written: found now, not after every scenario ran.
                if (r.GetValue(save) is { } saveFolder)
                {
                    OutputFiles.CheckFolder("--save", saveFolder);
                }

                OutputFiles.Check("--append-history", r.GetValue(appendHistory), append: true);
                RegressionRun current = Collect(r.GetValue(noCounters), r.GetValue(scenarios), timings, timingHost, r.GetValue(commit), context.Cancellation);

                // Ctrl-C during the last scenario, or just after it, still writes nothing: the check comes before the
                // first write, and the history is appended only after the run finished uncancelled.
                context.Cancellation.ThrowIfCancellationRequested();
                if (r.GetValue(appendHistory) is { } append)
                {
                    OutputFiles.Write("--append-history", () => RegressionHistory.Append(append, current));
                }

                if (r.GetValue(save) is { } folder)
                {
                    return Save(stdout, current, folder, context.Cancellation);
                }

                RegressionComparison comparison = RegressionComparison.Compare(reference!, current, options, r.GetValue(scenarios));
                Print(stdout, comparison, r.GetValue(all), options);
                return comparison.ExitCode(r.GetValue(failOnTime));
            }
            catch (RegressionInputException e)
            {
                throw new CliUsageException(e.Message);
            }
        });
        return command;
    }

    /// <summary>Checks the options that choose what runs and reads the timings given (BenchmarkDotNet's JSON, a compare
    /// report), with the host their run recorded.</summary>
    private static (IReadOnlyList<TimingFigure> Timings, RunHost? Host) ReadTimings(bool noCounters, string? scenarios, string? bdn, string? compareJson)
    {
        if (noCounters && bdn is null && compareJson is null)
        {
            throw new CliUsageException("--no-counters leaves nothing to compare: give --bdn or --compare-json");
        }

        if (scenarios is not null && !CounterScenarios.All.Any(s => Wildcard.IsMatch(s.Name, scenarios)))
        {
            throw new CliUsageException($"--scenarios '{scenarios}' matches no scenario (there are {string.Join(", ", CounterScenarios.All.Select(s => s.Name))})");
        }

        var timings = new List<TimingFigure>();
        RunHost? host = null;
        if (bdn is not null)
        {
            timings.AddRange(BdnResults.Load(bdn, out host));
        }

        if (compareJson is not null)
        {
            timings.AddRange(CompareResults.Load(compareJson, out RunHost compareHost));
            host ??= compareHost;
        }

        return (timings, host);
    }

    /// <summary>The current run: the counter scenarios (unless told not to) and the timings read.</summary>
    private static RegressionRun Collect(bool noCounters, string? scenarios, IReadOnlyList<TimingFigure> timings, RunHost? timingHost, string? commit, CancellationToken cancellation)
    {
        IReadOnlyList<CounterFigure> counters = [];
        HostLoad loadAtStart = HostLoad.Current();
        if (!noCounters)
        {
            counters = CounterScenarios.Run(scenarios, cancellation: cancellation);
        }

        return new RegressionRun
        {
            Tool = CliApp.Tool,
            Commit = commit ?? GitCommit(),
            Date = DateTimeOffset.UtcNow,
            // The load beside timings is the one of the run that took them (the benchmark runner records it); without
            // timings it is this run's.
            Host = timings.Count > 0
                ? timingHost ?? new RunHost { Machine = Environment.MachineName, Cores = loadAtStart.Cores }
                : RunHost.Here(loadAtStart, HostLoad.Current()),
            Counters = counters,
            Timings = timings,
        };
    }

    /// <summary>The baseline: the files of a folder (counters.json when counters ran, timings.json when timings were given),
    /// or one file.</summary>
    private static RegressionRun LoadBaseline(string path, bool counters, bool timings)
    {
        if (File.Exists(path))
        {
            return RegressionRun.Load(path, "--baseline");
        }

        if (!Directory.Exists(path))
        {
            throw new CliUsageException($"--baseline {path}: no such file or folder (run from the repository root, or give --baseline)");
        }

        RegressionRun? countersRun = null, timingsRun = null;
        string countersPath = Path.Combine(path, CountersFile), timingsPath = Path.Combine(path, TimingsFile);
        if (counters)
        {
            countersRun = File.Exists(countersPath) ? RegressionRun.Load(countersPath, "baseline") : throw new CliUsageException($"--baseline {path}: no {CountersFile} (save one with --save {path})");
        }

        if (timings)
        {
            timingsRun = File.Exists(timingsPath) ? RegressionRun.Load(timingsPath, "baseline") : throw new CliUsageException($"--baseline {path}: no {TimingsFile} (save one with --bdn ... --no-counters --save {path})");
        }

        RegressionRun first = (countersRun ?? timingsRun)!;
        return first with
        {
            Host = timingsRun?.Host ?? first.Host,
            Counters = countersRun?.Counters ?? [],
            Timings = timingsRun?.Timings ?? [],
        };
    }

    /// <summary>Writes the run as the baseline in <paramref name="folder"/> (checked before the run).</summary>
    private static int Save(TextWriter o, RegressionRun current, string folder, CancellationToken cancellation)
    {
        if (current.Counters.Count > 0)
        {
            OutputFiles.WriteText("--save", Path.Combine(folder, CountersFile), (current with { Timings = [] }).ToJson(), cancellation);
            o.WriteLine($"saved {CliApp.Count(current.Counters.Count, "counter")} of {CliApp.Count(current.Counters.Select(c => c.Scenario).Distinct().Count(), "scenario")} to {Path.Combine(folder, CountersFile)}");
        }

        if (current.Timings.Count > 0)
        {
            OutputFiles.WriteText("--save", Path.Combine(folder, TimingsFile), (current with { Counters = [] }).ToJson(), cancellation);
            o.WriteLine($"saved {CliApp.Count(current.Timings.Count, "timing")} to {Path.Combine(folder, TimingsFile)} ({current.Host.Describe()})");
        }

        o.WriteLine($"commit {current.Commit ?? "unknown"}");
        return 0;
    }

    private static void Print(TextWriter stdout, RegressionComparison c, bool all, RegressionOptions options)
    {
        IAnsiConsole console = PlainConsole(stdout);
        console.WriteLine($"baseline: commit {c.Baseline.Commit ?? "unknown"}, {c.Baseline.Date:yyyy-MM-dd HH:mm} UTC{(c.Baseline.Timings.Count > 0 ? ", timings " + c.Baseline.Host.Describe() : string.Empty)}");
        console.WriteLine($"current:  commit {c.Current.Commit ?? "unknown"}, {c.Current.Date:yyyy-MM-dd HH:mm} UTC, {c.Current.Host.Describe()}");
        var shown = c.Rows.Where(r => all || r.Verdict != Verdict.Same).ToList();
        if (shown.Count > 0)
        {
            var table = new Table().Border(TableBorder.Rounded);
            foreach (string column in new[] { "kind", "figure", "baseline", "current", "change", "verdict", "note" })
            {
                table.AddColumn(new TableColumn(column));
            }

            foreach (TableColumn column in table.Columns.Skip(2).Take(3))
            {
                column.RightAligned();
            }

            foreach (ComparisonRow r in shown)
            {
                bool timing = r.Kind == "timing";
                table.AddRow(
                    r.Kind,
                    Markup.Escape(Shorten(r.Id)),
                    Value(r.Baseline, timing),
                    Value(r.Current, timing),
                    Change(r, timing),
                    r.Verdict is Verdict.Same or Verdict.New or Verdict.Faster ? r.Verdict.ToString() : r.Verdict.ToString().ToUpperInvariant(),
                    Markup.Escape(r.Note ?? string.Empty));
            }

            console.Write(table);
        }

        int counters = c.Rows.Count(r => r.Kind == "counter");
        int timings = c.Rows.Count(r => r.Kind == "timing");
        if (counters > 0)
        {
            console.WriteLine($"counters: {counters} compared, {c.CounterRegressions} regressed, {c.Rows.Count(r => r.Kind == "counter" && r.Verdict == Verdict.Missing)} missing");
        }

        if (timings > 0)
        {
            string geo = string.Join(", ", new[]
            {
                c.SlowerGeomean is { } s ? $"slower geomean {s:F3}" : null,
                c.FasterGeomean is { } f ? $"faster geomean {f:F3}" : null,
                c.AllGeomean is { } a ? $"all {a:F3}" : null,
            }.Where(x => x is not null));
            console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"timings: {timings} compared (threshold {options.Threshold:P0}, noise {options.NoiseNs:0.###} ns), {c.Slower} slower, {c.Faster} faster, {c.Rows.Count(r => r.Kind == "timing" && r.Verdict is Verdict.Missing or Verdict.Failed)} missing or failed{(geo.Length > 0 ? "; " + geo : string.Empty)}"));
            if (c.BusyHost)
            {
                console.WriteLine("warning: a run's host was busy (fewer than one core free): its timings measure the neighbours too; rows are marked");
            }
        }

        if (shown.Count == 0)
        {
            console.WriteLine("no figure moved.");
        }
    }

    /// <summary>A console over <paramref name="stdout"/> without colour or escape sequences, at least 200 columns wide.</summary>
    private static IAnsiConsole PlainConsole(TextWriter stdout)
    {
        IAnsiConsole console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(stdout), Ansi = AnsiSupport.No, ColorSystem = ColorSystemSupport.NoColors });
        console.Profile.Width = Math.Max(console.Profile.Width, 200);
        return console;
    }

    private static string Value(double? v, bool timing) => v switch
    {
        null => "-",
        { } x when timing => x.ToString(x < 10 ? "N3" : "N1", CultureInfo.InvariantCulture) + " ns",
        { } x => x.ToString("N0", CultureInfo.InvariantCulture),
    };

    private static string Change(ComparisonRow r, bool timing)
    {
        if (r.Baseline is not { } b || r.Current is not { } c)
        {
            return "-";
        }

        if (timing)
        {
            return r.Ratio is { } ratio ? ratio.ToString("F2", CultureInfo.InvariantCulture) + "x" : "-";
        }

        double d = c - b;
        string delta = d.ToString("+#,0;-#,0;0", CultureInfo.InvariantCulture);
        return b != 0 ? string.Create(CultureInfo.InvariantCulture, $"{delta} ({d / b:+0.#%;-0.#%;0%})") : delta;
    }

    private static int History(TextWriter stdout, string path, string? chart, string[] figurePatterns, double threshold, double noise, CancellationToken cancellation)
    {
        if (chart is not null && !chart.EndsWith(".png", StringComparison.OrdinalIgnoreCase))
        {
            throw new CliUsageException($"--chart {chart}: the chart is a PNG (name the file *.png)");
        }

        OutputFiles.Check("--chart", chart);

        RegressionHistory h = RegressionHistory.Load(path);
        IReadOnlyList<FigureStep> steps = h.Steps(threshold, noise);
        stdout.WriteLine($"history {path}: {CliApp.Count(h.Runs.Count, "run")}, {CliApp.Count(h.Series().Count, "figure")}; {steps.Count} moved (threshold {threshold.ToString("P0", CultureInfo.InvariantCulture)}, noise {noise.ToString("0.###", CultureInfo.InvariantCulture)} ns for timings; counters exact)");
        for (int i = 0; i < h.Runs.Count; i++)
        {
            RegressionRun run = h.Runs[i];
            stdout.WriteLine($"  run {i}: {run.Commit ?? "unknown"} {run.Date:yyyy-MM-dd HH:mm} {run.Host.Describe()}");
        }

        if (steps.Count > 0)
        {
            IAnsiConsole console = PlainConsole(stdout);
            var table = new Table().Border(TableBorder.Rounded);
            foreach (string column in new[] { "kind", "figure", "first run that moved", "before", "after", "change" })
            {
                table.AddColumn(new TableColumn(column));
            }

            foreach (FigureStep s in steps)
            {
                RegressionRun run = h.Runs[s.Run];
                bool timing = s.Kind == "timing";
                table.AddRow(
                    s.Kind,
                    Markup.Escape(Shorten(s.Id)),
                    Markup.Escape($"run {s.Run}: {ChartWriter.Short(run.Commit)} ({run.Date:yyyy-MM-dd HH:mm}){(run.Host.Busy ? ", busy host" : string.Empty)}"),
                    Value(s.Before, timing),
                    Value(s.After, timing),
                    s.Before != 0 ? (s.After / s.Before).ToString("F2", CultureInfo.InvariantCulture) + "x" : "-");
            }

            console.Write(table);
        }

        if (chart is not null)
        {
            OutputFiles.Write("--chart", () => ChartWriter.WriteTrend(h, steps, figurePatterns, chart, cancellation));
            stdout.WriteLine($"chart: {chart}");
        }

        return 0;
    }

    /// <summary>A benchmark's name without the benchmark assembly's namespace ("Hmm.PolicyBenchmarks.Batched64"), as tables
    /// and charts print it; baselines and histories keep the full name.</summary>
    /// <param name="id">The figure's identity.</param>
    internal static string Shorten(string id) => id.StartsWith("MirrorEmu.Bench.", StringComparison.Ordinal) ? id["MirrorEmu.Bench.".Length..] : id;

    private static double ParseThreshold(string text)
    {
        string t = text.Trim();
        bool percent = t.EndsWith('%');
        if (double.TryParse(percent ? t[..^1] : t, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) && double.IsFinite(v) && v >= 0)
        {
            return percent ? v / 100 : v;
        }

        throw new CliUsageException($"--threshold: '{text}' is not a relative threshold such as 5% or 0.05");
    }

    private static double ParseNoise(string text)
    {
        string t = text.Trim();
        (string unit, double scale) = t.EndsWith("ns", StringComparison.OrdinalIgnoreCase) ? ("ns", 1)
            : t.EndsWith("us", StringComparison.OrdinalIgnoreCase) ? ("us", 1e3)
            : t.EndsWith("ms", StringComparison.OrdinalIgnoreCase) ? ("ms", 1e6)
            : (string.Empty, 1);
        if (unit.Length > 0 && double.TryParse(t[..^unit.Length], NumberStyles.Float, CultureInfo.InvariantCulture, out double v) && double.IsFinite(v) && v >= 0)
        {
            return v * scale;
        }

        throw new CliUsageException($"--noise: '{text}' is not a time such as 0.3ns, 1ns or 2us");
    }

    /// <summary>git rev-parse HEAD in the current folder, with "+dirty" when tracked files changed; null without git.</summary>
    private static string? GitCommit()
    {
        string? head = Git("rev-parse HEAD");
        return head is null ? null : Git("status --porcelain --untracked-files=no") is { Length: > 0 } ? head + "+dirty" : head;
    }

    private static string? Git(string arguments)
    {
        try
        {
            using var p = Process.Start(new ProcessStartInfo("git", arguments) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false });
            if (p is null)
            {
                return null;
            }

            string output = p.StandardOutput.ReadToEnd().Trim();
            p.WaitForExit(10_000);
            return p.HasExited && p.ExitCode == 0 ? output : null;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return null;
        }
    }
}
