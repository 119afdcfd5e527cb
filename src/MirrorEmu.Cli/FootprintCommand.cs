using System.CommandLine;
using MirrorEmu.Workloads;

namespace MirrorEmu.Cli;

/// <summary><c>mirroremu footprint</c>: the emulator's page-table and frame bookkeeping per touched page.</summary>
internal static class FootprintCommand
{
    /// <summary>The command.</summary>
    /// <param name="context">Where it writes, and the Ctrl-C token.</param>
    public static Command Create(CliContext context)
    {
        // The range is what the emulated address space can map, so a value the option accepts is one mmap accepts too.
        var mappingGib = CliOptions.Int("--mapping-gib", $"Size of the mapping in GiB (1 to {FootprintProbe.MaxMappingGib}).", 64, 1, FootprintProbe.MaxMappingGib);
        var touched = CliOptions.Int("--touched-pages", "Pages to write, in 2 MiB clusters spread across the mapping (a multiple of 512).", 1_048_576, 1, int.MaxValue, binarySuffixes: true);
        var footprint = new Command("footprint", "Measure the emulator's page-table and frame bookkeeping per touched page.") { mappingGib, touched };
        footprint.SetAction(r => Run(context, r.GetValue(mappingGib), r.GetValue(touched)));
        return footprint;
    }

    /// <summary>Checks the sizes, measures and prints; Ctrl-C stops the touching within a cluster and prints nothing.</summary>
    private static int Run(CliContext context, long mappingGib, long touchedPages)
    {
        if (touchedPages % 512 != 0 || touchedPages > mappingGib * 512 * 512)
        {
            throw new CliUsageException($"--touched-pages={touchedPages} must be a positive multiple of 512 that fits the mapping");
        }

        KResult fits = FootprintProbe.CheckMapping((ulong)mappingGib << 30);
        if (!fits.IsOk)
        {
            throw new CliUsageException($"--mapping-gib={mappingGib} does not fit the emulated address space ({fits})");
        }

        CliApp.CheckMemory($"--touched-pages={touchedPages}", FootprintProbe.EstimateBytes(touchedPages));

        FootprintReport r = FootprintProbe.Measure((ulong)mappingGib << 30, touchedPages, context.Cancellation);
        TextWriter o = context.Out;
        bool over = r.BytesPerTouchedPage > FootprintProbe.BudgetBytesPerPage;
        o.WriteLine($"mapping:              {mappingGib} GiB private anonymous");
        o.WriteLine($"touched pages:        {r.TouchedPages:N0} ({r.ResidentBytes / (1024.0 * 1024 * 1024):F2} GiB resident, 2 MiB clusters spread across the mapping)");
        o.WriteLine($"page-table bytes:     {r.PageTableBytes:N0}");
        o.WriteLine($"frame bookkeeping:    {r.FrameBookkeepingBytes:N0}");
        o.WriteLine($"bytes per page:       {r.BytesPerTouchedPage:F2} (measured from the counters; budget {FootprintProbe.BudgetBytesPerPage:F0}: {(over ? "over budget" : "within budget")})");
        o.WriteLine($"time to touch:        {r.Seconds:F2} s ({r.Seconds * 1e9 / r.TouchedPages:F0} ns/page, measured)");
        return 0;
    }
}
