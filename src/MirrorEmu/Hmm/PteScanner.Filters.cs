using System.Runtime.CompilerServices;
using MirrorEmu.Mm;

namespace MirrorEmu.Hmm;

/// <summary>
/// The scanner's filters, one per request shape (<see cref="Scan{TWidth}"/> picks one). A request shape with no
/// per-page bits (pfn_flags_mask carries neither REQ_FAULT nor REQ_WRITE) makes the stop a predicate of the PTE
/// alone, so the scan does not read the HMM words to decide; <see cref="PerPage"/> is the general rule.
/// </summary>
public static partial class PteScanner
{
    /// <summary>No page asks for a fault: stops only at entries the fast path does not handle.</summary>
    internal readonly struct NoFault : IPteFilter
    {
        /// <inheritdoc/>
        public static bool UsesRequests => false;

        /// <inheritdoc/>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static bool Matches(ulong pte, ulong request) => IsSlow(pte);

        /// <inheritdoc/>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static ulong Matches<TVector>(TVector ptes, TVector requests)
            where TVector : struct =>
            ~(EmptyLanes(ptes) | PlainPageLanes(ptes));
    }

    /// <summary>Every page asks for REQ_FAULT and none for REQ_WRITE: stops also at empty entries.</summary>
    internal readonly struct ReadFault : IPteFilter
    {
        /// <inheritdoc/>
        public static bool UsesRequests => false;

        /// <inheritdoc/>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static bool Matches(ulong pte, ulong request) => !IsPlainPage(new Pte(pte));

        /// <inheritdoc/>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static ulong Matches<TVector>(TVector ptes, TVector requests)
            where TVector : struct =>
            ~PlainPageLanes(ptes);
    }

    /// <summary>Every page asks for REQ_FAULT | REQ_WRITE: stops also at empty and read-only entries.</summary>
    internal readonly struct WriteFault : IPteFilter
    {
        /// <inheritdoc/>
        public static bool UsesRequests => false;

        /// <inheritdoc/>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static bool Matches(ulong pte, ulong request) => !(IsPlainPage(new Pte(pte)) && new Pte(pte).IsWritable);

        /// <inheritdoc/>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static ulong Matches<TVector>(TVector ptes, TVector requests)
            where TVector : struct =>
            ~PlainPageLanes(ptes) | ReadOnlyLanes(ptes);
    }

    /// <summary>Any request, page by page: hmm_vma_handle_pte's fast-path rules, and the scalar reference.</summary>
    internal readonly struct PerPage : IPteFilter
    {
        /// <inheritdoc/>
        public static bool UsesRequests => true;

        /// <inheritdoc/>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static bool Matches(ulong pte, ulong request) => IsSlow(pte) || NeedsFault(pte, request);

        /// <inheritdoc/>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static ulong Matches<TVector>(TVector ptes, TVector requests)
            where TVector : struct
        {
            // Handled: an empty entry that asks for no fault, or a plain page unless it asks for a write it lacks.
            TVector requestBits = WordVector.Create<TVector>(RequestBits);
            ulong noFault = WordVector.EqualLanes(WordVector.And(requests, WordVector.Create<TVector>(HmmPfn.ReqFault)), default);
            ulong asksWrite = WordVector.EqualLanes(WordVector.And(requests, requestBits), requestBits);
            return ~((EmptyLanes(ptes) & noFault) | (PlainPageLanes(ptes) & ~(asksWrite & ReadOnlyLanes(ptes))));
        }
    }

    /// <summary>Lanes holding the empty entry.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong EmptyLanes<TVector>(TVector ptes)
        where TVector : struct =>
        WordVector.EqualLanes(ptes, default);

    /// <summary><see cref="IsPlainPage"/> lane by lane: present and not special, or the zero page.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong PlainPageLanes<TVector>(TVector ptes)
        where TVector : struct =>
        WordVector.EqualLanes(WordVector.And(ptes, WordVector.Create<TVector>(Pte.PresentBit | Pte.SpecialBit)), WordVector.Create<TVector>(Pte.PresentBit))
        | WordVector.EqualLanes(WordVector.And(ptes, WordVector.Create<TVector>(Pte.ZeroPageMask)), WordVector.Create<TVector>(Pte.ZeroPageBits));

    /// <summary>Lanes whose write bit is clear.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong ReadOnlyLanes<TVector>(TVector ptes)
        where TVector : struct =>
        WordVector.EqualLanes(WordVector.And(ptes, WordVector.Create<TVector>(Pte.WriteBit)), default);
}
