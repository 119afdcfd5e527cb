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

    /// <summary>The architecture and its widest hardware-accelerated vector: "X64 AVX-512", "X64 AVX2", "Arm64 AdvSimd".</summary>
    public static string Isa
    {
        get
        {
            string widest = Vector512.IsHardwareAccelerated ? "512-bit vectors"
                : Vector256.IsHardwareAccelerated ? "256-bit vectors"
                : Vector128.IsHardwareAccelerated ? "128-bit vectors"
                : "no hardware vectors";
            if (RuntimeInformation.ProcessArchitecture == System.Runtime.InteropServices.Architecture.X64)
            {
                widest = System.Runtime.Intrinsics.X86.Avx512F.IsSupported ? "AVX-512"
                    : System.Runtime.Intrinsics.X86.Avx2.IsSupported ? "AVX2"
                    : System.Runtime.Intrinsics.X86.Sse42.IsSupported ? "SSE4.2"
                    : widest;
            }
            else if (RuntimeInformation.ProcessArchitecture == System.Runtime.InteropServices.Architecture.Arm64)
            {
                widest = System.Runtime.Intrinsics.Arm.AdvSimd.IsSupported ? "AdvSimd" : widest;
            }

            return $"{Architecture} {widest}";
        }
    }

    /// <summary>The operating-system kernel's release: /proc/sys/kernel/osrelease on Linux ("6.18.44"), else the OS
    /// description.</summary>
    public static string KernelVersion
    {
        get
        {
            try
            {
                const string path = "/proc/sys/kernel/osrelease";
                return File.Exists(path) ? File.ReadAllText(path).Trim() : OperatingSystem;
            }
            catch (IOException)
            {
                return OperatingSystem;
            }
        }
    }
}
