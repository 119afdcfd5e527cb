using MirrorEmu.Hmm;
using MirrorEmu.Mm;
using MirrorEmu.Notifier;
using MirrorEmu.Telemetry;
using MirrorEmu.Uffd;
using MirrorEmu.Workloads;

namespace MirrorEmu.Regression;

/// <summary>
/// hmm_range_fault through the driver loop (read_begin → mmap read lock → hmm_range_fault → unlock → driver lock →
/// read_retry) over a fresh range, writable, in a regular VMA or in a userfaultfd VMA under one of the four policies; the
/// monitor resolves a page per event (SinglePage, Unsupported), an aligned block of 64 (Batched) or the whole missing run
/// (RangeEvent). Under RangeEvent three pages are filled beforehand, so the range holds four missing runs.
/// </summary>
internal sealed class HmmPolicyScenario : CounterScenario
{
    /// <summary>Pages in the range.</summary>
    public const int Pages = 2048;

    /// <summary>The monitor's block under Batched.</summary>
    public const int BlockPages = 64;

    private static readonly int[] s_prefilled = [100, 1000, 1500];

    private readonly UffdFaultPolicy? _policy;

    /// <summary>The scenario of one policy, or of the regular VMA (null).</summary>
    /// <param name="policy">The policy, or null.</param>
    public HmmPolicyScenario(UffdFaultPolicy? policy) => _policy = policy;

    /// <inheritdoc/>
    public override string Name => _policy switch
    {
        null => "hmm/regular",
        UffdFaultPolicy.Unsupported => "hmm/uffd-unsupported",
        UffdFaultPolicy.SinglePage => "hmm/uffd-singlepage",
        UffdFaultPolicy.Batched => "hmm/uffd-batched",
        _ => "hmm/uffd-rangeevent",
    };

    /// <inheritdoc/>
    public override string Description => _policy is null
        ? $"driver loop over {Pages} fresh pages of a regular VMA, writable"
        : $"driver loop over {Pages} fresh pages of a userfaultfd VMA under {_policy}, writable";

    /// <inheritdoc/>
    public override IReadOnlyList<CounterFigure> Run()
    {
        UffdResolution? resolution = _policy is { } policy ? ComparePolicies.MonitorResolution(policy) : null;
        using var space = new ScenarioSpace(Pages, resolution, BlockPages);
        if (_policy == UffdFaultPolicy.RangeEvent)
        {
            byte[] page = new byte[PageGeometry.PageSizeInt];
            page.AsSpan().Fill(ScenarioSpace.FillByte);
            foreach (int p in s_prefilled)
            {
                space.Ctx!.Copy(space.Start + ((ulong)p * PageGeometry.PageSize), page, UffdCopyMode.None, out _).ThrowIfError();
            }
        }

        var ops = new SeqNotifierOps();
        HmmRange range = space.NewRange(_policy ?? UffdFaultPolicy.SinglePage, ops);
        space.Mm.Counters.Reset();
        KResult rc = HmmDriverLoop.Run(range, ops.DriverLock, 60_000);
        if (_policy == UffdFaultPolicy.Unsupported)
        {
            Require(rc.Code == -Errno.EFAULT, $"expected -EFAULT (handle_userfault answers SIGBUS without ALLOW_RETRY), got {rc}");
        }
        else
        {
            Require(rc.IsOk, $"the driver loop failed: {rc}");
            Require(space.HoldsEverywhere(range, _policy is null ? (byte)0 : ScenarioSpace.FillByte), "a page is not valid, writable and filled as expected");
        }

        HmmFaultStats s = range.Stats;
        var figures = new List<CounterFigure>
        {
            Figure("errno", -rc.Code),
            Figure("calls", s.Calls),
            Figure("walks", s.Walks),
            Figure("pagesFaulted", s.PagesFaulted),
            Figure("roundTrips", s.RoundTrips),
            Figure("ebusyRestarts", s.EbusyRestarts),
            Figure("ebusyReturns", s.EbusyReturns),
            Figure("lockDrops", s.LockDrops),
            Figure("faultRuns", s.FaultRuns),
            Figure("mm.faults", space.Mm.Counters[MmEvent.Faults]),
            Figure("mm.faultsAnon", space.Mm.Counters[MmEvent.FaultsAnon]),
            Figure("mm.userfaultFaults", space.Mm.Counters[MmEvent.UserfaultFaults]),
        };
        if (space.Ctx is { } ctx)
        {
            figures.Add(Figure("uffd.faultsQueued", ctx.Stats[UffdStat.FaultsQueued]));
            figures.Add(Figure("uffd.faultsSigbus", ctx.Stats[UffdStat.FaultsSigbus]));
            figures.Add(Figure("uffd.pagesCopied", ctx.Stats[UffdStat.PagesCopied]));
            figures.Add(Figure("uffd.monitorRoundTrips", ctx.Stats[UffdStat.RoundTrips]));
        }

        return figures;
    }
}
