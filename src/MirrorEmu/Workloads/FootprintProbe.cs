using MirrorEmu.Mm;

namespace MirrorEmu.Workloads;

/// <summary>What <see cref="FootprintProbe.Measure"/> found.</summary>
/// <param name="MappingBytes">Size of the mapping.</param>
/// <param name="TouchedPages">Pages written.</param>
/// <param name="ResidentBytes">Bytes of frames in use (touched pages times the page size).</param>
/// <param name="PageTableBytes">Bytes held by the page table (every level).</param>
/// <param name="FrameBookkeepingBytes">Bytes of per-frame bookkeeping held by the pool.</param>
/// <param name="Seconds">Wall-clock time of the touching.</param>
public readonly record struct FootprintReport(ulong MappingBytes, long TouchedPages, long ResidentBytes, long PageTableBytes, long FrameBookkeepingBytes, double Seconds)
{
    /// <summary>Page-table plus frame bookkeeping per touched page, in bytes.</summary>
    public double BytesPerTouchedPage => TouchedPages == 0 ? 0 : (double)(PageTableBytes + FrameBookkeepingBytes) / TouchedPages;
}

/// <summary>
/// Measures the emulator's own memory cost per touched page: maps a large private anonymous range,
/// writes <c>touchedPages</c> pages of it in 2 MiB clusters spread evenly across it, and reads the
/// page table's and the pool's bookkeeping counters.
/// </summary>
public static class FootprintProbe
{
    /// <summary>The bookkeeping budget, in bytes per touched page, that the emulator is built to stay within at scale (a
    /// few touched pages in a large mapping exceed it: each cluster pays for its own page-table pages).</summary>
    public const double BudgetBytesPerPage = 16;

    /// <summary>The largest mapping, in whole GiB, that fits the emulated address space: mmap places a mapping without an
    /// address hint between mmap_min_addr and the mmap base (<see cref="AddressSpace.MmapBase"/>, below the user address
    /// space's end), 130,047 GiB; one GiB more is -ENOMEM.</summary>
    public static int MaxMappingGib => (int)((AddressSpace.MmapBase - PageGeometry.MmapMinAddr) >> 30);

    /// <summary>Bytes the probe needs: the touched frames, two spare chunks the pool may start, and the page tables and
    /// per-frame counts, with a margin; what a caller checks against <see cref="Telemetry.MemoryBudget"/> first.</summary>
    /// <param name="touchedPages">Pages to write.</param>
    public static long EstimateBytes(long touchedPages) =>
        ((touchedPages + (2L * PhysicalMemory.ChunkFrames)) * (PageGeometry.PageSizeInt + sizeof(int))) + (touchedPages * 16) + (64L << 20);

    /// <summary>Checks that a mapping of <paramref name="mappingBytes"/> fits the emulated address space (mmap in a
    /// throwaway address space, which takes no frames).</summary>
    /// <param name="mappingBytes">The mapping's size.</param>
    /// <returns>The mmap result: 0, or why it cannot be mapped.</returns>
    public static KResult CheckMapping(ulong mappingBytes)
    {
        using var memory = new PhysicalMemory(2 * PageGeometry.PageSize);
        using var mm = new AddressSpace(memory);
        return mm.MmapAnonymous(mappingBytes, Prot.ReadWrite, MapFlags.Private, out _);
    }

    /// <summary>Runs the probe.</summary>
    /// <param name="mappingBytes">Mapping size in bytes (page aligned, at least the touched bytes).</param>
    /// <param name="touchedPages">Pages to write (a multiple of 512).</param>
    /// <param name="cancellation">Checked before each 2 MiB cluster (a millisecond or so of work), so a cancelled probe of
    /// millions of pages stops at once instead of touching the rest.</param>
    /// <returns>The counters read after touching.</returns>
    /// <exception cref="ArgumentOutOfRangeException">Bad sizes, naming the value.</exception>
    /// <exception cref="OperationCanceledException">Cancelled: no report.</exception>
    public static FootprintReport Measure(ulong mappingBytes, long touchedPages, CancellationToken cancellation = default)
    {
        const long cluster = PageGeometry.LevelEntries;
        if (touchedPages <= 0 || touchedPages % cluster != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(touchedPages), $"touched pages={touchedPages} must be a positive multiple of {cluster}");
        }

        ulong clusters = (ulong)(touchedPages / cluster);
        if (!PageGeometry.IsPageAligned(mappingBytes) || mappingBytes / PageGeometry.PmdSize < clusters)
        {
            throw new ArgumentOutOfRangeException(nameof(mappingBytes), $"mapping bytes=0x{mappingBytes:X} must be page aligned and hold {touchedPages} pages in 2 MiB clusters");
        }

        ulong limit = ((ulong)touchedPages + (2 * (ulong)PhysicalMemory.ChunkFrames)) * PageGeometry.PageSize;
        using var mm = new AddressSpace(limit);
        mm.MmapAnonymous(mappingBytes, Prot.ReadWrite, MapFlags.Private, out ulong start).ThrowIfError();
        ulong stride = mappingBytes / PageGeometry.PmdSize / clusters * PageGeometry.PmdSize;
        long t0 = System.Diagnostics.Stopwatch.GetTimestamp();
        for (ulong c = 0; c < clusters; c++)
        {
            cancellation.ThrowIfCancellationRequested();
            mm.Madvise(start + (c * stride), PageGeometry.PmdSize, Advice.PopulateWrite).ThrowIfError();
        }

        double seconds = System.Diagnostics.Stopwatch.GetElapsedTime(t0).TotalSeconds;
        cancellation.ThrowIfCancellationRequested();
        return new FootprintReport(
            mappingBytes,
            mm.Memory.FramesInUse,
            mm.Memory.FramesInUse * (long)PageGeometry.PageSize,
            mm.PageTable.BookkeepingBytes,
            mm.Memory.BookkeepingBytes,
            seconds);
    }
}
