using BenchmarkDotNet.Attributes;
using MirrorEmu.Mm;
using MirrorEmu.Uffd;

namespace MirrorEmu.Bench.Uffd;

/// <summary>
/// Issue 3/7's targets, same run: a single-page hand-off (faulting thread → monitor thread → UFFDIO_COPY
/// → wake) at a median of at most 2 µs, and resolving 64 pages per event at most 1.5x regular
/// MADV_POPULATE_WRITE per page. Every benchmark faults 4,096 fresh pages per invocation (the
/// iteration setup empties the ranges again), so all run in one job and the ratios are against
/// <see cref="RegularPopulate"/> of the same run. <see cref="EventPingPong"/> is a bare
/// ManualResetEventSlim round trip between two threads, for scale; <see cref="CopyOnly64"/> is the
/// floor under <see cref="UffdBlock64"/>: the same UFFDIO_COPY calls of 64 pages, made by the benchmark
/// thread itself, with no fault, message, monitor or wake. Bench Uffd/KernelUffdBenchmarks measures the
/// host kernel's userfaultfd the same way.
/// </summary>
[BenchmarkCategory(BenchCategories.Uffd)]
public class UffdRoundTripBenchmarks
{
    public const int PageCount = 4096;
    private const ulong Bytes = (ulong)PageCount * PageGeometry.PageSize;

    private AddressSpace _mm = null!;
    private ulong _regular;
    private ulong _single;
    private ulong _block;
    private ulong _direct;
    private ulong _zeros;
    private Userfaultfd _singleCtx = null!;
    private Userfaultfd _blockCtx = null!;
    private Userfaultfd _directCtx = null!;
    private Userfaultfd _zerosCtx = null!;
    private UffdMonitor _zerosMonitor = null!;
    private readonly PatternFill _directFill = new(3);
    private UffdMonitor _singleMonitor = null!;
    private UffdMonitor _blockMonitor = null!;
    private PingPonger _ponger = null!;

    [GlobalSetup]
    public void Setup()
    {
        _mm = new AddressSpace(memoryLimitBytes: 1UL << 30);
        _mm.MmapAnonymous(Bytes, Prot.ReadWrite, MapFlags.Private, out _regular).ThrowIfError();
        _mm.MmapAnonymous(Bytes, Prot.ReadWrite, MapFlags.Private, out _single).ThrowIfError();
        _mm.MmapAnonymous(Bytes, Prot.ReadWrite, MapFlags.Private, out _block).ThrowIfError();
        _mm.MmapAnonymous(Bytes, Prot.ReadWrite, MapFlags.Private, out _direct).ThrowIfError();
        _mm.MmapAnonymous(Bytes, Prot.ReadWrite, MapFlags.Private, out _zeros).ThrowIfError();
        _singleCtx = Register(_single);
        _blockCtx = Register(_block);
        _directCtx = Register(_direct);
        _zerosCtx = Register(_zeros);
        _singleMonitor = new UffdMonitor(_singleCtx, new UffdMonitorOptions { Fill = new PatternFill(1), Resolution = UffdResolution.SinglePage });
        _blockMonitor = new UffdMonitor(_blockCtx, new UffdMonitorOptions { Fill = new PatternFill(2), Resolution = UffdResolution.Block, BlockPages = 64 });
        _zerosMonitor = new UffdMonitor(_zerosCtx, new UffdMonitorOptions { Fill = new ZeroFill(), Resolution = UffdResolution.Block, BlockPages = 64 });
        _ponger = new PingPonger(new EventSignal(64), new EventSignal(64), "ponger");
    }

    private Userfaultfd Register(ulong start)
    {
        var ctx = new Userfaultfd(_mm);
        ctx.Api(UffdApi.Version, UffdFeatures.None, out _).ThrowIfError();
        ctx.Register(start, Bytes, UffdRegisterMode.Missing, out _).ThrowIfError();
        return ctx;
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _ponger.Dispose();
        _singleMonitor.Dispose();
        _blockMonitor.Dispose();
        _zerosMonitor.Dispose();
        _singleCtx.Dispose();
        _blockCtx.Dispose();
        _directCtx.Dispose();
        _zerosCtx.Dispose();
        _mm.Dispose();
    }

    [IterationSetup]
    public void Empty()
    {
        _mm.Madvise(_regular, Bytes, Advice.DontNeed).ThrowIfError();
        _mm.Madvise(_single, Bytes, Advice.DontNeed).ThrowIfError();
        _mm.Madvise(_block, Bytes, Advice.DontNeed).ThrowIfError();
        _mm.Madvise(_direct, Bytes, Advice.DontNeed).ThrowIfError();
        _mm.Madvise(_zeros, Bytes, Advice.DontNeed).ThrowIfError();
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = PageCount)]
    public KResult RegularPopulate() => _mm.Madvise(_regular, Bytes, Advice.PopulateWrite);

    /// <summary>One hand-off per page: 4,096 round trips.</summary>
    [Benchmark(OperationsPerInvoke = PageCount)]
    public KResult UffdSinglePageHandOff() => _mm.Madvise(_single, Bytes, Advice.PopulateWrite);

    /// <summary>One hand-off per 64 pages: the monitor copies the aligned 64-page block around each fault.</summary>
    [Benchmark(OperationsPerInvoke = PageCount)]
    public KResult UffdBlock64() => _mm.Madvise(_block, Bytes, Advice.PopulateWrite);

    /// <summary>As <see cref="UffdBlock64"/>, but the monitor copies zeros, the bytes populate writes, with streaming
    /// stores as populate clears: the like-for-like figure; what is left of the difference from
    /// <see cref="RegularPopulate"/> is the copy's reads and the userfaultfd machinery.</summary>
    [Benchmark(OperationsPerInvoke = PageCount)]
    public KResult UffdBlock64Zeros() => _mm.Madvise(_zeros, Bytes, Advice.PopulateWrite);

    /// <summary>UFFDIO_COPY of the 64 blocks of 64 pages from the benchmark thread: the copy alone, no hand-off.</summary>
    [Benchmark(OperationsPerInvoke = PageCount)]
    public ulong CopyOnly64()
    {
        const int Block = 64 * PageGeometry.PageSizeInt;
        ulong total = 0;
        for (ulong at = _direct; at < _direct + Bytes; at += Block)
        {
            KResult rc = _directCtx.Copy(at, _directFill.Source(at, Block), UffdCopyMode.None, out ulong copied);
            if (!rc.IsOk)
            {
                throw new InvalidOperationException($"UFFDIO_COPY at 0x{at:X}: {rc}");
            }

            total += copied;
        }

        return total;
    }

    /// <summary>A bare ManualResetEventSlim ping-pong between two threads, each event spinning 64 times before it blocks:
    /// two wakes per round trip, for scale (the userfaultfd hand-off polls for an adaptive time instead: Uffd/HandOffSpin).</summary>
    [Benchmark(OperationsPerInvoke = PageCount)]
    public int EventPingPong() => _ponger.RoundTrips(PageCount);
}
