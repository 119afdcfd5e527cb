using System.Diagnostics;
using MirrorEmu.Hmm;
using MirrorEmu.Mm;

namespace MirrorEmu.Workloads;

/// <summary>What <see cref="PolicyComparison"/> runs.</summary>
public sealed record PolicyComparisonOptions
{
    /// <summary>Pages in the fresh range each scenario faults.</summary>
    public int Pages { get; init; } = 65_536;

    /// <summary>The userfaultfd policies compared (the regular VMA always runs first, as the baseline).</summary>
    public IReadOnlyList<UffdFaultPolicy> Policies { get; init; } = Enum.GetValues<UffdFaultPolicy>();

    /// <summary>Pages the monitor resolves per event under <see cref="UffdFaultPolicy.Batched"/>.</summary>
    public int MonitorBatch { get; init; } = 64;

    /// <summary>Seeds the byte pattern the monitor fills pages with (checked afterwards).</summary>
    public int Seed { get; init; } = 12345;
}

/// <summary>One scenario's figures: counters the code paths incremented and a Stopwatch time.</summary>
public sealed record PolicyComparisonRow
{
    /// <summary>"regular" or the policy's name.</summary>
    public required string Scenario { get; init; }

    /// <summary>Pages in the range.</summary>
    public long Pages { get; init; }

    /// <summary>Pages the fault path made present.</summary>
    public long PagesFaulted { get; init; }

    /// <summary>userfaultfd round trips.</summary>
    public long RoundTrips { get; init; }

    /// <summary>Walk restarts after a lock-dropping fault (-EBUSY inside hmm_range_fault).</summary>
    public long EbusyRestarts { get; init; }

    /// <summary>-EBUSY returned to the driver loop (the notifier sequence moved).</summary>
    public long EbusyReturns { get; init; }

    /// <summary>Walk passes.</summary>
    public long Walks { get; init; }

    /// <summary>mmap lock drops by the fault path.</summary>
    public long LockDrops { get; init; }

    /// <summary>Wall-clock nanoseconds per page of the driver loop (measured).</summary>
    public double NsPerPage { get; init; }

    /// <summary>NsPerPage divided by the regular VMA's (measured); null for the baseline or a failed run.</summary>
    public double? Slowdown { get; init; }

    /// <summary>The error the driver loop ended with (for example -EFAULT under Unsupported), or null.</summary>
    public string? Error { get; init; }

    /// <summary>True when every page ended valid, writable and holding the monitor's bytes (or zeros for the regular VMA).</summary>
    public bool Verified { get; init; }
}

/// <summary>
/// The headline comparison at the hmm_range_fault level: for a fresh range, a regular VMA and a
/// userfaultfd VMA under each policy, the driver-style loop (read_begin → lock → hmm_range_fault →
/// unlock → driver lock → read_retry) faults the whole range writable, with a monitor thread filling
/// pages (SinglePage: one page per event; Batched: an aligned block of <see cref="PolicyComparisonOptions.MonitorBatch"/>;
/// RangeEvent: the whole run the message names).
/// </summary>
public static class PolicyComparison
{
    /// <summary>Bytes a comparison needs: one pool of frames for the range (every scenario reuses it), a margin for the
    /// pool's page tables, counts and free queue and the pfn array of each range, and the monitor's buffer; what a caller
    /// checks against <see cref="Telemetry.MemoryBudget"/> before starting.</summary>
    /// <param name="options">What will run.</param>
    public static long EstimateBytes(PolicyComparisonOptions options) =>
        ((long)options.Pages * (PageGeometry.PageSizeInt + 32)) + (128L << 20);

    /// <summary>Runs every scenario in turn.</summary>
    /// <param name="options">What to run.</param>
    /// <param name="progress">Told the name of each scenario as it starts.</param>
    /// <returns>One row per scenario, the regular VMA first.</returns>
    /// <remarks>
    /// Every scenario draws on one frame pool that a first populate has already made resident, and a short
    /// run of every scenario precedes the measured ones, so the times are the emulator's own work, not
    /// the host's first touch of fresh memory nor the JIT's first compilation.
    /// </remarks>
    public static IReadOnlyList<PolicyComparisonRow> Run(PolicyComparisonOptions options, Action<string>? progress = null)
    {
        ulong bytes = (ulong)options.Pages * PageGeometry.PageSize;
        using var memory = new PhysicalMemory(bytes + (64UL << 20));
        progress?.Invoke("warming up");
        using (var warm = new AddressSpace(memory))
        {
            warm.MmapAnonymous(bytes, Prot.ReadWrite, MapFlags.Private | MapFlags.Populate, out _).ThrowIfError();
        }

        var small = options with { Pages = Math.Min(options.Pages, 4096) };
        RunOne(small, memory, null);
        foreach (UffdFaultPolicy policy in options.Policies)
        {
            RunOne(small, memory, policy);
        }

        var rows = new List<PolicyComparisonRow>();
        progress?.Invoke("regular");
        PolicyComparisonRow regular = RunOne(options, memory, null);
        rows.Add(regular);
        foreach (UffdFaultPolicy policy in options.Policies)
        {
            progress?.Invoke(policy.ToString());
            PolicyComparisonRow row = RunOne(options, memory, policy);
            rows.Add(row.Error is null ? row with { Slowdown = row.NsPerPage / regular.NsPerPage } : row);
        }

        return rows;
    }

    private static PolicyComparisonRow RunOne(PolicyComparisonOptions o, PhysicalMemory memory, UffdFaultPolicy? policy)
    {
        using var scenario = new PolicyScenario(memory, o.Pages, policy, (byte)(1 + (o.Seed % 255)), o.MonitorBatch);
        long t0 = Stopwatch.GetTimestamp();
        KResult rc = scenario.Fault();
        double ns = Stopwatch.GetElapsedTime(t0).TotalNanoseconds;
        HmmFaultStats stats = scenario.Range.Stats;
        return new PolicyComparisonRow
        {
            Scenario = policy?.ToString() ?? "regular",
            Pages = o.Pages,
            PagesFaulted = stats.PagesFaulted,
            RoundTrips = stats.RoundTrips,
            EbusyRestarts = stats.EbusyRestarts,
            EbusyReturns = stats.EbusyReturns,
            Walks = stats.Walks,
            LockDrops = stats.LockDrops,
            NsPerPage = ns / o.Pages,
            Error = rc.IsOk ? null : Errno.Name(rc.Code),
            Verified = rc.IsOk && scenario.Verify(),
        };
    }
}
