using MirrorEmu.Device;
using MirrorEmu.Hmm;
using MirrorEmu.Mm;
using MirrorEmu.Notifier;

namespace MirrorEmu.Regression;

/// <summary>The operations whose managed allocation an <see cref="AllocationScenario"/> counts.</summary>
internal enum AllocationOp
{
    /// <summary>hmm_range_fault over 512 populated pages under the mmap read lock (the walker: must not allocate).</summary>
    RangeFaultPopulated,

    /// <summary>An overlap query on the notifier interval tree (must not allocate).</summary>
    IntervalQuery,

    /// <summary>invalidate_range_start + end over a range with subscriptions (must not allocate).</summary>
    InvalidateStartEnd,

    /// <summary>An 8-byte CPU read of a present page (must not allocate).</summary>
    CpuReadWord,

    /// <summary>A device read kernel over 16 mirrored pages on the direct launcher, on one thread (what a launch costs the
    /// caller's thread: Parallel.For's bookkeeping, which depends on the thread pool's state, 56 to 89 bytes per launch
    /// across runs of the test suite; hence its tolerance, <see cref="AllocationScenario.LaunchTolerance"/>).</summary>
    DeviceLaunchMirrored,
}

/// <summary>
/// Bytes allocated per operation, as <see cref="GC.GetAllocatedBytesForCurrentThread"/> counts them around
/// <see cref="MeasuredOps"/> calls of a warmed operation (after <see cref="WarmupOps"/> calls, so first-call caches and
/// tiered-JIT bookkeeping are paid): the figure docs/design.md's invariants keep at 0 on the fault and invalidate paths, measured
/// outside BenchmarkDotNet so it can be gated exactly in CI. Only the calling thread's allocations count, so each
/// operation runs on this thread alone.
/// </summary>
internal sealed class AllocationScenario : CounterScenario
{
    /// <summary>Calls before measuring.</summary>
    public const int WarmupOps = 64;

    /// <summary>Calls measured.</summary>
    public const int MeasuredOps = 256;

    /// <summary>The relative tolerance of <see cref="AllocationOp.DeviceLaunchMirrored"/> (±100 %): a launch's own
    /// bookkeeping moves with the thread pool's state, while an allocation per page or per element, the regression this
    /// guards against, would add thousands of bytes per launch. Every other operation is exact (0 bytes).</summary>
    public const double LaunchTolerance = 1.0;

    private readonly AllocationOp _op;

    /// <summary>The scenario of one operation.</summary>
    /// <param name="op">The operation.</param>
    public AllocationScenario(AllocationOp op) => _op = op;

    /// <inheritdoc/>
    public override string Name => _op switch
    {
        AllocationOp.RangeFaultPopulated => "alloc/range-fault-populated",
        AllocationOp.IntervalQuery => "alloc/interval-query",
        AllocationOp.InvalidateStartEnd => "alloc/invalidate-start-end",
        AllocationOp.CpuReadWord => "alloc/cpu-read-word",
        _ => "alloc/device-launch-mirrored",
    };

    /// <inheritdoc/>
    public override string Description => $"managed bytes allocated per call of a warmed {_op} ({MeasuredOps} calls after {WarmupOps})";

    /// <inheritdoc/>
    public override IReadOnlyList<CounterFigure> Run()
    {
        using var space = new ScenarioSpace(512, resolution: null);
        space.Mm.Madvise(space.Start, space.Bytes, Advice.PopulateWrite).ThrowIfError();
        Func<long> op;
        IDisposable? extra = null;
        switch (_op)
        {
            case AllocationOp.RangeFaultPopulated:
            {
                var ops = new SeqNotifierOps();
                HmmRange range = space.NewRange(UffdFaultPolicy.Batched, ops);
                range.NotifierSeq = range.Notifier.ReadBegin();
                op = () =>
                {
                    space.Mm.MmapLock.ReadLock();
                    try
                    {
                        return HmmFault.RangeFault(range).Code;
                    }
                    finally
                    {
                        space.Mm.MmapLock.ReadUnlock();
                    }
                };
                break;
            }

            case AllocationOp.IntervalQuery or AllocationOp.InvalidateStartEnd:
            {
                var subs = new MmuNotifierSubscriptions();
                var ops = new SeqNotifierOps();
                for (int i = 0; i < 1024; i++)
                {
                    subs.Insert(new MmuIntervalNotifier(ops), (ulong)i << 24, 1UL << 20).ThrowIfError();
                }

                var found = new MmuIntervalNotifier[16];
                int next = 0;
                op = _op == AllocationOp.IntervalQuery
                    ? () => subs.FindOverlaps((ulong)(next++ & 1023) << 24, ((ulong)(next & 1023) << 24) + (1UL << 16), found)
                    : () =>
                    {
                        var r = new NotifierRange((ulong)(next++ & 1023) << 24, ((ulong)(next & 1023) << 24) + (1UL << 16), NotifierEvent.Clear);
                        int rc = subs.InvalidateRangeStart(r);
                        subs.InvalidateRangeEnd(r);
                        return rc;
                    };
                break;
            }

            case AllocationOp.CpuReadWord:
                op = () => (long)space.Mm.CpuReadUInt64(space.Start + 4096);
                break;
            default:
            {
                var launcher = new DirectLauncher(maxDegreeOfParallelism: 1);
                var device = new MirrorDevice(space.Mm, launcher, new DeviceOptions { Name = Name, ReplayPolicy = ReplayPolicy.Once });
                extra = new Both(device, launcher);
                var output = new ulong[16 * PageGeometry.PageSizeInt / sizeof(ulong)];
                device.LaunchRead(space.Start, output, out _).ThrowIfError();
                op = () => device.LaunchRead(space.Start, output, out _).Code;
                break;
            }
        }

        try
        {
            long sink = 0;
            for (int i = 0; i < WarmupOps; i++)
            {
                sink += op();
            }

            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < MeasuredOps; i++)
            {
                sink += op();
            }

            long bytes = GC.GetAllocatedBytesForCurrentThread() - before;
            GC.KeepAlive(sink);
            return [Figure("bytesPerOp", bytes / MeasuredOps, _op == AllocationOp.DeviceLaunchMirrored ? LaunchTolerance : 0)];
        }
        finally
        {
            extra?.Dispose();
        }
    }

    private sealed class Both(IDisposable first, IDisposable second) : IDisposable
    {
        public void Dispose()
        {
            first.Dispose();
            second.Dispose();
        }
    }
}
