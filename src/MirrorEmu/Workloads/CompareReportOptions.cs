namespace MirrorEmu.Workloads;

/// <summary>What a <see cref="CompareReport"/> ran: <c>mirroremu compare</c>'s options as given.</summary>
public sealed record CompareReportOptions
{
    /// <summary>"device" or "hmm".</summary>
    public string Level { get; init; } = "device";

    /// <summary>Pages in the fresh range (for a sweep, the smallest).</summary>
    public int Pages { get; init; }

    /// <summary>The workload.</summary>
    public string Workload { get; init; } = "seq";

    /// <summary>The policies' names, the regular VMA first.</summary>
    public IReadOnlyList<string> Policies { get; init; } = [];

    /// <summary>The launcher asked for ("direct"); null at the hmm level.</summary>
    public string? Launcher { get; init; }

    /// <summary>Pages per monitor event under uffd-batched.</summary>
    public int MonitorBatch { get; init; }

    /// <summary>Fault entries per driver batch.</summary>
    public int FaultBatch { get; init; }

    /// <summary>The replay policy ("once").</summary>
    public string Replay { get; init; } = string.Empty;

    /// <summary>The workload's seed.</summary>
    public int Seed { get; init; }

    /// <summary>The byte the monitor fills pages with.</summary>
    public int FillByte { get; init; }

    /// <summary>Rounds asked for with --repeat, or null (a time budget).</summary>
    public int? Repeat { get; init; }

    /// <summary>The sweep as written ("1k..1M"), or null.</summary>
    public string? Sweep { get; init; }

    /// <summary>The options of <paramref name="o"/>.</summary>
    /// <param name="o">The comparison's options.</param>
    /// <param name="sweep">The sweep as written, or null.</param>
    public static CompareReportOptions From(ComparisonOptions o, string? sweep)
    {
        ArgumentNullException.ThrowIfNull(o);
        bool device = o.Level == CompareLevel.Device;
        return new CompareReportOptions
        {
            Level = device ? "device" : "hmm",
            Pages = o.Pages,
            Workload = device ? o.Workload.ToString() : "hmm-range",
            Policies = o.Rows.Select(p => p.Name()).ToList(),
            Launcher = device ? o.Launcher.ToString().ToLowerInvariant() : null,
            MonitorBatch = o.MonitorBatch,
            FaultBatch = o.FaultBatch,
            Replay = ReplayPolicies.Name(o.Replay),
            Seed = o.Seed,
            FillByte = o.FillByte,
            Repeat = o.Repeat,
            Sweep = sweep,
        };
    }
}
