using BenchmarkDotNet.Attributes;
using MirrorEmu.Mm;

namespace MirrorEmu.Bench.Mm;

/// <summary>
/// The emulator's own large copies by relative alignment: <see cref="PageCopy.CopyToFrame"/> over 512 pages (2 MiB,
/// what a multi-page UFFDIO_COPY or a huge page's migration copies) into page-aligned frames, from a source that starts
/// <see cref="RelativeOffset"/> bytes (0, 8, 16, 32) past a page boundary, with ordinary and with streaming stores;
/// against <see cref="CopyFloor"/> (a vector copy loop over the same bytes, the baseline) and beside
/// <see cref="PlatformMemcpy"/> (one Span.CopyTo of the 2 MiB). Issue 10: glibc's memcpy (<c>rep movsb</c>) is many
/// times slower when source and destination differ by 8 or 16 bytes modulo 32 on the development machine; the
/// emulator's copies must not be. Figures per page are in the README.
/// </summary>
[BenchmarkCategory(BenchCategories.Fault)]
public unsafe class PageCopyBenchmarks
{
    private const int Pages = 512;

    private AlignedBuffer _frames = null!;
    private AlignedBuffer _source = null!;

    /// <summary>Bytes between the source's start and a page boundary; the frames start on one.</summary>
    [Params(0, 8, 16, 32)]
    public int RelativeOffset { get; set; }

    /// <summary>The frames (page aligned) and the source, <see cref="RelativeOffset"/> bytes past a page.</summary>
    [GlobalSetup]
    public void Setup()
    {
        _frames = new AlignedBuffer((long)Pages * PageGeometry.PageSizeInt);
        _source = new AlignedBuffer((long)Pages * PageGeometry.PageSizeInt, RelativeOffset);
        _source.Bytes.Fill(0x5A);
    }

    /// <summary>Frees the buffers.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        _frames.Dispose();
        _source.Dispose();
    }

    /// <summary>The vector copy loop over the same bytes (the baseline), per page.</summary>
    [Benchmark(Baseline = true, OperationsPerInvoke = Pages)]
    public byte CopyFloor()
    {
        Floors.Copy(_source.Words, _frames.Words);
        return _frames.Pointer[0];
    }

    /// <summary><see cref="PageCopy.CopyToFrame"/> page by page with ordinary stores, per page.</summary>
    [Benchmark(OperationsPerInvoke = Pages)]
    public byte CopyToFrameOrdinary() => CopyToFrames(streaming: false);

    /// <summary><see cref="PageCopy.CopyToFrame"/> page by page with streaming stores, then one fence, per page.</summary>
    [Benchmark(OperationsPerInvoke = Pages)]
    public byte CopyToFrameStreaming() => CopyToFrames(streaming: true);

    /// <summary>One Span.CopyTo of the 2 MiB (the platform memcpy), per page.</summary>
    [Benchmark(OperationsPerInvoke = Pages)]
    public byte PlatformMemcpy()
    {
        _source.Bytes.CopyTo(_frames.Bytes);
        return _frames.Pointer[0];
    }

    private byte CopyToFrames(bool streaming)
    {
        ReadOnlySpan<byte> source = _source.Bytes;
        for (int i = 0; i < Pages; i++)
        {
            PageCopy.CopyToFrame(_frames.Pointer + ((long)i * PageGeometry.PageSizeInt), source.Slice(i * PageGeometry.PageSizeInt, PageGeometry.PageSizeInt), streaming);
        }

        if (streaming)
        {
            PageCopy.Fence();
        }

        return _frames.Pointer[0];
    }
}
