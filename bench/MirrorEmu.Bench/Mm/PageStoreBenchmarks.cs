using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using MirrorEmu.Mm;

namespace MirrorEmu.Bench.Mm;

/// <summary>
/// What writing a page costs on this machine, by kind of store and by the bytes written, over 65,536
/// distinct 4 KiB pages (256 MiB, more than the caches): a clear (what populate does), a copy of zeros and a copy of
/// a non-zero byte (what UFFDIO_COPY does, <see cref="PageCopy.CopyToFrame"/> from a 64-page source), each with
/// ordinary stores and with streaming (non-temporal) stores. It explains the userfaultfd ratios of
/// Uffd/UffdRoundTripBenchmarks and Hmm/PolicyBenchmarks: a copy writes the monitor's bytes where populate writes zeros.
/// </summary>
/// <remarks>
/// Like for like is a row against the row of the same store kind: <see cref="ClearMemset"/> (the baseline: memset, as
/// AddressSpace.Populate clears) against <see cref="CopyOrdinaryZeros"/> and <see cref="CopyOrdinaryPattern"/>;
/// <see cref="ClearStreaming"/> (streaming zero stores, <see cref="Floors.ClearStreaming"/>) against
/// <see cref="CopyStreamingZeros"/> and <see cref="CopyStreamingPattern"/>. A streaming fill against an ordinary clear
/// measures the store kind as much as the fill. Figures are in the README.
/// </remarks>
[BenchmarkCategory(BenchCategories.Fault)]
public unsafe class PageStoreBenchmarks
{
    /// <summary>Distinct pages written per invocation.</summary>
    public const int PageCount = 65_536;
    private const int SourcePages = 64;

    private byte* _pages;
    private byte[] _zeros = null!;
    private byte[] _pattern = null!;

    /// <summary>The 256 MiB of pages and the two 64-page sources.</summary>
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

    /// <summary>Frees the pages.</summary>
    [GlobalCleanup]
    public void Cleanup() => NativeMemory.AlignedFree(_pages);

    /// <summary>memset to zero, page by page (ordinary stores; the baseline).</summary>
    [Benchmark(Baseline = true, OperationsPerInvoke = PageCount)]
    public byte ClearMemset()
    {
        for (int i = 0; i < PageCount; i++)
        {
            new Span<byte>(Page(i), PageGeometry.PageSizeInt).Clear();
        }

        return _pages[0];
    }

    /// <summary>Zeroes with streaming stores, 64 pages per fence.</summary>
    [Benchmark(OperationsPerInvoke = PageCount)]
    public byte ClearStreaming()
    {
        for (int i = 0; i < PageCount; i += SourcePages)
        {
            Floors.ClearStreaming(Page(i), SourcePages);
            PageCopy.Fence();
        }

        return _pages[0];
    }

    /// <summary>Copies zeros with ordinary stores.</summary>
    [Benchmark(OperationsPerInvoke = PageCount)]
    public byte CopyOrdinaryZeros() => Copy(_zeros, streaming: false);

    /// <summary>Copies zeros with streaming stores.</summary>
    [Benchmark(OperationsPerInvoke = PageCount)]
    public byte CopyStreamingZeros() => Copy(_zeros, streaming: true);

    /// <summary>Copies a non-zero byte with streaming stores.</summary>
    [Benchmark(OperationsPerInvoke = PageCount)]
    public byte CopyStreamingPattern() => Copy(_pattern, streaming: true);

    /// <summary>Copies a non-zero byte with ordinary stores.</summary>
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
