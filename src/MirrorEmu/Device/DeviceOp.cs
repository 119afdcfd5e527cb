namespace MirrorEmu.Device;

/// <summary>The kernels a device launches (<see cref="Kernels.MirrorKernels"/>).</summary>
public enum DeviceOp
{
    /// <summary><see cref="Kernels.MirrorKernels.ReadKernel"/>: mirrored memory → device buffer.</summary>
    Read,

    /// <summary><see cref="Kernels.MirrorKernels.WriteKernel"/>: device buffer → mirrored memory.</summary>
    Write,

    /// <summary><see cref="Kernels.MirrorKernels.AtomicAddKernel"/>: atomic adds through an index buffer.</summary>
    AtomicAdd,

    /// <summary><see cref="Kernels.MirrorKernels.GatherKernel"/>: loads through an index buffer.</summary>
    Gather,

    /// <summary><see cref="Kernels.MirrorKernels.ScatterKernel"/>: stores through an index buffer.</summary>
    Scatter,

    /// <summary><see cref="Kernels.MirrorKernels.StreamCopyKernel"/>: mirrored memory → mirrored memory.</summary>
    StreamCopy,
}
