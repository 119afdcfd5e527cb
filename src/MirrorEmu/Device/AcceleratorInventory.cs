using ILGPU;
using ILGPU.Runtime;

namespace MirrorEmu.Device;

/// <summary>One ILGPU accelerator found on this machine.</summary>
/// <param name="Kind">CPU, Cuda or OpenCL.</param>
/// <param name="Name">The device's name.</param>
/// <param name="MemoryBytes">Its memory in bytes.</param>
/// <param name="WarpSize">Threads that run in lockstep (ILGPU's WarpSize: 32 on NVIDIA GPUs).</param>
public readonly record struct AcceleratorInfo(string Kind, string Name, long MemoryBytes, int WarpSize);

/// <summary>Lists the accelerators ILGPU can create here (CPU always; CUDA and OpenCL where a GPU and its driver exist).</summary>
public static class AcceleratorInventory
{
    /// <summary>Asks ILGPU for every device it can drive.</summary>
    /// <returns>The devices, or an empty list and the reason when ILGPU could not start.</returns>
    public static (IReadOnlyList<AcceleratorInfo> Devices, string? Error) Discover()
    {
        try
        {
            using Context context = Context.CreateDefault();
            var devices = new List<AcceleratorInfo>();
            foreach (ILGPU.Runtime.Device device in context)
            {
                devices.Add(new AcceleratorInfo(device.AcceleratorType.ToString(), device.Name, device.MemorySize, device.WarpSize));
            }

            return (devices, null);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return (Array.Empty<AcceleratorInfo>(), e.GetType().Name + ": " + e.Message);
        }
    }
}
