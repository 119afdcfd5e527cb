using ILGPU;
using MirrorEmu.Mm;

namespace MirrorEmu.Device;

/// <summary>
/// What a launcher keeps for one device: the frames as kernels address them (in place), the device's page table as
/// the accelerator sees it, the arrays a launch needs, and the pass runner. Created by
/// <see cref="DeviceLauncher.Bind"/>, owned and disposed by the device.
/// </summary>
/// <remarks>Every member is called under the device's driver lock (a pass, or the driver between passes).</remarks>
internal abstract class LauncherBinding : IDisposable
{
    /// <summary>Makes every committed frame addressable and returns the view of all frames as 64-bit elements.</summary>
    /// <param name="memory">The device's pool (its committed chunks may have grown since the last pass).</param>
    public abstract ArrayView<ulong> PrepareFrames(PhysicalMemory memory);

    /// <summary>Brings the accelerator's copy of <paramref name="table"/> up to date and returns the view kernels walk.</summary>
    /// <param name="table">The device's page table.</param>
    public abstract ArrayView<ulong> PrepareTable(DevicePageTable table);

    /// <summary>A new array shared by the driver and the kernels.</summary>
    /// <typeparam name="T">The element type.</typeparam>
    public abstract DeviceArray<T> Allocate<T>()
        where T : unmanaged;

    /// <summary>The view kernels get of the caller's memory [<paramref name="data"/>, + <paramref name="length"/>): the memory
    /// itself where the accelerator can reach it, else <paramref name="staging"/>, filled from it when <paramref name="copyIn"/>.</summary>
    /// <typeparam name="T">The element type.</typeparam>
    /// <param name="data">Pinned caller memory.</param>
    /// <param name="length">Elements.</param>
    /// <param name="staging">The launch's staging array for this buffer.</param>
    /// <param name="copyIn">True for a kernel input.</param>
    public abstract unsafe ArrayView<T> Stage<T>(T* data, long length, DeviceArray<T> staging, bool copyIn)
        where T : unmanaged;

    /// <summary>After the launch: copies a kernel output back into the caller's memory when <see cref="Stage"/> staged it.</summary>
    /// <typeparam name="T">The element type.</typeparam>
    /// <param name="data">Pinned caller memory.</param>
    /// <param name="length">Elements.</param>
    /// <param name="staging">The staging array given to <see cref="Stage"/>.</param>
    public abstract unsafe void Unstage<T>(T* data, long length, DeviceArray<T> staging)
        where T : unmanaged;

    /// <summary>Runs <paramref name="pass"/>'s kernel over <paramref name="count"/> threads and returns when every one is done.</summary>
    /// <param name="pass">The kernel and its arguments.</param>
    /// <param name="count">Threads (the slice's length), above 0.</param>
    public abstract void Run(in KernelPass pass, int count);

    /// <inheritdoc/>
    public abstract void Dispose();
}
