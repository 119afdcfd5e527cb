using System.Runtime.CompilerServices;

namespace MirrorEmu.Kernels;

/// <summary>
/// The device's page and table geometry, derived from bit counts once. The kernels
/// assembly sits below MirrorEmu and cannot see <c>MirrorEmu.Mm.PageGeometry</c>; these values equal its
/// own (a test pins them), so a device page is a CPU page and a leaf block spans what a PMD entry spans.
/// </summary>
/// <remarks>
/// The device page table is sparse over the 48-bit space: three directory levels of 512 entries above
/// leaf blocks of 512 entries (4 * 9 + 12 = 48). Kernels move 64-bit elements, 512 to a page.
/// </remarks>
public static class DeviceGeometry
{
    /// <summary>log2 of the page size (as the CPU's).</summary>
    public const int PageShift = 12;

    /// <summary>Index bits of one table block (as a CPU page-table level).</summary>
    public const int LevelBits = 9;

    /// <summary>Table levels: three directory levels (3, 2, 1) above the leaf level (0).</summary>
    public const int Levels = 4;

    /// <summary>Virtual address bits the table covers: 4 * 9 + 12 = 48.</summary>
    public const int VaBits = Levels * LevelBits + PageShift;

    /// <summary>Page size in bytes.</summary>
    public const ulong PageSize = 1UL << PageShift;

    /// <summary>Offset-in-page mask.</summary>
    public const ulong PageMask = PageSize - 1;

    /// <summary>Entries in one table block of any level.</summary>
    public const int BlockEntries = 1 << LevelBits;

    /// <summary>Mask of one level's index.</summary>
    public const int BlockMask = BlockEntries - 1;

    /// <summary>The order (log2 pages) of a level-1 huge entry: a 2 MiB PMD mapping.</summary>
    public const int PmdOrder = LevelBits;

    /// <summary>Pages covered by one level-1 entry (one leaf block).</summary>
    public const int PmdPages = 1 << PmdOrder;

    /// <summary>log2 of the bytes of one kernel element (a 64-bit word).</summary>
    public const int ElementShift = 3;

    /// <summary>Bytes of one kernel element.</summary>
    public const int ElementBytes = 1 << ElementShift;

    /// <summary>log2 of the elements in one page.</summary>
    public const int PageElementShift = PageShift - ElementShift;

    /// <summary>Elements in one page.</summary>
    public const int PageElements = 1 << PageElementShift;

    /// <summary>Size of the virtual space the table covers, in bytes (2^48).</summary>
    public const ulong AddressSpaceSize = 1UL << VaBits;

    /// <summary>Index of virtual page <paramref name="vpn"/> in a table block of <paramref name="level"/> (0 = leaf).</summary>
    /// <param name="vpn">A virtual page number (address >> <see cref="PageShift"/>).</param>
    /// <param name="level">0 for the leaf level up to 3 for the root.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Index(ulong vpn, int level) => (int)(vpn >> (LevelBits * level)) & BlockMask;
}
