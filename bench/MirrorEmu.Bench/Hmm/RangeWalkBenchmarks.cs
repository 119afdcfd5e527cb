using BenchmarkDotNet.Attributes;
using MirrorEmu.Hmm;
using MirrorEmu.Mm;
using MirrorEmu.Notifier;

namespace MirrorEmu.Bench.Hmm;

/// <summary>
/// hmm_range_fault over a fully populated 1 GiB range (262,144 pages: 2 MiB of PTEs in 512 leaf tables, 2 MiB of HMM
/// words), REQ_FAULT requested and nothing to fault, one job per ISA (<see cref="IsaConfig"/>).
/// </summary>
/// <remarks>
/// Goal (issue 10, in bytes moved): in the Vector512 job, the walk's bandwidth at least 80 % of <see cref="CopyFloor"/>'s.
/// The walk reads a PTE and an HMM word and writes the HMM word, 24 B per page; the copy floor reads and writes a word,
/// 16 B, over buffers of the same sizes (2 MiB each). <see cref="ReadFloor"/> reads both buffers (4 MiB);
/// <see cref="PlatformMemcpy"/> is the platform memcpy of the copy floor's bytes, both buffers page aligned. Figures per
/// page (per word for the floors) are in the README.
/// </remarks>
[BenchmarkCategory(BenchCategories.Walk)]
[Config(typeof(IsaConfig))]
public class RangeWalkBenchmarks
{
    private const int Pages = 262_144;

    private AddressSpace _mm = null!;
    private HmmRange _range = null!;
    private AlignedBuffer _src = null!;
    private AlignedBuffer _dst = null!;

    /// <summary>Maps and populates the 1 GiB range, inserts its notifier, and allocates the floors' buffers.</summary>
    [GlobalSetup]
    public void Setup()
    {
        _mm = new AddressSpace(2UL << 30);
        _mm.MmapAnonymous((ulong)Pages * PageGeometry.PageSize, Prot.ReadWrite, MapFlags.Private | MapFlags.Populate, out ulong start).ThrowIfError();
        var notifier = new MmuIntervalNotifier(new SeqNotifierOps());
        _mm.Notifiers.Insert(notifier, start, (ulong)Pages * PageGeometry.PageSize);
        _range = new HmmRange(_mm, notifier, start, start + ((ulong)Pages * PageGeometry.PageSize)) { DefaultFlags = HmmPfn.ReqFault };
        _range.NotifierSeq = notifier.ReadBegin();
        _src = new AlignedBuffer(Pages * sizeof(ulong));
        _dst = new AlignedBuffer(Pages * sizeof(ulong));
        _src.Words.Fill(Pte.Present(0x1234, writable: true).Value);
    }

    /// <summary>Frees the address space and the buffers.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        _mm.Dispose();
        _src.Dispose();
        _dst.Dispose();
    }

    /// <summary>hmm_range_fault over the whole range under the mmap read lock, per page.</summary>
    [Benchmark(OperationsPerInvoke = Pages)]
    [MustNotAllocate]
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

    /// <summary>A vector copy of 2 MiB into 2 MiB, per word.</summary>
    [Benchmark(OperationsPerInvoke = Pages)]
    public ulong CopyFloor()
    {
        Floors.Copy(_src.Words, _dst.Words);
        return _dst.Words[0];
    }

    /// <summary>A vector read of both 2 MiB buffers, per page (two words).</summary>
    [Benchmark(OperationsPerInvoke = Pages)]
    public ulong ReadFloor() => Floors.Read(_src.Words) | Floors.Read(_dst.Words);

    /// <summary>The copy floor's bytes copied with the platform memcpy (Span.CopyTo), per word.</summary>
    [Benchmark(OperationsPerInvoke = Pages)]
    public ulong PlatformMemcpy()
    {
        _src.Words.CopyTo(_dst.Words);
        return _dst.Words[0];
    }
}
