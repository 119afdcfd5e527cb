using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;
using MirrorEmu.Kernels;
using MirrorEmu.Mm;

namespace MirrorEmu.Device.Cuda;

/// <summary>
/// The CPU's frames as a CUDA GPU addresses them in place: through HMM/ATS where the device can access pageable host
/// memory (CU_DEVICE_ATTRIBUTE_PAGEABLE_MEMORY_ACCESS: the host address is the device address, nothing to do), or
/// else by registering each committed chunk of the frame arena with cuMemHostRegister(DEVICEMAP) on a device whose
/// registered memory keeps its host address (CU_DEVICE_ATTRIBUTE_CAN_USE_HOST_POINTER_FOR_REGISTERED_MEM), so the
/// chunks stay contiguous on the device. A GPU that can do neither is not used: frames are never copied.
/// </summary>
internal sealed class CudaFrameMapping : IDisposable
{
    private readonly CudaAccelerator _accelerator;
    private readonly Mode _mode;
    private readonly FrameArena _arena;
    private readonly ArrayView<ulong> _view;
    private int _registeredChunks;

    /// <summary>Maps <paramref name="arena"/> into <paramref name="accelerator"/>.</summary>
    /// <param name="accelerator">The GPU.</param>
    /// <param name="mode">What <see cref="Probe"/> found.</param>
    /// <param name="arena">A contiguous frame arena.</param>
    public CudaFrameMapping(CudaAccelerator accelerator, Mode mode, FrameArena arena)
    {
        _accelerator = accelerator;
        _mode = mode;
        _arena = arena;
        long elements = (long)(arena.SpanBytes >> DeviceGeometry.ElementShift);
        _view = new MappedHostBuffer(accelerator, arena.BaseAddress, elements, sizeof(ulong)).AsArrayView<ulong>(0, elements);
    }

    /// <summary>How the GPU reaches host frames.</summary>
    public enum Mode
    {
        /// <summary>It cannot, in place.</summary>
        None,

        /// <summary>It reads pageable host memory at its host address (HMM or ATS).</summary>
        PageableAccess,

        /// <summary>It reads registered host memory at its host address.</summary>
        RegisteredHostPointer,
    }

    /// <summary>What <paramref name="accelerator"/> can do with host memory.</summary>
    /// <param name="accelerator">The GPU.</param>
    /// <param name="reason">Why it cannot, for <see cref="Mode.None"/>.</param>
    public static Mode Probe(CudaAccelerator accelerator, out string reason)
    {
        using ScopedAcceleratorBinding binding = accelerator.BindScoped();
        int id = accelerator.DeviceId;
        reason = string.Empty;
        if (CudaAPI.CurrentAPI.GetDeviceAttribute(DeviceAttributeKind.CU_DEVICE_ATTRIBUTE_PAGEABLE_MEMORY_ACCESS, id) != 0)
        {
            return Mode.PageableAccess;
        }

        if (accelerator.Device.SupportsMappingHostMemory && accelerator.Device.SupportsUsingHostPointerForRegisteredMemory)
        {
            return Mode.RegisteredHostPointer;
        }

        reason = $"CUDA device '{accelerator.Name}' cannot address host frames in place (no pageable-memory access, and registered host memory does not keep its host address)";
        return Mode.None;
    }

    /// <summary>Registers the chunks committed since the last call and returns the view of every frame.</summary>
    /// <param name="committedBytes">The pool's committed bytes (chunks [0, n) are committed, in order).</param>
    public ArrayView<ulong> Refresh(long committedBytes)
    {
        if (_mode == Mode.RegisteredHostPointer)
        {
            int chunks = (int)((ulong)committedBytes / FrameArena.ChunkBytes);
            if (chunks > _registeredChunks)
            {
                using ScopedAcceleratorBinding binding = _accelerator.BindScoped();
                for (int c = _registeredChunks; c < chunks; c++)
                {
                    nint at = _arena.BaseAddress + (nint)((ulong)c * FrameArena.ChunkBytes);
                    CudaException.ThrowIfFailed(CudaAPI.CurrentAPI.MemHostRegister(
                        at,
                        (nint)FrameArena.ChunkBytes,
                        MemHostRegisterFlags.CU_MEMHOSTREGISTER_PORTABLE | MemHostRegisterFlags.CU_MEMHOSTREGISTER_DEVICEMAP));
                    _registeredChunks = c + 1;
                }
            }
        }

        return _view;
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        if (_registeredChunks == 0)
        {
            return;
        }

        using ScopedAcceleratorBinding binding = _accelerator.BindScoped();
        for (int c = 0; c < _registeredChunks; c++)
        {
            CudaAPI.CurrentAPI.MemHostUnregister(_arena.BaseAddress + (nint)((ulong)c * FrameArena.ChunkBytes));
        }

        _registeredChunks = 0;
    }

    /// <summary>An ILGPU buffer whose device pointer is a host address the GPU can reach. The host writes it in place;
    /// ILGPU's copies and memsets are not used on it.</summary>
    private sealed class MappedHostBuffer : MemoryBuffer
    {
        /// <summary>Wraps [<paramref name="address"/>, + <paramref name="length"/> elements) as the GPU sees it.</summary>
        public MappedHostBuffer(Accelerator accelerator, nint address, long length, int elementSize)
            : base(accelerator, length, elementSize) => NativePtr = address;

        protected override void MemSet(AcceleratorStream stream, byte value, in ArrayView<byte> targetView) =>
            throw new NotSupportedException("mapped host frames are written by the host in place, not through ILGPU");

        protected override void CopyTo(AcceleratorStream stream, in ArrayView<byte> sourceView, in ArrayView<byte> targetView) =>
            throw new NotSupportedException("mapped host frames are read by the host in place, not through ILGPU");

        protected override void CopyFrom(AcceleratorStream stream, in ArrayView<byte> sourceView, in ArrayView<byte> targetView) =>
            throw new NotSupportedException("mapped host frames are written by the host in place, not through ILGPU");

        protected override void DisposeAcceleratorObject(bool disposing)
        {
            // The frames belong to the pool.
        }
    }
}
