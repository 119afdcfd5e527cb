using ILGPU;
using MirrorEmu.Kernels;
using MirrorEmu.Mm;

namespace MirrorEmu.Device;

/// <summary>
/// The <c>direct</c> launcher: the kernel methods of <see cref="MirrorKernels"/> called from
/// <see cref="Parallel.For(int, int, Action{int})"/> over views of host memory, with no ILGPU at run time (ILGPU's
/// view types only). Every buffer is host memory, so nothing is copied.
/// </summary>
public sealed class DirectLauncher : DeviceLauncher
{
    /// <inheritdoc/>
    public override LauncherKind Kind => LauncherKind.Direct;

    /// <inheritdoc/>
    public override string Description => $"direct: the kernel methods from Parallel.For over host views, {Environment.ProcessorCount} cores";

    /// <inheritdoc/>
    internal override LauncherBinding Bind(PhysicalMemory memory)
    {
        RequireContiguous(memory, "direct");
        return new Binding(memory);
    }

    /// <summary>A device's state on the direct launcher.</summary>
    private sealed class Binding : LauncherBinding
    {
        /// <summary>Work items per Parallel.For iteration; a pass this small runs on the calling thread.</summary>
        private const int ChunkItems = 4096;

        private readonly ArrayView<ulong> _frames;
        private readonly Action<int> _runChunk;
        private KernelPass _pass; // the pass being run; written before Parallel.For, read by its iterations
        private int _count;

        public Binding(PhysicalMemory memory)
        {
            _frames = HostMemoryBuffer.View<ulong>(null, memory.Arena.BaseAddress, (long)(memory.Arena.SpanBytes >> DeviceGeometry.ElementShift));
            _runChunk = RunChunk;
        }

        public override ArrayView<ulong> PrepareFrames(PhysicalMemory memory) => _frames;

        public override ArrayView<ulong> PrepareTable(DevicePageTable table) => table.View;

        public override DeviceArray<T> Allocate<T>() => new SharedDeviceArray<T>();

        public override unsafe ArrayView<T> Stage<T>(T* data, long length, DeviceArray<T> staging, bool copyIn) =>
            HostMemoryBuffer.View<T>(null, (nint)data, length);

        public override unsafe void Unstage<T>(T* data, long length, DeviceArray<T> staging)
        {
            // The kernels wrote the caller's memory in place.
        }

        public override void Run(in KernelPass pass, int count)
        {
            _pass = pass;
            _count = count;
            int chunks = (count + ChunkItems - 1) / ChunkItems;
            if (chunks == 1)
            {
                RunChunk(0);
            }
            else
            {
                Parallel.For(0, chunks, _runChunk);
            }
        }

        public override void Dispose()
        {
        }

        private void RunChunk(int chunk)
        {
            int start = chunk * ChunkItems;
            int end = Math.Min(start + ChunkItems, _count);
            KernelPass p = _pass;
            switch (p.Op)
            {
                case DeviceOp.Read:
                    for (int i = start; i < end; i++)
                    {
                        MirrorKernels.ReadKernel(i, p.Mmu, p.Work, p.Data, p.SrcVa);
                    }

                    break;
                case DeviceOp.Write:
                    for (int i = start; i < end; i++)
                    {
                        MirrorKernels.WriteKernel(i, p.Mmu, p.Work, p.Data, p.DstVa);
                    }

                    break;
                case DeviceOp.AtomicAdd:
                    for (int i = start; i < end; i++)
                    {
                        MirrorKernels.AtomicAddKernel(i, p.Mmu, p.Work, p.Indices, p.DstVa, p.Elements, p.Value);
                    }

                    break;
                case DeviceOp.Gather:
                    for (int i = start; i < end; i++)
                    {
                        MirrorKernels.GatherKernel(i, p.Mmu, p.Work, p.Indices, p.Data, p.SrcVa, p.Elements);
                    }

                    break;
                case DeviceOp.Scatter:
                    for (int i = start; i < end; i++)
                    {
                        MirrorKernels.ScatterKernel(i, p.Mmu, p.Work, p.Indices, p.Data, p.DstVa, p.Elements);
                    }

                    break;
                default:
                    for (int i = start; i < end; i++)
                    {
                        MirrorKernels.StreamCopyKernel(i, p.Mmu, p.Work, p.SrcVa, p.DstVa);
                    }

                    break;
            }
        }
    }
}
