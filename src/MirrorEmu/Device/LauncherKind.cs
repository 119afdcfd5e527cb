namespace MirrorEmu.Device;

/// <summary>How a device runs its kernels (the same kernel methods on every one).</summary>
public enum LauncherKind
{
    /// <summary>ILGPU's CPU accelerator: kernels compiled and run by ILGPU, buffers in its memory, frames in place.</summary>
    Cpu,

    /// <summary>The kernel methods called from <see cref="Parallel.For(int, int, Action{int})"/> over the same views,
    /// with no ILGPU at run time: the fast path on a machine without a GPU.</summary>
    Direct,

    /// <summary>ILGPU's CUDA accelerator, with the frames mapped into the GPU in place (pageable-memory access or
    /// registered host memory).</summary>
    Cuda,

    /// <summary>ILGPU's OpenCL accelerator, where it can address host frames in place.</summary>
    OpenCL,

    /// <summary>CUDA where a GPU can address the frames in place, else <see cref="Direct"/>.</summary>
    Auto,
}
