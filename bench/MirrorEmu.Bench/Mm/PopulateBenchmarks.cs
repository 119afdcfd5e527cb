using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using MirrorEmu.Mm;

namespace MirrorEmu.Bench.Mm;

/// <summary>
/// Issue 1/7's targets, per page, same run: MADV_POPULATE_WRITE of 65,536 fresh private anonymous
/// pages at most 2x <see cref="ClearDistinctPages"/> (zeroing 65,536 distinct 4 KiB pages: the floor,
/// since populate must zero every page it maps), and first-touch CpuWrite at most 3x populate.
/// <see cref="ClearOneHotPage"/> is reported for scale (the same 4 KiB page 65,536 times, always in cache).
/// </summary>
/// <remarks>
/// Store policy: populate (AddressSpace.Populate) clears runs of at least PageCopy.StreamingThresholdPages fresh frames
/// with streaming stores, as the userfaultfd copies of as many pages write theirs; first touch (FaultHandler) clears its
/// one frame with ordinary stores, since the write that faulted reads it at once (a streaming clear made it slower). The
/// baseline clears with ordinary stores; <see cref="ClearDistinctPagesStreaming"/> is reported beside as the streaming
/// floor under populate.
/// </remarks>
[BenchmarkCategory(BenchCategories.Fault)]
public unsafe class PopulateBenchmarks
{
    /// <summary>Pages per invocation.</summary>
    public const int PageCount = 65_536;

    private AddressSpace _mm = null!;
    private ulong _base;
    private byte* _buffer;

    /// <summary>The address space with the unpopulated range, and the buffer the clears write.</summary>
    [GlobalSetup]
    public void Setup()
    {
        _mm = new AddressSpace(memoryLimitBytes: 2UL << 30);
        _mm.MmapAnonymous((ulong)PageCount * PageGeometry.PageSize, Prot.ReadWrite, MapFlags.Private, out _base).ThrowIfError();
        _buffer = (byte*)NativeMemory.AlignedAlloc((nuint)((ulong)PageCount * PageGeometry.PageSize), (nuint)PageGeometry.PageSize);
        new Span<byte>(_buffer, PageGeometry.PageSizeInt).Fill(1);
    }

    /// <summary>Frees both.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        _mm.Dispose();
        NativeMemory.AlignedFree(_buffer);
    }

    /// <summary>Empties the range again (the frames go back to the pool, as the kernel's free lists get them back).
    /// Every benchmark of the class has it, so that all run in one job (one invocation of 65,536 pages per
    /// iteration) and BenchmarkDotNet computes the ratios against the baseline of the same run.</summary>
    [IterationSetup]
    public void Unpopulate() => _mm.Madvise(_base, (ulong)PageCount * PageGeometry.PageSize, Advice.DontNeed).ThrowIfError();

    /// <summary>memset of 65,536 distinct pages (ordinary stores, as populate clears; the baseline).</summary>
    [Benchmark(Baseline = true, OperationsPerInvoke = PageCount)]
    public byte ClearDistinctPages() => ClearPages(_buffer, PageCount);

    /// <summary>The same pages zeroed with streaming stores, then one fence.</summary>
    [Benchmark(OperationsPerInvoke = PageCount)]
    public byte ClearDistinctPagesStreaming()
    {
        Floors.ClearStreaming(_buffer, PageCount);
        PageCopy.Fence();
        return _buffer[0];
    }

    /// <summary>One page cleared 65,536 times (always in cache), for scale.</summary>
    [Benchmark(OperationsPerInvoke = PageCount)]
    public byte ClearOneHotPage() => ClearSamePage(_buffer, PageCount);

    /// <summary>MADV_POPULATE_WRITE of the range.</summary>
    [Benchmark(OperationsPerInvoke = PageCount)]
    public KResult PopulateWrite() => _mm.Madvise(_base, (ulong)PageCount * PageGeometry.PageSize, Advice.PopulateWrite);

    /// <summary>CpuWrite of 8 bytes into each fresh page.</summary>
    [Benchmark(OperationsPerInvoke = PageCount)]
    public ulong FirstTouchWrite() => TouchEveryPage(_mm, _base, PageCount);

    private static byte ClearPages(byte* buffer, int pages)
    {
        for (int i = 0; i < pages; i++)
        {
            new Span<byte>(buffer + ((long)i * PageGeometry.PageSizeInt), PageGeometry.PageSizeInt).Clear();
        }

        return buffer[0];
    }

    private static byte ClearSamePage(byte* buffer, int times)
    {
        for (int i = 0; i < times; i++)
        {
            new Span<byte>(buffer, PageGeometry.PageSizeInt).Clear();
        }

        return buffer[0];
    }

    private static ulong TouchEveryPage(AddressSpace mm, ulong start, int pages)
    {
        for (int i = 0; i < pages; i++)
        {
            mm.CpuWriteUInt64(start + ((ulong)i * PageGeometry.PageSize), (ulong)i);
        }

        return start;
    }
}
