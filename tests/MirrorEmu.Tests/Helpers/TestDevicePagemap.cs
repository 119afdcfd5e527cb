using MirrorEmu.Mm;

namespace MirrorEmu.Tests.Helpers;

/// <summary>
/// A device-private memory owner without a device, for Mm tests: a pool of device pages, migrate_vma to and from it
/// with plain byte copies (what dmirror_migrate_alloc_and_copy and dmirror_devmem_fault do, minus the device page
/// table), and migrate_to_ram for CPU faults. Counts what it was asked to do.
/// </summary>
public sealed unsafe class TestDevicePagemap : IDevicePagemapOwner, IDisposable
{
    private readonly MigrateVma _args = new();

    /// <summary>Creates a pool of <paramref name="pages"/> device pages and registers its pagemap.</summary>
    public TestDevicePagemap(ulong pages = 256)
    {
        Pool = new PhysicalMemory((pages + 1) << PageGeometry.PageShift);
        Pagemap = new DevicePagemap(this, Pool);
    }

    /// <summary>The owner cookie (this object).</summary>
    public object Owner => this;

    /// <summary>The device pool.</summary>
    public PhysicalMemory Pool { get; }

    /// <summary>The pagemap.</summary>
    public DevicePagemap Pagemap { get; }

    /// <summary>migrate_to_ram calls.</summary>
    public int MigrateToRamCalls { get; private set; }

    /// <summary>Device pages in use.</summary>
    public long PagesInUse => Pool.FramesInUse;

    /// <summary>Migrates [start, start + pages) of <paramref name="mm"/> to device pages (one VMA); returns how many moved.</summary>
    public int MigrateToDevice(AddressSpace mm, ulong start, int pages)
    {
        mm.MmapLock.ReadLock();
        try
        {
            Vma vma = mm.VmaLookup(start) ?? throw new InvalidOperationException($"nothing mapped at 0x{start:X}");
            _args.Reset(vma, start, start + ((ulong)pages << PageGeometry.PageShift), this, MigrateSelect.System);
            mm.MigrateVmaSetup(_args).ThrowIfError();
            for (int i = 0; i < _args.Npages; i++)
            {
                MigratePfn src = _args.SrcAt(i);
                if (!src.IsMigrating || (src.IsValid && DevicePagemap.IsDevicePfn(src.Pfn)) || !Pool.TryAllocate(out ulong frame))
                {
                    continue;
                }

                Span<byte> to = Pool.Frame(frame);
                if (src.IsValid)
                {
                    mm.Memory.Frame(src.Pfn).CopyTo(to);
                }
                else
                {
                    to.Clear();
                }

                _args.Dst[i] = MigratePfn.Of(Pagemap.ToPfn(frame), src.IsWritable).Value;
            }

            mm.MigrateVmaPages(_args);
            int moved = _args.Migrated();
            mm.MigrateVmaFinalize(_args);
            return moved;
        }
        finally
        {
            mm.MmapLock.ReadUnlock();
        }
    }

    /// <summary>The last migration's state (what setup collected and reported).</summary>
    public MigrateVma Last => _args;

    /// <inheritdoc/>
    public VmFault MigrateToRam(Vma vma, ulong address, Pte entry)
    {
        MigrateToRamCalls++;
        AddressSpace mm = vma.Mm;
        var args = new MigrateVma(1);
        args.Reset(vma, address, address + PageGeometry.PageSize, this, MigrateSelect.DevicePrivate, entry.Pfn);
        if (!mm.MigrateVmaSetup(args).IsOk)
        {
            return VmFault.SigBus;
        }

        MigratePfn src = args.SrcAt(0);
        if (src.IsValid && src.IsMigrating)
        {
            if (!mm.Memory.TryAllocate(out ulong pfn))
            {
                mm.MigrateVmaFinalize(args);
                return VmFault.Oom;
            }

            Pool.Frame(DevicePagemap.ToFrame(src.Pfn)).CopyTo(mm.Memory.Frame(pfn));
            args.Dst[0] = MigratePfn.Of(pfn, src.IsWritable).Value;
        }

        mm.MigrateVmaPages(args);
        mm.MigrateVmaFinalize(args);
        return VmFault.None;
    }

    /// <summary>The bytes of the device page behind <paramref name="entry"/>.</summary>
    public byte[] Bytes(Pte entry) => Pool.Frame(DevicePagemap.ToFrame(entry.Pfn)).ToArray();

    /// <inheritdoc/>
    public void Dispose()
    {
        Pagemap.Dispose();
        Pool.Dispose();
    }
}
