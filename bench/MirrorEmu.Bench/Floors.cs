using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace MirrorEmu.Bench;

/// <summary>
/// The floors the walker and copy goals are measured against, written once for every benchmark: a vector loop
/// that reads words, one that copies them with ordinary stores, and one that clears pages with streaming stores.
/// Each runs at the widest vector the job's ISA accelerates (a scalar loop when none is), so a floor is the best
/// plain loop of the same job. The platform memcpy is reported beside them, not used as one: on the development
/// machine (AMD EPYC, glibc's memcpy with <c>rep movsb</c>) a copy whose source and destination differ by 8 or 16
/// bytes modulo 32 runs many times slower than at any 32-byte relative alignment (bench Mm/PageCopyBenchmarks).
/// </summary>
public static class Floors
{
    /// <summary>Reads every word of <paramref name="words"/> and returns their OR (so that the loads are not dropped).</summary>
    /// <param name="words">The bytes to read, as words.</param>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    public static ulong Read(ReadOnlySpan<ulong> words) =>
        Vector512.IsHardwareAccelerated ? Read<Vector512<ulong>>(words)
        : Vector256.IsHardwareAccelerated ? Read<Vector256<ulong>>(words)
        : Vector128.IsHardwareAccelerated ? Read<Vector128<ulong>>(words)
        : ReadScalar(words);

    /// <summary>Copies <paramref name="source"/> into <paramref name="destination"/> (the same length) with vector loads and ordinary stores.</summary>
    /// <param name="source">The words to copy.</param>
    /// <param name="destination">Where they go; any alignment.</param>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    public static void Copy(ReadOnlySpan<ulong> source, Span<ulong> destination)
    {
        if (Vector512.IsHardwareAccelerated)
        {
            Copy<Vector512<ulong>>(source, destination);
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            Copy<Vector256<ulong>>(source, destination);
        }
        else if (Vector128.IsHardwareAccelerated)
        {
            Copy<Vector128<ulong>>(source, destination);
        }
        else
        {
            for (int i = 0; i < source.Length; i++)
            {
                destination[i] = source[i];
            }
        }
    }

    /// <summary>Zeroes <paramref name="pages"/> pages from <paramref name="destination"/> with streaming (non-temporal)
    /// stores, as <see cref="MirrorEmu.Mm.PageCopy.CopyToFrame"/> copies with them; the caller fences before reading.</summary>
    /// <param name="destination">Page-aligned memory.</param>
    /// <param name="pages">4 KiB pages.</param>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    public static unsafe void ClearStreaming(byte* destination, int pages)
    {
        nuint bytes = (nuint)pages * (nuint)MirrorEmu.Mm.PageGeometry.PageSizeInt;
        if (Vector512.IsHardwareAccelerated)
        {
            for (nuint o = 0; o < bytes; o += (nuint)Vector512<byte>.Count)
            {
                Vector512.StoreAlignedNonTemporal(Vector512<byte>.Zero, destination + o);
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            for (nuint o = 0; o < bytes; o += (nuint)Vector256<byte>.Count)
            {
                Vector256.StoreAlignedNonTemporal(Vector256<byte>.Zero, destination + o);
            }
        }
        else
        {
            NativeMemory.Clear(destination, bytes);
        }
    }

    [SkipLocalsInit]
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong Read<TVector>(ReadOnlySpan<ulong> words)
        where TVector : struct
    {
        ref ulong r = ref MemoryMarshal.GetReference(words);
        nuint width = (nuint)WordVector.Count<TVector>();
        nuint n = (nuint)words.Length - ((nuint)words.Length % width);
        TVector acc = default;
        for (nuint i = 0; i < n; i += width)
        {
            acc = WordVector.Or(acc, WordVector.LoadUnsafe<TVector>(in r, i));
        }

        Span<ulong> lanes = stackalloc ulong[8];
        WordVector.StoreUnsafe(acc, ref lanes[0], 0);
        return ReadScalar(lanes[..(int)width]) | ReadScalar(words[(int)n..]);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Copy<TVector>(ReadOnlySpan<ulong> source, Span<ulong> destination)
        where TVector : struct
    {
        ref ulong s = ref MemoryMarshal.GetReference(source);
        ref ulong d = ref MemoryMarshal.GetReference(destination);
        nuint width = (nuint)WordVector.Count<TVector>();
        nuint n = (nuint)source.Length - ((nuint)source.Length % width);
        for (nuint i = 0; i < n; i += width)
        {
            WordVector.StoreUnsafe(WordVector.LoadUnsafe<TVector>(in s, i), ref d, i);
        }

        source[(int)n..].CopyTo(destination[(int)n..]);
    }

    private static ulong ReadScalar(ReadOnlySpan<ulong> words)
    {
        ulong acc = 0;
        foreach (ulong w in words)
        {
            acc |= w;
        }

        return acc;
    }
}
