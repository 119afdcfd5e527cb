using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using MirrorEmu.Mm;

namespace MirrorEmu.Bench.Mm;

/// <summary>
/// What writing a page costs on this machine, by kind of store and by the bytes written, over 65,536
/// distinct 4 KiB pages (256 MiB, more than the caches): memset to zero (what populate does, the
/// baseline), and <see cref="PageCopy.CopyToFrame"/> (what UFFDIO_COPY does) with streaming or ordinary
/// stores, from a 64-page source of zeros or of a non-zero byte. It explains the userfaultfd ratios of
/// Uffd/UffdRoundTripBenchmarks: a copy writes the monitor's bytes where populate writes zeros.
/// </summary>
[BenchmarkCategory(BenchCategories.Fault)]
public unsafe class PageStoreBenchmarks
{
    public const int PageCount = 65_536;
    private const int SourcePages = 64;

    private byte* _pages;
    private byte[] _zeros = null!;
    private byte[] _pattern = null!;

    [GlobalSetup]
    public void Setup()
    {
        nuint bytes = (nuint)((ulong)PageCount * PageGeometry.PageSize);
        _pages = (byte*)NativeMemory.AlignedAlloc(bytes, (nuint)PageGeometry.PageSize);
        NativeMemory.Fill(_pages, bytes, 1);
        _zeros = GC.AllocateArray<byte>(SourcePages * PageGeometry.PageSizeInt, pinned: true);
        _pattern = GC.AllocateArray<byte>(SourcePages * PageGeometry.PageSizeInt, pinned: true);
        _pattern.AsSpan().Fill(2);
    }

    [GlobalCleanup]
    public void Cleanup() => NativeMemory.AlignedFree(_pages);

    [Benchmark(Baseline = true, OperationsPerInvoke = PageCount)]
    public byte ClearMemset()
    {
        for (int i = 0; i < PageCount; i++)
        {
            new Span<byte>(Page(i), PageGeometry.PageSizeInt).Clear();
        }

        return _pages[0];
    }

    [Benchmark(OperationsPerInvoke = PageCount)]
    public byte CopyStreamingZeros() => Copy(_zeros, streaming: true);

    [Benchmark(OperationsPerInvoke = PageCount)]
    public byte CopyStreamingPattern() => Copy(_pattern, streaming: true);

    [Benchmark(OperationsPerInvoke = PageCount)]
    public byte CopyOrdinaryPattern() => Copy(_pattern, streaming: false);

    private byte* Page(int i) => _pages + ((long)i * PageGeometry.PageSizeInt);

    private byte Copy(byte[] source, bool streaming)
    {
        for (int i = 0; i < PageCount; i++)
        {
            PageCopy.CopyToFrame(Page(i), source.AsSpan((i % SourcePages) * PageGeometry.PageSizeInt, PageGeometry.PageSizeInt), streaming);
            if (streaming && i % SourcePages == SourcePages - 1)
            {
                PageCopy.Fence();
            }
        }

        return _pages[0];
    }
}
