using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace MirrorEmu.Telemetry;

/// <summary>What this machine and runtime offer, for reports and <c>mirroremu info</c>.</summary>
public static class MachineInfo
{
    /// <summary>The .NET runtime description.</summary>
    public static string Runtime => RuntimeInformation.FrameworkDescription;

    /// <summary>The operating system description.</summary>
    public static string OperatingSystem => RuntimeInformation.OSDescription;

    /// <summary>The process architecture.</summary>
    public static string Architecture => RuntimeInformation.ProcessArchitecture.ToString();

    /// <summary>Logical processors available to the process.</summary>
    public static int Cores => Environment.ProcessorCount;

    /// <summary>Which vector widths run in hardware (after DOTNET_Enable* knobs), widest last.</summary>
    public static IReadOnlyList<(string Width, bool Accelerated)> VectorWidths =>
    [
        ("Vector128", Vector128.IsHardwareAccelerated),
        ("Vector256", Vector256.IsHardwareAccelerated),
        ("Vector512", Vector512.IsHardwareAccelerated),
    ];

    /// <summary>The preferred Vector&lt;T&gt; width in bits.</summary>
    public static int VectorTBits => System.Numerics.Vector<byte>.Count * 8;
}
