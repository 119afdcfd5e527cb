using System.Diagnostics;
using ILGPU;
using MirrorEmu.Kernels;
using MirrorEmu.Mm;

namespace MirrorEmu.Device;

public sealed partial class MirrorDevice
{
    /// <summary>Launches <see cref="MirrorKernels.ReadKernel"/>: <c>output[i]</c> = the 64-bit element at
    /// <paramref name="srcVa"/> + 8 i, read in place through the device page table.</summary>
    /// <param name="srcVa">The mirrored array's virtual address, 8-byte aligned.</param>
    /// <param name="output">Receives one element per work item (one work item per element).</param>
    /// <param name="report">What the launch did.</param>
    /// <param name="cancellation">Ends the launch with -EINTR.</param>
    /// <returns>0; -EINVAL for bad arguments (nothing runs); or the error of a fault that could not be served (-EFAULT,
    /// -EPERM, -EBUSY after the fault timeout, …), naming the address and the reason. After an error,
    /// <paramref name="output"/> holds what the completed work items wrote.</returns>
    public KResult LaunchRead(ulong srcVa, Span<ulong> output, out LaunchReport report, CancellationToken cancellation = default)
    {
        report = default;
        KResult v = CheckArray(nameof(srcVa), srcVa, output.Length);
        if (!v.IsOk || output.IsEmpty)
        {
            return v;
        }

        (ulong page, long pages) = PagesOf(srcVa, output.Length);
        return Launch(DeviceOp.Read, output.Length, page, pages, 0, 0, output, copyIn: false, default, srcVa, 0, 0, 0, out report, cancellation);
    }

    /// <summary>Launches <see cref="MirrorKernels.WriteKernel"/>: the 64-bit element at <paramref name="dstVa"/> + 8 i =
    /// <c>input[i]</c>, written in place through the device page table.</summary>
    /// <param name="dstVa">The mirrored array's virtual address, 8-byte aligned.</param>
    /// <param name="input">One element per work item.</param>
    /// <param name="report">What the launch did.</param>
    /// <param name="cancellation">Ends the launch with -EINTR.</param>
    /// <returns>As <see cref="LaunchRead"/>; after an error the completed work items' stores are in memory.</returns>
    public KResult LaunchWrite(ulong dstVa, ReadOnlySpan<ulong> input, out LaunchReport report, CancellationToken cancellation = default)
    {
        report = default;
        KResult v = CheckArray(nameof(dstVa), dstVa, input.Length);
        if (!v.IsOk || input.IsEmpty)
        {
            return v;
        }

        (ulong page, long pages) = PagesOf(dstVa, input.Length);
        return Launch(DeviceOp.Write, input.Length, page, pages, 0, 0, AsWritable(input), copyIn: true, default, 0, dstVa, 0, 0, out report, cancellation);
    }

    /// <summary>Launches <see cref="MirrorKernels.AtomicAddKernel"/>: for each i, atomically adds <paramref name="value"/> to
    /// element <c>indices[i]</c> of the array of <paramref name="elements"/> at <paramref name="dstVa"/>.</summary>
    /// <param name="dstVa">The mirrored array's virtual address, 8-byte aligned.</param>
    /// <param name="elements">Elements of the array; every index must lie in [0, elements).</param>
    /// <param name="indices">One element index per work item (repeats add up).</param>
    /// <param name="value">The addend.</param>
    /// <param name="report">What the launch did.</param>
    /// <param name="cancellation">Ends the launch with -EINTR.</param>
    /// <returns>As <see cref="LaunchRead"/>.</returns>
    public KResult LaunchAtomicAdd(ulong dstVa, long elements, ReadOnlySpan<int> indices, ulong value, out LaunchReport report, CancellationToken cancellation = default)
    {
        report = default;
        KResult v = CheckIndexed(nameof(dstVa), dstVa, elements, indices, indices.Length);
        if (!v.IsOk || indices.IsEmpty)
        {
            return v;
        }

        (ulong page, long pages) = PagesOf(dstVa, elements);
        return Launch(DeviceOp.AtomicAdd, indices.Length, page, pages, 0, 0, default, copyIn: false, indices, 0, dstVa, elements, value, out report, cancellation);
    }

    /// <summary>Launches <see cref="MirrorKernels.GatherKernel"/>: <c>output[i]</c> = element <c>indices[i]</c> of the array
    /// of <paramref name="elements"/> at <paramref name="srcVa"/>.</summary>
    /// <param name="srcVa">The mirrored array's virtual address, 8-byte aligned.</param>
    /// <param name="elements">Elements of the array; every index must lie in [0, elements).</param>
    /// <param name="indices">One element index per work item.</param>
    /// <param name="output">Receives one element per work item; as long as <paramref name="indices"/>.</param>
    /// <param name="report">What the launch did.</param>
    /// <param name="cancellation">Ends the launch with -EINTR.</param>
    /// <returns>As <see cref="LaunchRead"/>.</returns>
    public KResult LaunchGather(ulong srcVa, long elements, ReadOnlySpan<int> indices, Span<ulong> output, out LaunchReport report, CancellationToken cancellation = default)
    {
        report = default;
        KResult v = CheckIndexed(nameof(srcVa), srcVa, elements, indices, output.Length);
        if (!v.IsOk || indices.IsEmpty)
        {
            return v;
        }

        (ulong page, long pages) = PagesOf(srcVa, elements);
        return Launch(DeviceOp.Gather, indices.Length, page, pages, 0, 0, output, copyIn: false, indices, srcVa, 0, elements, 0, out report, cancellation);
    }

    /// <summary>Launches <see cref="MirrorKernels.ScatterKernel"/>: element <c>indices[i]</c> of the array of
    /// <paramref name="elements"/> at <paramref name="dstVa"/> = <c>input[i]</c>.</summary>
    /// <param name="dstVa">The mirrored array's virtual address, 8-byte aligned.</param>
    /// <param name="elements">Elements of the array; every index must lie in [0, elements).</param>
    /// <param name="indices">One element index per work item (a repeated index gets one of its values).</param>
    /// <param name="input">One element per work item; as long as <paramref name="indices"/>.</param>
    /// <param name="report">What the launch did.</param>
    /// <param name="cancellation">Ends the launch with -EINTR.</param>
    /// <returns>As <see cref="LaunchRead"/>.</returns>
    public KResult LaunchScatter(ulong dstVa, long elements, ReadOnlySpan<int> indices, ReadOnlySpan<ulong> input, out LaunchReport report, CancellationToken cancellation = default)
    {
        report = default;
        KResult v = CheckIndexed(nameof(dstVa), dstVa, elements, indices, input.Length);
        if (!v.IsOk || indices.IsEmpty)
        {
            return v;
        }

        (ulong page, long pages) = PagesOf(dstVa, elements);
        return Launch(DeviceOp.Scatter, indices.Length, page, pages, 0, 0, AsWritable(input), copyIn: true, indices, 0, dstVa, elements, 0, out report, cancellation);
    }

    /// <summary>Launches <see cref="MirrorKernels.StreamCopyKernel"/>: copies <paramref name="elements"/> 64-bit elements from
    /// <paramref name="srcVa"/> to <paramref name="dstVa"/>, both in place.</summary>
    /// <param name="srcVa">The source's virtual address, 8-byte aligned.</param>
    /// <param name="dstVa">The destination's virtual address, 8-byte aligned.</param>
    /// <param name="elements">Elements (work items), at most 2^31 - 1.</param>
    /// <param name="report">What the launch did.</param>
    /// <param name="cancellation">Ends the launch with -EINTR.</param>
    /// <returns>As <see cref="LaunchRead"/>. Overlapping arrays are copied element by element in no set order.</returns>
    public KResult LaunchCopy(ulong srcVa, ulong dstVa, long elements, out LaunchReport report, CancellationToken cancellation = default)
    {
        report = default;
        KResult v = CheckArray(nameof(srcVa), srcVa, elements);
        if (v.IsOk)
        {
            v = CheckArray(nameof(dstVa), dstVa, elements);
        }

        if (!v.IsOk || elements == 0)
        {
            return v;
        }

        (ulong srcPage, long srcPages) = PagesOf(srcVa, elements);
        (ulong dstPage, long dstPages) = PagesOf(dstVa, elements);
        return Launch(DeviceOp.StreamCopy, (int)elements, srcPage, srcPages, dstPage, dstPages, default, copyIn: false, default, srcVa, dstVa, 0, 0, out report, cancellation);
    }

    /// <summary>Checks an array of <paramref name="elements"/> 64-bit elements at <paramref name="va"/>: 8-byte aligned,
    /// inside the 48-bit space, at most 2^31 - 1 elements.</summary>
    private KResult CheckArray(string field, ulong va, long elements)
    {
        ThrowIfDisposed();
        if ((va & (DeviceGeometry.ElementBytes - 1)) != 0)
        {
            return KResult.Error(Errno.EINVAL, $"{Options.Name}: {field}=0x{va:X16} is not 8-byte aligned");
        }

        if (elements < 0 || elements > int.MaxValue)
        {
            return KResult.Error(Errno.EINVAL, $"{Options.Name}: elements={elements} must be in [0, 2^31 - 1] (one work item each)");
        }

        ulong bytes = (ulong)elements << DeviceGeometry.ElementShift;
        if (va >= PageGeometry.AddressSpaceSize || bytes > PageGeometry.AddressSpaceSize - va)
        {
            return KResult.Error(Errno.EINVAL, $"{Options.Name}: {field}=0x{va:X16} + 0x{bytes:X} bytes runs past the 48-bit address space");
        }

        return KResult.Ok;
    }

    /// <summary>Checks an indexed launch: the array, the buffer lengths, and every index in [0, elements).</summary>
    private KResult CheckIndexed(string field, ulong va, long elements, ReadOnlySpan<int> indices, int bufferLength)
    {
        KResult v = CheckArray(field, va, elements);
        if (!v.IsOk)
        {
            return v;
        }

        if (indices.Length != bufferLength)
        {
            return KResult.Error(Errno.EINVAL, $"{Options.Name}: indices.Length={indices.Length} must equal the data buffer's length {bufferLength}");
        }

        for (int i = 0; i < indices.Length; i++)
        {
            if ((uint)indices[i] >= (ulong)elements)
            {
                return KResult.Error(Errno.EINVAL, $"{Options.Name}: indices[{i}]={indices[i]} is outside [0, {elements})");
            }
        }

        return KResult.Ok;
    }

    private static Span<ulong> AsWritable(ReadOnlySpan<ulong> input) =>
        System.Runtime.InteropServices.MemoryMarshal.CreateSpan(ref System.Runtime.InteropServices.MemoryMarshal.GetReference(input), input.Length);

    /// <summary>Runs a validated launch: stages the buffers, runs the first pass, services faults and replays until every
    /// work item completed, copies an output back, and adds the launch's counters to the device's.</summary>
    private unsafe KResult Launch(
        DeviceOp op,
        int items,
        ulong page0,
        long pages0,
        ulong page1,
        long pages1,
        Span<ulong> data,
        bool copyIn,
        ReadOnlySpan<int> indices,
        ulong srcVa,
        ulong dstVa,
        long elements,
        ulong value,
        out LaunchReport report,
        CancellationToken cancellation)
    {
        LaunchContext ctx = RentContext();
        KResult r;
        long t0 = Stopwatch.GetTimestamp();
        Interlocked.Increment(ref _launchesRunning);
        try
        {
            fixed (ulong* d = data)
            fixed (int* ix = indices)
            {
                ctx.Begin(op, items, page0, pages0, page1, pages1);
                ctx.Data = _binding.Stage(d, data.Length, ctx.StageData, copyIn);
                ctx.Indices = _binding.Stage(ix, indices.Length, ctx.StageIndices, copyIn: true);
                ctx.SrcVa = srcVa;
                ctx.DstVa = dstVa;
                ctx.Elements = elements;
                ctx.Value = value;
                ctx.Count(DeviceEvent.Launches);
                ctx.Count(DeviceEvent.WorkItems, items);
                long deadline = Environment.TickCount64 + Options.LaunchTimeoutMs;
                r = RunPass(ctx, useList: false, items, deadline, cancellation);
                if (r.IsOk && ctx.Marked)
                {
                    r = _driver.Service(ctx, deadline, cancellation);
                }

                if (!copyIn && !data.IsEmpty)
                {
                    _binding.Unstage(d, data.Length, ctx.StageData);
                }

                ctx.CountPlacement();
            }
        }
        finally
        {
            Interlocked.Decrement(ref _launchesRunning);
        }

        if (!r.IsOk)
        {
            ctx.Count(DeviceEvent.LaunchErrors);
        }

        for (int e = 0; e < ctx.Stats.Length; e++)
        {
            Counters.Add((DeviceEvent)e, ctx.Stats[e]);
        }

        report = new LaunchReport(
            ctx[DeviceEvent.WorkItems],
            ctx[DeviceEvent.Passes],
            ctx[DeviceEvent.Replays],
            ctx[DeviceEvent.ItemsReplayed],
            ctx[DeviceEvent.FaultsAppended],
            ctx[DeviceEvent.FaultsDropped],
            ctx[DeviceEvent.FaultsDuplicate],
            ctx[DeviceEvent.FaultsAlreadyServiced],
            ctx[DeviceEvent.FaultsFlushed],
            ctx[DeviceEvent.ServiceEntries],
            ctx[DeviceEvent.Batches],
            ctx[DeviceEvent.Runs],
            ctx[DeviceEvent.PagesServiced],
            ctx[DeviceEvent.PagesMapped],
            ctx[DeviceEvent.HugeMapped],
            ctx[DeviceEvent.AccessesSystem],
            ctx[DeviceEvent.AccessesDevice],
            Stopwatch.GetElapsedTime(t0));
        ReturnContext(ctx);
        return r;
    }

    /// <summary>Runs the marked work items of the last pass again (a replay), after the driver serviced their faults.</summary>
    /// <param name="ctx">The launch.</param>
    /// <param name="deadline">The launch's deadline.</param>
    /// <param name="cancellation">Ends the launch.</param>
    /// <returns>0 or the error that ends the launch.</returns>
    internal KResult Replay(LaunchContext ctx, long deadline, CancellationToken cancellation)
    {
        int marked = ctx.TakeMarked(out bool useList);
        ctx.Count(DeviceEvent.Replays);
        ctx.Count(DeviceEvent.ItemsReplayed, marked);
        return marked == 0 ? KResult.Ok : RunPass(ctx, useList, marked, deadline, cancellation);
    }

    /// <summary>Waits until every blocking invalidation that was already waiting for the driver lock has had it, so that each
    /// gets the lock between two slices rather than after another one (a GPU's TLB shootdown preempts the next wave).
    /// Invalidations that start waiting later do not extend the wait, so a storm of them cannot stall the launch.
    /// Bounded by the launch's deadline.</summary>
    private void YieldToInvalidations(long deadline)
    {
        long waiting = Volatile.Read(ref _invalidationTickets);
        var spin = default(SpinWait);
        while (Volatile.Read(ref _invalidationsEntered) < waiting && Environment.TickCount64 < deadline)
        {
            spin.SpinOnce(sleep1Threshold: -1);
        }
    }

    /// <summary>
    /// One pass over <paramref name="count"/> work items (the launch's, or the replay list's), in slices of
    /// <see cref="DeviceOptions.SliceItems"/>: each slice takes the driver lock, brings the accelerator's view of the frames
    /// and of the device page table up to date, runs, and drops the lock, so an invalidation waits for at most one slice.
    /// Then reads the fault buffer's state: an index error ends the launch; faults mark the context for the driver.
    /// </summary>
    private KResult RunPass(LaunchContext ctx, bool useList, int count, long deadline, CancellationToken cancellation)
    {
        int slice = Options.SliceItems;
        ArrayView<int> list = useList ? ctx.ReplayList.View : ArrayView<int>.Empty;
        for (int start = 0; start < count; start += slice)
        {
            int n = Math.Min(slice, count - start);
            YieldToInvalidations(deadline);
            if (!DriverLock.TryEnter(MirrorDriver.Remaining(deadline), cancellation))
            {
                return cancellation.IsCancellationRequested
                    ? KResult.Error(Errno.EINTR, $"{Options.Name}: launch of {ctx.Op} cancelled")
                    : _driver.LockTimeout(ctx, "the driver lock");
            }

            long held = Stopwatch.GetTimestamp();
            try
            {
                ArrayView<ulong> frames = _binding.PrepareFrames(Mm.Memory);
                ArrayView<ulong> table = _binding.PrepareTable(Table);
                var faults = new FaultSink(ctx.Faults.View.SubView(0, ctx.FaultCapacity), ctx.State.View, ctx.Dedupe.View, ctx.Replay.View, ctx.Window0, ctx.Window1);
                var work = new WorkList(list, start, useList ? 1 : 0);
                var pass = new KernelPass(ctx.Op, table, frames, _binding.DeviceFrames, faults, work, ctx.Placement.View, ctx.Data, ctx.Indices, ctx.SrcVa, ctx.DstVa, ctx.Elements, ctx.Value);
                _binding.Run(pass, n);
                if (_binding.CountsAccesses)
                {
                    _binding.TakeAccesses(out long system, out long device);
                    ctx.Count(DeviceEvent.AccessesSystem, system);
                    ctx.Count(DeviceEvent.AccessesDevice, device);
                }

                ctx.Count(DeviceEvent.Slices);
            }
            finally
            {
                DriverLock.Exit();
                SliceDuration.Record(Stopwatch.GetTimestamp() - held);
            }
        }

        ctx.Count(DeviceEvent.Passes);
        ctx.State.Download(0, FaultBufferState.Length);
        Span<int> state = ctx.State.Host;
        if (state[FaultBufferState.ErrorItem] != 0)
        {
            return KResult.Error(Errno.EINVAL, $"{Options.Name}: work item {state[FaultBufferState.ErrorItem] - 1} of {ctx.Op}: index {state[FaultBufferState.ErrorValue]} is outside [0, {ctx.Elements})");
        }

        int attempted = state[FaultBufferState.Count];
        if (attempted > 0)
        {
            int appended = Math.Min(attempted, ctx.FaultCapacity);
            ctx.Count(DeviceEvent.FaultsAppended, appended);
            ctx.Count(DeviceEvent.FaultsDropped, state[FaultBufferState.Dropped]);
            ctx.Faults.Download(0, appended);
            ctx.Replay.Download(0, ctx.ReplayWords);
            ctx.Marked = true;
        }

        return KResult.Ok;
    }
}
