namespace MirrorEmu.Hmm;

/// <summary>
/// Where the PTE scanner stops: a policy struct with a scalar and a width-generic vector form of the same
/// predicate (after dotnet/runtime's <c>INegator&lt;T&gt;</c>). <see cref="PteScanner"/> has one
/// loop body, instantiated per filter and per width; ILGPU kernels will call only the scalar member.
/// </summary>
/// <remarks>
/// A filter matches an entry when the walk must leave the fast path there: the entry needs a fault for
/// its request (hmm_pte_need_fault), or it is one the fast path does not handle (<see cref="PteScanner.IsSlow"/>).
/// The request of a page is the kernel's <c>(hmm_pfn &amp; pfn_flags_mask) | default_flags</c>. Each filter is
/// exact for the request shape it is chosen for (see <see cref="PteScanner"/>), and every form of every filter
/// is tested against the scalar reference.
/// </remarks>
internal interface IPteFilter
{
    /// <summary>Whether <see cref="Matches(ulong, ulong)"/> reads the request; when false the scan neither computes
    /// requests nor, when it only looks, loads the HMM words.</summary>
    static abstract bool UsesRequests { get; }

    /// <summary>Whether the scan stops at this entry.</summary>
    /// <param name="pte">The raw PTE.</param>
    /// <param name="request">Its request, <c>(input &amp; pfn_flags_mask) | default_flags</c> (0 when <see cref="UsesRequests"/> is false).</param>
    static abstract bool Matches(ulong pte, ulong request);

    /// <summary>The same predicate lane by lane: bit <c>i</c> set where the scan stops at lane <c>i</c> (bits from the
    /// lane count up are free: the caller masks them off).</summary>
    /// <typeparam name="TVector">Vector128, Vector256 or Vector512 of ulong (see <see cref="WordVector"/>).</typeparam>
    /// <param name="ptes">Raw PTEs.</param>
    /// <param name="requests">Their requests (zeros when <see cref="UsesRequests"/> is false).</param>
    static abstract ulong Matches<TVector>(TVector ptes, TVector requests)
        where TVector : struct;
}
