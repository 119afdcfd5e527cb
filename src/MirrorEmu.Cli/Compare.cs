using System.Globalization;
using System.Text.Json;
using MirrorEmu.Hmm;
using MirrorEmu.Workloads;
using Spectre.Console;

namespace MirrorEmu.Cli;

/// <summary><c>mirroremu compare</c>: the policy table.</summary>
internal static class Compare
{
    public static int Run(TextWriter stdout, int pages, string policies, int monitorBatch, int seed, bool json)
    {
        if (pages < 1 || pages > (1 << 24))
        {
            throw new CliUsageException($"--pages={pages} must be between 1 and 16777216");
        }

        if (monitorBatch < 1 || monitorBatch > 512 || (monitorBatch & (monitorBatch - 1)) != 0)
        {
            throw new CliUsageException($"--monitor-batch={monitorBatch} must be a power of two from 1 to 512");
        }

        var options = new PolicyComparisonOptions { Pages = pages, Policies = ParsePolicies(policies), MonitorBatch = monitorBatch, Seed = seed };
        CliApp.CheckMemory($"--pages={pages}", PolicyComparison.EstimateBytes(options));
        IAnsiConsole console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(stdout) });
        console.Profile.Width = Math.Max(console.Profile.Width, 132);
        IReadOnlyList<PolicyComparisonRow> rows = json
            ? PolicyComparison.Run(options)
            : console.Status().Start("running", ctx => PolicyComparison.Run(options, name => ctx.Status($"faulting {pages:N0} pages: {name}")));
        if (json)
        {
            stdout.WriteLine(JsonSerializer.Serialize(new { options.Pages, Policies = options.Policies.Select(p => p.ToString()), options.MonitorBatch, options.Seed, Rows = rows }, new JsonSerializerOptions { WriteIndented = true }));
            return rows.All(r => r.Error is null || r.Scenario == nameof(UffdFaultPolicy.Unsupported)) ? 0 : 1;
        }

        var table = new Table().Title($"hmm_range_fault of {pages:N0} fresh pages, written, through the driver loop").Border(TableBorder.Rounded);
        foreach (string column in new[] { "scenario", "pages", "round trips", "-EBUSY restarts", "walks", "lock drops", "ns/page (measured)", "vs regular", "data" })
        {
            table.AddColumn(new TableColumn(column).RightAligned());
        }

        foreach (PolicyComparisonRow r in rows)
        {
            table.AddRow(
                r.Scenario,
                r.PagesFaulted.ToString("N0", CultureInfo.InvariantCulture),
                r.RoundTrips.ToString("N0", CultureInfo.InvariantCulture),
                r.EbusyRestarts.ToString("N0", CultureInfo.InvariantCulture),
                r.Walks.ToString("N0", CultureInfo.InvariantCulture),
                r.LockDrops.ToString("N0", CultureInfo.InvariantCulture),
                r.Error is null ? r.NsPerPage.ToString("N1", CultureInfo.InvariantCulture) : "-",
                r.Error is not null ? Markup.Escape(r.Error) : r.Slowdown is { } s ? s.ToString("N2", CultureInfo.InvariantCulture) + "x" : "1.00x (baseline)",
                r.Error is not null ? "-" : r.Verified ? "verified" : "[red]WRONG[/]");
        }

        console.Write(table);
        console.WriteLine($"monitor: one page per event (SinglePage), aligned blocks of {monitorBatch} (Batched), the whole missing run (RangeEvent); pattern seed {seed}.");
        console.WriteLine("Times are this emulator's own wall-clock work on this machine; counters come from the code paths.");
        return rows.All(r => r.Error is null ? r.Verified : r.Scenario == nameof(UffdFaultPolicy.Unsupported)) ? 0 : 1;
    }

    private static IReadOnlyList<UffdFaultPolicy> ParsePolicies(string text)
    {
        if (string.Equals(text.Trim(), "all", StringComparison.OrdinalIgnoreCase))
        {
            return Enum.GetValues<UffdFaultPolicy>();
        }

        var list = new List<UffdFaultPolicy>();
        foreach (string part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!Enum.TryParse(part, ignoreCase: true, out UffdFaultPolicy p) || !Enum.IsDefined(p) || int.TryParse(part, out _))
            {
                throw new CliUsageException($"--policies: '{part}' is not one of Unsupported, SinglePage, Batched, RangeEvent");
            }

            if (!list.Contains(p))
            {
                list.Add(p);
            }
        }

        if (list.Count == 0)
        {
            throw new CliUsageException("--policies: name at least one policy");
        }

        return list;
    }
}
