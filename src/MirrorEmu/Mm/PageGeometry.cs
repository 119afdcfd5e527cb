using System.Runtime.CompilerServices;

namespace MirrorEmu.Mm;

/// <summary>
/// Page and page-table geometry, derived from bit counts once: 4 levels of
/// 512 entries over 4 KiB pages give a 48-bit virtual address space (4 * 9 + 12 = 48).
/// No other file uses the literals for these shifts and masks.
/// </summary>
public static class PageGeometry
{
    /// <summary>log2 of the page size.</summary>
    public const int PageShift = 12;

    /// <summary>Index bits per page-table level.</summary>
    public const int LevelBits = 9;

    /// <summary>Page-table levels: PGD (3), PUD (2), PMD (1), PTE (0).</summary>
    public const int Levels = 4;

    /// <summary>Virtual address bits: 4 * 9 + 12 = 48.</summary>
    public const int VaBits = Levels * LevelBits + PageShift;

    /// <summary>Page size in bytes.</summary>
    public const ulong PageSize = 1UL << PageShift;

    /// <summary>Page size in bytes, as an int for spans.</summary>
    public const int PageSizeInt = 1 << PageShift;

    /// <summary>Offset-in-page mask.</summary>
    public const ulong PageMask = PageSize - 1;

    /// <summary>Entries in one table of any level.</summary>
    public const int LevelEntries = 1 << LevelBits;

    /// <summary>Mask of one level's index.</summary>
    public const int LevelMask = LevelEntries - 1;

    /// <summary>log2 of the span of one PMD entry (a 2 MiB huge page).</summary>
    public const int PmdShift = PageShift + LevelBits;

    /// <summary>Bytes covered by one PMD entry (2 MiB).</summary>
    public const ulong PmdSize = 1UL << PmdShift;

    /// <summary>Offset-in-huge-page mask.</summary>
    public const ulong PmdMask = PmdSize - 1;

    /// <summary>The order (log2 pages) of a PMD huge page: 9.</summary>
    public const int PmdOrder = LevelBits;

    /// <summary>log2 of the span of one PUD entry (1 GiB).</summary>
    public const int PudShift = PmdShift + LevelBits;

    /// <summary>The order of a PUD mapping: 18.</summary>
    public const int PudOrder = 2 * LevelBits;

    /// <summary>Size of the whole virtual address space in bytes (2^48).</summary>
    public const ulong AddressSpaceSize = 1UL << VaBits;

    /// <summary>
    /// One past the last user address (x86-64's TASK_SIZE_MAX, 2^47 - 4 KiB: the top page of the lower half is a guard
    /// against the non-canonical hole). The page table spans <see cref="AddressSpaceSize"/>; no mapping reaches past this.
    /// </summary>
    public const ulong TaskSize = (1UL << (VaBits - 1)) - PageSize;

    /// <summary>The lowest address a fixed mapping may use (the kernel's default mmap_min_addr, 64 KiB).</summary>
    public const ulong MmapMinAddr = 16 * PageSize;

    /// <summary>Index of <paramref name="va"/> in the table of <paramref name="level"/> (0 = PTE).</summary>
    /// <param name="va">A virtual address.</param>
    /// <param name="level">0 for the PTE level up to 3 for the PGD.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Index(ulong va, int level) => (int)(va >> (PageShift + LevelBits * level)) & LevelMask;

    /// <summary>The page number of a virtual address.</summary>
    /// <param name="va">A virtual address.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong PageNumber(ulong va) => va >> PageShift;

    /// <summary>Rounds down to a page boundary.</summary>
    /// <param name="va">A virtual address.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong PageDown(ulong va) => va & ~PageMask;

    /// <summary>True if the value is a multiple of the page size.</summary>
    /// <param name="value">An address or a length in bytes.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool IsPageAligned(ulong value) => (value & PageMask) == 0;

    /// <summary>PAGE_ALIGN as the kernel computes it: rounds up to whole pages modulo 2^64 (a length within a page of 2^64 becomes 0).</summary>
    /// <param name="length">A length in bytes.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong PageAlignWrapping(ulong length) => unchecked(length + PageMask) & ~PageMask;

    /// <summary>Rounds a length up to whole pages; false if that overflows the address space.</summary>
    /// <param name="length">A length in bytes.</param>
    /// <param name="rounded">The rounded length in bytes.</param>
    public static bool TryPageAlignUp(ulong length, out ulong rounded)
    {
        if (length > AddressSpaceSize)
        {
            rounded = 0;
            return false;
        }

        rounded = (length + PageMask) & ~PageMask;
        return true;
    }
}
