using System.Numerics;
using System.Runtime.InteropServices;

namespace MirrorEmu.Telemetry;

/// <summary>The calling thread's CPU affinity on Linux (sched_getaffinity(2)): how many processors it may run on.</summary>
internal static partial class LinuxAffinity
{
    private const int MaskWords = 16; // 1,024 CPUs

    /// <summary>Counts the processors in the calling thread's affinity mask.</summary>
    /// <param name="count">The count, when the call worked.</param>
    /// <returns>False where the call is not available or failed.</returns>
    public static unsafe bool TryCount(out int count)
    {
        count = 0;
        ulong* mask = stackalloc ulong[MaskWords];
        try
        {
            if (SchedGetAffinity(0, (nuint)(MaskWords * sizeof(ulong)), mask) < 0)
            {
                return false;
            }
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;
        }

        for (int i = 0; i < MaskWords; i++)
        {
            count += BitOperations.PopCount(mask[i]);
        }

        return count > 0;
    }

    [LibraryImport("libc", EntryPoint = "sched_getaffinity", SetLastError = true)]
    private static unsafe partial int SchedGetAffinity(int pid, nuint size, ulong* mask);
}
