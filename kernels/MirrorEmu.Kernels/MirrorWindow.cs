namespace MirrorEmu.Kernels;

/// <summary>
/// A range of virtual pages a launch may touch, and where its bits start in the dedupe bitmap: two bits per
/// page (read, write). Every translated access of a launch falls in one of its windows, which makes the
/// per-pass deduplication exact.
/// </summary>
/// <param name="StartPage">The first virtual page number.</param>
/// <param name="Pages">Pages in the window (0 for an unused window).</param>
/// <param name="BitBase">The window's first bit in the dedupe bitmap.</param>
public readonly record struct MirrorWindow(ulong StartPage, long Pages, long BitBase)
{
    /// <summary>Bits a window of <paramref name="pages"/> pages takes.</summary>
    /// <param name="pages">Pages in the window.</param>
    public static long BitsFor(long pages) => pages << 1;

    /// <summary>The dedupe bit of <paramref name="page"/> for a read or a write, or -1 outside the window.</summary>
    /// <param name="page">A virtual page number.</param>
    /// <param name="write">True for a write or an atomic.</param>
    public long Bit(ulong page, bool write)
    {
        ulong offset = page - StartPage;
        return offset < (ulong)Pages ? BitBase + (long)(offset << 1) + (write ? 1 : 0) : -1;
    }
}
