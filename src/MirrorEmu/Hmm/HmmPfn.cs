using System.Runtime.CompilerServices;

namespace MirrorEmu.Hmm;

// [63 VALID][62 WRITE][61 ERROR][60 DMA_MAPPED][59 P2PDMA][58 P2PDMA_BUS][57..53 order][52..0 pfn]

/// <summary>
/// The HMM pfn word, bit-exact with include/linux/hmm.h (enum hmm_pfn_flags): the same word
/// is the per-page request on input (REQ_FAULT = VALID, REQ_WRITE = WRITE) and the result on output.
/// Every output keeps the sticky in/out bits (DMA_MAPPED, P2PDMA, P2PDMA_BUS) and replaces the rest.
/// </summary>
public readonly struct HmmPfn : IEquatable<HmmPfn>
{
    /// <summary>Bit position of <see cref="Valid"/>.</summary>
    public const int ValidShift = 63;
    /// <summary>HMM_PFN_VALID: the pfn is valid and the page at least readable.</summary>
    public const ulong Valid = 1UL << ValidShift;
    /// <summary>Bit position of <see cref="Write"/>.</summary>
    public const int WriteShift = 62;
    /// <summary>HMM_PFN_WRITE: the CPU mapping is writable.</summary>
    public const ulong Write = 1UL << WriteShift;
    /// <summary>HMM_PFN_ERROR: the page cannot be accessed.</summary>
    public const ulong Error = 1UL << 61;
    /// <summary>HMM_PFN_DMA_MAPPED (sticky).</summary>
    public const ulong DmaMapped = 1UL << 60;
    /// <summary>HMM_PFN_P2PDMA (sticky).</summary>
    public const ulong P2pDma = 1UL << 59;
    /// <summary>HMM_PFN_P2PDMA_BUS (sticky).</summary>
    public const ulong P2pDmaBus = 1UL << 58;
    /// <summary>HMM_PFN_ORDER_SHIFT = BITS_PER_LONG - 11.</summary>
    public const int OrderShift = 53;
    /// <summary>Width of the order field.</summary>
    public const int OrderBits = 5;
    /// <summary>The order field in place.</summary>
    public const ulong OrderMask = ((1UL << OrderBits) - 1) << OrderShift;
    /// <summary>HMM_PFN_REQ_FAULT: the output must end up VALID.</summary>
    public const ulong ReqFault = Valid;
    /// <summary>HMM_PFN_REQ_WRITE: the output must end up WRITE (with REQ_FAULT).</summary>
    public const ulong ReqWrite = Write;
    /// <summary>HMM_PFN_INOUT_FLAGS: kept from the input on every output.</summary>
    public const ulong InOutFlags = DmaMapped | P2pDma | P2pDmaBus;
    /// <summary>HMM_PFN_FLAGS: every flag and order bit; pfn = word &amp; ~Flags.</summary>
    public const ulong Flags = ~((1UL << OrderShift) - 1);

    private readonly ulong _value;

    /// <summary>Wraps a raw word.</summary>
    /// <param name="value">The word.</param>
    public HmmPfn(ulong value) => _value = value;

    /// <summary>The raw word.</summary>
    public ulong Value => _value;

    /// <summary>hmm_pfn_to_pfn.</summary>
    public ulong Pfn
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => _value & ~Flags;
    }

    /// <summary>hmm_pfn_to_map_order.</summary>
    public int Order
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => (int)((_value & OrderMask) >> OrderShift);
    }

    /// <summary>VALID.</summary>
    public bool IsValid => (_value & Valid) != 0;

    /// <summary>WRITE.</summary>
    public bool IsWritable => (_value & Write) != 0;

    /// <summary>ERROR.</summary>
    public bool IsError => (_value & Error) != 0;

    /// <summary>The order field value for a mapping of <paramref name="order"/>.</summary>
    /// <param name="order">log2 pages.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong OrderBitsFor(int order) => (ulong)order << OrderShift;

    /// <summary>An output word: the input's sticky bits plus <paramref name="output"/>.</summary>
    /// <param name="input">The entry's input word.</param>
    /// <param name="output">Flags, order and pfn of the result.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Output(ulong input, ulong output) => (input & InOutFlags) | output;

    /// <inheritdoc/>
    public bool Equals(HmmPfn other) => _value == other._value;

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is HmmPfn o && Equals(o);

    /// <inheritdoc/>
    public override int GetHashCode() => _value.GetHashCode();

    /// <summary>Compares words.</summary>
    public static bool operator ==(HmmPfn a, HmmPfn b) => a._value == b._value;

    /// <summary>Compares words.</summary>
    public static bool operator !=(HmmPfn a, HmmPfn b) => a._value != b._value;

    /// <summary>Prints <c>pfn=0x1a2b V W order=9</c> style text.</summary>
    public override string ToString() =>
        $"pfn=0x{Pfn:x}{(IsValid ? " V" : string.Empty)}{(IsWritable ? " W" : string.Empty)}{(IsError ? " ERR" : string.Empty)}{((_value & DmaMapped) != 0 ? " DMA" : string.Empty)}{(Order != 0 ? $" order={Order}" : string.Empty)}";
}

/// <summary>What the fault path must do for a page (hmm_pte_need_fault's result).</summary>
[Flags]
public enum NeedFault
{
    /// <summary>Nothing.</summary>
    None = 0,
    /// <summary>HMM_NEED_FAULT.</summary>
    Fault = 1,
    /// <summary>HMM_NEED_WRITE_FAULT.</summary>
    WriteFault = 2,
    /// <summary>HMM_NEED_ALL_BITS.</summary>
    All = Fault | WriteFault,
}
