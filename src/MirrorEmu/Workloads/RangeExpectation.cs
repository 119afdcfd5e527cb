namespace MirrorEmu.Workloads;

/// <summary>What a range must hold after atomic adds: for each page, how many accesses touched it (a touched page must be
/// present and writable), what they added in total to its one element, and where that element is. Every other byte holds
/// the page's fill.</summary>
public sealed class RangeExpectation
{
    private readonly Func<int, int> _elementOf;

    /// <summary>An expectation over <paramref name="pages"/> untouched pages.</summary>
    /// <param name="pages">Pages in the range.</param>
    /// <param name="elementOf">The element (0 to 511) of each page that the adds go to.</param>
    public RangeExpectation(int pages, Func<int, int> elementOf)
    {
        Hits = new int[pages];
        Added = new ulong[pages];
        _elementOf = elementOf ?? throw new ArgumentNullException(nameof(elementOf));
    }

    /// <summary>Pages in the range.</summary>
    public int Pages => Hits.Length;

    /// <summary>Accesses per page since it was last emptied.</summary>
    public int[] Hits { get; }

    /// <summary>What those accesses added to the page's element (wrapping, as the 64-bit adds do).</summary>
    public ulong[] Added { get; }

    /// <summary>False once something left the range in a state the model does not know (a launch that failed half-way).</summary>
    public bool Known { get; set; } = true;

    /// <summary>The element of <paramref name="page"/> the adds go to.</summary>
    /// <param name="page">The page's index in the range.</param>
    public int ElementOf(int page) => _elementOf(page);

    /// <summary>Records that <paramref name="items"/> ran, each adding <paramref name="addend"/>.</summary>
    /// <param name="items">The work items (their elements must be this expectation's).</param>
    /// <param name="addend">What each added.</param>
    public void Apply(WorkItems items, ulong addend)
    {
        ArgumentNullException.ThrowIfNull(items);
        for (int page = 0; page < Pages; page++)
        {
            int hits = items.Hits[page];
            Hits[page] += hits;
            Added[page] += (ulong)hits * addend;
        }
    }

    /// <summary>Records that every page was emptied (MADV_DONTNEED): the next access finds it missing again.</summary>
    public void Empty()
    {
        Array.Clear(Hits);
        Array.Clear(Added);
    }

    /// <summary>The expectation after <paramref name="items"/> ran once over a fresh range.</summary>
    /// <param name="items">The work items.</param>
    /// <param name="addend">What each added.</param>
    public static RangeExpectation After(WorkItems items, ulong addend)
    {
        ArgumentNullException.ThrowIfNull(items);
        var e = new RangeExpectation(items.RangePages, items.ElementOf);
        e.Apply(items, addend);
        return e;
    }
}
