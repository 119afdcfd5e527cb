using BenchmarkDotNet.Attributes;
using MirrorEmu.Hmm;
using MirrorEmu.Mm;

namespace MirrorEmu.Bench.Hmm;

/// <summary>
/// Issue 4/7's walker targets on L2-resident tables (64 KiB of PTEs: 16 leaf tables of 512), one job per
/// ISA: the Vector512 scan at least 4x the Scalar job, and at least 50 % of the same job's memcpy
/// bandwidth over the same bytes (<see cref="Memcpy"/> copies the 64 KiB of PTEs into the 64 KiB of pfns,
/// the bytes a scan reads and writes). Every PTE is present, so the scan writes every output.
/// </summary>
[BenchmarkCategory(BenchCategories.Walk)]
[Config(typeof(IsaConfig))]
public class WalkerBenchmarks
{
    private const int Seed = 12345;
    private const int Entries = 8192;

    private ulong[] _ptes = null!;
    private ulong[] _pfns = null!;

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(Seed);
        _ptes = new ulong[Entries];
        _pfns = new ulong[Entries];
        for (int i = 0; i < Entries; i++)
        {
            _ptes[i] = Pte.Present((ulong)rng.NextInt64(1, 1L << 30), writable: rng.Next(2) == 0).Value;
        }
    }

    /// <summary>The scanner over 16 leaf tables, a table per call as the walker does, with REQ_FAULT requested.</summary>
    [Benchmark(OperationsPerInvoke = Entries)]
    public int Scan()
    {
        int stops = 0;
        for (int t = 0; t < Entries; t += PageGeometry.LevelEntries)
        {
            stops += PteScanner.Scan(_ptes.AsSpan(t, PageGeometry.LevelEntries), _pfns.AsSpan(t, PageGeometry.LevelEntries), HmmPfn.ReqFault, 0, store: true);
        }

        return stops;
    }

    /// <summary>memcpy of the same 64 KiB (PTE bytes in, pfn bytes out).</summary>
    [Benchmark(OperationsPerInvoke = Entries)]
    public ulong Memcpy()
    {
        _ptes.AsSpan().CopyTo(_pfns);
        return _pfns[0];
    }
}

/// <summary>
/// hmm_range_fault over a fully populated 1 GiB range (262,144 pages, 2 MiB of PTEs and 2 MiB of pfns),
/// with REQ_FAULT requested and nothing to fault, against memcpy of the same 2 MiB in the same job;
/// target at least 80 % of memcpy bandwidth in the Vector512 job.
/// </summary>
[BenchmarkCategory(BenchCategories.Walk)]
[Config(typeof(IsaConfig))]
public class RangeWalkBenchmarks
{
    private const int Pages = 262_144;

    private AddressSpace _mm = null!;
    private HmmRange _range = null!;
    private ulong[] _src = null!;
    private ulong[] _dst = null!;

    [GlobalSetup]
    public void Setup()
    {
        _mm = new AddressSpace(2UL << 30);
        _mm.MmapAnonymous((ulong)Pages * PageGeometry.PageSize, Prot.ReadWrite, MapFlags.Private | MapFlags.Populate, out ulong start).ThrowIfError();
        var notifier = new MirrorEmu.Notifier.MmuIntervalNotifier(new MirrorEmu.Notifier.SeqNotifierOps());
        _mm.Notifiers.Insert(notifier, start, (ulong)Pages * PageGeometry.PageSize);
        _range = new HmmRange(_mm, notifier, start, start + ((ulong)Pages * PageGeometry.PageSize)) { DefaultFlags = HmmPfn.ReqFault };
        _range.NotifierSeq = notifier.ReadBegin();
        _src = new ulong[Pages];
        _dst = new ulong[Pages];
    }

    [GlobalCleanup]
    public void Cleanup() => _mm.Dispose();

    [Benchmark(OperationsPerInvoke = Pages)]
    public int RangeFault()
    {
        _mm.MmapLock.ReadLock();
        try
        {
            return HmmFault.RangeFault(_range).Code;
        }
        finally
        {
            _mm.MmapLock.ReadUnlock();
        }
    }

    [Benchmark(OperationsPerInvoke = Pages)]
    public ulong Memcpy()
    {
        _src.AsSpan().CopyTo(_dst);
        return _dst[0];
    }
}
