using System.Diagnostics;
using MirrorEmu.Hmm;
using MirrorEmu.Kernels;
using MirrorEmu.Mm;
using MirrorEmu.Notifier;

namespace MirrorEmu.Device;

/// <summary>
/// The device's fault servicing, after NVIDIA UVM's replayable-fault path and lib/test_hmm.c's dmirror
/// (kernel-open/nvidia-uvm/uvm_gpu_replayable_faults.c; dmirror_fault): fetch the fault buffer, sort and deduplicate it, take batches of
/// <see cref="DeviceOptions.FaultBatchSize"/>, merge each batch's pages into runs of consecutive pages inside one
/// 2 MiB block, service each run with one driver loop (read_begin → hmm_range_fault → driver lock → read_retry →
/// fill the device page table), and replay the faulted work items when the <see cref="ReplayPolicy"/> says.
/// </summary>
/// <remarks>
/// <para>One deliberate difference from a GPU: a pass's entries are sorted as a whole before they are cut into
/// batches. A GPU's fault buffer fills in the order its warps faulted; here that order is an accident of thread
/// scheduling, and sorting first makes every counter the same on every launcher (UVM sorts within a batch).</para>
/// <para>Locks: <see cref="Service"/> runs without the driver lock and takes it per run (to read_retry and fill)
/// and per replay slice; hmm_range_fault runs under the mmap read lock (regular VMAs) or takes it itself
/// (hmm_range_fault_unlocked, userfaultfd VMAs). Code under the driver lock touches only the device page table.</para>
/// </remarks>
internal sealed class MirrorDriver
{
    private readonly MirrorDevice _device;
    private readonly DeviceFaultOrder _order = default;

    /// <summary>Creates the driver of <paramref name="device"/>.</summary>
    /// <param name="device">The device.</param>
    public MirrorDriver(MirrorDevice device) => _device = device;

    private DeviceOptions Options => _device.Options;

    /// <summary>Services the faults of the pass that just ran on <paramref name="ctx"/>, replaying per the policy, until
    /// every work item completed or something failed.</summary>
    /// <param name="ctx">The launch (its last pass marked items).</param>
    /// <param name="deadline">The launch's deadline (Environment.TickCount64).</param>
    /// <param name="cancellation">Ends the launch with -EINTR.</param>
    /// <returns>0, or the error that ends the launch, naming the address and the reason.</returns>
    public KResult Service(LaunchContext ctx, long deadline, CancellationToken cancellation)
    {
        ctx.Count(DeviceEvent.ServiceEntries);
        Fetch(ctx);
        while (true)
        {
            if (cancellation.IsCancellationRequested)
            {
                return KResult.Error(Errno.EINTR, $"{Options.Name}: launch of {ctx.Op} cancelled while servicing faults");
            }

            if (Environment.TickCount64 >= deadline)
            {
                return KResult.Error(Errno.EBUSY, $"{Options.Name}: launch of {ctx.Op} did not complete within {Options.LaunchTimeoutMs} ms (the pages kept changing under it)");
            }

            if (ctx.PendingStart == ctx.PendingEnd)
            {
                if (!ctx.Marked)
                {
                    return KResult.Ok;
                }

                KResult replayed = ReplayAndFetch(ctx, deadline, cancellation);
                if (!replayed.IsOk)
                {
                    return replayed;
                }

                continue;
            }

            int batchEnd = (int)Math.Min(ctx.PendingEnd, (long)ctx.PendingStart + Options.FaultBatchSize);
            DeviceFault[] batch = ctx.Pending;
            int batchStart = ctx.PendingStart;
            ctx.PendingStart = batchEnd;
            ctx.Count(DeviceEvent.Batches);
            KResult r = ServiceBatch(ctx, batch, batchStart, batchEnd, deadline, cancellation);
            if (!r.IsOk)
            {
                return r;
            }

            switch (Options.ReplayPolicy)
            {
                case ReplayPolicy.Batch:
                    r = ReplayAndFetch(ctx, deadline, cancellation);
                    break;
                case ReplayPolicy.BatchFlush:
                    ctx.Count(DeviceEvent.FaultsFlushed, ctx.PendingEnd - ctx.PendingStart);
                    ctx.PendingStart = ctx.PendingEnd = 0;
                    r = ReplayAndFetch(ctx, deadline, cancellation);
                    break;
                default:
                    break; // Once: replay when the buffer is drained; Block: replayed per block inside the batch
            }

            if (!r.IsOk)
            {
                return r;
            }
        }
    }

    /// <summary>Services entries [start, end) of <paramref name="batch"/> (sorted): skips pages already mapped as needed,
    /// merges the rest into runs of consecutive pages inside one 2 MiB block, and services each run; under
    /// <see cref="ReplayPolicy.Block"/>, replays after each block.</summary>
    private KResult ServiceBatch(LaunchContext ctx, DeviceFault[] batch, int start, int end, long deadline, CancellationToken cancellation)
    {
        // A fetch during a Block replay rewrites the pending array: copy the batch's entries out of it first.
        Span<DeviceFault> entries = batch.AsSpan(start, end - start);
        if (ctx.Batch.Length < entries.Length)
        {
            ctx.Batch = new DeviceFault[entries.Length];
        }

        DeviceFault[] own = ctx.Batch;
        entries.CopyTo(own);
        int n = entries.Length;

        // Drop the pages already mapped as needed (an earlier run, a huge leaf), under the driver lock.
        int kept = 0;
        DevicePageTable table = _device.Table;
        if (!_device.DriverLock.TryEnter(Remaining(deadline), cancellation))
        {
            return LockTimeout(ctx, "the driver lock");
        }

        try
        {
            for (int i = 0; i < n; i++)
            {
                DeviceFault f = own[i];
                if (i + 1 < n && own[i + 1].Page == f.Page)
                {
                    continue; // the same page read and written: the write entry (sorted after) serves both
                }

                DevicePte pte = table.Lookup(f.Page << DeviceGeometry.PageShift);
                if (pte.Allows(f.Access))
                {
                    ctx.Count(DeviceEvent.FaultsAlreadyServiced);
                    continue;
                }

                own[kept++] = f;
            }
        }
        finally
        {
            _device.DriverLock.Exit();
        }

        int i0 = 0;
        while (i0 < kept)
        {
            ulong block = own[i0].Page >> DeviceGeometry.PmdOrder;
            int blockEnd = i0;
            while (blockEnd < kept && own[blockEnd].Page >> DeviceGeometry.PmdOrder == block)
            {
                blockEnd++;
            }

            // Runs of consecutive pages inside this block.
            int r0 = i0;
            while (r0 < blockEnd)
            {
                int r1 = r0 + 1;
                while (r1 < blockEnd && own[r1].Page == own[r1 - 1].Page + 1)
                {
                    r1++;
                }

                KResult r = ServiceRun(ctx, own.AsSpan(r0, r1 - r0), cancellation);
                if (!r.IsOk)
                {
                    return r;
                }

                r0 = r1;
            }

            i0 = blockEnd;
            if (Options.ReplayPolicy == ReplayPolicy.Block)
            {
                KResult r = ReplayAndFetch(ctx, deadline, cancellation);
                if (!r.IsOk)
                {
                    return r;
                }
            }
        }

        return KResult.Ok;
    }

    /// <summary>Services one run: a range over its pages with a per-page request (REQ_FAULT, plus REQ_WRITE for writes),
    /// through <see cref="HmmDriverLoop"/> (regular VMAs) or the unlocked loop (a userfaultfd VMA in the run). When a run
    /// of several pages fails for a reason a page carries (-EFAULT, -EPERM), its pages are faulted one by one to name the
    /// page and the work item in the error.</summary>
    private KResult ServiceRun(LaunchContext ctx, ReadOnlySpan<DeviceFault> run, CancellationToken cancellation)
    {
        ctx.Count(DeviceEvent.Runs);
        ctx.Count(DeviceEvent.PagesServiced, run.Length);
        KResult r = FaultRun(ctx, run, cancellation);
        if (r.IsOk)
        {
            return r;
        }

        int at = 0;
        if (run.Length > 1 && (r.Code == -Errno.EFAULT || r.Code == -Errno.EPERM))
        {
            for (; at < run.Length; at++)
            {
                KResult single = FaultRun(ctx, run.Slice(at, 1), cancellation);
                if (!single.IsOk)
                {
                    r = single;
                    break;
                }
            }

            at = Math.Min(at, run.Length - 1);
        }

        DeviceFault failed = run[at];
        return KResult.Error(-r.Code, $"{Options.Name}: device fault at 0x{failed.Page << DeviceGeometry.PageShift:X16} ({failed.Access} by work item {failed.WorkItem}) cannot be served: {r.Message}");
    }

    /// <summary>One driver loop over <paramref name="run"/>'s pages, adding hmm_range_fault's statistics to the launch's.</summary>
    private KResult FaultRun(LaunchContext ctx, ReadOnlySpan<DeviceFault> run, CancellationToken cancellation)
    {
        ulong start = run[0].Page << DeviceGeometry.PageShift;
        ulong end = (run[^1].Page + 1) << DeviceGeometry.PageShift;
        var range = new HmmRange(_device.Mm, _device.Notifier, start, end)
        {
            DefaultFlags = 0,
            PfnFlagsMask = HmmPfn.ReqFault | HmmPfn.ReqWrite,
            UffdPolicy = Options.UffdPolicy,
            Extent = Options.FaultExtent,
            DevPrivateOwner = _device,
        };
        var requests = new ulong[run.Length];
        for (int i = 0; i < run.Length; i++)
        {
            requests[i] = HmmPfn.ReqFault | (run[i].NeedsWrite ? HmmPfn.ReqWrite : 0);
        }

        range.Requests = requests; // restored before every retry: the outputs of a call that returned -EBUSY are not requests

        Action<HmmRange> fill = ctx.Fill ??= filled => Fill(ctx, filled);
        if (HasUserfault(start, end, cancellation, out bool userfault) != 0)
        {
            return KResult.Error(Errno.EINTR, $"{Options.Name}: launch cancelled while its fault at 0x{start:X16} waited for the mmap lock");
        }

        KResult r;
        if (userfault)
        {
            ctx.Count(DeviceEvent.RunsUnlocked);
            r = HmmDriverLoop.RunUnlocked(range, _device.DriverLock, Options.FaultTimeoutMs, fill, cancellation);
        }
        else
        {
            r = HmmDriverLoop.Run(range, _device.DriverLock, Options.FaultTimeoutMs, fill, cancellation);
        }

        HmmFaultStats s = range.Stats;
        ctx.Count(DeviceEvent.HmmCalls, s.Calls);
        ctx.Count(DeviceEvent.HmmWalks, s.Walks);
        ctx.Count(DeviceEvent.HmmPagesFaulted, s.PagesFaulted);
        ctx.Count(DeviceEvent.HmmRoundTrips, s.RoundTrips);
        ctx.Count(DeviceEvent.HmmEbusyRestarts, s.EbusyRestarts);
        ctx.Count(DeviceEvent.HmmEbusyReturns, s.EbusyReturns);
        ctx.Count(DeviceEvent.HmmLockDrops, s.LockDrops);
        return r;
    }

    /// <summary>dmirror_do_fault: writes the range's valid outputs into the device page table (a device pfn of the
    /// device's own memory as a device frame). Called under the driver
    /// lock once read_retry said the outputs are current.</summary>
    private void Fill(LaunchContext ctx, HmmRange range)
    {
        Debug.Assert(_device.DriverLock.IsHeldByCurrentThread, "the device page table changes only under the driver lock");
        DevicePageTable table = _device.Table;
        for (int i = 0; i < range.PageCount; i++)
        {
            var p = new HmmPfn(range.HmmPfns[i]);
            if (!p.IsValid || p.IsError)
            {
                continue; // a page this run did not request
            }

            ulong va = range.Start + ((ulong)i << PageGeometry.PageShift);
            if (DevicePagemap.IsDevicePfn(p.Pfn))
            {
                // One of this device's own pages (hmm_range_fault reports only the caller's): map its device frame.
                Debug.Assert(_device.Pagemap.Contains(p.Pfn), "hmm_range_fault reported another owner's device page");
                table.Map(va, DevicePte.DeviceFrame(DevicePagemap.ToFrame(p.Pfn), p.IsWritable));
                ctx.Count(DeviceEvent.PagesMapped);
                ctx.Count(DeviceEvent.DevicePagesMapped);
                continue;
            }

            if (Options.MapHuge && p.Order == PageGeometry.PmdOrder)
            {
                ulong pageInPmd = (va >> PageGeometry.PageShift) & (ulong)PageGeometry.LevelMask;
                ulong basePfn = p.Pfn - pageInPmd;
                if ((basePfn & (ulong)PageGeometry.LevelMask) == 0)
                {
                    table.MapHuge(va & ~PageGeometry.PmdMask, DevicePte.SystemFrame(basePfn, p.IsWritable, PageGeometry.PmdOrder));
                    ctx.Count(DeviceEvent.HugeMapped);
                    i += (int)((ulong)PageGeometry.LevelMask - pageInPmd); // the rest of this PMD is mapped
                    continue;
                }
            }

            table.Map(va, DevicePte.SystemFrame(p.Pfn, p.IsWritable));
            ctx.Count(DeviceEvent.PagesMapped);
        }
    }

    /// <summary>Replays the marked work items, then fetches the faults the replay raised into the pending entries.</summary>
    private KResult ReplayAndFetch(LaunchContext ctx, long deadline, CancellationToken cancellation)
    {
        KResult r = _device.Replay(ctx, deadline, cancellation);
        if (r.IsOk)
        {
            Fetch(ctx);
        }

        return r;
    }

    /// <summary>Takes the entries of the last pass out of the fault buffer, sorts them, and merges them into the pending
    /// entries (dropping repeats, counted as duplicates); resets the buffer's state and the dedupe bitmap.</summary>
    private void Fetch(LaunchContext ctx)
    {
        Span<int> state = ctx.State.Host;
        int appended = Math.Min(state[FaultBufferState.Count], ctx.FaultCapacity);
        if (appended == 0)
        {
            return;
        }

        Span<DeviceFault> fetched = ctx.Faults.Host[..appended];
        fetched.Sort(_order);
        ctx.State.Clear(0, FaultBufferState.Length);
        ctx.Dedupe.Clear(0, ctx.DedupeWords);

        int pending = ctx.PendingEnd - ctx.PendingStart;
        if (ctx.Merge.Length < pending + appended)
        {
            ctx.Merge = new DeviceFault[Math.Max(pending + appended, ctx.Merge.Length * 2)];
        }

        DeviceFault[] into = ctx.Merge;
        DeviceFault[] old = ctx.Pending;
        int a = ctx.PendingStart;
        int b = 0;
        int n = 0;
        ulong lastKey = ulong.MaxValue;
        while (a < ctx.PendingEnd || b < appended)
        {
            DeviceFault next;
            if (b == appended || (a < ctx.PendingEnd && old[a].SortKey <= fetched[b].SortKey))
            {
                next = old[a++];
            }
            else
            {
                next = fetched[b++];
            }

            if (next.SortKey == lastKey)
            {
                ctx.Count(DeviceEvent.FaultsDuplicate);
                continue;
            }

            lastKey = next.SortKey;
            into[n++] = next;
        }

        ctx.Merge = old;
        ctx.Pending = into;
        ctx.PendingStart = 0;
        ctx.PendingEnd = n;
    }

    /// <summary>Sets <paramref name="userfault"/> when a VMA registered with userfaultfd overlaps [start, end). Takes the mmap
    /// read lock, killable: 0, or -EINTR when <paramref name="cancellation"/> fires while a writer holds it.</summary>
    private int HasUserfault(ulong start, ulong end, CancellationToken cancellation, out bool userfault)
    {
        userfault = false;
        AddressSpace mm = _device.Mm;
        if (mm.MmapLock.ReadLockKillable(cancellation) != 0)
        {
            return -Errno.EINTR; // the launch was cancelled while a writer held the lock
        }

        try
        {
            for (Vma? vma = mm.FindVma(start); vma is not null && vma.Start < end; vma = mm.FindVma(vma.End))
            {
                if (vma.Userfault is not null)
                {
                    userfault = true;
                    break;
                }
            }

            return 0;
        }
        finally
        {
            mm.MmapLock.ReadUnlock();
        }
    }

    /// <summary>-EBUSY: the launch waited for <paramref name="what"/> until its deadline.</summary>
    internal KResult LockTimeout(LaunchContext ctx, string what) =>
        KResult.Error(Errno.EBUSY, $"{Options.Name}: launch of {ctx.Op} waited for {what} until its {Options.LaunchTimeoutMs} ms ran out");

    /// <summary>Milliseconds left until <paramref name="deadline"/>, at least 0.</summary>
    internal static int Remaining(long deadline) => (int)Math.Clamp(deadline - Environment.TickCount64, 0, int.MaxValue);

    /// <summary>Orders fault entries by page, then reads before writes (no allocation).</summary>
    private readonly struct DeviceFaultOrder : IComparer<DeviceFault>
    {
        /// <inheritdoc/>
        public int Compare(DeviceFault x, DeviceFault y) => x.SortKey.CompareTo(y.SortKey);
    }
}
