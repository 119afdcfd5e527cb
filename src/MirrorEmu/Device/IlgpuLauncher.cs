using System.Diagnostics.CodeAnalysis;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;
using ILGPU.Runtime.OpenCL;
using MirrorEmu.Device.Cuda;
using MirrorEmu.Kernels;
using MirrorEmu.Mm;

namespace MirrorEmu.Device;

/// <summary>
/// A launcher on an ILGPU accelerator: the CPU accelerator everywhere, CUDA where a GPU can address host frames in
/// place. The kernels are <see cref="MirrorKernels"/>' methods. The device's page table, fault buffer,
/// masks and data buffers live in the accelerator's memory and are copied as a GPU's would be (on the CPU
/// accelerator the copies are memcpy, so that path is exercised everywhere); the frames are addressed in place. The
/// device's own memory (pages migrated to it) is a buffer in GPU memory on CUDA, the device pool's frames on the CPU.
/// Kernels are compiled when the first device binds.
/// </summary>
public sealed class IlgpuLauncher : DeviceLauncher
{
    // One launch and its synchronize at a time on the accelerator (LockRank.DeviceQueue); guards the kernel cache.
    private readonly object _queue = new();
    private readonly Context _context;
    private readonly Accelerator _accelerator;
    private readonly CudaFrameMapping.Mode _cudaMode;
    private Action<Index1D, ArrayView<ulong>, ArrayView<ulong>, ArrayView<ulong>, FaultSink, WorkList, ArrayView<byte>, ArrayView<ulong>, ulong>? _read;
    private Action<Index1D, ArrayView<ulong>, ArrayView<ulong>, ArrayView<ulong>, FaultSink, WorkList, ArrayView<byte>, ArrayView<ulong>, ulong>? _write;
    private Action<Index1D, ArrayView<ulong>, ArrayView<ulong>, ArrayView<ulong>, FaultSink, WorkList, ArrayView<byte>, ArrayView<int>, ulong, long, ulong>? _atomicAdd;
    private Action<Index1D, ArrayView<ulong>, ArrayView<ulong>, ArrayView<ulong>, FaultSink, WorkList, ArrayView<byte>, ArrayView<int>, ArrayView<ulong>, ulong, long>? _gather;
    private Action<Index1D, ArrayView<ulong>, ArrayView<ulong>, ArrayView<ulong>, FaultSink, WorkList, ArrayView<byte>, ArrayView<int>, ArrayView<ulong>, ulong, long>? _scatter;
    private Action<Index1D, ArrayView<ulong>, ArrayView<ulong>, ArrayView<ulong>, FaultSink, WorkList, ArrayView<byte>, ulong, ulong>? _streamCopy;

    private IlgpuLauncher(LauncherKind kind, Context context, Accelerator accelerator, CudaFrameMapping.Mode cudaMode)
    {
        Kind = kind;
        _context = context;
        _accelerator = accelerator;
        _cudaMode = cudaMode;
    }

    /// <inheritdoc/>
    public override LauncherKind Kind { get; }

    /// <inheritdoc/>
    public override string Description =>
        $"{Kind.ToString().ToLowerInvariant()}: ILGPU {_accelerator.GetType().Name} '{_accelerator.Name}'" + (Kind == LauncherKind.Cuda ? $", frames {_cudaMode}" : string.Empty);

    /// <summary>The accelerator.</summary>
    internal Accelerator Accelerator => _accelerator;

    /// <summary>Creates the CPU accelerator launcher: one ILGPU multiprocessor per core.</summary>
    internal static bool TryCreateCpu(bool debugChecks, [NotNullWhen(true)] out DeviceLauncher? launcher, out string reason)
    {
        var device = new CPUDevice(numThreadsPerWarp: 4, numWarpsPerMultiprocessor: 4, numMultiprocessors: Environment.ProcessorCount);
        Context context = Context.Create(b => Configure(b.CPU(device), debugChecks));
        launcher = new IlgpuLauncher(LauncherKind.Cpu, context, context.CreateCPUAccelerator(0), CudaFrameMapping.Mode.None);
        reason = string.Empty;
        return true;
    }

    /// <summary>Creates a CUDA launcher on the first CUDA device that can address host memory in place.</summary>
    internal static bool TryCreateCuda(bool debugChecks, [NotNullWhen(true)] out DeviceLauncher? launcher, out string reason)
    {
        launcher = null;
        Context context;
        try
        {
            context = Context.Create(b => Configure(b.Cuda(), debugChecks));
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            reason = $"no CUDA device: ILGPU could not start CUDA ({e.GetType().Name}: {e.Message})";
            return false;
        }

        if (context.GetCudaDevices().Count == 0)
        {
            context.Dispose();
            reason = "no CUDA device: ILGPU found no CUDA driver or GPU here";
            return false;
        }

        CudaAccelerator accelerator = context.CreateCudaAccelerator(0);
        CudaFrameMapping.Mode mode = CudaFrameMapping.Probe(accelerator, out reason);
        if (mode == CudaFrameMapping.Mode.None)
        {
            accelerator.Dispose();
            context.Dispose();
            return false;
        }

        launcher = new IlgpuLauncher(LauncherKind.Cuda, context, accelerator, mode);
        return true;
    }

    /// <summary>OpenCL: says why it cannot address the frames in place, or that no device exists.</summary>
    internal static bool TryCreateOpenCL(bool debugChecks, [NotNullWhen(true)] out DeviceLauncher? launcher, out string reason)
    {
        launcher = null;
        int devices;
        try
        {
            using Context context = Context.Create(b => Configure(b.OpenCL(), debugChecks));
            devices = context.GetCLDevices().Count;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            reason = $"no OpenCL device: ILGPU could not start OpenCL ({e.GetType().Name}: {e.Message})";
            return false;
        }

        reason = devices == 0
            ? "no OpenCL device: ILGPU found no OpenCL platform or device here"
            : "OpenCL cannot address the frames in place: ILGPU 1.5.3 kernels take no SVM pointers, and a CL_MEM_USE_HOST_PTR buffer may be a cached copy (no coherence until unmapped)";
        return false;
    }

    private static Context.Builder Configure(Context.Builder builder, bool debugChecks) =>
        debugChecks ? builder.Assertions().Verify() : builder;

    /// <inheritdoc/>
    internal override LauncherBinding Bind(PhysicalMemory memory, PhysicalMemory devicePool)
    {
        RequireContiguous(memory, Kind.ToString().ToLowerInvariant());
        RequireContiguous(devicePool, Kind.ToString().ToLowerInvariant());
        LoadKernels();
        return new Binding(this, memory, devicePool);
    }

    /// <summary>Compiles every kernel now, so that no pass compiles one while it holds its device's driver lock (an
    /// invalidation would wait for the compiler).</summary>
    private void LoadKernels()
    {
        using (new RankedMonitor(_queue, LockRank.DeviceQueue))
        {
            _read ??= _accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<ulong>, ArrayView<ulong>, ArrayView<ulong>, FaultSink, WorkList, ArrayView<byte>, ArrayView<ulong>, ulong>(MirrorKernels.ReadKernel);
            _write ??= _accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<ulong>, ArrayView<ulong>, ArrayView<ulong>, FaultSink, WorkList, ArrayView<byte>, ArrayView<ulong>, ulong>(MirrorKernels.WriteKernel);
            _atomicAdd ??= _accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<ulong>, ArrayView<ulong>, ArrayView<ulong>, FaultSink, WorkList, ArrayView<byte>, ArrayView<int>, ulong, long, ulong>(MirrorKernels.AtomicAddKernel);
            _gather ??= _accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<ulong>, ArrayView<ulong>, ArrayView<ulong>, FaultSink, WorkList, ArrayView<byte>, ArrayView<int>, ArrayView<ulong>, ulong, long>(MirrorKernels.GatherKernel);
            _scatter ??= _accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<ulong>, ArrayView<ulong>, ArrayView<ulong>, FaultSink, WorkList, ArrayView<byte>, ArrayView<int>, ArrayView<ulong>, ulong, long>(MirrorKernels.ScatterKernel);
            _streamCopy ??= _accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<ulong>, ArrayView<ulong>, ArrayView<ulong>, FaultSink, WorkList, ArrayView<byte>, ulong, ulong>(MirrorKernels.StreamCopyKernel);
        }
    }

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _accelerator.Dispose();
            _context.Dispose();
        }
    }

    /// <summary>Runs one slice: launches its kernel (loaded by <see cref="Bind"/>) and waits for it.</summary>
    private void Run(in KernelPass p, int count)
    {
        using (new RankedMonitor(_queue, LockRank.DeviceQueue))
        {
            var extent = new Index1D(count);
            switch (p.Op)
            {
                case DeviceOp.Read:
                    _read!(extent, p.Table, p.Frames, p.DeviceFrames, p.Faults, p.Work, p.Placement, p.Data, p.SrcVa);
                    break;
                case DeviceOp.Write:
                    _write!(extent, p.Table, p.Frames, p.DeviceFrames, p.Faults, p.Work, p.Placement, p.Data, p.DstVa);
                    break;
                case DeviceOp.AtomicAdd:
                    _atomicAdd!(extent, p.Table, p.Frames, p.DeviceFrames, p.Faults, p.Work, p.Placement, p.Indices, p.DstVa, p.Elements, p.Value);
                    break;
                case DeviceOp.Gather:
                    _gather!(extent, p.Table, p.Frames, p.DeviceFrames, p.Faults, p.Work, p.Placement, p.Indices, p.Data, p.SrcVa, p.Elements);
                    break;
                case DeviceOp.Scatter:
                    _scatter!(extent, p.Table, p.Frames, p.DeviceFrames, p.Faults, p.Work, p.Placement, p.Indices, p.Data, p.DstVa, p.Elements);
                    break;
                default:
                    _streamCopy!(extent, p.Table, p.Frames, p.DeviceFrames, p.Faults, p.Work, p.Placement, p.SrcVa, p.DstVa);
                    break;
            }

            _accelerator.Synchronize();
        }
    }

    /// <summary>A device's state on an ILGPU accelerator.</summary>
    private sealed unsafe class Binding : LauncherBinding
    {
        private readonly IlgpuLauncher _launcher;
        private readonly CudaFrameMapping? _cudaFrames;
        private readonly ArrayView<ulong> _cpuFrames;
        private readonly MemoryBuffer1D<ulong, Stride1D.Dense>? _vram; // the device memory on a GPU
        private readonly ArrayView<ulong> _deviceFrames;
        private readonly List<int> _dirty = [];
        private MemoryBuffer1D<ulong, Stride1D.Dense>? _table;
        private int _tableGeneration = -1;

        /// <summary>Binds to the frames of <paramref name="memory"/>, with the device memory counted by
        /// <paramref name="devicePool"/>: its frames on the CPU accelerator, a buffer of as many frames in GPU memory on CUDA.</summary>
        public Binding(IlgpuLauncher launcher, PhysicalMemory memory, PhysicalMemory devicePool)
            : base(devicePool)
        {
            _launcher = launcher;
            long elements = (long)(memory.Arena.SpanBytes >> DeviceGeometry.ElementShift);
            long deviceElements = (long)(devicePool.LimitFrames << DeviceGeometry.PageElementShift);
            if (launcher.Kind == LauncherKind.Cuda)
            {
                _cudaFrames = new CudaFrameMapping((CudaAccelerator)launcher._accelerator, launcher._cudaMode, memory.Arena);
                using (new RankedMonitor(launcher._queue, LockRank.DeviceQueue))
                {
                    _vram = launcher._accelerator.Allocate1D<ulong>(deviceElements);
                }

                _deviceFrames = _vram.View;
            }
            else
            {
                _cpuFrames = HostMemoryBuffer.View<ulong>(launcher._accelerator, memory.Arena.BaseAddress, elements);
                _deviceFrames = HostMemoryBuffer.View<ulong>(launcher._accelerator, devicePool.Arena.BaseAddress, (long)(devicePool.Arena.SpanBytes >> DeviceGeometry.ElementShift));
            }
        }

        /// <inheritdoc/>
        public override ArrayView<ulong> DeviceFrames => _deviceFrames;

        /// <inheritdoc/>
        public override void CopyToDeviceFrame(ulong frame, byte* source, bool streaming)
        {
            if (_vram is null)
            {
                base.CopyToDeviceFrame(frame, source, streaming);
                return;
            }

            byte* from = source is null ? DevicePool.FramePointer(PhysicalMemory.ZeroPfn) : source;
            using (new RankedMonitor(_launcher._queue, LockRank.DeviceQueue))
            {
                PageOf(frame).CopyFromCPU(ref *(ulong*)from, DeviceGeometry.PageElements);
            }
        }

        /// <inheritdoc/>
        public override void CopyFromDeviceFrame(ulong frame, byte* destination, bool streaming)
        {
            if (_vram is null)
            {
                base.CopyFromDeviceFrame(frame, destination, streaming);
                return;
            }

            using (new RankedMonitor(_launcher._queue, LockRank.DeviceQueue))
            {
                PageOf(frame).CopyToCPU(ref *(ulong*)destination, DeviceGeometry.PageElements);
            }
        }

        /// <inheritdoc/>
        public override void ReadDeviceFrame(ulong frame, Span<byte> destination)
        {
            if (_vram is null)
            {
                base.ReadDeviceFrame(frame, destination);
                return;
            }

            fixed (byte* to = destination)
            {
                CopyFromDeviceFrame(frame, to, streaming: false);
            }
        }

        /// <summary>Frame <paramref name="frame"/> of the GPU's device memory.</summary>
        private ArrayView<ulong> PageOf(ulong frame) =>
            _vram!.View.SubView((long)frame << DeviceGeometry.PageElementShift, DeviceGeometry.PageElements);

        /// <inheritdoc/>
        public override ArrayView<ulong> PrepareFrames(PhysicalMemory memory) =>
            _cudaFrames is null ? _cpuFrames : _cudaFrames.Refresh(memory.ReservedBytes);

        /// <inheritdoc/>
        public override unsafe ArrayView<ulong> PrepareTable(DevicePageTable table)
        {
            ReadOnlySpan<ulong> pool = table.Pool;
            if (_tableGeneration != table.Generation)
            {
                // The pool was reallocated: a buffer of the new size and the whole table.
                _table?.Dispose();
                _table = _launcher._accelerator.Allocate1D<ulong>(pool.Length);
                _table.View.CopyFromCPU(ref System.Runtime.InteropServices.MemoryMarshal.GetReference(pool), pool.Length);
                _tableGeneration = table.Generation;
                table.TakeDirtyBlocks(_dirty);
                return _table.View;
            }

            table.TakeDirtyBlocks(_dirty);
            foreach (int block in _dirty)
            {
                long start = (long)block << DeviceGeometry.LevelBits;
                _table!.View.SubView(start, DeviceGeometry.BlockEntries).CopyFromCPU(ref System.Runtime.InteropServices.MemoryMarshal.GetReference(pool[(int)start..]), DeviceGeometry.BlockEntries);
            }

            return _table!.View;
        }

        /// <inheritdoc/>
        public override DeviceArray<T> Allocate<T>() => new AcceleratorDeviceArray<T>(_launcher._accelerator);

        /// <inheritdoc/>
        public override unsafe ArrayView<T> Stage<T>(T* data, long length, DeviceArray<T> staging, bool copyIn)
        {
            if (length == 0)
            {
                return ArrayView<T>.Empty;
            }

            staging.EnsureLength(length);
            if (copyIn)
            {
                new ReadOnlySpan<T>(data, checked((int)length)).CopyTo(staging.Host);
                staging.Upload(0, length);
            }

            return staging.View.SubView(0, length);
        }

        /// <inheritdoc/>
        public override unsafe void Unstage<T>(T* data, long length, DeviceArray<T> staging)
        {
            if (length == 0)
            {
                return;
            }

            staging.Download(0, length);
            staging.Host[..checked((int)length)].CopyTo(new Span<T>(data, (int)length));
        }

        /// <inheritdoc/>
        public override void Run(in KernelPass pass, int count) => _launcher.Run(pass, count);

        /// <inheritdoc/>
        public override void Dispose()
        {
            _table?.Dispose();
            _vram?.Dispose();
            _cudaFrames?.Dispose();
        }
    }
}
