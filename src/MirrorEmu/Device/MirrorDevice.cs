using MirrorEmu.Kernels;
using MirrorEmu.Mm;
using MirrorEmu.Notifier;
using MirrorEmu.Telemetry;

namespace MirrorEmu.Device;

/// <summary>
/// An emulated GPU that mirrors one address space's CPU page table the way lib/test_hmm.c's dmirror and NVIDIA UVM do
/// (docs/design.md, "The device model"): its kernels reach the CPU's frames in place through a device page table that the
/// driver fills from hmm_range_fault on device faults, and that its interval-notifier callback clears on every
/// invalidation. Several devices may mirror one address space; a device on a fork child mirrors the child.
/// </summary>
/// <remarks>
/// <para>Lock order (src/MirrorEmu/Base/LockOrder.cs): the device's <see cref="DriverLock"/> (rank DriverLock) is
/// taken after the mmap lock and before the launcher's queue (rank DeviceQueue). A pass holds the driver lock for one
/// slice at a time; the driver takes it to read_retry and fill; the invalidate callback takes it to clear. Under it
/// nothing takes the mmap lock or faults memory.</para>
/// <para>Invariant 1: the invalidate callback returns only after it cleared the range's entries under the driver lock,
/// and a pass runs only under that lock, so after it returns no work item can reach the old frames.</para>
/// <para>Device memory: a pool of its own (<see cref="MemoryPool"/>, registered as a device-private
/// <see cref="DevicePagemap"/>), where migrations put pages; the CPU page table then holds device-private entries, a CPU
/// access calls the device's migrate_to_ram, and the device page table maps the device frames, which kernels reach at
/// device-memory speed.</para>
/// <para>Split by concern: <c>MirrorDevice.Launch.cs</c> (kernel launches and passes), <c>MirrorDevice.Dmirror.cs</c>
/// (Read, Write, Snapshot), <c>MirrorDevice.Migrate.cs</c> (migrations, device-exclusive access, eviction),
/// <c>MirrorDevice.Invalidate.cs</c> (the notifier callback).</para>
/// </remarks>
public sealed partial class MirrorDevice : IDisposable
{
    private readonly LauncherBinding _binding;
    private readonly MirrorDriver _driver;
    private LaunchContext? _spareContext; // one context kept for the next launch (Interlocked.Exchange)
    private int _launchesRunning;
    private long _invalidationTickets;  // blocking invalidations that started waiting for the driver lock
    private long _invalidationsEntered; // of those, the ones that got it (or gave up); a pass lets the earlier ones in first
    private long _invalidationEpoch;    // invalidations that cleared entries (not the device's own migrations); under DriverLock
    private bool _disposed;

    /// <summary>Creates a device mirroring <paramref name="mm"/>, running its kernels on <paramref name="launcher"/>, and
    /// subscribes it to the whole address space (dmirror's mmu_interval_notifier_insert over [0, 2^48)).</summary>
    /// <param name="mm">The address space to mirror.</param>
    /// <param name="launcher">The launcher (it may serve other devices too; the device does not own it).</param>
    /// <param name="options">How to run and service launches; defaults when null.</param>
    /// <exception cref="NotSupportedException">The launcher cannot address <paramref name="mm"/>'s frames in place; the
    /// message says why.</exception>
    /// <exception cref="ArgumentOutOfRangeException">An option out of range, named.</exception>
    public MirrorDevice(AddressSpace mm, DeviceLauncher launcher, DeviceOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(mm);
        ArgumentNullException.ThrowIfNull(launcher);
        Options = options ?? new DeviceOptions();
        Options.Validate();
        Mm = mm;
        Launcher = launcher;
        MemoryPool = new PhysicalMemory(Options.DeviceMemoryBytes + PageGeometry.PageSize); // and the pool's own zero page
        Pagemap = new DevicePagemap(new PagemapOps(this), MemoryPool);
        try
        {
            _binding = launcher.Bind(mm.Memory, MemoryPool);
        }
        catch
        {
            Pagemap.Dispose();
            MemoryPool.Dispose();
            throw;
        }

        Table = new DevicePageTable();
        DriverLock = new DriverLock(Options.Name);
        _driver = new MirrorDriver(this);
        Notifier = new MmuIntervalNotifier(new Subscription(this));
        KResult rc = mm.Notifiers.Insert(Notifier, 0, PageGeometry.AddressSpaceSize);
        if (!rc.IsOk)
        {
            _binding.Dispose();
            Table.Dispose();
            Pagemap.Dispose();
            MemoryPool.Dispose();
            throw new InvalidOperationException($"{Options.Name}: {rc}");
        }
    }

    /// <summary>The mirrored address space.</summary>
    public AddressSpace Mm { get; }

    /// <summary>The launcher.</summary>
    public DeviceLauncher Launcher { get; }

    /// <summary>The options.</summary>
    public DeviceOptions Options { get; }

    /// <summary>The device's interval subscription over the whole address space.</summary>
    public MmuIntervalNotifier Notifier { get; }

    /// <summary>The driver lock (dmirror's mutex): guards <see cref="Table"/>; held by each slice of a pass.</summary>
    public DriverLock DriverLock { get; }

    /// <summary>The device's own memory: its frame allocator, limit and reference counts (dmirror's pool of device pages;
    /// <see cref="MmEvent.FramesAllocated"/> and <see cref="MmEvent.FramesFreed"/> of its counters are dmirror's
    /// calloc and cfree).</summary>
    public PhysicalMemory MemoryPool { get; }

    /// <summary>The device-private pagemap of <see cref="MemoryPool"/>: the device pfns that name its pages in CPU page tables.</summary>
    public DevicePagemap Pagemap { get; }

    /// <summary>Device pages in use (allocated and not yet freed).</summary>
    public long DevicePagesInUse => MemoryPool.FramesInUse;

    /// <summary>The device page table. Read it under <see cref="DriverLock"/> (or use <see cref="Lookup"/>).</summary>
    public DevicePageTable Table { get; }

    /// <summary>The device's counters, summed over every launch and invalidation.</summary>
    public CounterSet<DeviceEvent> Counters { get; } = new();

    /// <summary>How long the invalidate callback took, every call (Stopwatch).</summary>
    public LatencyRecorder InvalidationLatency { get; } = new();

    /// <summary>How long the invalidate callback took when a launch was running (the wait for the slice in flight included).</summary>
    public LatencyRecorder InvalidationLatencyDuringLaunch { get; } = new();

    /// <summary>How long each slice held the driver lock (Stopwatch): the most a blocking invalidation waits for a slice.</summary>
    public LatencyRecorder SliceDuration { get; } = new();

    /// <summary>Launches running now.</summary>
    public int LaunchesRunning => Volatile.Read(ref _launchesRunning);

    /// <summary>The entry the device page table holds for <paramref name="va"/>'s page (the page's own entry inside a huge
    /// leaf), taken under the driver lock.</summary>
    /// <param name="va">A virtual address below 2^48.</param>
    /// <exception cref="ArgumentOutOfRangeException">The address is beyond 48 bits.</exception>
    public DevicePte Lookup(ulong va)
    {
        if (va >= PageGeometry.AddressSpaceSize)
        {
            throw new ArgumentOutOfRangeException(nameof(va), $"va=0x{va:X16} is beyond the 48-bit address space");
        }

        using (DriverLock.Hold())
        {
            return Table.Lookup(va);
        }
    }

    /// <summary>Unsubscribes from the address space (waiting for a running invalidation), moves every page in its memory
    /// back to system memory (dmirror_fops_release evicting its chunks), and frees the device's memory.</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        Mm.Notifiers.Remove(Notifier, Options.InvalidateTimeoutMs);
        Evict();
        Pagemap.Dispose();
        using (DriverLock.Hold())
        {
            Interlocked.Exchange(ref _spareContext, null)?.Dispose();
            _binding.Dispose();
            Table.Dispose();
        }

        MemoryPool.Dispose();
    }

    /// <summary>A launch context: the spare one if free, else a new one.</summary>
    private LaunchContext RentContext() =>
        Interlocked.Exchange(ref _spareContext, null) ?? new LaunchContext(_binding, Options.FaultBufferEntries);

    /// <summary>Keeps <paramref name="ctx"/> as the spare one, or disposes it when there is one already.</summary>
    private void ReturnContext(LaunchContext ctx)
    {
        if (Interlocked.CompareExchange(ref _spareContext, ctx, null) is not null)
        {
            ctx.Dispose();
        }
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed, this);

    /// <summary>The device's dev_pagemap_ops (a separate object, so migrate_to_ram is not part of the device's public surface).</summary>
    private sealed class PagemapOps(MirrorDevice device) : IDevicePagemapOwner
    {
        /// <inheritdoc/>
        public object Owner => device;

        /// <inheritdoc/>
        public VmFault MigrateToRam(Vma vma, ulong address, Pte entry) => device.MigrateToRam(vma, address, entry);
    }

    /// <summary>The device's interval-notifier ops (a separate object, so the callback is not part of the device's public surface).</summary>
    private sealed class Subscription(MirrorDevice device) : IMmuIntervalNotifierOps
    {
        /// <inheritdoc/>
        public bool Invalidate(MmuIntervalNotifier subscription, in NotifierRange range, ulong curSeq) =>
            device.Invalidate(subscription, range, curSeq);
    }

    /// <summary>Pages covered by [<paramref name="va"/>, + <paramref name="elements"/> 64-bit elements), as a window.</summary>
    private static (ulong First, long Pages) PagesOf(ulong va, long elements)
    {
        ulong first = va >> DeviceGeometry.PageShift;
        ulong last = (va + ((ulong)elements << DeviceGeometry.ElementShift) - 1) >> DeviceGeometry.PageShift;
        return (first, (long)(last - first + 1));
    }
}
