using System.Runtime.CompilerServices;
using ILGPU;
using MirrorEmu.Kernels;
using MirrorEmu.Mm;

namespace MirrorEmu.Device;

/// <summary>
/// The <c>direct</c> launcher: the kernel methods of <see cref="MirrorKernels"/> called from
/// <see cref="Parallel.For(int, int, Action{int})"/> over views of host memory, with no ILGPU at run time (ILGPU's
/// view types only). Every buffer is host memory, so nothing is copied; the device's own memory is a separate pool
/// of host memory.
/// </summary>
public sealed class DirectLauncher : DeviceLauncher
{
    private readonly ParallelOptions _parallel;

    /// <summary>Creates the launcher.</summary>
    /// <param name="maxDegreeOfParallelism">Most threads a pass uses (Parallel.For's MaxDegreeOfParallelism); -1 for as many
    /// as the scheduler gives, 1 to run every pass on the launching thread.</param>
    /// <exception cref="ArgumentOutOfRangeException">0 or below -1.</exception>
    public DirectLauncher(int maxDegreeOfParallelism = -1)
    {
        if (maxDegreeOfParallelism == 0 || maxDegreeOfParallelism < -1)
        {
            throw new ArgumentOutOfRangeException(nameof(maxDegreeOfParallelism), $"maxDegreeOfParallelism={maxDegreeOfParallelism} must be -1 or at least 1");
        }

        _parallel = new ParallelOptions { MaxDegreeOfParallelism = maxDegreeOfParallelism };
    }

    /// <inheritdoc/>
    public override LauncherKind Kind => LauncherKind.Direct;

    /// <inheritdoc/>
    public override string Description =>
        $"direct: the kernel methods from Parallel.For over host views, {(_parallel.MaxDegreeOfParallelism == -1 ? Environment.ProcessorCount : _parallel.MaxDegreeOfParallelism)} threads";

    /// <inheritdoc/>
    internal override LauncherBinding Bind(PhysicalMemory memory, PhysicalMemory devicePool)
    {
        RequireContiguous(memory, "direct");
        RequireContiguous(devicePool, "direct");
        return new Binding(memory, devicePool, _parallel);
    }

    /// <summary>A device's state on the direct launcher.</summary>
    private sealed class Binding : LauncherBinding
    {
        /// <summary>Work items per Parallel.For iteration; a pass this small runs on the calling thread.</summary>
        private const int ChunkItems = 4096;

        private readonly ArrayView<ulong> _frames;
        private readonly ArrayView<ulong> _deviceFrames;
        private readonly ParallelOptions _parallel;
        private readonly Action<int> _runChunk;
        private KernelPass _pass; // the pass being run; written before Parallel.For, read by its iterations
        private int _count;
        private long _accessesSystem; // added to by the chunks of a pass, taken by the device after the pass
        private long _accessesDevice;

        /// <summary>Binds to the frames of <paramref name="memory"/> and of <paramref name="devicePool"/>.</summary>
        public Binding(PhysicalMemory memory, PhysicalMemory devicePool, ParallelOptions parallel)
            : base(devicePool)
        {
            _parallel = parallel;
            _frames = HostMemoryBuffer.View<ulong>(null, memory.Arena.BaseAddress, (long)(memory.Arena.SpanBytes >> DeviceGeometry.ElementShift));
            _deviceFrames = HostMemoryBuffer.View<ulong>(null, devicePool.Arena.BaseAddress, (long)(devicePool.Arena.SpanBytes >> DeviceGeometry.ElementShift));
            _runChunk = RunChunk;
        }

        /// <inheritdoc/>
        public override ArrayView<ulong> DeviceFrames => _deviceFrames;

        /// <inheritdoc/>
        public override bool CountsAccesses => true;

        /// <inheritdoc/>
        public override void TakeAccesses(out long system, out long device)
        {
            system = Interlocked.Exchange(ref _accessesSystem, 0);
            device = Interlocked.Exchange(ref _accessesDevice, 0);
        }

        /// <inheritdoc/>
        public override ArrayView<ulong> PrepareFrames(PhysicalMemory memory) => _frames;

        /// <inheritdoc/>
        public override ArrayView<ulong> PrepareTable(DevicePageTable table) => table.View;

        /// <inheritdoc/>
        public override DeviceArray<T> Allocate<T>() => new SharedDeviceArray<T>();

        /// <inheritdoc/>
        public override unsafe ArrayView<T> Stage<T>(T* data, long length, DeviceArray<T> staging, bool copyIn) =>
            HostMemoryBuffer.View<T>(null, (nint)data, length);

        /// <inheritdoc/>
        public override unsafe void Unstage<T>(T* data, long length, DeviceArray<T> staging)
        {
            // The kernels wrote the caller's memory in place.
        }

        /// <inheritdoc/>
        public override void Run(in KernelPass pass, int count)
        {
            _pass = pass;
            _count = count;
            int chunks = (count + ChunkItems - 1) / ChunkItems;
            if (chunks == 1 || _parallel.MaxDegreeOfParallelism == 1)
            {
                for (int c = 0; c < chunks; c++)
                {
                    RunChunk(c);
                }
            }
            else
            {
                Parallel.For(0, chunks, _parallel, _runChunk);
            }
        }

        /// <inheritdoc/>
        public override void Dispose()
        {
        }

        /// <summary>Runs the items of one chunk through <see cref="Loop{TKernel}"/>, one instantiation per kernel, so that the JIT
        /// compiles a loop per kernel with its own inlining budget (one method with all six loops ran out of it and left
        /// ILGPU's view accessors as calls: see bench Device/DeviceAccessBenchmarks.DirectOneThread).</summary>
        private void RunChunk(int chunk)
        {
            int start = chunk * ChunkItems;
            int end = Math.Min(start + ChunkItems, _count);
            switch (_pass.Op)
            {
                case DeviceOp.Read:
                    Loop<ReadItem>(in _pass, start, end);
                    break;
                case DeviceOp.Write:
                    Loop<WriteItem>(in _pass, start, end);
                    break;
                case DeviceOp.AtomicAdd:
                    Loop<AtomicAddItem>(in _pass, start, end);
                    break;
                case DeviceOp.Gather:
                    Loop<GatherItem>(in _pass, start, end);
                    break;
                case DeviceOp.Scatter:
                    Loop<ScatterItem>(in _pass, start, end);
                    break;
                default:
                    Loop<StreamCopyItem>(in _pass, start, end);
                    break;
            }
        }

        /// <summary>Calls <typeparamref name="TKernel"/>'s item method for items [start, end), with the views the hit path uses in
        /// locals, and adds up where their accesses went in one register (no placement byte per item).</summary>
        [MethodImpl(MethodImplOptions.NoInlining)]
        private void Loop<TKernel>(in KernelPass p, int start, int end)
            where TKernel : struct, IKernelItem
        {
            ArrayView<ulong> table = p.Table;
            ArrayView<ulong> frames = p.Frames;
            ArrayView<ulong> deviceFrames = p.DeviceFrames;
            FaultSink faults = p.Faults;
            WorkList work = p.Work;
            long sum = 0; // count words: the system count below bit 32, the device count above
            for (int i = start; i < end; i++)
            {
                sum += TKernel.Run(work.Item(i), table, frames, deviceFrames, faults, in p);
            }

            Interlocked.Add(ref _accessesSystem, AccessPlacement.SystemAccesses(sum));
            Interlocked.Add(ref _accessesDevice, AccessPlacement.DeviceAccesses(sum));
        }
    }

    /// <summary>One work item of one kernel: the call of a <see cref="MirrorKernels"/> item method with the pass's own arguments.</summary>
    private interface IKernelItem
    {

        /// <summary>Runs work item <paramref name="item"/>.</summary>
        /// <returns>Where its accesses went (a count word of <see cref="AccessPlacement"/>), 0 when it faulted.</returns>
        static abstract long Run(int item, ArrayView<ulong> table, ArrayView<ulong> frames, ArrayView<ulong> deviceFrames, FaultSink faults, in KernelPass p);
    }

    private readonly struct ReadItem : IKernelItem
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static long Run(int item, ArrayView<ulong> table, ArrayView<ulong> frames, ArrayView<ulong> deviceFrames, FaultSink faults, in KernelPass p) =>
            MirrorKernels.Read(item, table, frames, deviceFrames, faults, p.Data, p.SrcVa);
    }

    private readonly struct WriteItem : IKernelItem
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static long Run(int item, ArrayView<ulong> table, ArrayView<ulong> frames, ArrayView<ulong> deviceFrames, FaultSink faults, in KernelPass p) =>
            MirrorKernels.Write(item, table, frames, deviceFrames, faults, p.Data, p.DstVa);
    }

    private readonly struct AtomicAddItem : IKernelItem
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static long Run(int item, ArrayView<ulong> table, ArrayView<ulong> frames, ArrayView<ulong> deviceFrames, FaultSink faults, in KernelPass p) =>
            MirrorKernels.AtomicAdd(item, table, frames, deviceFrames, faults, p.Indices, p.DstVa, p.Elements, p.Value);
    }

    private readonly struct GatherItem : IKernelItem
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static long Run(int item, ArrayView<ulong> table, ArrayView<ulong> frames, ArrayView<ulong> deviceFrames, FaultSink faults, in KernelPass p) =>
            MirrorKernels.Gather(item, table, frames, deviceFrames, faults, p.Indices, p.Data, p.SrcVa, p.Elements);
    }

    private readonly struct ScatterItem : IKernelItem
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static long Run(int item, ArrayView<ulong> table, ArrayView<ulong> frames, ArrayView<ulong> deviceFrames, FaultSink faults, in KernelPass p) =>
            MirrorKernels.Scatter(item, table, frames, deviceFrames, faults, p.Indices, p.Data, p.DstVa, p.Elements);
    }

    private readonly struct StreamCopyItem : IKernelItem
    {

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static long Run(int item, ArrayView<ulong> table, ArrayView<ulong> frames, ArrayView<ulong> deviceFrames, FaultSink faults, in KernelPass p) =>
            MirrorKernels.StreamCopy(item, table, frames, deviceFrames, faults, p.SrcVa, p.DstVa);
    }
}
