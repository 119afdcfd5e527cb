using BenchmarkDotNet.Attributes;
using MirrorEmu.Hmm;
using MirrorEmu.Mm;
using MirrorEmu.Notifier;
using MirrorEmu.Uffd;

namespace MirrorEmu.Bench.Hmm;

/// <summary>
/// Issue 4/7's policy targets, per page, on 65,536 missing pages faulted writable through
/// hmm_range_fault, against <see cref="Regular"/> (a regular VMA populated in batch) of the same run:
/// Batched with a 64-page monitor at most 2x, RangeEvent at most 1.5x; SinglePage is reported as measured.
/// Each scenario has its own address space, userfaultfd and monitor thread; the iteration setup empties
/// every range again, so all run in one job with one invocation per iteration.
/// </summary>
[BenchmarkCategory(BenchCategories.Fault)]
public class PolicyBenchmarks
{
    public const int PageCount = 65_536;
    private const ulong Bytes = (ulong)PageCount * PageGeometry.PageSize;

    private readonly List<IDisposable> _owned = [];
    private Scenario _regular = null!;
    private Scenario _single = null!;
    private Scenario _batched = null!;
    private Scenario _rangeEvent = null!;

    private sealed class Scenario
    {
        public required AddressSpace Mm { get; init; }

        public required HmmRange Range { get; init; }

        public required object DriverLock { get; init; }

        public int Fault() => HmmDriverLoop.Run(Range, DriverLock, 60_000);
    }

    [GlobalSetup]
    public void Setup()
    {
        _regular = Create(null, UffdResolution.SinglePage);
        _single = Create(UffdFaultPolicy.SinglePage, UffdResolution.SinglePage);
        _batched = Create(UffdFaultPolicy.Batched, UffdResolution.Block);
        _rangeEvent = Create(UffdFaultPolicy.RangeEvent, UffdResolution.WholeRun);
    }

    private Scenario Create(UffdFaultPolicy? policy, UffdResolution resolution)
    {
        var mm = new AddressSpace(Bytes + (64UL << 20));
        mm.MmapAnonymous(Bytes, Prot.ReadWrite, MapFlags.Private, out ulong start).ThrowIfError();
        if (policy is not null)
        {
            var ctx = new Userfaultfd(mm);
            ctx.Api(UffdApi.Version, UffdFeatures.None, out _).ThrowIfError();
            ctx.Register(start, Bytes, UffdRegisterMode.Missing, out _).ThrowIfError();
            _owned.Add(new UffdMonitor(ctx, new UffdMonitorOptions { Fill = new PatternFill(0x5A), Resolution = resolution, BlockPages = 64 }));
            _owned.Add(ctx);
        }

        _owned.Add(mm);
        var ops = new SeqNotifierOps();
        var notifier = new MmuIntervalNotifier(ops);
        mm.Notifiers.Insert(notifier, start, Bytes);
        var range = new HmmRange(mm, notifier, start, start + Bytes)
        {
            DefaultFlags = HmmPfn.ReqFault | HmmPfn.ReqWrite,
            UffdPolicy = policy ?? UffdFaultPolicy.SinglePage,
        };
        return new Scenario { Mm = mm, Range = range, DriverLock = ops.DriverLock };
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        foreach (IDisposable d in _owned)
        {
            d.Dispose();
        }
    }

    [IterationSetup]
    public void Empty()
    {
        foreach (Scenario s in new[] { _regular, _single, _batched, _rangeEvent })
        {
            s.Mm.Madvise(s.Range.Start, Bytes, Advice.DontNeed).ThrowIfError();
        }
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = PageCount)]
    public int Regular() => _regular.Fault();

    [Benchmark(OperationsPerInvoke = PageCount)]
    public int SinglePage() => _single.Fault();

    [Benchmark(OperationsPerInvoke = PageCount)]
    public int Batched64() => _batched.Fault();

    [Benchmark(OperationsPerInvoke = PageCount)]
    public int RangeEvent() => _rangeEvent.Fault();
}
