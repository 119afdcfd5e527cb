using System.Runtime.CompilerServices;

namespace MirrorEmu.Mm;

// A device pfn: [39 DEVICE][38..24 pagemap id][23..0 page index in the pagemap's pool]

/// <summary>
/// A range of device-private pages (struct dev_pagemap of type MEMORY_DEVICE_PRIVATE, include/linux/memremap.h, and the
/// struct pages memremap_pages gives it): pages a device keeps in its own memory, which the CPU cannot map. A page
/// migrated there is named in the CPU page table by a device-private entry holding its device pfn; a CPU access to
/// it calls <see cref="IDevicePagemapOwner.MigrateToRam"/> of the pagemap it belongs to, found from the pfn alone
/// (<see cref="Of"/>, the kernel's page_pgmap()).
/// </summary>
/// <remarks>
/// <para>Device pfns lie above every system pfn: bit 39 of the 40-bit pfn field is set (a system pool would need 2^39
/// pages, 2 PiB, to reach it), the next 15 bits name the pagemap and the low 24 its page (up to 64 GiB per pagemap), as
/// request_free_mem_region gives each pagemap a physical range of its own.</para>
/// <para>The pages' reference counts are those of <see cref="Pool"/>, a <see cref="PhysicalMemory"/> the owner allocates
/// its device pages from (its frame allocator and limit): a device-private or migration entry holds one reference, a
/// migration in progress one more, and the page goes back to the pool when the last one is put (dmirror_devmem_free).
/// The CPU never maps a device page, so no TLB shootdown precedes that; the owner must have stopped its own accesses
/// (its device page table) before it drops the last mapping, as migrate_to_ram does.</para>
/// <para>Concurrency model:</para> the registry is an array of slots published with compare-and-exchange; a lookup is
/// one volatile read. The set of address spaces holding this pagemap's pages (<see cref="MappedAddressSpaces"/>, what
/// a driver walks to evict every page, as migrate_device_range does through the rmap) is an immutable array replaced
/// with compare-and-exchange.
/// </remarks>
public sealed class DevicePagemap : IDisposable
{
    /// <summary>The bit that marks a device pfn.</summary>
    public const int DeviceBitShift = 39;

    /// <summary>Bits of the page index inside a pagemap.</summary>
    public const int IndexBits = 24;

    /// <summary>Bits of the pagemap id.</summary>
    public const int IdBits = DeviceBitShift - IndexBits;

    /// <summary>Most pages one pagemap holds (64 GiB of 4 KiB pages).</summary>
    public const ulong MaxPages = 1UL << IndexBits;

    /// <summary>Most pagemaps registered at once.</summary>
    public const int MaxPagemaps = 1 << IdBits;

    private const ulong DeviceFlag = 1UL << DeviceBitShift;
    private const ulong IndexMask = MaxPages - 1;
    private const ulong IdMask = MaxPagemaps - 1;

    private static readonly DevicePagemap?[] s_registry = new DevicePagemap?[MaxPagemaps];
    private static int s_hint;

    private WeakReference<AddressSpace>[] _mapped = [];
    private int _disposed;

    /// <summary>Registers a pagemap over <paramref name="pool"/> (memremap_pages).</summary>
    /// <param name="ops">Its owner and migrate_to_ram.</param>
    /// <param name="pool">The device's frame pool: page <c>k</c> of the pool is device pfn <see cref="BasePfn"/> + k.</param>
    /// <exception cref="ArgumentOutOfRangeException">The pool holds more than <see cref="MaxPages"/> pages.</exception>
    /// <exception cref="InvalidOperationException">All <see cref="MaxPagemaps"/> ids are in use.</exception>
    public DevicePagemap(IDevicePagemapOwner ops, PhysicalMemory pool)
    {
        ArgumentNullException.ThrowIfNull(ops);
        ArgumentNullException.ThrowIfNull(pool);
        if (pool.LimitFrames > MaxPages)
        {
            throw new ArgumentOutOfRangeException(nameof(pool), $"pool.LimitFrames=0x{pool.LimitFrames:X} exceeds a pagemap's 0x{MaxPages:X} pages");
        }

        Ops = ops;
        Pool = pool;
        int start = Volatile.Read(ref s_hint);
        for (int k = 0; k < MaxPagemaps; k++)
        {
            int id = (int)((uint)(start + k) & IdMask);
            if (Interlocked.CompareExchange(ref s_registry[id], this, null) is null)
            {
                Id = id;
                BasePfn = DeviceFlag | ((ulong)id << IndexBits);
                Volatile.Write(ref s_hint, id + 1);
                return;
            }
        }

        throw new InvalidOperationException($"all {MaxPagemaps} device pagemap ids are in use");
    }

    /// <summary>The owner's callbacks (dev_pagemap_ops).</summary>
    public IDevicePagemapOwner Ops { get; }

    /// <summary>The owner cookie hmm_range_fault compares with dev_private_owner (pgmap->owner).</summary>
    public object Owner => Ops.Owner;

    /// <summary>The pool whose frames are this pagemap's pages and whose counts are theirs.</summary>
    public PhysicalMemory Pool { get; }

    /// <summary>The pagemap's id in the registry.</summary>
    public int Id { get; }

    /// <summary>The device pfn of pool frame 0 (never handed out: it is the pool's zero page).</summary>
    public ulong BasePfn { get; }

    /// <summary>is_device_private_page for a pfn: true when <paramref name="pfn"/> names a device page.</summary>
    /// <param name="pfn">A pfn from a PTE or an HMM output.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool IsDevicePfn(ulong pfn) => (pfn & DeviceFlag) != 0;

    /// <summary>page_pgmap: the registered pagemap <paramref name="pfn"/> belongs to, or null (a system pfn, or a pagemap
    /// already disposed).</summary>
    /// <param name="pfn">A pfn.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static DevicePagemap? Of(ulong pfn) =>
        IsDevicePfn(pfn) ? Volatile.Read(ref s_registry[(int)((pfn >> IndexBits) & IdMask)]) : null;

    /// <summary>True if <paramref name="pfn"/> is one of this pagemap's pages.</summary>
    /// <param name="pfn">A pfn.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool Contains(ulong pfn) => (pfn & ~IndexMask) == BasePfn;

    /// <summary>The device pfn of pool frame <paramref name="frame"/>.</summary>
    /// <param name="frame">A frame of <see cref="Pool"/>.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ulong ToPfn(ulong frame) => BasePfn | frame;

    /// <summary>The pool frame of device pfn <paramref name="pfn"/>.</summary>
    /// <param name="pfn">One of this pagemap's pfns.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong ToFrame(ulong pfn) => pfn & IndexMask;

    /// <summary>get_page on a device page.</summary>
    /// <param name="pfn">One of this pagemap's pfns.</param>
    public void Get(ulong pfn) => Pool.Get(ToFrame(pfn));

    /// <summary>folio_try_get on a device page: a reference unless the page is free.</summary>
    /// <param name="pfn">One of this pagemap's pfns.</param>
    /// <returns>False when the page was free.</returns>
    public bool TryGet(ulong pfn) => Pool.TryGet(ToFrame(pfn));

    /// <summary>put_page on a device page: the last reference frees it to <see cref="Pool"/>.</summary>
    /// <param name="pfn">One of this pagemap's pfns.</param>
    public void Put(ulong pfn) => Pool.Put(ToFrame(pfn));

    /// <summary>The device page's reference count.</summary>
    /// <param name="pfn">One of this pagemap's pfns.</param>
    public int RefCount(ulong pfn) => Pool.RefCount(ToFrame(pfn));

    /// <summary>Records that <paramref name="mm"/> holds (or may hold) entries naming this pagemap's pages: a migration
    /// installed one, or fork copied one. Cheap when it is already recorded.</summary>
    /// <param name="mm">The address space.</param>
    internal void NoteMapped(AddressSpace mm)
    {
        while (true)
        {
            WeakReference<AddressSpace>[] seen = Volatile.Read(ref _mapped);
            foreach (WeakReference<AddressSpace> w in seen)
            {
                if (w.TryGetTarget(out AddressSpace? known) && ReferenceEquals(known, mm))
                {
                    return; // the common case: no allocation
                }
            }

            var kept = new List<WeakReference<AddressSpace>>(seen.Length + 1);
            foreach (WeakReference<AddressSpace> w in seen)
            {
                if (w.TryGetTarget(out AddressSpace? other) && !other.IsDisposed)
                {
                    kept.Add(w);
                }
            }

            kept.Add(new WeakReference<AddressSpace>(mm));
            if (ReferenceEquals(Interlocked.CompareExchange(ref _mapped, [.. kept], seen), seen))
            {
                return;
            }
        }
    }

    /// <summary>The live address spaces that may hold entries naming this pagemap's pages (the ones migrations and forks
    /// recorded); a driver walks their page tables to evict every page (dmirror's RELEASE).</summary>
    public IReadOnlyList<AddressSpace> MappedAddressSpaces()
    {
        var live = new List<AddressSpace>();
        foreach (WeakReference<AddressSpace> w in Volatile.Read(ref _mapped))
        {
            if (w.TryGetTarget(out AddressSpace? mm) && !mm.IsDisposed)
            {
                live.Add(mm);
            }
        }

        return live;
    }

    /// <summary>Unregisters the pagemap (memunmap_pages): its pfns no longer resolve. Evict its pages first.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            Interlocked.CompareExchange(ref s_registry[Id], null, this);
        }
    }
}
