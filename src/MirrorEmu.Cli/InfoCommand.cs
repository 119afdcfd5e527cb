using System.CommandLine;
using MirrorEmu.Device;
using MirrorEmu.Telemetry;

namespace MirrorEmu.Cli;

/// <summary><c>mirroremu info</c>: the runtime, the cores, the SIMD widths and the ILGPU accelerators.</summary>
internal static class InfoCommand
{
    /// <summary>The command.</summary>
    /// <param name="context">Where it writes.</param>
    public static Command Create(CliContext context)
    {
        var info = new Command("info", "Print the runtime, core count, hardware-accelerated SIMD widths and ILGPU accelerators.");
        info.SetAction(_ => Run(context.Out));
        return info;
    }

    /// <summary>Prints the facts.</summary>
    private static int Run(TextWriter o)
    {
        o.WriteLine(CliApp.Tool);
        o.WriteLine($"runtime:      {MachineInfo.Runtime} ({MachineInfo.Architecture})");
        o.WriteLine($"os:           {MachineInfo.OperatingSystem}");
        o.WriteLine($"kernel:       {MachineInfo.KernelVersion}");
        o.WriteLine($"cores:        {MachineInfo.Cores}");
        o.WriteLine($"load:         {HostLoad.Current().Describe()}");
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
}
