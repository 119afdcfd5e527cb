using MirrorEmu.Hmm;
using MirrorEmu.Mm;
using MirrorEmu.Notifier;
using MirrorEmu.Telemetry;
using MirrorEmu.Uffd;
using MirrorEmu.Workloads;

namespace MirrorEmu.Regression;

/// <summary>
/// Invalidations during hmm_range_fault, made deterministic: the monitor's first <see cref="Invalidations"/> fills each
/// make the whole range read-only and writable again (two PROTECTION_VMA invalidations) while the faulting thread waits
/// with the mmap lock dropped, so the notifier sequence moves during exactly those calls and hmm_range_fault returns
/// -EBUSY (the driver loop then calls again), as mm/hmm.c does when mmu_interval_check_retry() fails.
/// </summary>
internal sealed class InvalidationScenario : CounterScenario
{
    /// <summary>Pages in the range.</summary>
    public const int Pages = 1024;

    /// <summary>Fills that invalidate.</summary>
    public const int Invalidations = 3;

    private readonly UffdFaultPolicy _policy;

    /// <summary>The scenario under <paramref name="policy"/> (SinglePage or Batched).</summary>
    /// <param name="policy">The policy.</param>
    public InvalidationScenario(UffdFaultPolicy policy) => _policy = policy;

    /// <inheritdoc/>
    public override string Name => _policy == UffdFaultPolicy.Batched ? "hmm/invalidate-batched" : "hmm/invalidate-singlepage";

    /// <inheritdoc/>
    public override string Description =>
        $"driver loop over {Pages} userfaultfd pages under {_policy}; the monitor's first {Invalidations} fills mprotect the whole range (the sequence moves mid-call)";

    /// <inheritdoc/>
    public override IReadOnlyList<CounterFigure> Run()
    {
        InvalidatingFill? fill = null;
        using var space = new ScenarioSpace(
            Pages,
            ComparePolicies.MonitorResolution(_policy),
            HmmPolicyScenario.BlockPages,
            (mm, start) => fill = new InvalidatingFill(mm, start, (ulong)Pages * PageGeometry.PageSize, Invalidations));
        var ops = new SeqNotifierOps();
        HmmRange range = space.NewRange(_policy, ops);
        space.Mm.Counters.Reset();
        space.Mm.Notifiers.Stats.Reset();
        KResult rc = HmmDriverLoop.Run(range, ops.DriverLock, 60_000);
        Require(rc.IsOk, $"the driver loop failed: {rc}");
        Require(fill!.Done == Invalidations, $"the monitor invalidated {fill.Done} times, not {Invalidations}");
        Require(space.HoldsEverywhere(range, ScenarioSpace.FillByte), "a page is not valid, writable and filled after the invalidations");
        HmmFaultStats s = range.Stats;
        return
        [
            Figure("calls", s.Calls),
            Figure("walks", s.Walks),
            Figure("ebusyReturns", s.EbusyReturns),
            Figure("ebusyRestarts", s.EbusyRestarts),
            Figure("roundTrips", s.RoundTrips),
            Figure("pagesFaulted", s.PagesFaulted),
            Figure("notifier.oddPeriods", space.Mm.Notifiers.Stats[NotifierStat.OddPeriods]),
            Figure("notifier.callbacks", space.Mm.Notifiers.Stats[NotifierStat.Callbacks]),
            Figure("mm.faults", space.Mm.Counters[MmEvent.Faults]),
        ];
    }

    /// <summary>Fills pages with <see cref="ScenarioSpace.FillByte"/> and, on its first calls, mprotects the range
    /// read-only and back (on the monitor's thread, while the faulting thread waits with the mmap lock dropped).</summary>
    private sealed class InvalidatingFill(AddressSpace mm, ulong start, ulong bytes, int times) : IUffdFill
    {
        public int Done { get; private set; }

        public void Fill(ulong address, Span<byte> destination)
        {
            destination.Fill(ScenarioSpace.FillByte);
            if (Done < times)
            {
                Done++;
                mm.Mprotect(start, bytes, Prot.Read).ThrowIfError();
                mm.Mprotect(start, bytes, Prot.ReadWrite).ThrowIfError();
            }
        }
    }
}
