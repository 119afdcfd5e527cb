using System.Runtime.InteropServices;
using MirrorEmu.Hmm;
using MirrorEmu.Kernels;
using MirrorEmu.Mm;
using MirrorEmu.Notifier;

namespace MirrorEmu.Device;

public sealed partial class MirrorDevice
{
    /// <summary>Pages per hmm_range_fault call of <see cref="Snapshot"/> (dmirror_snapshot's chunk).</summary>
    public const int SnapshotChunkPages = 64;

    /// <summary>
    /// HMM_DMIRROR_READ (dmirror_read): reads [Addr, + Npages pages) through the device
    /// (the read kernel, faulting as needed) into a bounce buffer, then copies it into <paramref name="buffer"/>.
    /// </summary>
    /// <param name="cmd">In: Addr, Npages. Out on success: Cpages (pages read) and Faults (times the driver was entered).</param>
    /// <param name="buffer">Receives Npages * 4096 bytes.</param>
    /// <param name="cancellation">Ends the read with -EINTR.</param>
    /// <returns>0; -EINVAL (Addr not page aligned, Npages 0, or the range overflowing the 48-bit space); -EFAULT
    /// (<paramref name="buffer"/> too small, or a page that cannot be read: PROT_NONE, no mapping, SIGBUS); -EBUSY (the
    /// range kept changing). On an error <paramref name="cmd"/> and <paramref name="buffer"/> are untouched.</returns>
    public KResult Read(ref DmirrorCmd cmd, Span<byte> buffer, CancellationToken cancellation = default)
    {
        KResult v = CheckCmd("HMM_DMIRROR_READ", cmd, buffer.Length);
        if (!v.IsOk)
        {
            return v;
        }

        var bounce = new ulong[cmd.Npages << DeviceGeometry.PageElementShift];
        KResult r = LaunchRead(cmd.Addr, bounce, out LaunchReport report, cancellation);
        if (!r.IsOk)
        {
            return r;
        }

        MemoryMarshal.AsBytes(bounce.AsSpan()).CopyTo(buffer);
        cmd.Cpages = cmd.Npages;
        cmd.Faults = (ulong)report.ServiceEntries;
        return KResult.Ok;
    }

    /// <summary>
    /// HMM_DMIRROR_WRITE (dmirror_write): writes <paramref name="buffer"/> to [Addr, + Npages pages) through the device (the
    /// write kernel, write-faulting as needed).
    /// </summary>
    /// <param name="cmd">In: Addr, Npages. Out on success: Cpages (pages written) and Faults.</param>
    /// <param name="buffer">Npages * 4096 bytes.</param>
    /// <param name="cancellation">Ends the write with -EINTR.</param>
    /// <returns>As <see cref="Read"/>, plus -EPERM for a range without write permission. An error that comes after
    /// some work items completed leaves their stores in memory (as the kernel's device would); <paramref name="cmd"/>
    /// is untouched.</returns>
    public KResult Write(ref DmirrorCmd cmd, ReadOnlySpan<byte> buffer, CancellationToken cancellation = default)
    {
        KResult v = CheckCmd("HMM_DMIRROR_WRITE", cmd, buffer.Length);
        if (!v.IsOk)
        {
            return v;
        }

        ReadOnlySpan<ulong> input = MemoryMarshal.Cast<byte, ulong>(buffer[..(int)(cmd.Npages << PageGeometry.PageShift)]);
        KResult r = LaunchWrite(cmd.Addr, input, out LaunchReport report, cancellation);
        if (!r.IsOk)
        {
            return r;
        }

        cmd.Cpages = cmd.Npages;
        cmd.Faults = (ulong)report.ServiceEntries;
        return KResult.Ok;
    }

    /// <summary>
    /// HMM_DMIRROR_SNAPSHOT (dmirror_snapshot): one permission byte per page of [Addr, + Npages
    /// pages) from hmm_range_fault without faulting (default_flags 0), in chunks of <see cref="SnapshotChunkPages"/> pages,
    /// each under a temporary interval notifier so that any invalidation restarts the chunk. The bytes are
    /// <see cref="SnapshotProt"/>'s. Never faults, never touches the device page table.
    /// </summary>
    /// <param name="cmd">In: Addr, Npages. Out on success: Cpages (pages snapshotted).</param>
    /// <param name="perms">Receives Npages bytes.</param>
    /// <param name="cancellation">Ends the snapshot with -EINTR between chunks.</param>
    /// <returns>0; -EINVAL, -EFAULT (<paramref name="perms"/> too small) as <see cref="Read"/>; -EBUSY when a chunk kept
    /// changing. On an error <paramref name="cmd"/> and <paramref name="perms"/> are untouched.</returns>
    public KResult Snapshot(ref DmirrorCmd cmd, Span<byte> perms, CancellationToken cancellation = default)
    {
        KResult v = CheckCmd("HMM_DMIRROR_SNAPSHOT", cmd, (long)perms.Length << PageGeometry.PageShift);
        if (!v.IsOk)
        {
            return v;
        }

        var bounce = new byte[cmd.Npages];
        ulong end = cmd.Addr + (cmd.Npages << PageGeometry.PageShift);
        for (ulong start = cmd.Addr; start < end; start += (ulong)SnapshotChunkPages << PageGeometry.PageShift)
        {
            if (cancellation.IsCancellationRequested)
            {
                return KResult.Error(Errno.EINTR, $"{Options.Name}: HMM_DMIRROR_SNAPSHOT cancelled at 0x{start:X16}");
            }

            ulong chunkEnd = Math.Min(end, start + ((ulong)SnapshotChunkPages << PageGeometry.PageShift));
            var ops = new SeqNotifierOps(); // "any invalidation invalidates the whole snapshot": set_seq only
            var notifier = new MmuIntervalNotifier(ops);
            KResult rc = Mm.Notifiers.Insert(notifier, start, chunkEnd - start);
            if (!rc.IsOk)
            {
                return KResult.Error(-rc.Code, $"{Options.Name}: HMM_DMIRROR_SNAPSHOT: {rc.Message}");
            }

            var range = new HmmRange(Mm, notifier, start, chunkEnd) { DefaultFlags = 0, PfnFlagsMask = 0, DevPrivateOwner = this };
            KResult r;
            try
            {
                r = HmmDriverLoop.Run(range, ops.DriverLock, Options.FaultTimeoutMs);
            }
            finally
            {
                Mm.Notifiers.Remove(notifier, Options.InvalidateTimeoutMs);
            }

            if (!r.IsOk)
            {
                return r;
            }

            int at = (int)((start - cmd.Addr) >> PageGeometry.PageShift);
            for (int i = 0; i < range.PageCount; i++)
            {
                bounce[at + i] = SnapshotProt.FromHmmPfn(range.HmmPfns[i]);
            }
        }

        bounce.CopyTo(perms);
        cmd.Cpages = cmd.Npages;
        return KResult.Ok;
    }

    /// <summary>
    /// mmap of the device file (dmirror_fops_mmap): a private VM_MIXEDMAP mapping of <paramref name="length"/> bytes whose
    /// pages are zeroed frames the driver inserts (vm_insert_page), so hmm_range_fault sees ordinary pages there (the
    /// hmm-tests <c>mixedmap</c> case).
    /// </summary>
    /// <param name="length">Bytes (rounded up to pages).</param>
    /// <param name="prot">PROT_* bits.</param>
    /// <param name="address">The mapping's address.</param>
    /// <returns>0, or mmap's errors; -ENOMEM when there is no frame for a page.</returns>
    public KResult Mmap(ulong length, Prot prot, out ulong address)
    {
        ThrowIfDisposed();
        return Mm.MmapDevicePages(length, prot, out address);
    }

    /// <summary>dmirror's ioctl checks: Addr page aligned, Npages above 0, the range inside the 48-bit space; then the
    /// caller's buffer large enough (the copy_to_user / copy_from_user that would fault).</summary>
    private KResult CheckCmd(string ioctl, in DmirrorCmd cmd, long bufferBytes)
    {
        ThrowIfDisposed();
        if (!PageGeometry.IsPageAligned(cmd.Addr))
        {
            return KResult.Error(Errno.EINVAL, $"{Options.Name}: {ioctl}: addr=0x{cmd.Addr:X16} is not page aligned");
        }

        if (cmd.Npages == 0)
        {
            return KResult.Error(Errno.EINVAL, $"{Options.Name}: {ioctl}: npages=0 (addr must be below addr + npages * 4096)");
        }

        if (cmd.Addr >= PageGeometry.AddressSpaceSize || cmd.Npages > (PageGeometry.AddressSpaceSize - cmd.Addr) >> PageGeometry.PageShift)
        {
            return KResult.Error(Errno.EINVAL, $"{Options.Name}: {ioctl}: addr=0x{cmd.Addr:X16} + npages=0x{cmd.Npages:X} pages overflows the 48-bit address space");
        }

        if ((ulong)bufferBytes < cmd.Npages << PageGeometry.PageShift)
        {
            return KResult.Error(Errno.EFAULT, $"{Options.Name}: {ioctl}: the buffer of {bufferBytes} bytes is smaller than npages=0x{cmd.Npages:X} pages (copy to user would fault)");
        }

        return KResult.Ok;
    }
}
