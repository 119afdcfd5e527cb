using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Text;

namespace MirrorEmu.Mm;

/// <summary>The kind of a non-present, non-empty PTE (a "swap-type" entry, include/linux/swapops.h).</summary>
public enum SwapType : byte
{
    /// <summary>Not a swap-type entry.</summary>
    None = 0,
    /// <summary>A swapped-out page; the offset is the frame holding its data (the emulated swap cache).</summary>
    Swap = 1,
    /// <summary>A page under migration, mapped read-only before it.</summary>
    MigrationRead = 2,
    /// <summary>A page under migration, mapped writable before it.</summary>
    MigrationWrite = 3,
    /// <summary>A device-private page, read-only (the offset is a device pfn).</summary>
    DevicePrivateRead = 4,
    /// <summary>A device-private page, writable.</summary>
    DevicePrivateWrite = 5,
    /// <summary>A page held exclusively by a device (make_device_exclusive); the offset is the real pfn.</summary>
    DeviceExclusive = 6,
    /// <summary>A PTE marker (a userfaultfd write-protect marker on an unpopulated page). Counts as none.</summary>
    Marker = 7,
    /// <summary>A hardware-poisoned page.</summary>
    Poisoned = 8,
    /// <summary>A guard-region marker (MADV_GUARD_INSTALL): an access faults with SIGSEGV. Unlike <see cref="Marker"/> it
    /// does not count as none: userfaultfd cannot fill it, MADV_DONTNEED and fork keep it, munmap and MADV_GUARD_REMOVE clear it.</summary>
    Guard = 9,
}

// [63 NX][62..52 sw, reserved][51..12 pfn or swap offset][11..0 flags]
// flags of a present or protnone entry: [0 P][1 W][2 U][5 A][6 D][7 PSE huge][8 PROTNONE][9 SPECIAL][10 UFFD_WP][11 SOFT_DIRTY]
// a swap-type entry (P = 0, PROTNONE = 0, word != 0): [51..12 offset][5..1 SwapType]

/// <summary>
/// One 64-bit page-table entry, laid out like an x86-64 PTE (arch/x86/include/asm/pgtable_types.h):
/// the same word serves leaf PTEs and huge PMD leaves (with <see cref="HugeBit"/>).
/// </summary>
/// <remarks>
/// The zero page is mapped as a special PTE, as the kernel does; HMM reports it as a normal page
/// (mm/hmm.c, hmm_vma_handle_pte). No code outside this struct shifts PTE bits.
/// </remarks>
public readonly struct Pte : IEquatable<Pte>
{
    /// <summary>Bit position of <see cref="PresentBit"/>.</summary>
    public const int PresentShift = 0;
    /// <summary>Present: the CPU may read through this entry.</summary>
    public const ulong PresentBit = 1UL << PresentShift;
    /// <summary>Bit position of <see cref="WriteBit"/>.</summary>
    public const int WriteShift = 1;
    /// <summary>Writable.</summary>
    public const ulong WriteBit = 1UL << WriteShift;
    /// <summary>User-accessible (always set on user mappings).</summary>
    public const ulong UserBit = 1UL << 2;
    /// <summary>Accessed.</summary>
    public const ulong AccessedBit = 1UL << 5;
    /// <summary>Dirty.</summary>
    public const ulong DirtyBit = 1UL << 6;
    /// <summary>Page-size bit: a huge PMD leaf.</summary>
    public const ulong HugeBit = 1UL << 7;
    /// <summary>PROT_NONE (or NUMA hinting): pte_present() but no access.</summary>
    public const ulong ProtNoneBit = 1UL << 8;
    /// <summary>Special: no struct page behind it (pfnmap, or the zero page).</summary>
    public const ulong SpecialBit = 1UL << 9;
    /// <summary>userfaultfd write-protected.</summary>
    public const ulong UffdWpBit = 1UL << 10;
    /// <summary>Soft-dirty.</summary>
    public const ulong SoftDirtyBit = 1UL << 11;
    /// <summary>No-execute.</summary>
    public const ulong NxBit = 1UL << 63;

    /// <summary>Bit position of the pfn field.</summary>
    public const int PfnShift = PageGeometry.PageShift;
    /// <summary>Width of the pfn field in bits (51..12).</summary>
    public const int PfnBits = 40;
    /// <summary>Largest pfn the field holds.</summary>
    public const ulong MaxPfn = (1UL << PfnBits) - 1;
    /// <summary>Mask of the pfn field in place.</summary>
    public const ulong PfnMask = MaxPfn << PfnShift;

    /// <summary>
    /// The bits that identify the zero page's entry: present, special, and the pfn field. hmm_vma_handle_pte
    /// (mm/hmm.c) reports a special entry as a plain page when <c>is_zero_pfn(pte_pfn(pte))</c>, which looks at
    /// the pfn only, so write, NX, huge, soft-dirty and the other bits do not matter.
    /// </summary>
    public const ulong ZeroPageMask = PresentBit | SpecialBit | PfnMask;
    /// <summary>The value of <see cref="ZeroPageMask"/>'s bits in an entry of the zero page.</summary>
    public const ulong ZeroPageBits = PresentBit | SpecialBit | (PhysicalMemory.ZeroPfn << PfnShift);

    /// <summary>Bit position of the swap type of a non-present entry.</summary>
    public const int SwapTypeShift = 1;
    /// <summary>Width of the swap type.</summary>
    public const int SwapTypeBits = 5;
    /// <summary>Mask of the swap type in place.</summary>
    public const ulong SwapTypeMask = ((1UL << SwapTypeBits) - 1) << SwapTypeShift;

    private readonly ulong _value;

    /// <summary>Wraps a raw PTE word.</summary>
    /// <param name="value">The raw 64-bit entry.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Pte(ulong value) => _value = value;

    /// <summary>The raw word.</summary>
    public ulong Value
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => _value;
    }

    /// <summary>The empty entry (pte_none).</summary>
    public static Pte None => default;

    /// <summary>A present user mapping of <paramref name="pfn"/>.</summary>
    /// <param name="pfn">Frame number.</param>
    /// <param name="writable">Whether the CPU may write through it.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Pte Present(ulong pfn, bool writable) =>
        new((pfn << PfnShift) | PresentBit | UserBit | AccessedBit | (writable ? WriteBit | DirtyBit : 0));

    /// <summary>A present, read-only, special mapping of <paramref name="pfn"/> (the zero page, or a pfnmap).</summary>
    /// <param name="pfn">Frame number.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Pte Special(ulong pfn) => new((pfn << PfnShift) | PresentBit | UserBit | SpecialBit);

    /// <summary>A swap-type entry.</summary>
    /// <param name="type">Which kind of entry.</param>
    /// <param name="offset">Swap offset, or a pfn for migration, device and exclusive entries.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Pte SwapEntry(SwapType type, ulong offset) =>
        new((offset << PfnShift) | ((ulong)type << SwapTypeShift));

    /// <summary>pte_none: the empty word.</summary>
    public bool IsNone
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => _value == 0;
    }

    /// <summary>pte_none_mostly: empty, or a marker entry.</summary>
    public bool IsNoneMostly
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => _value == 0 || Swap == SwapType.Marker;
    }

    /// <summary>The hardware present bit: the CPU can read through it.</summary>
    public bool IsPresent
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => (_value & PresentBit) != 0;
    }

    /// <summary>A PROT_NONE entry: pte_present() holds but every access faults.</summary>
    public bool IsProtNone
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => (_value & (PresentBit | ProtNoneBit)) == ProtNoneBit;
    }

    /// <summary>The kernel's pte_present(): present or PROT_NONE.</summary>
    public bool IsMapped
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => (_value & (PresentBit | ProtNoneBit)) != 0;
    }

    /// <summary>Writable.</summary>
    public bool IsWritable
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => (_value & WriteBit) != 0;
    }

    /// <summary>True when the entry lets an access through without a fault: present, and writable for a write.</summary>
    /// <param name="write">Whether the access writes.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool Allows(bool write) => IsPresent && (!write || IsWritable);

    /// <summary>Dirty.</summary>
    public bool IsDirty
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => (_value & DirtyBit) != 0;
    }

    /// <summary>Accessed.</summary>
    public bool IsAccessed
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => (_value & AccessedBit) != 0;
    }

    /// <summary>A huge PMD leaf.</summary>
    public bool IsHuge
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => (_value & HugeBit) != 0;
    }

    /// <summary>Special (no struct page: a pfnmap or the zero page).</summary>
    public bool IsSpecial
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => (_value & SpecialBit) != 0;
    }

    /// <summary>A present special entry of the zero page (pte_special and is_zero_pfn), whatever its other bits.</summary>
    public bool IsZeroPage
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => (_value & ZeroPageMask) == ZeroPageBits;
    }

    /// <summary>userfaultfd write-protected.</summary>
    public bool IsUffdWp
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => (_value & UffdWpBit) != 0;
    }

    /// <summary>The frame number (or the offset of a swap-type entry).</summary>
    public ulong Pfn
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => (_value & PfnMask) >> PfnShift;
    }

    /// <summary><see cref="Pfn"/> of every lane of a vector of raw entries (for width-generic loops over a leaf table).</summary>
    /// <typeparam name="TVector">Vector128, Vector256 or Vector512 of ulong (see <see cref="WordVector"/>).</typeparam>
    /// <param name="entries">Raw PTE words.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static TVector Pfns<TVector>(TVector entries)
        where TVector : struct =>
        WordVector.ShiftRightLogical(WordVector.And(entries, WordVector.Create<TVector>(PfnMask)), PfnShift);

    /// <summary>
    /// Every lane of a vector of raw entries with one of its flag bits moved to another word's bit position and the
    /// other bits cleared: how a width-generic loop turns PTE flags into the flags of another format (present into
    /// HMM_PFN_VALID, write into HMM_PFN_WRITE) without shifting PTE bits itself.
    /// </summary>
    /// <typeparam name="TVector">Vector128, Vector256 or Vector512 of ulong (see <see cref="WordVector"/>).</typeparam>
    /// <param name="entries">Raw PTE words.</param>
    /// <param name="bitShift">The flag's position: <see cref="PresentShift"/> or <see cref="WriteShift"/>.</param>
    /// <param name="toShift">Where it goes, at or above <paramref name="bitShift"/>.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static TVector MoveBit<TVector>(TVector entries, int bitShift, int toShift)
        where TVector : struct
    {
        Debug.Assert(bitShift is PresentShift or WriteShift && toShift >= bitShift, "a flag bit, moved up");
        return WordVector.ShiftLeft(WordVector.And(entries, WordVector.Create<TVector>(1UL << bitShift)), toShift - bitShift);
    }

    /// <summary>The swap type of a non-present, non-empty entry; <see cref="SwapType.None"/> otherwise.</summary>
    public SwapType Swap
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => (_value & (PresentBit | ProtNoneBit)) != 0 ? SwapType.None : (SwapType)((_value & SwapTypeMask) >> SwapTypeShift);
    }

    /// <summary>True for a swap-type entry that keeps a reference on a frame of the pool (swap cache, migration,
    /// device-exclusive); markers hold nothing, device-private pages belong to the device, poison is gone.</summary>
    public bool HoldsFrameReference => Swap is SwapType.Swap or SwapType.MigrationRead or SwapType.MigrationWrite or SwapType.DeviceExclusive;

    /// <summary>Returns a copy with the write bit set or cleared.</summary>
    /// <param name="writable">The new write permission.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Pte WithWritable(bool writable) => new(writable ? _value | WriteBit : _value & ~WriteBit);

    /// <summary>Returns a copy with the accessed (and, for a write, the dirty) bit set.</summary>
    /// <param name="write">Whether the access was a write.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Pte WithYoung(bool write) => new(_value | AccessedBit | (write ? DirtyBit : 0));

    /// <summary>Returns a copy with the dirty bit cleared.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Pte WithClean() => new(_value & ~DirtyBit);

    /// <summary>Returns a copy with the huge bit set or cleared.</summary>
    /// <param name="huge">Whether this is a PMD leaf.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Pte WithHuge(bool huge) => new(huge ? _value | HugeBit : _value & ~HugeBit);

    /// <summary>Returns a copy with another pfn.</summary>
    /// <param name="pfn">The new frame number.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Pte WithPfn(ulong pfn) => new((_value & ~PfnMask) | (pfn << PfnShift));

    /// <summary>Returns a copy with the userfaultfd write-protect bit set or cleared.</summary>
    /// <param name="wp">Whether it is write-protected.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Pte WithUffdWp(bool wp) => new(wp ? _value | UffdWpBit : _value & ~UffdWpBit);

    /// <summary>Turns a present entry into PROT_NONE, keeping pfn and the other bits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Pte WithProtNone() => new((_value & ~PresentBit) | ProtNoneBit);

    /// <summary>Turns a PROT_NONE entry back into a present one.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Pte WithPresent() => new((_value & ~ProtNoneBit) | PresentBit);

    /// <inheritdoc/>
    public bool Equals(Pte other) => _value == other._value;

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is Pte other && Equals(other);

    /// <inheritdoc/>
    public override int GetHashCode() => _value.GetHashCode();

    /// <summary>Compares raw words.</summary>
    public static bool operator ==(Pte left, Pte right) => left._value == right._value;

    /// <summary>Compares raw words.</summary>
    public static bool operator !=(Pte left, Pte right) => left._value != right._value;

    /// <summary>Prints <c>pfn=0x1a2b P W D</c> style text.</summary>
    public override string ToString()
    {
        if (IsNone)
        {
            return "none";
        }

        if (!IsMapped)
        {
            return $"{Swap} off=0x{Pfn:x}";
        }

        var sb = new StringBuilder();
        sb.Append("pfn=0x").Append(Pfn.ToString("x", System.Globalization.CultureInfo.InvariantCulture));
        if (IsPresent) sb.Append(" P");
        if (IsProtNone) sb.Append(" PROTNONE");
        if (IsWritable) sb.Append(" W");
        if (IsAccessed) sb.Append(" A");
        if (IsDirty) sb.Append(" D");
        if (IsHuge) sb.Append(" HUGE");
        if (IsSpecial) sb.Append(" SPECIAL");
        if (IsUffdWp) sb.Append(" UFFD_WP");
        return sb.ToString();
    }
}
