using System.CommandLine;
using System.Reflection;
using MirrorEmu.Device;
using MirrorEmu.Telemetry;

namespace MirrorEmu.Cli;

/// <summary>The <c>mirroremu</c> command line: parsing, dispatch and the exit-code contract
/// (0 success, 1 a failed run, 2 bad input with one line on stderr and no stack trace).</summary>
public static class CliApp
{
    /// <summary>Exit code for bad input.</summary>
    public const int UsageError = 2;

    /// <summary>Parses and runs a command line.</summary>
    /// <param name="args">The arguments.</param>
    /// <param name="stdout">Where results go.</param>
    /// <param name="stderr">Where the one-line error goes.</param>
    /// <returns>The exit code.</returns>
    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        RootCommand root = Build(stdout, stderr);
        ParseResult parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            stderr.WriteLine("mirroremu: " + string.Join("; ", parsed.Errors.Select(e => e.Message)));
            return UsageError;
        }

        try
        {
            return parsed.Invoke(new InvocationConfiguration { Output = stdout, Error = stderr, EnableDefaultExceptionHandler = false });
        }
        catch (CliUsageException e)
        {
            stderr.WriteLine($"mirroremu: {e.Message}");
            return UsageError;
        }
        catch (Exception e) when (e is OutOfMemoryException or InsufficientMemoryException or Mm.MemoryFaultException or KernelErrorException)
        {
            // A run that failed (the host ran out of memory after all, an emulated fault that could not be served):
            // one line, exit 1, no stack trace.
            stderr.WriteLine($"mirroremu: the run failed: {OneLine(e.Message)}");
            return RunFailed;
        }
    }

    /// <summary>Exit code for a run that failed.</summary>
    public const int RunFailed = 1;

    /// <summary>Refuses a run that needs more memory than this machine (and its limits) allows, before it starts.</summary>
    /// <param name="what">The option that sized the run, for the message ("--pages=16777216").</param>
    /// <param name="neededBytes">What the run needs.</param>
    /// <exception cref="CliUsageException">It needs more than <see cref="MemoryBudget.AvailableBytes"/>.</exception>
    internal static void CheckMemory(string what, long neededBytes)
    {
        MemoryBudget budget = MemoryBudget.Current();
        if (neededBytes > budget.AvailableBytes)
        {
            throw new CliUsageException($"{what} needs about {MemoryBudget.Gib(neededBytes)} of memory, but only {budget.Describe()}");
        }
    }

    private static string OneLine(string text) => text.ReplaceLineEndings(" ");

    /// <summary>The version printed by <c>--version</c>.</summary>
    public static string Version =>
        typeof(CliApp).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0.0.0";

    private static RootCommand Build(TextWriter stdout, TextWriter stderr)
    {
        var root = new RootCommand("mirroremu: emulate a GPU that mirrors a process's CPU page table (Linux HMM) and measure what mirroring costs.");
        foreach (Option option in root.Options)
        {
            if (option is VersionOption version)
            {
                version.Action = new PrintVersion(stdout); // the CLI's own version, whoever hosts it
            }
        }

        var info = new Command("info", "Print the runtime, core count, hardware-accelerated SIMD widths and ILGPU accelerators.");
        info.SetAction(_ => Info(stdout));
        root.Subcommands.Add(info);

        var mappingGib = new Option<long>("--mapping-gib") { Description = "Size of the mapping in GiB.", DefaultValueFactory = _ => 64 };
        var touched = new Option<long>("--touched-pages") { Description = "Pages to write, in 2 MiB clusters spread across the mapping (a multiple of 512).", DefaultValueFactory = _ => 1_048_576 };
        var footprint = new Command("footprint", "Measure the emulator's page-table and frame bookkeeping per touched page.") { mappingGib, touched };
        footprint.SetAction(r => Footprint(stdout, r.GetValue(mappingGib), r.GetValue(touched)));
        root.Subcommands.Add(footprint);

        var pages = new Option<int>("--pages") { Description = "Pages in the fresh range each scenario faults.", DefaultValueFactory = _ => 65_536 };
        var policies = new Option<string>("--policies") { Description = "Comma-separated userfaultfd policies: Unsupported, SinglePage, Batched, RangeEvent (or 'all').", DefaultValueFactory = _ => "all" };
        var batch = new Option<int>("--monitor-batch") { Description = "Pages the monitor resolves per event under Batched (a power of two, 1 to 512).", DefaultValueFactory = _ => 64 };
        var seed = new Option<int>("--seed") { Description = "Seeds the byte pattern the monitor fills pages with.", DefaultValueFactory = _ => 12345 };
        var json = new Option<bool>("--json") { Description = "Print the rows as JSON instead of a table." };
        var compare = new Command("compare", "Run the headline comparison: batch population of a regular VMA versus a userfaultfd VMA under each fault policy.")
        {
            pages, policies, batch, seed, json,
        };
        compare.SetAction(r => Compare.Run(stdout, r.GetValue(pages), r.GetValue(policies)!, r.GetValue(batch), r.GetValue(seed), r.GetValue(json)));
        root.Subcommands.Add(compare);
        root.Subcommands.Add(RegressCommand.Create(stdout, stderr));
        return root;
    }

    private static int Info(TextWriter o)
    {
        o.WriteLine($"mirroremu {Version}");
        o.WriteLine($"runtime:      {MachineInfo.Runtime} ({MachineInfo.Architecture})");
        o.WriteLine($"os:           {MachineInfo.OperatingSystem}");
        o.WriteLine($"cores:        {MachineInfo.Cores}");
        foreach ((string width, bool accelerated) in MachineInfo.VectorWidths)
        {
            o.WriteLine($"{width + ":",-13} {(accelerated ? "hardware accelerated" : "not accelerated")}");
        }

        o.WriteLine($"Vector<T>:    {MachineInfo.VectorTBits} bits");
        (IReadOnlyList<AcceleratorInfo> devices, string? error) = AcceleratorInventory.Discover();
        if (error is not null)
        {
            o.WriteLine($"ILGPU:        could not start ({error})");
        }

        foreach (AcceleratorInfo d in devices)
        {
            o.WriteLine(d.Kind == "CPU" ? $"accelerator:  {d.Kind,-7} {d.Name} (host memory)" : $"accelerator:  {d.Kind,-7} {d.Name} ({d.MemoryBytes / (1024 * 1024)} MiB)");
        }

        return 0;
    }

    private static int Footprint(TextWriter o, long mappingGib, long touchedPages)
    {
        if (mappingGib <= 0 || mappingGib > 128 * 1024)
        {
            throw new CliUsageException($"--mapping-gib={mappingGib} must be between 1 and 131072");
        }

        if (touchedPages <= 0 || touchedPages % 512 != 0 || touchedPages > mappingGib * 512 * 512)
        {
            throw new CliUsageException($"--touched-pages={touchedPages} must be a positive multiple of 512 that fits the mapping");
        }

        KResult fits = Workloads.FootprintProbe.CheckMapping((ulong)mappingGib << 30);
        if (!fits.IsOk)
        {
            throw new CliUsageException($"--mapping-gib={mappingGib} does not fit the emulated address space ({fits})");
        }

        CheckMemory($"--touched-pages={touchedPages}", Workloads.FootprintProbe.EstimateBytes(touchedPages));

        Workloads.FootprintReport r = Workloads.FootprintProbe.Measure((ulong)mappingGib << 30, touchedPages);
        o.WriteLine($"mapping:              {mappingGib} GiB private anonymous");
        o.WriteLine($"touched pages:        {r.TouchedPages:N0} ({r.ResidentBytes / (1024.0 * 1024 * 1024):F2} GiB resident, 2 MiB clusters spread across the mapping)");
        o.WriteLine($"page-table bytes:     {r.PageTableBytes:N0}");
        o.WriteLine($"frame bookkeeping:    {r.FrameBookkeepingBytes:N0}");
        o.WriteLine($"bytes per page:       {r.BytesPerTouchedPage:F2} (measured from the counters; budget 16)");
        o.WriteLine($"time to touch:        {r.Seconds:F2} s ({r.Seconds * 1e9 / r.TouchedPages:F0} ns/page, measured)");
        return 0;
    }

}

/// <summary>Prints <see cref="CliApp.Version"/>.</summary>
internal sealed class PrintVersion(TextWriter output) : System.CommandLine.Invocation.SynchronousCommandLineAction
{
    public override int Invoke(ParseResult parseResult)
    {
        output.WriteLine(CliApp.Version);
        return 0;
    }
}

/// <summary>Bad input detected after parsing (a value out of range): reported as one line, exit code 2.</summary>
public sealed class CliUsageException(string message) : Exception(message);
