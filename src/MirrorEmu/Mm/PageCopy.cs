using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace MirrorEmu.Mm;

/// <summary>Whole-page copies into fresh frames.</summary>
public static class PageCopy
{
    /// <summary>
    /// Copies of at least this many pages in one call stream their stores (<see cref="CopyToFrame"/>
    /// with <c>streaming</c>); smaller ones use ordinary stores. The evidence, with its figures in the README's
    /// benchmark section: on 65,536-page ranges streaming made RangeEvent and Batched64 much cheaper against regular
    /// populate (bench Hmm/PolicyBenchmarks); on 4,096-page ranges ordinary stores made 64-page blocks slower than
    /// streaming and single pages faster (bench Uffd/UffdRoundTripBenchmarks), so single pages never stream; a copy
    /// of a non-zero page costs more than of a zero page and than populate's clear (bench Mm/PageStoreBenchmarks).
    /// glibc's memcpy makes the same choice by size.
    /// </summary>
    public const int StreamingThresholdPages = 64;

    /// <summary>Orders the streaming stores of <see cref="CopyToFrame"/> before what follows (sfence).</summary>
    public static void Fence()
    {
        if (System.Runtime.Intrinsics.X86.Sse.IsSupported)
        {
            System.Runtime.Intrinsics.X86.Sse.StoreFence();
        }
        else
        {
            Interlocked.MemoryBarrier();
        }
    }

    /// <summary>
    /// Copies one page into a frame that nobody reads yet (UFFDIO_COPY's destination) with
    /// non-temporal stores: its lines need not be read for ownership nor kept in the copier's cache.
    /// </summary>
    /// <param name="destination">A page-aligned frame.</param>
    /// <param name="source">Exactly one page of bytes, any alignment.</param>
    /// <param name="streaming">Use non-temporal stores (call <see cref="Fence"/> before publishing the frame); else an ordinary copy.</param>
    [SkipLocalsInit]
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // one-shot CLI runs must not copy with tier-0 vector code
    public static unsafe void CopyToFrame(byte* destination, ReadOnlySpan<byte> source, bool streaming)
    {
        Debug.Assert(source.Length == PageGeometry.PageSizeInt, "one page");
        Debug.Assert(((nuint)destination & (nuint)PageGeometry.PageMask) == 0, "frame alignment");
        ref byte src = ref MemoryMarshal.GetReference(source);
        if (!streaming)
        {
            source.CopyTo(new Span<byte>(destination, PageGeometry.PageSizeInt));
        }
        else if (Vector512.IsHardwareAccelerated)
        {
            for (nuint o = 0; o < (nuint)PageGeometry.PageSizeInt; o += (nuint)Vector512<byte>.Count)
            {
                Vector512.StoreAlignedNonTemporal(Vector512.LoadUnsafe(ref src, o), destination + o);
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            for (nuint o = 0; o < (nuint)PageGeometry.PageSizeInt; o += (nuint)Vector256<byte>.Count)
            {
                Vector256.StoreAlignedNonTemporal(Vector256.LoadUnsafe(ref src, o), destination + o);
            }
        }
        else
        {
            source.CopyTo(new Span<byte>(destination, PageGeometry.PageSizeInt));
        }
    }

    /// <summary>
    /// Zeroes one frame that nobody reads yet. With <paramref name="streaming"/>, non-temporal stores (call
    /// <see cref="Fence"/> before publishing the frame): the same store kind as a large <see cref="CopyToFrame"/>, so a
    /// populate of fresh pages and a userfaultfd fill of them compare like for like (bench Mm/PageStoreBenchmarks,
    /// Mm/PopulateBenchmarks).
    /// </summary>
    /// <param name="destination">A page-aligned frame.</param>
    /// <param name="streaming">Use non-temporal stores; else an ordinary clear.</param>
    [SkipLocalsInit]
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static unsafe void ClearFrame(byte* destination, bool streaming)
    {
        Debug.Assert(((nuint)destination & (nuint)PageGeometry.PageMask) == 0, "frame alignment");
        if (streaming && Vector512.IsHardwareAccelerated)
        {
            for (nuint o = 0; o < (nuint)PageGeometry.PageSizeInt; o += (nuint)Vector512<byte>.Count)
            {
                Vector512.StoreAlignedNonTemporal(Vector512<byte>.Zero, destination + o);
            }
        }
        else if (streaming && Vector256.IsHardwareAccelerated)
        {
            for (nuint o = 0; o < (nuint)PageGeometry.PageSizeInt; o += (nuint)Vector256<byte>.Count)
            {
                Vector256.StoreAlignedNonTemporal(Vector256<byte>.Zero, destination + o);
            }
        }
        else
        {
            new Span<byte>(destination, PageGeometry.PageSizeInt).Clear();
        }
    }
}
