using System.CommandLine;
using MirrorEmu.Calibration;
using MirrorEmu.Device;
using MirrorEmu.Telemetry;
using MirrorEmu.Workloads;

namespace MirrorEmu.Cli;

/// <summary><c>mirroremu compare</c>: the headline comparison (README "compare").</summary>
internal static class CompareCommand
{
    /// <summary>The policies a sweep runs unless --policies names others.</summary>
    private static readonly ComparePolicy[] s_sweepDefault = [ComparePolicy.Regular, ComparePolicy.UffdBatched];

    /// <summary>The command.</summary>
    /// <param name="context">The streams, configuration folder and Ctrl-C token.</param>
    public static Command Create(CliContext context)
    {
        var d = new ComparisonOptions();
        var pages = CliOptions.Int("--pages", "Pages in the fresh range (65536 = 256 MiB); 64k and 1M are accepted.", d.Pages, 1, ComparisonOptions.MaxPages, binarySuffixes: true);
        var workload = new Option<Workload>("--workload")
        {
            Description = $"Which pages the kernel touches and in what order: {Workload.Forms}.",
            DefaultValueFactory = _ => Workload.Seq,
            CustomParser = r =>
            {
                string text = r.Tokens.Count > 0 ? r.Tokens[0].Value : string.Empty;
                if (Workload.TryParse(text, out Workload? w, out string? error))
                {
                    return w!;
                }

                r.AddError($"--workload: {error}");
                return Workload.Seq;
            },
        };
        var policies = new Option<IReadOnlyList<ComparePolicy>>("--policies")
        {
            Description = $"Comma-separated policies, or 'all' (the default): {ComparePolicies.NameList}. regular always runs (the baseline).",
            CustomParser = r => ParsePolicies(r.Tokens.Count > 0 ? r.Tokens[0].Value : string.Empty, r),
        };
        var launcher = CliOptions.OneOf("--launcher", "What runs the device's kernels.", "direct", "direct", "cpu", "cuda", "opencl", "auto");
        var monitorBatch = CliOptions.Int("--monitor-batch", "Pages the monitor resolves per event under uffd-batched (a power of two, 1 to 512).", d.MonitorBatch, 1, 512);
        var faultBatch = CliOptions.Int("--fault-batch", "Fault-buffer entries the driver services per batch (UVM: 256).", d.FaultBatch, 1, 65_536);
        var replay = CliOptions.OneOf("--replay", "When the driver replays faulted work items (UVM's policies).", "once", [.. ReplayPolicies.Names]);
        var seed = CliOptions.Int("--seed", "Seeds the workload: the random order, the zipf and sparse draws, each page's element.", d.Seed, 0, int.MaxValue);
        var fill = CliOptions.Int("--fill-byte", "The byte the userfaultfd monitor fills pages with (0x5A).", d.FillByte, 0, 255);
        var repeat = CliOptions.Int("--repeat", "Measured rounds (default: as many as fit about 10 s, at least 3).", null, 1, ComparisonOptions.MaxRounds);
        var sweep = new Option<string?>("--sweep") { Description = "Run at every power of two from A to B pages (1k..1M) and report the log-log slope of time against pages." };
        var json = new Option<string?>("--json") { Description = "Write the report as JSON to FILE ('-' for standard output, instead of the table)." };
        var chart = new Option<string?>("--chart") { Description = "Write a chart to FILE.png or FILE.svg: per-policy bars with their spread; with --sweep, a log-log plot." };
        var noProgress = new Option<bool>("--no-progress") { Description = "Never show the progress bar (it shows only when both outputs are terminals)." };
        var level = CliOptions.OneOf("--level", "Where the range is faulted: by a device kernel, or by the driver loop alone (hmm_range_fault).", "device", "device", "hmm");
        var calibration = new Option<string?>("--calibration") { Description = $"The calibration to model with (default: {CalibrationFile.DefaultPath("$XDG_CONFIG_HOME")} if it exists); 'none' for the built-in defaults." };
        var command = new Command("compare", "Fault a fresh range under a regular VMA and each userfaultfd policy, measured and modeled, side by side.")
        {
            pages, workload, policies, launcher, monitorBatch, faultBatch, replay, seed, fill, repeat, sweep, json, chart, noProgress, level, calibration,
        };
        command.SetAction(r =>
        {
            bool hmm = r.GetValue(level) == "hmm";
            foreach (Option deviceOnly in new Option[] { workload, launcher, faultBatch, replay, sweep })
            {
                if (hmm && CliOptions.Given(r, deviceOnly))
                {
                    throw new CliUsageException($"{deviceOnly.Name} applies to --level device only");
                }
            }

            if (CliOptions.Given(r, sweep) && CliOptions.Given(r, pages))
            {
                throw new CliUsageException("--pages and --sweep cannot be used together (the sweep sets the sizes)");
            }

            IReadOnlyList<ComparePolicy> chosen = r.GetValue(policies) ?? ComparePolicies.All;
            var options = new ComparisonOptions
            {
                Level = hmm ? CompareLevel.Hmm : CompareLevel.Device,
                Pages = r.GetValue(pages),
                Workload = r.GetValue(workload)!,
                Policies = CliOptions.Given(r, sweep) && !CliOptions.Given(r, policies) ? s_sweepDefault : chosen,
                Launcher = Enum.Parse<LauncherKind>(r.GetValue(launcher)!, ignoreCase: true),
                MonitorBatch = r.GetValue(monitorBatch),
                FaultBatch = r.GetValue(faultBatch),
                Replay = ReplayPolicies.TryParse(r.GetValue(replay)!, out ReplayPolicy rp) ? rp : d.Replay,
                Seed = r.GetValue(seed),
                FillByte = (byte)r.GetValue(fill),
                Repeat = CliOptions.Given(r, repeat) ? r.GetValue(repeat) : null,
            };
            // Messages name the workload as the user typed it: its text form rounds P (sparse:0.0000001 reads "sparse:0").
            string workloadText = r.GetResult(workload)?.Tokens.FirstOrDefault()?.Value ?? options.Workload.ToString();
            return Run(context, options, workloadText, r.GetValue(sweep), r.GetValue(json), r.GetValue(chart), !r.GetValue(noProgress), r.GetValue(calibration));
        });
        return command;
    }

    /// <summary>Checks the input, runs the comparison (or sweep), prints and writes the results; the exit code says whether every row ended as its policy must.</summary>
    private static int Run(CliContext context, ComparisonOptions options, string workloadText, string? sweepText, string? jsonPath, string? chartPath, bool progress, string? calibrationPath)
    {
        if (options.Validate() is { } invalid)
        {
            throw new CliUsageException(invalid);
        }

        IReadOnlyList<int>? sizes = sweepText is null ? null : ParseSweep(sweepText);
        CheckOutput("--json", jsonPath, allowStdout: true, ".json", null);
        CheckOutput("--chart", chartPath, allowStdout: false, ".png", ".svg");
        int largest = sizes?.Max() ?? options.Pages;
        if (options.Level == CompareLevel.Device && options.Workload.Generate(sizes?[0] ?? options.Pages, options.Seed).TouchedPages == 0)
        {
            throw new CliUsageException($"--workload {workloadText} touches no page of {sizes?[0] ?? options.Pages:N0} (seed {options.Seed}): raise P or --pages");
        }

        CliApp.CheckMemory(sizes is null ? $"--pages={options.Pages}" : $"--sweep {sweepText}", Comparison.EstimateBytes(largest));
        (CostModel model, CalibrationReport? calibration) = LoadModel(context, calibrationPath);
        using DeviceLauncher? launcher = options.Level == CompareLevel.Device ? CreateLauncher(options.Launcher) : null;

        bool table = jsonPath != "-";
        var view = new CompareView(context, options, model, calibration);
        HostLoad load = HostLoad.Current();
        if (table)
        {
            view.Header(launcher?.Description, load, sizes);
        }

        IReadOnlyList<CompareResult> results = CliConsole.WithProgress(context, progress, report =>
        {
            void Progress(CompareProgress p) => report(p.Done, p.Total, p.Now);
            return sizes is null
                ? [Comparison.Run(options, launcher, Progress, context.Cancellation)]
                : Comparison.Sweep(options, sizes, launcher, Progress, context.Cancellation);
        });

        CompareReport compareReport = CompareReport.Build(results, model, calibration, CliApp.Tool, sweepText);
        if (table)
        {
            view.Results(results, compareReport, load);
        }

        if (jsonPath == "-")
        {
            context.Out.WriteLine(compareReport.ToJson());
        }
        else if (jsonPath is not null)
        {
            OutputFiles.WriteText("--json", jsonPath, compareReport.ToJson(), context.Cancellation);
            WriteIf(table, context, $"wrote {jsonPath}");
        }

        if (chartPath is not null)
        {
            OutputFiles.Write("--chart", () => ChartWriter.Write(compareReport, chartPath, context.Cancellation));
            WriteIf(table, context, $"wrote {chartPath}");
        }

        return compareReport.AsExpected ? 0 : CliApp.RunFailed;
    }

    /// <summary>Writes a line to standard output unless it carries the JSON.</summary>
    private static void WriteIf(bool table, CliContext context, string line)
    {
        if (table)
        {
            context.Out.WriteLine(line);
        }
    }

    /// <summary>The cost model: from --calibration FILE, from the default calibration file when it exists, else the
    /// built-in defaults. A calibration that cannot be read is bad input.</summary>
    private static (CostModel Model, CalibrationReport? Calibration) LoadModel(CliContext context, string? option)
    {
        if (string.Equals(option, "none", StringComparison.OrdinalIgnoreCase))
        {
            return (CostModel.Defaults, null);
        }

        string path = option ?? CalibrationFile.DefaultPath(context.ConfigDirectory);
        if (option is null && !File.Exists(path))
        {
            return (CostModel.Defaults, null);
        }

        if (!File.Exists(path))
        {
            throw new CliUsageException($"--calibration: {path} does not exist (run 'mirroremu calibrate --output {path}')");
        }

        return CalibrationFile.TryLoad(path, out CalibrationReport? report, out string? error)
            ? (report!.ToCostModel(path), report)
            : throw new CliUsageException($"calibration {error}");
    }

    /// <summary>The launcher, or bad input naming why there is none here.</summary>
    private static DeviceLauncher CreateLauncher(LauncherKind kind) =>
        DeviceLauncher.TryCreate(kind, out DeviceLauncher? launcher, out string reason)
            ? launcher
            : throw new CliUsageException($"--launcher {kind.ToString().ToLowerInvariant()}: {reason}");

    /// <summary>Parses --policies (comma-separated names, or all); an unknown name is a parse error.</summary>
    private static IReadOnlyList<ComparePolicy> ParsePolicies(string text, System.CommandLine.Parsing.ArgumentResult r)
    {
        if (string.Equals(text.Trim(), "all", StringComparison.OrdinalIgnoreCase))
        {
            return ComparePolicies.All;
        }

        var list = new List<ComparePolicy>();
        foreach (string part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!ComparePolicies.TryParse(part, out ComparePolicy p))
            {
                r.AddError($"--policies: '{part}' is not one of {ComparePolicies.NameList} (or all)");
                return ComparePolicies.All;
            }

            if (!list.Contains(p))
            {
                list.Add(p);
            }
        }

        if (list.Count == 0)
        {
            r.AddError("--policies: name at least one policy");
        }

        return list;
    }

    /// <summary>Parses "A..B" (k and M suffixes, powers of two, A ≤ B) into the powers of two from A to B.</summary>
    internal static IReadOnlyList<int> ParseSweep(string text)
    {
        string[] ends = text.Split("..", StringSplitOptions.TrimEntries);
        if (ends.Length != 2
            || !CliOptions.TryParseCount(ends[0], binarySuffixes: true, out long from)
            || !CliOptions.TryParseCount(ends[1], binarySuffixes: true, out long to))
        {
            throw new CliUsageException($"--sweep: '{text}' is not A..B (for example 1k..1M)");
        }

        if (from < 1 || to > ComparisonOptions.MaxPages || from > to || !IsPowerOfTwo(from) || !IsPowerOfTwo(to))
        {
            throw new CliUsageException($"--sweep: '{text}' must run from a power of two to a larger or equal one, between 1 and {ComparisonOptions.MaxPages} pages");
        }

        var sizes = new List<int>();
        for (long p = from; p <= to; p *= 2)
        {
            sizes.Add((int)p);
        }

        return sizes;
    }

    /// <summary>True for 1, 2, 4, ….</summary>
    private static bool IsPowerOfTwo(long v) => v > 0 && (v & (v - 1)) == 0;

    /// <summary>Refuses an output path that has the wrong extension or cannot be written (<see cref="OutputFiles.Check"/>),
    /// before anything runs.</summary>
    private static void CheckOutput(string option, string? path, bool allowStdout, string extension, string? otherExtension)
    {
        if (path is null || (allowStdout && path == "-"))
        {
            return;
        }

        string ext = Path.GetExtension(path).ToLowerInvariant();
        if (otherExtension is not null && ext != extension && ext != otherExtension)
        {
            throw new CliUsageException($"{option}: '{path}' must end in {extension} or {otherExtension}");
        }

        OutputFiles.Check(option, path);
    }
}
