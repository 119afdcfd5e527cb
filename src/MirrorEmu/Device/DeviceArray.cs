using System.Runtime.InteropServices;
using ILGPU;
using ILGPU.Runtime;

namespace MirrorEmu.Device;

/// <summary>
/// An array the driver and the kernels share: a host copy the driver reads and writes, and the view kernels get.
/// On the CPU paths they are the same memory; on an accelerator with memory of its own they are two, and
/// <see cref="Upload"/> and <see cref="Download"/> copy between them. Contents are undefined after a grow.
/// </summary>
/// <typeparam name="T">The element type.</typeparam>
internal abstract unsafe class DeviceArray<T> : IDisposable
    where T : unmanaged
{
    private T* _host;

    /// <summary>Elements.</summary>
    public long Length { get; private set; }

    /// <summary>The view kernels get.</summary>
    public abstract ArrayView<T> View { get; }

    /// <summary>The host copy.</summary>
    public Span<T> Host => new(_host, checked((int)Length));

    /// <summary>The host copy's address.</summary>
    protected nint HostAddress => (nint)_host;

    /// <summary>Makes the array at least <paramref name="length"/> long (growing by doubling), zeroed on both sides when it grew.</summary>
    /// <param name="length">Elements needed.</param>
    /// <returns>True if it grew.</returns>
    public bool EnsureLength(long length)
    {
        if (length <= Length && _host != null)
        {
            return false;
        }

        long grown = Math.Max(Math.Max(length, Length * 2), 64);
        NativeMemory.AlignedFree(_host);
        _host = null;
        Length = 0;
        _host = (T*)NativeMemory.AlignedAlloc((nuint)(grown * sizeof(T)), 64);
        NativeMemory.Clear(_host, (nuint)(grown * sizeof(T)));
        Length = grown;
        Reallocate(grown);
        return true;
    }

    /// <summary>Copies host elements [start, start + count) to the device side.</summary>
    /// <param name="start">First element.</param>
    /// <param name="count">Elements.</param>
    public abstract void Upload(long start, long count);

    /// <summary>Copies device elements [start, start + count) to the host side.</summary>
    /// <param name="start">First element.</param>
    /// <param name="count">Elements.</param>
    public abstract void Download(long start, long count);

    /// <summary>Zeroes elements [start, start + count) on both sides.</summary>
    /// <param name="start">First element.</param>
    /// <param name="count">Elements.</param>
    public void Clear(long start, long count)
    {
        if (count <= 0)
        {
            return;
        }

        NativeMemory.Clear(_host + start, (nuint)(count * sizeof(T)));
        Upload(start, count);
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        ReleaseDevice();
        NativeMemory.AlignedFree(_host);
        _host = null;
        Length = 0;
    }

    /// <summary>Gives the device side room for <paramref name="length"/> elements (called after the host copy grew).</summary>
    /// <param name="length">Elements.</param>
    protected abstract void Reallocate(long length);

    /// <summary>Frees the device side.</summary>
    protected abstract void ReleaseDevice();
}

/// <summary>A <see cref="DeviceArray{T}"/> whose device side is its host side (the <c>direct</c> launcher).</summary>
/// <typeparam name="T">The element type.</typeparam>
internal sealed class SharedDeviceArray<T> : DeviceArray<T>
    where T : unmanaged
{
    private ArrayView<T> _view;

    /// <inheritdoc/>
    public override ArrayView<T> View => _view;

    /// <inheritdoc/>
    public override void Upload(long start, long count)
    {
        // One memory: nothing to copy.
    }

    /// <inheritdoc/>
    public override void Download(long start, long count)
    {
        // One memory: nothing to copy.
    }

    /// <inheritdoc/>
    protected override void Reallocate(long length) => _view = HostMemoryBuffer.View<T>(null, HostAddress, length);

    /// <inheritdoc/>
    protected override void ReleaseDevice() => _view = default;
}

/// <summary>A <see cref="DeviceArray{T}"/> with a buffer in an ILGPU accelerator's memory (the <c>cpu</c>, <c>cuda</c> and
/// <c>opencl</c> launchers), so the copies a GPU needs run on every machine.</summary>
/// <typeparam name="T">The element type.</typeparam>
/// <param name="accelerator">The accelerator that owns the device side.</param>
internal sealed unsafe class AcceleratorDeviceArray<T>(Accelerator accelerator) : DeviceArray<T>
    where T : unmanaged
{
    private MemoryBuffer1D<T, Stride1D.Dense>? _buffer;

    /// <inheritdoc/>
    public override ArrayView<T> View => _buffer!.View;

    /// <inheritdoc/>
    public override void Upload(long start, long count)
    {
        if (count > 0)
        {
            _buffer!.View.SubView(start, count).CopyFromCPU(ref ((T*)HostAddress)[start], count);
        }
    }

    /// <inheritdoc/>
    public override void Download(long start, long count)
    {
        if (count > 0)
        {
            _buffer!.View.SubView(start, count).CopyToCPU(ref ((T*)HostAddress)[start], count);
        }
    }

    /// <inheritdoc/>
    protected override void Reallocate(long length)
    {
        _buffer?.Dispose();
        _buffer = accelerator.Allocate1D<T>(length);
        _buffer.MemSetToZero();
    }

    /// <inheritdoc/>
    protected override void ReleaseDevice()
    {
        _buffer?.Dispose();
        _buffer = null;
    }
}
