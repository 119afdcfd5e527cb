using System.Diagnostics;
using MirrorEmu.Mm;
using MirrorEmu.Telemetry;

namespace MirrorEmu.Uffd;

/// <summary>
/// A userfaultfd context (struct userfaultfd_ctx, fs/userfaultfd.c) on one address space: the API
/// handshake, registrations, the queue of page-fault and event messages that monitors read, and the
/// resolution ioctls (COPY, ZEROPAGE, CONTINUE, WRITEPROTECT, WAKE, MOVE) that fill pages and wake
/// the faulting threads. It is the <see cref="IUserfaultHook"/> of the VMAs registered with it.
/// </summary>
/// <remarks>
/// <para>Split by concern: <c>Userfaultfd.Fault.cs</c> (handle_userfault and the wait),
/// <c>.Read.cs</c> (messages and events), <c>.Resolve.cs</c> (the resolution ioctls).</para>
/// <para>Concurrency model:</para> <see cref="_lock"/> guards the pending and waiting lists, the
/// event queue and the waiter pool (readers sleep on a <see cref="HandOffSignal"/> that counts what is
/// queued, faulting threads on their waiter's own signal); it is never held while the mmap lock is
/// taken, and it is taken while the mmap read lock is held (fault path, resolutions), so the order
/// is mmap lock → context lock. Flags (<see cref="_released"/>, <see cref="_monitorGone"/>) are read
/// without it.
/// </remarks>
public sealed partial class Userfaultfd : IDisposable
{
    // Guards _pending, _waiting, _events and _pool. Readers sleep on _queued, not on this lock.
    private readonly object _lock = new();
    private readonly List<UffdWaiter> _pending = [];  // queued, not yet read (fault_pending_wqh)
    private readonly List<UffdWaiter> _waiting = [];  // read, not yet woken (fault_wqh)
    private readonly Queue<UffdMsg> _events = new();  // non-cooperative events (event_wqh)
    private readonly Stack<UffdWaiter> _pool = new();
    private readonly AddressSpace _mm;
    private UffdFeatures _features;
    private bool _apiDone;
    private volatile bool _released;
    private volatile bool _monitorGone;
    private int _monitors; // UffdMonitors attached now; guarded by _lock
    private int _faultTimeoutMs = 30_000;
    private readonly HandOffSpin _handOff = new();

    // Counts messages and events as they are queued (and closes): what a reader sleeps on.
    private readonly HandOffSignal _queued = new();
    private int _mmapChanging;

    /// <summary>Creates a context on <paramref name="mm"/> (userfaultfd(2)); call <see cref="Api"/> before anything else.</summary>
    /// <param name="mm">The address space whose faults it will see.</param>
    public Userfaultfd(AddressSpace mm)
    {
        _mm = mm;
    }

    /// <summary>The address space.</summary>
    public AddressSpace Mm => _mm;

    /// <summary>The features agreed in the handshake.</summary>
    public UffdFeatures Features => _features;

    /// <summary>Counters of this context and of the monitors that serve it.</summary>
    public CounterSet<UffdStat> Stats { get; } = new();

    /// <summary>
    /// How long a faulting thread waits for a resolution before its fault fails with SIGBUS, in milliseconds;
    /// default 30 s. The kernel waits for ever (a thread whose monitor never answers sleeps until it is killed);
    /// set <see cref="Timeout.Infinite"/> for that behaviour. The default makes a stuck or absent monitor an
    /// error instead of a hung test run: one of the README's documented differences from Linux.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">A value below -1.</exception>
    public int FaultTimeoutMs
    {
        get => _faultTimeoutMs;
        set => _faultTimeoutMs = value >= Timeout.Infinite ? value
            : throw new ArgumentOutOfRangeException(nameof(FaultTimeoutMs), value, $"FaultTimeoutMs={value} must be a number of milliseconds or Timeout.Infinite (-1)");
    }

    /// <summary>True after <see cref="Dispose"/> (userfaultfd_release).</summary>
    public bool IsReleased => _released;

    /// <summary>
    /// UFFDIO_API: the handshake. Must come first and only once.
    /// </summary>
    /// <param name="api">Must be <see cref="UffdApi.Version"/>.</param>
    /// <param name="requested">Features wanted.</param>
    /// <param name="supported">Every feature this emulator offers.</param>
    /// <returns>0; -EINVAL (wrong api, unknown features, second handshake).</returns>
    public KResult Api(ulong api, UffdFeatures requested, out UffdFeatures supported)
    {
        supported = UffdFeatures.Supported;
        if (api != UffdApi.Version)
        {
            return KResult.Error(Errno.EINVAL, $"UFFDIO_API: api=0x{api:X} is not UFFD_API 0x{UffdApi.Version:X}");
        }

        if ((requested & ~UffdFeatures.Supported) != 0)
        {
            return KResult.Error(Errno.EINVAL, $"UFFDIO_API: features=0x{(ulong)requested:X} has unsupported bits 0x{(ulong)(requested & ~UffdFeatures.Supported):X}");
        }

        if (_apiDone)
        {
            return KResult.Error(Errno.EINVAL, "UFFDIO_API: the handshake was already done");
        }

        _features = requested;
        _apiDone = true;
        return KResult.Ok;
    }

    /// <summary>
    /// UFFDIO_REGISTER: registers every VMA in [start, start + length) for <paramref name="mode"/>.
    /// </summary>
    /// <param name="start">Page-aligned start.</param>
    /// <param name="length">Page-aligned length &gt; 0.</param>
    /// <param name="mode">MISSING, WP and/or MINOR.</param>
    /// <param name="ioctls">The ioctls the range allows.</param>
    /// <returns>0; -EINVAL (no handshake, bad mode, unaligned, no VMA in the range, a VMA that cannot be
    /// registered this way); -EBUSY (a VMA registered with another context).</returns>
    public KResult Register(ulong start, ulong length, UffdRegisterMode mode, out UffdIoctls ioctls)
    {
        ioctls = UffdIoctls.None;
        KResult check = CheckUsable("UFFDIO_REGISTER", start, length);
        if (!check.IsOk)
        {
            return check;
        }

        if (mode == UffdRegisterMode.None || (mode & ~(UffdRegisterMode.Missing | UffdRegisterMode.WriteProtect | UffdRegisterMode.Minor)) != 0)
        {
            return KResult.Error(Errno.EINVAL, $"UFFDIO_REGISTER: mode=0x{(ulong)mode:X} is empty or has unknown bits");
        }

        ulong end = start + length;
        _mm.MmapLock.WriteLock();
        try
        {
            bool found = false;
            foreach (Vma vma in VmasIn(start, end))
            {
                found = true;
                string? why = CannotRegister(vma, mode);
                if (why is not null)
                {
                    return KResult.Error(Errno.EINVAL, $"UFFDIO_REGISTER: the VMA at 0x{vma.Start:X16} {why}");
                }

                if (vma.Userfault is not null && !ReferenceEquals(vma.Userfault, this))
                {
                    return KResult.Error(Errno.EBUSY, $"UFFDIO_REGISTER: the VMA at 0x{vma.Start:X16} is registered with another userfaultfd");
                }

            }

            if (!found)
            {
                return KResult.Error(Errno.EINVAL, $"UFFDIO_REGISTER: no mapping in [0x{start:X16}, 0x{end:X16})");
            }

            // userfaultfd_register_range: a VMA already registered here with every requested mode is left as it is (its
            // other modes stay); the others get exactly the requested modes.
            VmFlags wanted = ToVmFlags(mode);
            foreach (Vma vma in VmasIn(start, end))
            {
                if (ReferenceEquals(vma.Userfault, this) && (vma.Flags & wanted) == wanted)
                {
                    continue;
                }

                _mm.SetUserfaultLocked(Math.Max(start, vma.Start), Math.Min(end, vma.End), wanted, this);
            }

            // userfaultfd_register: UFFD_API_RANGE_IOCTLS, less WRITEPROTECT unless WP mode and CONTINUE unless MINOR mode.
            ioctls = UffdIoctls.Wake | UffdIoctls.Copy | UffdIoctls.ZeroPage | UffdIoctls.Move | UffdIoctls.Poison;
            if ((mode & UffdRegisterMode.WriteProtect) != 0)
            {
                ioctls |= UffdIoctls.WriteProtect;
            }

            if ((mode & UffdRegisterMode.Minor) != 0)
            {
                ioctls |= UffdIoctls.Continue;
            }

            return KResult.Ok;
        }
        finally
        {
            _mm.MmapLock.WriteUnlock();
        }
    }

    /// <summary>UFFDIO_UNREGISTER: drops this context's registration of [start, start + length) and wakes its waiters there.</summary>
    /// <param name="start">Page-aligned start.</param>
    /// <param name="length">Page-aligned length &gt; 0.</param>
    /// <returns>0; -EINVAL (unaligned, no VMA, a VMA registered with another context).</returns>
    public KResult Unregister(ulong start, ulong length)
    {
        KResult check = CheckUsable("UFFDIO_UNREGISTER", start, length);
        if (!check.IsOk)
        {
            return check;
        }

        ulong end = start + length;
        _mm.MmapLock.WriteLock();
        try
        {
            bool found = false;
            foreach (Vma vma in VmasIn(start, end))
            {
                found = true;
                if (vma.Userfault is not null && !ReferenceEquals(vma.Userfault, this))
                {
                    return KResult.Error(Errno.EINVAL, $"UFFDIO_UNREGISTER: the VMA at 0x{vma.Start:X16} is registered with another userfaultfd");
                }
            }

            if (!found)
            {
                return KResult.Error(Errno.EINVAL, $"UFFDIO_UNREGISTER: no mapping in [0x{start:X16}, 0x{end:X16})");
            }

            foreach ((ulong s, ulong e) in VmaRanges(start, end))
            {
                _mm.SetUserfaultLocked(s, e, VmFlags.None, null);
            }
        }
        finally
        {
            _mm.MmapLock.WriteUnlock();
        }

        WakeRange(start, end, UffdWaitOutcome.Resolved);
        return KResult.Ok;
    }

    /// <summary>
    /// userfaultfd_release (closing the descriptor): every registration of this context is dropped,
    /// then every waiter is woken so that its fault retries and completes as an ordinary fault.
    /// </summary>
    public void Dispose()
    {
        if (_released)
        {
            return;
        }

        _released = true;
        _mm.MmapLock.WriteLock();
        try
        {
            foreach ((ulong s, ulong e) in OwnRanges())
            {
                _mm.SetUserfaultLocked(s, e, VmFlags.None, null);
            }
        }
        finally
        {
            _mm.MmapLock.WriteUnlock();
        }

        WakeRange(0, ulong.MaxValue, UffdWaitOutcome.Resolved);
        _queued.Bump(); // readers see the close
    }

    /// <summary>A <see cref="UffdMonitor"/> starts serving this context: faults wait for it again.</summary>
    internal void AttachMonitor()
    {
        using (new RankedMonitor(_lock, LockRank.UserfaultfdContext))
        {
            _monitors++;
            _monitorGone = false;
        }
    }

    /// <summary>A <see cref="UffdMonitor"/> stopped (disposed, or its thread died). When it was the last one, every wait
    /// ends with an error and later faults answer SIGBUS at once, until another monitor attaches: a dead monitor is an
    /// error, not a hang (the kernel would let the threads sleep).</summary>
    /// <param name="crashed">True when the monitor's thread died: its faults fail even if other monitors remain.</param>
    internal void DetachMonitor(bool crashed)
    {
        bool last;
        using (new RankedMonitor(_lock, LockRank.UserfaultfdContext))
        {
            last = --_monitors <= 0;
            if (last)
            {
                _monitors = 0;
                _monitorGone = true;
            }
        }

        if (last || crashed)
        {
            WakeRange(0, ulong.MaxValue, UffdWaitOutcome.Failed);
        }
    }

    private KResult CheckUsable(string call, ulong start, ulong length)
    {
        if (_released)
        {
            return KResult.Error(Errno.EBADF, $"{call}: the userfaultfd was closed");
        }

        if (!_apiDone)
        {
            return KResult.Error(Errno.EINVAL, $"{call}: UFFDIO_API must come first");
        }

        return CheckRange(call, start, length);
    }

    private static KResult CheckRange(string call, ulong start, ulong length)
    {
        if (!PageGeometry.IsPageAligned(start) || !PageGeometry.IsPageAligned(length))
        {
            return KResult.Error(Errno.EINVAL, $"{call}: start=0x{start:X16} length=0x{length:X} must be page aligned");
        }

        if (length == 0)
        {
            return KResult.Error(Errno.EINVAL, $"{call}: length=0x0 must be greater than zero");
        }

        // validate_range: [mmap_min_addr, TASK_SIZE).
        if (start < PageGeometry.MmapMinAddr || start >= PageGeometry.TaskSize || length > PageGeometry.TaskSize - start)
        {
            return KResult.Error(Errno.EINVAL, $"{call}: [0x{start:X16}, +0x{length:X}) is outside the user address space [0x{PageGeometry.MmapMinAddr:X}, 0x{PageGeometry.TaskSize:X})");
        }

        return KResult.Ok;
    }

    private string? CannotRegister(Vma vma, UffdRegisterMode mode)
    {
        if ((vma.Flags & (VmFlags.Io | VmFlags.PfnMap)) != 0)
        {
            return "is VM_IO/VM_PFNMAP";
        }

        // vma_can_userfault: anonymous memory and shmem (every MemFile is tmpfs-like); MINOR only on shmem (the
        // MINOR_SHMEM feature only says that the kernel offers it: REGISTER does not ask for it).
        if ((mode & UffdRegisterMode.Minor) != 0 && vma.File is null)
        {
            return "cannot take MINOR (it needs shmem)";
        }

        return null;
    }

    private static VmFlags ToVmFlags(UffdRegisterMode mode) =>
        ((mode & UffdRegisterMode.Missing) != 0 ? VmFlags.UffdMissing : VmFlags.None)
        | ((mode & UffdRegisterMode.WriteProtect) != 0 ? VmFlags.UffdWp : VmFlags.None)
        | ((mode & UffdRegisterMode.Minor) != 0 ? VmFlags.UffdMinor : VmFlags.None);

    private List<Vma> VmasIn(ulong start, ulong end)
    {
        var list = new List<Vma>();
        for (Vma? vma = _mm.FindVma(start); vma is not null && vma.Start < end; vma = _mm.FindVma(vma.End))
        {
            list.Add(vma);
        }

        return list;
    }

    /// <summary>The parts of [start, end) covered by VMAs, one per VMA (clipped).</summary>
    private List<(ulong, ulong)> VmaRanges(ulong start, ulong end) =>
        VmasIn(start, end).Select(v => (Math.Max(start, v.Start), Math.Min(end, v.End))).ToList();

    private List<(ulong, ulong)> OwnRanges() =>
        VmasIn(0, ulong.MaxValue).Where(v => ReferenceEquals(v.Userfault, this)).Select(v => (v.Start, v.End)).ToList();

    [Conditional("DEBUG")]
    private void DebugAssertMmapLockHeld() => _mm.MmapLock.DebugAssertLocked();

    /// <summary>The VMA registered with this context that contains <paramref name="address"/>: what a monitor clips
    /// a block to before it copies (a real monitor knows the ranges it registered; this asks the address space).</summary>
    /// <param name="address">An address.</param>
    /// <param name="start">The VMA's start.</param>
    /// <param name="end">The VMA's end.</param>
    /// <returns>False if no VMA registered with this context contains the address (it was unmapped or unregistered).</returns>
    /// <remarks>Takes the mmap read lock.</remarks>
    internal bool TryGetRegisteredVma(ulong address, out ulong start, out ulong end)
    {
        start = end = 0;
        _mm.MmapLock.ReadLock();
        try
        {
            Vma? vma = _mm.VmaLookup(address);
            if (vma is null || !ReferenceEquals(vma.Userfault, this))
            {
                return false;
            }

            start = vma.Start;
            end = vma.End;
            return true;
        }
        finally
        {
            _mm.MmapLock.ReadUnlock();
        }
    }
}
