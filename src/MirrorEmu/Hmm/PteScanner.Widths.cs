namespace MirrorEmu.Hmm;

/// <summary>The scan widths: a width parameter for the one loop body.</summary>
public static partial class PteScanner
{
    /// <summary>The width a scan runs at.</summary>
    internal enum ScanWidth
    {
        /// <summary>One PTE at a time.</summary>
        Scalar,
        /// <summary>2 PTEs per step.</summary>
        Vector128,
        /// <summary>4 PTEs per step.</summary>
        Vector256,
        /// <summary>8 PTEs per step.</summary>
        Vector512,
    }

    /// <summary>A width as a type, so that <see cref="Scan{TWidth}"/> chooses the filter once for every width.</summary>
    internal interface IScanWidth
    {
        /// <summary>Scans with <typeparamref name="TFilter"/> at this width.</summary>
        /// <typeparam name="TFilter">Where to stop.</typeparam>
        /// <inheritdoc cref="Scan(ReadOnlySpan{ulong}, Span{ulong}, ulong, ulong, bool)"/>
        static abstract int Scan<TFilter>(ReadOnlySpan<ulong> ptes, Span<ulong> pfns, ulong defaultFlags, ulong mask, bool store)
            where TFilter : struct, IPteFilter;
    }

    /// <summary>The scalar loop.</summary>
    internal readonly struct ScalarWidth : IScanWidth
    {
        /// <inheritdoc/>
        public static int Scan<TFilter>(ReadOnlySpan<ulong> ptes, Span<ulong> pfns, ulong defaultFlags, ulong mask, bool store)
            where TFilter : struct, IPteFilter =>
            ScanScalar<TFilter>(ptes, pfns, defaultFlags, mask, store);
    }

    /// <summary>The vector loop at the width of <typeparamref name="TVector"/>, whether or not it is hardware accelerated
    /// (.NET runs a vector it lacks in software); a table shorter than one vector goes to the scalar loop, and a scan
    /// that stops at its first entry ends after one scalar test.</summary>
    /// <remarks>The walker, collecting a run of missing pages, calls the scan once per page, and each call stops at its
    /// first entry: the vector loop's setup cost more there than the scalar loop (bench Hmm/WalkerBenchmarks.Scan at 0 and
    /// 1 % present).</remarks>
    /// <typeparam name="TVector">Vector128, Vector256 or Vector512 of ulong (see <see cref="WordVector"/>).</typeparam>
    internal readonly struct VectorWidth<TVector> : IScanWidth
        where TVector : struct
    {
        /// <inheritdoc/>
        public static int Scan<TFilter>(ReadOnlySpan<ulong> ptes, Span<ulong> pfns, ulong defaultFlags, ulong mask, bool store)
            where TFilter : struct, IPteFilter =>
            ptes.Length < WordVector.Count<TVector>() ? ScanScalar<TFilter>(ptes, pfns, defaultFlags, mask, store)
            : TFilter.Matches(ptes[0], Request<TFilter>(pfns[0], mask, defaultFlags)) ? 0
            : ScanVector<TVector, TFilter>(ptes, pfns, defaultFlags, mask, store);
    }
}
