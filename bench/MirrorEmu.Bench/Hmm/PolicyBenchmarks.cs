using BenchmarkDotNet.Attributes;
using MirrorEmu.Hmm;
using MirrorEmu.Mm;
using MirrorEmu.Workloads;

namespace MirrorEmu.Bench.Hmm;

/// <summary>
/// Issue 4/7's policy targets, per page, on 65,536 missing pages faulted writable through
/// hmm_range_fault, against <see cref="Regular"/> (a regular VMA populated in batch) of the same run:
/// Batched with a 64-page monitor at most 2x, RangeEvent at most 1.5x; SinglePage is reported as measured.
/// Each scenario has its own address space, userfaultfd and monitor thread; the iteration setup empties
/// every range again, so all run in one job with one invocation per iteration.
/// </summary>
/// <remarks>
/// Like for like: every side writes the same bytes with the same kind of store. <see cref="Regular"/> populates in batch
/// and clears runs of fresh frames with streaming stores (AddressSpace.Populate), the monitors resolve 64 pages or more
/// per UFFDIO_COPY with streaming stores (<see cref="PageCopy.StreamingThresholdPages"/>), and they copy zeros, the bytes
/// populate writes: on the development machine a streaming store of zeros runs about 1.5x faster than one of any other
/// byte (Mm/PageStoreBenchmarks: ClearStreaming and CopyStreamingZeros against CopyStreamingPattern), so a monitor
/// copying a pattern would be measured against a cheaper baseline. `mirroremu compare` copies a non-zero byte instead,
/// because it verifies every page's bytes.
/// </remarks>
[BenchmarkCategory(BenchCategories.Fault)]
public class PolicyBenchmarks
{
    /// <summary>Pages faulted per scenario and invocation.</summary>
    public const int PageCount = 65_536;

    /// <summary>The byte the monitors copy: zero, what populate writes (see the remarks).</summary>
    public const byte Fill = 0;
    private const ulong Bytes = (ulong)PageCount * PageGeometry.PageSize;

    private PhysicalMemory _memory = null!;
    private PolicyScenario _regular = null!;
    private PolicyScenario _single = null!;
    private PolicyScenario _batched = null!;
    private PolicyScenario _rangeEvent = null!;

    /// <summary>One address space, userfaultfd and monitor per scenario, over one frame pool.</summary>
    [GlobalSetup]
    public void Setup()
    {
        _memory = new PhysicalMemory((4 * Bytes) + (64UL << 20));
        _regular = new PolicyScenario(_memory, PageCount, null, Fill, 64);
        _single = new PolicyScenario(_memory, PageCount, UffdFaultPolicy.SinglePage, Fill, 64);
        _batched = new PolicyScenario(_memory, PageCount, UffdFaultPolicy.Batched, Fill, 64);
        _rangeEvent = new PolicyScenario(_memory, PageCount, UffdFaultPolicy.RangeEvent, Fill, 64);
    }

    /// <summary>Disposes the scenarios and the pool.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        foreach (PolicyScenario s in new[] { _regular, _single, _batched, _rangeEvent })
        {
            s.Dispose();
        }

        _memory.Dispose();
    }

    /// <summary>Empties every range again (the next invocation faults fresh pages).</summary>
    [IterationSetup]
    public void Empty()
    {
        foreach (PolicyScenario s in new[] { _regular, _single, _batched, _rangeEvent })
        {
            s.Empty();
        }
    }

    /// <summary>A regular VMA, populated in batch (the baseline).</summary>
    [Benchmark(Baseline = true, OperationsPerInvoke = PageCount)]
    public int Regular() => _regular.Fault().Code;

    /// <summary>The RFC patch: one monitor round trip and one -EBUSY per page.</summary>
    [Benchmark(OperationsPerInvoke = PageCount)]
    public int SinglePage() => _single.Fault().Code;

    /// <summary>Batched, with a monitor that resolves 64 pages per event.</summary>
    [Benchmark(OperationsPerInvoke = PageCount)]
    public int Batched64() => _batched.Fault().Code;

    /// <summary>RangeEvent: one event and one multi-page copy per missing run.</summary>
    [Benchmark(OperationsPerInvoke = PageCount)]
    public int RangeEvent() => _rangeEvent.Fault().Code;
}
