using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using MirrorEmu.Mm;

namespace MirrorEmu.Hmm;

/// <summary>
/// The page walker's inner loop over one leaf table: for each PTE it decides whether the request
/// (<c>(input &amp; pfn_flags_mask) | default_flags</c>) needs a fault, and writes the output word of
/// every entry before the first one that needs a fault or that the fast path does not handle.
/// A scalar reference plus Vector128, Vector256 and Vector512 paths, chosen at run time; each vector
/// path is tested against the scalar one on seeded random tables (docs/design.md, invariant 4).
/// </summary>
/// <remarks>
/// The fast path handles empty entries and present ones (the zero page included: it is reported as a
/// normal read-only page, as mm/hmm.c hmm_vma_handle_pte does for is_zero_pfn). It stops at protnone entries, swap-type
/// entries (swap, migration, device-private, device-exclusive, markers, poison) and special entries
/// other than the zero page, which the walker then handles one by one (<see cref="Hmm"/>).
/// Output of an empty entry: 0 plus the sticky bits; of a present one:
/// VALID | WRITE-if-writable | pfn, plus the sticky bits.
/// </remarks>
public static class PteScanner
{
    private const ulong Present = Pte.PresentBit;
    private const ulong Writable = Pte.WriteBit;
    private const ulong Special = Pte.SpecialBit;
    private const ulong PfnField = Pte.PfnMask;

    /// <summary>
    /// Scans <paramref name="ptes"/> against the requests in <paramref name="pfns"/> (same length) and,
    /// when <paramref name="store"/>, overwrites each entry of <paramref name="pfns"/> before the first stop
    /// with its output.
    /// </summary>
    /// <param name="ptes">Consecutive PTEs of one leaf table.</param>
    /// <param name="pfns">The HMM words for the same pages: inputs, and outputs where written.</param>
    /// <param name="defaultFlags">range.default_flags.</param>
    /// <param name="mask">range.pfn_flags_mask.</param>
    /// <param name="store">Write outputs (a walk) or only look (collecting runs to fault).</param>
    /// <returns>The index of the first entry that needs a fault or the slow path; <c>ptes.Length</c> if none.</returns>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Scan(ReadOnlySpan<ulong> ptes, Span<ulong> pfns, ulong defaultFlags, ulong mask, bool store)
    {
        if (!Vector128.IsHardwareAccelerated || ptes.Length < Vector128<ulong>.Count)
        {
            return ScanScalar(ptes, pfns, defaultFlags, mask, store);
        }

        if (Vector512.IsHardwareAccelerated && ptes.Length >= Vector512<ulong>.Count)
        {
            return Scan512(ptes, pfns, defaultFlags, mask, store);
        }

        if (Vector256.IsHardwareAccelerated && ptes.Length >= Vector256<ulong>.Count)
        {
            return Scan256(ptes, pfns, defaultFlags, mask, store);
        }

        return Scan128(ptes, pfns, defaultFlags, mask, store);
    }

    /// <summary>True if the fast path does not handle this PTE (protnone, swap-type, special other than the zero page).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool IsSlow(ulong pte) =>
        pte != 0 && ((pte & Present) == 0 || ((pte & Special) != 0 && (pte & PfnField) != 0));

    /// <summary>hmm_pte_need_fault for a fast-path entry.</summary>
    /// <param name="pte">An entry for which <see cref="IsSlow"/> is false.</param>
    /// <param name="input">Its HMM input word.</param>
    /// <param name="defaultFlags">range.default_flags.</param>
    /// <param name="mask">range.pfn_flags_mask.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool NeedsFault(ulong pte, ulong input, ulong defaultFlags, ulong mask)
    {
        ulong req = (input & mask) | defaultFlags;
        return (req & HmmPfn.ReqFault) != 0 && (pte == 0 || ((req & HmmPfn.ReqWrite) != 0 && (pte & Writable) == 0));
    }

    /// <summary>The output word of a fast-path entry.</summary>
    /// <param name="pte">An entry for which <see cref="IsSlow"/> is false.</param>
    /// <param name="input">Its HMM input word.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Output(ulong pte, ulong input) =>
        pte == 0
            ? input & HmmPfn.InOutFlags
            : (input & HmmPfn.InOutFlags) | HmmPfn.Valid | ((pte & Writable) != 0 ? HmmPfn.Write : 0) | ((pte & PfnField) >> Pte.PfnShift);

    /// <summary>The scalar reference.</summary>
    internal static int ScanScalar(ReadOnlySpan<ulong> ptes, Span<ulong> pfns, ulong defaultFlags, ulong mask, bool store)
    {
        for (int i = 0; i < ptes.Length; i++)
        {
            ulong pte = ptes[i];
            ulong input = pfns[i];
            if (IsSlow(pte) || NeedsFault(pte, input, defaultFlags, mask))
            {
                return i;
            }

            if (store)
            {
                pfns[i] = Output(pte, input);
            }
        }

        return ptes.Length;
    }

    /// <summary>The Vector512 path: 8 PTEs per step.</summary>
    [SkipLocalsInit]
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static int Scan512(ReadOnlySpan<ulong> ptes, Span<ulong> pfns, ulong defaultFlags, ulong mask, bool store)
    {
        ref ulong pr = ref MemoryMarshal.GetReference(ptes);
        ref ulong fr = ref MemoryMarshal.GetReference(pfns);
        Vector512<ulong> vMask = Vector512.Create(mask);
        Vector512<ulong> vDefault = Vector512.Create(defaultFlags);
        Vector512<ulong> vInOut = Vector512.Create(HmmPfn.InOutFlags);
        Vector512<ulong> vWrite = Vector512.Create(HmmPfn.Write);
        Vector512<ulong> vPfnLow = Vector512.Create(Pte.MaxPfn);
        Vector512<ulong> vPresentSpecial = Vector512.Create(Present | Special);
        Vector512<ulong> vPresent = Vector512.Create(Present);
        nuint n = (nuint)ptes.Length;
        nuint i = 0;
        // Two vectors per step: one branch for 16 entries (see bench Hmm/WalkerBenchmarks.Scan, Vector512 job).
        for (; i + (2 * (nuint)Vector512<ulong>.Count) <= n; i += 2 * (nuint)Vector512<ulong>.Count)
        {
            Vector512<ulong> p0 = Vector512.LoadUnsafe(ref pr, i);
            Vector512<ulong> p1 = Vector512.LoadUnsafe(ref pr, i + (nuint)Vector512<ulong>.Count);
            Vector512<ulong> in0 = Vector512.LoadUnsafe(ref fr, i);
            Vector512<ulong> in1 = Vector512.LoadUnsafe(ref fr, i + (nuint)Vector512<ulong>.Count);
            Vector512<ulong> req0 = (in0 & vMask) | vDefault;
            Vector512<ulong> req1 = (in1 & vMask) | vDefault;
            Vector512<ulong> present0 = Vector512.ShiftLeft(p0, 63);
            Vector512<ulong> present1 = Vector512.ShiftLeft(p1, 63);
            Vector512<ulong> need0 = req0 & ~(present0 & (~Vector512.ShiftLeft(req0, 1) | Vector512.ShiftLeft(p0, 62)));
            Vector512<ulong> need1 = req1 & ~(present1 & (~Vector512.ShiftLeft(req1, 1) | Vector512.ShiftLeft(p1, 62)));
            Vector512<ulong> slow0 = ~Vector512.Equals(p0, Vector512<ulong>.Zero) & ~Vector512.Equals(p0 & vPresentSpecial, vPresent) & ~ZeroPage(p0);
            Vector512<ulong> slow1 = ~Vector512.Equals(p1, Vector512<ulong>.Zero) & ~Vector512.Equals(p1 & vPresentSpecial, vPresent) & ~ZeroPage(p1);
            ulong stop = (need0 | slow0).ExtractMostSignificantBits() | ((need1 | slow1).ExtractMostSignificantBits() << Vector512<ulong>.Count);
            if (stop != 0)
            {
                return FinishPartial(ptes, pfns, (int)i, BitOperations.TrailingZeroCount(stop), store);
            }

            if (store)
            {
                ((in0 & vInOut) | present0 | (Vector512.ShiftLeft(p0, 61) & vWrite) | (Vector512.ShiftRightLogical(p0, Pte.PfnShift) & vPfnLow)).StoreUnsafe(ref fr, i);
                ((in1 & vInOut) | present1 | (Vector512.ShiftLeft(p1, 61) & vWrite) | (Vector512.ShiftRightLogical(p1, Pte.PfnShift) & vPfnLow)).StoreUnsafe(ref fr, i + (nuint)Vector512<ulong>.Count);
            }
        }

        for (; i + (nuint)Vector512<ulong>.Count <= n; i += (nuint)Vector512<ulong>.Count)
        {
            Vector512<ulong> p = Vector512.LoadUnsafe(ref pr, i);
            Vector512<ulong> input = Vector512.LoadUnsafe(ref fr, i);

            // Decisions live in bit 63 of each lane: PTE bit 0 (present) and bit 1 (writable) are shifted there,
            // as are the request's REQ_FAULT (already bit 63) and REQ_WRITE (bit 62).
            Vector512<ulong> req = (input & vMask) | vDefault;
            Vector512<ulong> present = Vector512.ShiftLeft(p, 63);
            Vector512<ulong> writable = Vector512.ShiftLeft(p, 62);
            Vector512<ulong> need = req & ~(present & (~Vector512.ShiftLeft(req, 1) | writable));

            // Slow lanes: not empty and not "present without special" (the zero page goes to the slow path too
            // when special; see Output for the fast-path encoding).
            Vector512<ulong> slow = ~Vector512.Equals(p, Vector512<ulong>.Zero) & ~Vector512.Equals(p & vPresentSpecial, vPresent) & ~ZeroPage(p);
            ulong stop = (need | slow).ExtractMostSignificantBits();
            if (stop != 0)
            {
                return FinishPartial(ptes, pfns, (int)i, BitOperations.TrailingZeroCount(stop), store);
            }

            if (store)
            {
                // VALID = PTE bit 0 moved to 63, WRITE = PTE bit 1 moved to 62, pfn = bits 51..12 moved to 39..0.
                Vector512<ulong> output = (input & vInOut) | present | (Vector512.ShiftLeft(p, 61) & vWrite) | (Vector512.ShiftRightLogical(p, Pte.PfnShift) & vPfnLow);
                output.StoreUnsafe(ref fr, i);
            }
        }

        return (int)i + ScanScalar(ptes[(int)i..], pfns[(int)i..], defaultFlags, mask, store);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static Vector512<ulong> ZeroPage(Vector512<ulong> p) => Vector512.Equals(p & ~(Vector512.Create(Pte.AccessedBit | Pte.DirtyBit | Pte.UffdWpBit | Pte.SoftDirtyBit)), Vector512.Create(Pte.Special(PhysicalMemory.ZeroPfn).Value));
    }

    /// <summary>The Vector256 path: 4 PTEs per step.</summary>
    [SkipLocalsInit]
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static int Scan256(ReadOnlySpan<ulong> ptes, Span<ulong> pfns, ulong defaultFlags, ulong mask, bool store)
    {
        ref ulong pr = ref MemoryMarshal.GetReference(ptes);
        ref ulong fr = ref MemoryMarshal.GetReference(pfns);
        Vector256<ulong> vMask = Vector256.Create(mask);
        Vector256<ulong> vDefault = Vector256.Create(defaultFlags);
        Vector256<ulong> vInOut = Vector256.Create(HmmPfn.InOutFlags);
        Vector256<ulong> vWrite = Vector256.Create(HmmPfn.Write);
        Vector256<ulong> vPfnLow = Vector256.Create(Pte.MaxPfn);
        Vector256<ulong> vPresentSpecial = Vector256.Create(Present | Special);
        Vector256<ulong> vPresent = Vector256.Create(Present);
        nuint n = (nuint)ptes.Length;
        nuint i = 0;
        for (; i + (nuint)Vector256<ulong>.Count <= n; i += (nuint)Vector256<ulong>.Count)
        {
            Vector256<ulong> p = Vector256.LoadUnsafe(ref pr, i);
            Vector256<ulong> input = Vector256.LoadUnsafe(ref fr, i);

            // Decisions live in bit 63 of each lane: PTE bit 0 (present) and bit 1 (writable) are shifted there,
            // as are the request's REQ_FAULT (already bit 63) and REQ_WRITE (bit 62).
            Vector256<ulong> req = (input & vMask) | vDefault;
            Vector256<ulong> present = Vector256.ShiftLeft(p, 63);
            Vector256<ulong> writable = Vector256.ShiftLeft(p, 62);
            Vector256<ulong> need = req & ~(present & (~Vector256.ShiftLeft(req, 1) | writable));

            // Slow lanes: not empty and not "present without special" (the zero page goes to the slow path too
            // when special; see Output for the fast-path encoding).
            Vector256<ulong> slow = ~Vector256.Equals(p, Vector256<ulong>.Zero) & ~Vector256.Equals(p & vPresentSpecial, vPresent) & ~ZeroPage(p);
            ulong stop = (need | slow).ExtractMostSignificantBits();
            if (stop != 0)
            {
                return FinishPartial(ptes, pfns, (int)i, BitOperations.TrailingZeroCount(stop), store);
            }

            if (store)
            {
                // VALID = PTE bit 0 moved to 63, WRITE = PTE bit 1 moved to 62, pfn = bits 51..12 moved to 39..0.
                Vector256<ulong> output = (input & vInOut) | present | (Vector256.ShiftLeft(p, 61) & vWrite) | (Vector256.ShiftRightLogical(p, Pte.PfnShift) & vPfnLow);
                output.StoreUnsafe(ref fr, i);
            }
        }

        return (int)i + ScanScalar(ptes[(int)i..], pfns[(int)i..], defaultFlags, mask, store);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static Vector256<ulong> ZeroPage(Vector256<ulong> p) => Vector256.Equals(p & ~(Vector256.Create(Pte.AccessedBit | Pte.DirtyBit | Pte.UffdWpBit | Pte.SoftDirtyBit)), Vector256.Create(Pte.Special(PhysicalMemory.ZeroPfn).Value));
    }

    /// <summary>The Vector128 path: 2 PTEs per step.</summary>
    [SkipLocalsInit]
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static int Scan128(ReadOnlySpan<ulong> ptes, Span<ulong> pfns, ulong defaultFlags, ulong mask, bool store)
    {
        ref ulong pr = ref MemoryMarshal.GetReference(ptes);
        ref ulong fr = ref MemoryMarshal.GetReference(pfns);
        Vector128<ulong> vMask = Vector128.Create(mask);
        Vector128<ulong> vDefault = Vector128.Create(defaultFlags);
        Vector128<ulong> vInOut = Vector128.Create(HmmPfn.InOutFlags);
        Vector128<ulong> vWrite = Vector128.Create(HmmPfn.Write);
        Vector128<ulong> vPfnLow = Vector128.Create(Pte.MaxPfn);
        Vector128<ulong> vPresentSpecial = Vector128.Create(Present | Special);
        Vector128<ulong> vPresent = Vector128.Create(Present);
        nuint n = (nuint)ptes.Length;
        nuint i = 0;
        for (; i + (nuint)Vector128<ulong>.Count <= n; i += (nuint)Vector128<ulong>.Count)
        {
            Vector128<ulong> p = Vector128.LoadUnsafe(ref pr, i);
            Vector128<ulong> input = Vector128.LoadUnsafe(ref fr, i);

            // Decisions live in bit 63 of each lane: PTE bit 0 (present) and bit 1 (writable) are shifted there,
            // as are the request's REQ_FAULT (already bit 63) and REQ_WRITE (bit 62).
            Vector128<ulong> req = (input & vMask) | vDefault;
            Vector128<ulong> present = Vector128.ShiftLeft(p, 63);
            Vector128<ulong> writable = Vector128.ShiftLeft(p, 62);
            Vector128<ulong> need = req & ~(present & (~Vector128.ShiftLeft(req, 1) | writable));

            // Slow lanes: not empty and not "present without special" (the zero page goes to the slow path too
            // when special; see Output for the fast-path encoding).
            Vector128<ulong> slow = ~Vector128.Equals(p, Vector128<ulong>.Zero) & ~Vector128.Equals(p & vPresentSpecial, vPresent) & ~ZeroPage(p);
            ulong stop = (need | slow).ExtractMostSignificantBits();
            if (stop != 0)
            {
                return FinishPartial(ptes, pfns, (int)i, BitOperations.TrailingZeroCount(stop), store);
            }

            if (store)
            {
                // VALID = PTE bit 0 moved to 63, WRITE = PTE bit 1 moved to 62, pfn = bits 51..12 moved to 39..0.
                Vector128<ulong> output = (input & vInOut) | present | (Vector128.ShiftLeft(p, 61) & vWrite) | (Vector128.ShiftRightLogical(p, Pte.PfnShift) & vPfnLow);
                output.StoreUnsafe(ref fr, i);
            }
        }

        return (int)i + ScanScalar(ptes[(int)i..], pfns[(int)i..], defaultFlags, mask, store);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static Vector128<ulong> ZeroPage(Vector128<ulong> p) => Vector128.Equals(p & ~(Vector128.Create(Pte.AccessedBit | Pte.DirtyBit | Pte.UffdWpBit | Pte.SoftDirtyBit)), Vector128.Create(Pte.Special(PhysicalMemory.ZeroPfn).Value));
    }

    /// <summary>Stores the outputs of lanes [0, k) of the vector at <paramref name="start"/>, which did not stop.</summary>
    private static int FinishPartial(ReadOnlySpan<ulong> ptes, Span<ulong> pfns, int start, int k, bool store)
    {
        if (store)
        {
            for (int j = start; j < start + k; j++)
            {
                pfns[j] = Output(ptes[j], pfns[j]);
            }
        }

        return start + k;
    }
}
