using System.Diagnostics;
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
/// One loop body (<see cref="ScanVector{TVector, TFilter}"/>) serves every width (Vector128, Vector256,
/// Vector512) and every request shape (an <see cref="IPteFilter"/>); the scalar reference
/// (<see cref="ScanReference"/>) writes hmm_vma_handle_pte's rules plainly, and every path is tested against
/// it on seeded random words (docs/design.md, invariant 4).
/// </summary>
/// <remarks>
/// <para>The fast path handles empty entries and present ones whose page is a plain page: not special, or
/// special with the zero page's pfn. The zero page is reported as a normal page, with WRITE if its entry is
/// writable, whatever its other bits: mm/hmm.c hmm_vma_handle_pte takes the error path only for
/// <c>pte_special(pte) &amp;&amp; !is_zero_pfn(pte_pfn(pte))</c>, and is_zero_pfn compares the pfn alone
/// (<see cref="Pte.IsZeroPage"/>). The scan stops at protnone entries, swap-type entries (swap, migration,
/// device-private, device-exclusive, markers, poison) and special entries other than the zero page, which
/// the walker then handles one by one (<see cref="HmmFault"/>).</para>
/// <para>Output of an empty entry: 0 plus the sticky bits; of a present one: VALID | WRITE-if-writable | pfn,
/// plus the sticky bits. No PTE bit is shifted here: the masks and the pfn come from <see cref="Pte"/>, the
/// output bits from <see cref="HmmPfn"/>.</para>
/// </remarks>
public static partial class PteScanner
{
    /// <summary>The request bits hmm_pte_need_fault reads.</summary>
    private const ulong RequestBits = HmmPfn.ReqFault | HmmPfn.ReqWrite;

    /// <summary>
    /// Scans <paramref name="ptes"/> against the requests in <paramref name="pfns"/> (same length) and,
    /// when <paramref name="store"/>, overwrites each entry of <paramref name="pfns"/> before the first stop
    /// with its output. Takes the widest hardware-accelerated width that fits (<see cref="WidthFor"/>).
    /// </summary>
    /// <param name="ptes">Consecutive PTEs of one leaf table.</param>
    /// <param name="pfns">The HMM words for the same pages: inputs, and outputs where written.</param>
    /// <param name="defaultFlags">range.default_flags.</param>
    /// <param name="mask">range.pfn_flags_mask.</param>
    /// <param name="store">Write outputs (a walk) or only look (collecting runs to fault).</param>
    /// <returns>The index of the first entry that needs a fault or the slow path; <c>ptes.Length</c> if none.</returns>
    public static int Scan(ReadOnlySpan<ulong> ptes, Span<ulong> pfns, ulong defaultFlags, ulong mask, bool store) =>
        WidthFor(ptes.Length) switch
        {
            ScanWidth.Vector512 => Scan<VectorWidth<Vector512<ulong>>>(ptes, pfns, defaultFlags, mask, store),
            ScanWidth.Vector256 => Scan<VectorWidth<Vector256<ulong>>>(ptes, pfns, defaultFlags, mask, store),
            ScanWidth.Vector128 => Scan<VectorWidth<Vector128<ulong>>>(ptes, pfns, defaultFlags, mask, store),
            _ => Scan<ScalarWidth>(ptes, pfns, defaultFlags, mask, store),
        };

    /// <summary>
    /// The width <see cref="Scan(ReadOnlySpan{ulong}, Span{ulong}, ulong, ulong, bool)"/> takes for a table of
    /// <paramref name="length"/> entries: scalar when Vector128 is not hardware accelerated or
    /// the table is shorter than one Vector128, else the widest accelerated vector that fits.
    /// </summary>
    /// <param name="length">Entries to scan.</param>
    internal static ScanWidth WidthFor(int length)
    {
        if (!Vector128.IsHardwareAccelerated || length < Vector128<ulong>.Count)
        {
            return ScanWidth.Scalar;
        }

        if (Vector512.IsHardwareAccelerated && length >= Vector512<ulong>.Count)
        {
            return ScanWidth.Vector512;
        }

        if (Vector256.IsHardwareAccelerated && length >= Vector256<ulong>.Count)
        {
            return ScanWidth.Vector256;
        }

        return ScanWidth.Vector128;
    }

    /// <summary>
    /// The scan at width <typeparamref name="TWidth"/>, with the filter that the request shape calls for:
    /// <see cref="PerPage"/> when pfn_flags_mask lets a page's own word ask for REQ_FAULT or REQ_WRITE, else one
    /// of <see cref="WriteFault"/>, <see cref="ReadFault"/>, <see cref="NoFault"/> by default_flags.
    /// Tests call it with every width, whatever the hardware.
    /// </summary>
    /// <typeparam name="TWidth"><see cref="ScalarWidth"/> or <see cref="VectorWidth{TVector}"/>.</typeparam>
    internal static int Scan<TWidth>(ReadOnlySpan<ulong> ptes, Span<ulong> pfns, ulong defaultFlags, ulong mask, bool store)
        where TWidth : struct, IScanWidth
    {
        if ((mask & RequestBits) != 0)
        {
            return TWidth.Scan<PerPage>(ptes, pfns, defaultFlags, mask, store);
        }

        return (defaultFlags & RequestBits) switch
        {
            RequestBits => TWidth.Scan<WriteFault>(ptes, pfns, defaultFlags, mask, store),
            HmmPfn.ReqFault => TWidth.Scan<ReadFault>(ptes, pfns, defaultFlags, mask, store),
            _ => TWidth.Scan<NoFault>(ptes, pfns, defaultFlags, mask, store),
        };
    }

    /// <summary>The scalar reference: hmm_vma_handle_pte's fast-path rules for any request (<see cref="PerPage"/>'s scalar form).</summary>
    /// <inheritdoc cref="Scan(ReadOnlySpan{ulong}, Span{ulong}, ulong, ulong, bool)"/>
    internal static int ScanReference(ReadOnlySpan<ulong> ptes, Span<ulong> pfns, ulong defaultFlags, ulong mask, bool store) =>
        ScanScalar<PerPage>(ptes, pfns, defaultFlags, mask, store);

    /// <summary>True if the fast path does not handle this PTE (protnone, swap-type, special other than the zero page).</summary>
    /// <param name="pte">A raw PTE.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool IsSlow(ulong pte) => pte != 0 && !IsPlainPage(new Pte(pte));

    /// <summary>hmm_pte_need_fault for a fast-path entry.</summary>
    /// <param name="pte">An entry for which <see cref="IsSlow"/> is false.</param>
    /// <param name="input">Its HMM input word.</param>
    /// <param name="defaultFlags">range.default_flags.</param>
    /// <param name="mask">range.pfn_flags_mask.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool NeedsFault(ulong pte, ulong input, ulong defaultFlags, ulong mask) => NeedsFault(pte, (input & mask) | defaultFlags);

    /// <summary>The output word of a fast-path entry.</summary>
    /// <param name="pte">An entry for which <see cref="IsSlow"/> is false.</param>
    /// <param name="input">Its HMM input word.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Output(ulong pte, ulong input)
    {
        var p = new Pte(pte);
        return HmmPfn.Output(input, p.IsNone ? 0 : HmmPfn.Valid | (p.IsWritable ? HmmPfn.Write : 0) | p.Pfn);
    }

    /// <summary>hmm_pte_need_fault for a fast-path entry and its request.</summary>
    /// <param name="pte">An entry for which <see cref="IsSlow"/> is false.</param>
    /// <param name="request"><c>(input &amp; pfn_flags_mask) | default_flags</c>.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool NeedsFault(ulong pte, ulong request) =>
        (request & HmmPfn.ReqFault) != 0 && (pte == 0 || ((request & HmmPfn.ReqWrite) != 0 && !new Pte(pte).IsWritable));

    /// <summary>A present entry the fast path reports: not special, or the zero page.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool IsPlainPage(Pte pte) => pte.IsPresent && (!pte.IsSpecial || pte.IsZeroPage);

    /// <summary>The scalar loop, for any filter: the reference (with <see cref="PerPage"/>), the path where Vector128 is
    /// not accelerated, and tables shorter than one vector.</summary>
    /// <typeparam name="TFilter">Where to stop.</typeparam>
    /// <inheritdoc cref="Scan(ReadOnlySpan{ulong}, Span{ulong}, ulong, ulong, bool)"/>
    private static int ScanScalar<TFilter>(ReadOnlySpan<ulong> ptes, Span<ulong> pfns, ulong defaultFlags, ulong mask, bool store)
        where TFilter : struct, IPteFilter
    {
        for (int i = 0; i < ptes.Length; i++)
        {
            ulong pte = ptes[i];
            ulong input = pfns[i];
            if (TFilter.Matches(pte, Request<TFilter>(input, mask, defaultFlags)))
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

    /// <summary>The request of one HMM word, <c>(input &amp; pfn_flags_mask) | default_flags</c>, when the filter reads it (0 otherwise).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong Request<TFilter>(ulong input, ulong mask, ulong defaultFlags)
        where TFilter : struct, IPteFilter =>
        TFilter.UsesRequests ? (input & mask) | defaultFlags : 0;

    /// <summary>
    /// The vector loop, one body for every width and filter: a vector of PTEs and their HMM
    /// words per step, the stop lanes from <typeparamref name="TFilter"/> as a bit mask, the first stop from
    /// <see cref="BitOperations.TrailingZeroCount(ulong)"/>; the table's last vector overlaps the one before it
    /// (unless the length is a multiple of the width) and its lanes already counted are masked off.
    /// </summary>
    /// <typeparam name="TVector">Vector128, Vector256 or Vector512 of ulong (see <see cref="WordVector"/>).</typeparam>
    /// <typeparam name="TFilter">Where to stop.</typeparam>
    /// <remarks>The overlapping vector writes its already-written lanes again with the same words: an output read
    /// back as an input gives the same output (the sticky bits are kept, the rest comes from the PTE).</remarks>
    /// <inheritdoc cref="Scan(ReadOnlySpan{ulong}, Span{ulong}, ulong, ulong, bool)"/>
    [SkipLocalsInit]
    // Compiled alone and fully optimized at once: one-shot CLI runs must not scan with tier-0 vector code, and a caller
    // that inlined it ran out of inlining budget and called the vector helpers instead (bench Hmm/WalkerBenchmarks.Scan).
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static int ScanVector<TVector, TFilter>(ReadOnlySpan<ulong> ptes, Span<ulong> pfns, ulong defaultFlags, ulong mask, bool store)
        where TVector : struct
        where TFilter : struct, IPteFilter =>
        store // one inlined copy of the loop per value, so that the loop tests no flag (bench Hmm/WalkerBenchmarks.Scan)
            ? ScanVectorLoop<TVector, TFilter>(ptes, pfns, defaultFlags, mask, store: true)
            : ScanVectorLoop<TVector, TFilter>(ptes, pfns, defaultFlags, mask, store: false);

    /// <summary>The body of <see cref="ScanVector{TVector, TFilter}"/>, inlined with <paramref name="store"/> constant.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int ScanVectorLoop<TVector, TFilter>(ReadOnlySpan<ulong> ptes, Span<ulong> pfns, ulong defaultFlags, ulong mask, bool store)
        where TVector : struct
        where TFilter : struct, IPteFilter
    {
        nuint width = (nuint)WordVector.Count<TVector>();
        Debug.Assert((nuint)ptes.Length >= width && pfns.Length == ptes.Length, "one vector at least, one HMM word per PTE");
        ref ulong pr = ref MemoryMarshal.GetReference(ptes);
        ref ulong fr = ref MemoryMarshal.GetReference(pfns);
        TVector vMask = WordVector.Create<TVector>(mask);
        TVector vDefault = WordVector.Create<TVector>(defaultFlags);
        ulong lanes = ulong.MaxValue >> (64 - (int)width);
        nuint last = (nuint)ptes.Length - width;
        nuint i = 0;
        for (; i < last; i += width)
        {
            ulong stop = Step<TVector, TFilter>(ref pr, ref fr, i, vMask, vDefault, lanes, store);
            if (stop != 0)
            {
                return FinishPartial(ptes, pfns, (int)i, BitOperations.TrailingZeroCount(stop), store);
            }
        }

        // The last vector overlaps the one before unless the length is a multiple of the width: its lanes below
        // i - last were counted already.
        lanes &= lanes << (int)(i - last);
        ulong rest = Step<TVector, TFilter>(ref pr, ref fr, last, vMask, vDefault, lanes, store);
        return rest == 0 ? ptes.Length : FinishPartial(ptes, pfns, (int)last, BitOperations.TrailingZeroCount(rest), store);
    }

    /// <summary>One vector at <paramref name="i"/>: the lanes among <paramref name="lanes"/> where the scan stops, and
    /// when there are none and <paramref name="store"/>, the vector's outputs stored.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong Step<TVector, TFilter>(ref ulong ptes, ref ulong pfns, nuint i, TVector mask, TVector defaultFlags, ulong lanes, bool store)
        where TVector : struct
        where TFilter : struct, IPteFilter
    {
        TVector p = WordVector.LoadUnsafe<TVector>(in ptes, i);
        TVector input = store || TFilter.UsesRequests ? WordVector.LoadUnsafe<TVector>(in pfns, i) : default;
        TVector request = TFilter.UsesRequests ? WordVector.Or(WordVector.And(input, mask), defaultFlags) : default;
        ulong stop = TFilter.Matches(p, request) & lanes;
        if (stop == 0 && store)
        {
            WordVector.StoreUnsafe(Output(p, input), ref pfns, i);
        }

        return stop;
    }

    /// <summary><see cref="Output(ulong, ulong)"/> lane by lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TVector Output<TVector>(TVector ptes, TVector inputs)
        where TVector : struct
    {
        // VALID is the present bit and WRITE the write bit: an empty entry has neither, a plain page is present.
        TVector flags = WordVector.Or(Pte.MoveBit(ptes, Pte.PresentShift, HmmPfn.ValidShift), Pte.MoveBit(ptes, Pte.WriteShift, HmmPfn.WriteShift));
        return WordVector.Or(WordVector.Or(WordVector.And(inputs, WordVector.Create<TVector>(HmmPfn.InOutFlags)), flags), Pte.Pfns(ptes));
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
