using ILGPU;
using MirrorEmu.Mm;

namespace MirrorEmu.Device;

/// <summary>
/// What a launcher keeps for one device: the frames as kernels address them (in place), the device's own memory and
/// the copies into and out of it, the device's page table as the accelerator sees it, the arrays a launch needs, and
/// the pass runner. Created by
/// <see cref="DeviceLauncher.Bind"/>, owned and disposed by the device.
/// </summary>
/// <remarks>Every member is called under the device's driver lock (a pass, or the driver between passes), except the
/// device-frame copies, which a migration makes under the mmap read lock only (each on frames it alone owns).</remarks>
internal abstract unsafe class LauncherBinding : IDisposable
{
    /// <summary>Creates a binding whose device memory is counted by <paramref name="devicePool"/>.</summary>
    /// <param name="devicePool">The device memory's frame allocator (on the CPU paths its frames are the device memory).</param>
    protected LauncherBinding(PhysicalMemory devicePool) => DevicePool = devicePool;

    /// <summary>The device memory's frame allocator.</summary>
    protected PhysicalMemory DevicePool { get; }

    /// <summary>The device's own memory as kernels address it: frame <c>f</c>'s element <c>k</c> is element <c>f * 512 + k</c>.
    /// On the CPU paths the frames of <see cref="DevicePool"/> in place; on a GPU, its memory.</summary>
    public abstract ArrayView<ulong> DeviceFrames { get; }

    /// <summary>Copies one page into device frame <paramref name="frame"/> (a migration to the device), or zeroes it when
    /// <paramref name="source"/> is null (clear_highpage of an empty slot).</summary>
    /// <param name="frame">A frame the caller allocated from <see cref="DevicePool"/> and nobody reads yet.</param>
    /// <param name="source">A page of host memory, or null.</param>
    /// <param name="streaming">Write with non-temporal stores (call <see cref="CopiesDone"/> before publishing).</param>
    public virtual void CopyToDeviceFrame(ulong frame, byte* source, bool streaming)
    {
        byte* to = DevicePool.FramePointer(frame);
        if (source is null)
        {
            new Span<byte>(to, PageGeometry.PageSizeInt).Clear();
        }
        else
        {
            PageCopy.CopyToFrame(to, new ReadOnlySpan<byte>(source, PageGeometry.PageSizeInt), streaming);
        }
    }

    /// <summary>Copies device frame <paramref name="frame"/> into a page of host memory (a migration back to system memory,
    /// or a read for the driver).</summary>
    /// <param name="frame">A device frame.</param>
    /// <param name="destination">A page-aligned page of host memory nobody reads yet when <paramref name="streaming"/>.</param>
    /// <param name="streaming">Write with non-temporal stores (call <see cref="CopiesDone"/> before publishing).</param>
    public virtual void CopyFromDeviceFrame(ulong frame, byte* destination, bool streaming) =>
        PageCopy.CopyToFrame(destination, new ReadOnlySpan<byte>(DevicePool.FramePointer(frame), PageGeometry.PageSizeInt), streaming);

    /// <summary>Reads device frame <paramref name="frame"/> into <paramref name="destination"/> (any alignment).</summary>
    /// <param name="frame">A device frame.</param>
    /// <param name="destination">One page of bytes.</param>
    public virtual void ReadDeviceFrame(ulong frame, Span<byte> destination) =>
        new ReadOnlySpan<byte>(DevicePool.FramePointer(frame), PageGeometry.PageSizeInt).CopyTo(destination);

    /// <summary>True when <see cref="Run"/> counts where the accesses went itself (<see cref="TakeAccesses"/>); false when the
    /// kernels record placement bytes that the launch counts at its end.</summary>
    public virtual bool CountsAccesses => false;

    /// <summary>Takes the accesses the passes run since the last call made, when <see cref="CountsAccesses"/>.</summary>
    /// <param name="system">Accesses that reached the CPU's frames.</param>
    /// <param name="device">Accesses that reached the device's memory.</param>
    public virtual void TakeAccesses(out long system, out long device)
    {
        system = 0;
        device = 0;
    }

    /// <summary>Orders the copies made so far before what follows (the sfence after streaming stores).</summary>
    public virtual void CopiesDone() => PageCopy.Fence();

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
