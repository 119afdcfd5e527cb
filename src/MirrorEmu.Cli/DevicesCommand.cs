using System.CommandLine;
using System.Globalization;
using MirrorEmu.Device;
using MirrorEmu.Telemetry;
using Spectre.Console;

namespace MirrorEmu.Cli;

/// <summary><c>mirroremu devices</c>: the accelerators ILGPU finds (kind, name, memory, warp size), whether each can address
/// the emulated frames in place (and so run the device's kernels), the launchers, and the SIMD widths accelerated.</summary>
internal static class DevicesCommand
{
    /// <summary>The command.</summary>
    /// <param name="context">Where it writes.</param>
    public static Command Create(CliContext context)
    {
        var command = new Command("devices", "List the accelerators, whether each can address the emulated frames in place, the launchers, and the SIMD widths.");
        command.SetAction(_ => Run(context));
        return command;
    }

    /// <summary>Prints the accelerators, the launchers and the SIMD widths.</summary>
    private static int Run(CliContext context)
    {
        TextWriter o = context.Out;
        (IReadOnlyList<AcceleratorInfo> devices, string? error) = AcceleratorInventory.Discover();
        if (error is not null)
        {
            o.WriteLine($"ILGPU could not start: {error}");
        }

        // Whether each launcher can be made here: a launcher that cannot address the frames in place is not made.
        var launchers = new List<(string Name, bool Ok, string What)>();
        foreach (LauncherKind kind in new[] { LauncherKind.Direct, LauncherKind.Cpu, LauncherKind.Cuda, LauncherKind.OpenCL })
        {
            bool ok = DeviceLauncher.TryCreate(kind, out DeviceLauncher? launcher, out string reason);
            launchers.Add((kind.ToString().ToLowerInvariant(), ok, ok ? launcher!.Description : reason));
            launcher?.Dispose();
        }

        var table = new Table().Border(TableBorder.Rounded).Title("accelerators (ILGPU)");
        foreach (string h in new[] { "kind", "name", "memory", "warp size", "frames in place" })
        {
            table.AddColumn(new TableColumn(h).NoWrap());
        }

        foreach (AcceleratorInfo d in devices)
        {
            string launcher = d.Kind switch { "CPU" => "cpu", "Cuda" => "cuda", "OpenCL" => "opencl", _ => d.Kind.ToLowerInvariant() };
            (string _, bool ok, string what) = launchers.FirstOrDefault(l => l.Name == launcher);
            table.AddRow(
                Markup.Escape(d.Kind),
                Markup.Escape(d.Name),
                d.Kind == "CPU" ? "host memory" : $"{(d.MemoryBytes / (double)(1L << 30)).ToString("F1", CultureInfo.InvariantCulture)} GiB",
                d.WarpSize.ToString(CultureInfo.InvariantCulture),
                ok ? "yes" : Markup.Escape($"no: {what}"));
        }

        IAnsiConsole console = CliConsole.Results(context);
        console.Write(table);
        o.WriteLine("launchers (mirroremu compare --launcher NAME; auto is cuda where it can run, else direct):");
        foreach ((string name, bool ok, string what) in launchers)
        {
            o.WriteLine($"  {name,-7} {(ok ? "yes" : "no ")}  {what}");
        }

        o.WriteLine("SIMD: " + string.Join(", ", MachineInfo.VectorWidths.Select(w => $"{w.Width} {(w.Accelerated ? "accelerated" : "not accelerated")}")) + $"; Vector<T> {MachineInfo.VectorTBits} bits; {MachineInfo.Isa}");
        return 0;
    }
}
