namespace MirrorEmu.Workloads;

/// <summary>
/// The work items of a <see cref="Workload"/> over a range: one atomic add per item, to one 8-byte element of the item's
/// page (<see cref="ElementOf"/>, placed by the seed), and what the range must hold afterwards: each touched page's element
/// raised by its number of hits, every other byte as the page was filled.
/// </summary>
public sealed class WorkItems
{
    /// <summary>The most pages a range may have: the kernel indexes 8-byte elements with 32-bit indices.</summary>
    public const int MaxPages = int.MaxValue / ElementsPerPage;

    /// <summary>8-byte elements per 4 KiB page.</summary>
    public const int ElementsPerPage = Mm.PageGeometry.PageSizeInt / sizeof(ulong);

    private readonly int _seed;

    /// <summary>Builds the items.</summary>
    /// <param name="pages">Pages in the range.</param>
    /// <param name="pageOrder">The page of each work item, in launch order.</param>
    /// <param name="seed">Places each page's element.</param>
    public WorkItems(int pages, int[] pageOrder, int seed)
    {
        ArgumentNullException.ThrowIfNull(pageOrder);
        RangePages = pages;
        PageOrder = pageOrder;
        _seed = seed;
        Hits = new int[pages];
        Elements = new int[pageOrder.Length];
        for (int i = 0; i < pageOrder.Length; i++)
        {
            int page = pageOrder[i];
            if (Hits[page]++ == 0)
            {
                TouchedPages++;
            }

            Elements[i] = (page * ElementsPerPage) + ElementOf(page);
        }
    }

    /// <summary>Pages in the range.</summary>
    public int RangePages { get; }

    /// <summary>The page of each work item, in launch order.</summary>
    public int[] PageOrder { get; }

    /// <summary>The element index of each work item (the kernel's index buffer).</summary>
    public int[] Elements { get; }

    /// <summary>Accesses per page of the range (0 for a page no item touches).</summary>
    public int[] Hits { get; }

    /// <summary>Distinct pages the items touch.</summary>
    public int TouchedPages { get; }

    /// <summary>The element (0 to 511) of <paramref name="page"/> the items touch: SplitMix64 of the seed and the page.</summary>
    /// <param name="page">The page's index in the range.</param>
    public int ElementOf(int page)
    {
        ulong z = ((ulong)(uint)_seed << 32) + (ulong)page + 0x9E37_79B9_7F4A_7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58_476D_1CE4_E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D0_49BB_1331_11EBUL;
        return (int)((z ^ (z >> 31)) % ElementsPerPage);
    }
}
