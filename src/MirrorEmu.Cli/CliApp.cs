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
        RootCommand root = Build(stdout);
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
    }

    /// <summary>The version printed by <c>--version</c>.</summary>
    public static string Version =>
        typeof(CliApp).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0.0.0";

    private static RootCommand Build(TextWriter stdout)
    {
        var root = new RootCommand("mirroremu: emulate a GPU that mirrors a process's CPU page table (Linux HMM) and measure what mirroring costs.");

        var info = new Command("info", "Print the runtime, core count, hardware-accelerated SIMD widths and ILGPU accelerators.");
        info.SetAction(_ => Info(stdout));
        root.Subcommands.Add(info);

        var mappingGib = new Option<long>("--mapping-gib") { Description = "Size of the mapping in GiB.", DefaultValueFactory = _ => 64 };
        var touched = new Option<long>("--touched-pages") { Description = "Pages to write, in 2 MiB clusters spread across the mapping (a multiple of 512).", DefaultValueFactory = _ => 1_048_576 };
        var footprint = new Command("footprint", "Measure the emulator's page-table and frame bookkeeping per touched page.") { mappingGib, touched };
        footprint.SetAction(r => Footprint(stdout, r.GetValue(mappingGib), r.GetValue(touched)));
        root.Subcommands.Add(footprint);

        var compare = new Command("compare", "Run the headline comparison: batch population versus userfaultfd single-page faulting.");
        compare.SetAction(_ => CompareNotYet(stdout));
        root.Subcommands.Add(compare);
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

        Workloads.FootprintReport r = Workloads.FootprintProbe.Measure((ulong)mappingGib << 30, touchedPages);
        o.WriteLine($"mapping:              {mappingGib} GiB private anonymous");
        o.WriteLine($"touched pages:        {r.TouchedPages:N0} ({r.ResidentBytes / (1024.0 * 1024 * 1024):F2} GiB resident, 2 MiB clusters spread across the mapping)");
        o.WriteLine($"page-table bytes:     {r.PageTableBytes:N0}");
        o.WriteLine($"frame bookkeeping:    {r.FrameBookkeepingBytes:N0}");
        o.WriteLine($"bytes per page:       {r.BytesPerTouchedPage:F2} (measured from the counters; budget 16)");
        o.WriteLine($"time to touch:        {r.Seconds:F2} s ({r.Seconds * 1e9 / r.TouchedPages:F0} ns/page, measured)");
        return 0;
    }

    private static int CompareNotYet(TextWriter o)
    {
        o.WriteLine("mirroremu compare: the policy comparison is not built yet.");
        o.WriteLine("What exists today is the simulated CPU address space (mmap, faults, COW, fork) and its notifiers;");
        o.WriteLine("hmm_range_fault and the userfaultfd policies it compares come next (see README.md, \"Status\").");
        o.WriteLine("Run `mirroremu info` to see what this machine offers (SIMD widths, ILGPU accelerators).");
        return 0;
    }
}

/// <summary>Bad input detected after parsing (a value out of range): reported as one line, exit code 2.</summary>
public sealed class CliUsageException(string message) : Exception(message);
