using BenchmarkDotNet.Attributes;
using MirrorEmu.Mm;

namespace MirrorEmu.Bench.Mm;

/// <summary>
/// CPU accesses through the page table to pages that are already present (no fault): the cost of
/// translating and copying, which frees-late's access sections (Mm/Tlb: two stores per page) must not
/// raise by more than 5 % (issue 9). 4,096 distinct pages per invocation (16 MiB, beyond the caches, as
/// a workload touching fresh data).
/// </summary>
[BenchmarkCategory(BenchCategories.Fault)]
public class CpuAccessBenchmarks
{
    public const int PageCount = 4096;

    private AddressSpace _mm = null!;
    private ulong _base;
    private readonly byte[] _page = new byte[PageGeometry.PageSizeInt];

    [GlobalSetup]
    public void Setup()
    {
        _mm = new AddressSpace(memoryLimitBytes: 1UL << 30);
        _mm.MmapAnonymous((ulong)PageCount * PageGeometry.PageSize, Prot.ReadWrite, MapFlags.Private | MapFlags.Populate, out _base).ThrowIfError();
        _mm.Madvise(_base, (ulong)PageCount * PageGeometry.PageSize, Advice.PopulateWrite).ThrowIfError();
    }

    [GlobalCleanup]
    public void Cleanup() => _mm.Dispose();

    /// <summary>One 4 KiB CpuWrite per page.</summary>
    [Benchmark(Baseline = true, OperationsPerInvoke = PageCount)]
    public ulong CpuWritePage()
    {
        for (int i = 0; i < PageCount; i++)
        {
            _mm.CpuWrite(_base + ((ulong)i * PageGeometry.PageSize), _page);
        }

        return _base;
    }

    /// <summary>One 4 KiB CpuRead per page.</summary>
    [Benchmark(OperationsPerInvoke = PageCount)]
    public byte CpuReadPage()
    {
        for (int i = 0; i < PageCount; i++)
        {
            _mm.CpuRead(_base + ((ulong)i * PageGeometry.PageSize), _page);
        }

        return _page[0];
    }

    /// <summary>One 8-byte CpuReadUInt64 per page: translation dominates.</summary>
    [Benchmark(OperationsPerInvoke = PageCount)]
    public ulong CpuReadWord()
    {
        ulong sum = 0;
        for (int i = 0; i < PageCount; i++)
        {
            sum += _mm.CpuReadUInt64(_base + ((ulong)i * PageGeometry.PageSize));
        }

        return sum;
    }

    /// <summary>One 64 KiB CpuWrite over 16 pages at a time: the per-page section cost inside one call.</summary>
    [Benchmark(OperationsPerInvoke = PageCount)]
    public ulong CpuWrite16Pages()
    {
        Span<byte> big = stackalloc byte[16 * PageGeometry.PageSizeInt];
        for (int i = 0; i < PageCount; i += 16)
        {
            _mm.CpuWrite(_base + ((ulong)i * PageGeometry.PageSize), big);
        }

        return _base;
    }
}
