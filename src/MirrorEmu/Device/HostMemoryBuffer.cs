using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;

namespace MirrorEmu.Device;

/// <summary>
/// An ILGPU buffer over host memory this process already owns (the frame arena, a native array, a pinned span),
/// so kernels on the CPU paths reach it in place. It owns nothing: disposing it frees nothing, and the memory must
/// outlive every view of it.
/// </summary>
internal sealed class HostMemoryBuffer : CPUMemoryBuffer
{
    /// <summary>Wraps [<paramref name="address"/>, <paramref name="address"/> + <paramref name="length"/> * <paramref name="elementSize"/>).</summary>
    /// <param name="accelerator">The CPU accelerator the views go to, or null for the <c>direct</c> launcher (no ILGPU at run time).</param>
    /// <param name="address">The first byte.</param>
    /// <param name="length">Elements.</param>
    /// <param name="elementSize">Bytes per element.</param>
    public HostMemoryBuffer(Accelerator? accelerator, nint address, long length, int elementSize)
        : base(accelerator!, length, elementSize) => NativePtr = address;

    /// <summary>A typed view over <paramref name="length"/> elements at <paramref name="address"/>.</summary>
    /// <typeparam name="T">The element type.</typeparam>
    /// <param name="accelerator">As for the constructor.</param>
    /// <param name="address">The first byte.</param>
    /// <param name="length">Elements.</param>
    public static unsafe ArrayView<T> View<T>(Accelerator? accelerator, nint address, long length)
        where T : unmanaged =>
        length == 0 ? ArrayView<T>.Empty : new HostMemoryBuffer(accelerator, address, length, sizeof(T)).AsArrayView<T>(0, length);

    /// <inheritdoc/>
    protected override void DisposeAcceleratorObject(bool disposing)
    {
        // The memory belongs to its owner.
    }
}
