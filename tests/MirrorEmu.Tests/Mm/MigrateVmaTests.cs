using MirrorEmu.Mm;
using MirrorEmu.Notifier;
using MirrorEmu.Telemetry;
using MirrorEmu.Tests.Helpers;

namespace MirrorEmu.Tests.Mm;

/// <summary>
/// migrate_vma_setup / pages / finalize (mm/migrate_device.c) and the device-private entries they make: what is collected,
/// what is refused, what a CPU access, fork, mprotect and munmap do to a device page, and that every frame and device page
/// goes back to its pool exactly when its last reference goes.
/// </summary>
public sealed class MigrateVmaTests
{
    [Fact]
    public void MigratedPagesBecomeDevicePrivateEntriesHoldingTheirData()
    {
        using var mm = new AddressSpace();
        using var dev = new TestDevicePagemap();
        ulong a = Pages.MapAnon(mm, 8);
        for (int p = 2; p < 8; p++)
        {
            mm.CpuWrite(a + Pages.Bytes(p), Pages.Filled((byte)(p + 1)));
        }

        Assert.Equal(0, Pages.Read(mm, a + Pages.Size)[0]); // page 1: the zero page; page 0: a hole
        long framesBefore = mm.Memory.FramesInUse;
        NotifierRecorder rec = NotifierRecorder.Watch(mm);

        Assert.Equal(8, dev.MigrateToDevice(mm, a, 8));

        Assert.Equal(8, dev.Last.Cpages);
        Assert.Equal(0, dev.Last.Busy);
        Assert.Equal(framesBefore - 6, mm.Memory.FramesInUse); // the six written frames went back
        Assert.Equal(8, dev.PagesInUse);
        for (int p = 0; p < 8; p++)
        {
            Pte pte = mm.PageTable.Read(a + Pages.Bytes(p));
            Assert.Equal(SwapType.DevicePrivateWrite, pte.Swap);
            Assert.True(dev.Pagemap.Contains(pte.Pfn));
            Assert.Equal(1, dev.Pagemap.RefCount(pte.Pfn));
            Assert.Equal(Pages.Filled(p < 2 ? (byte)0 : (byte)(p + 1)), dev.Bytes(pte));
        }

        Assert.Equal(new NotifierRange(a, a + Pages.Bytes(8), NotifierEvent.Migrate, dev), rec.Calls[0]);
        Assert.All(rec.Calls, c => Assert.Equal(NotifierEvent.Migrate, c.Event));
        Assert.Equal(8, mm.Counters[MmEvent.PagesMigrated]);
    }

    [Fact]
    public void ACpuAccessCallsMigrateToRamAndFreesTheDevicePage()
    {
        using var mm = new AddressSpace();
        using var dev = new TestDevicePagemap();
        ulong a = Pages.MapAnon(mm, 4);
        mm.CpuWrite(a, Pages.Filled(9, (int)Pages.Bytes(4)));
        Assert.Equal(4, dev.MigrateToDevice(mm, a, 4));

        Assert.Equal(9, Pages.Read(mm, a + Pages.Bytes(2))[100]);

        Assert.Equal(1, dev.MigrateToRamCalls);
        Assert.Equal(1, mm.Counters[MmEvent.DevicePrivateFaults]);
        Pte back = mm.PageTable.Read(a + Pages.Bytes(2));
        Assert.True(back.IsPresent && back.IsWritable, back.ToString());
        Assert.Equal(3, dev.PagesInUse);
        mm.CpuWrite(a + Pages.Bytes(3), [1]); // a write migrates too, and lands
        Assert.Equal(1, Pages.Read(mm, a + Pages.Bytes(3))[0]);
        Assert.Equal(9, Pages.Read(mm, a + Pages.Bytes(3))[1]);
        Assert.Equal(2, dev.PagesInUse);
    }

    [Fact]
    public void APageHeldBeyondItsMappingIsSkippedAndReported()
    {
        using var mm = new AddressSpace();
        using var dev = new TestDevicePagemap();
        ulong a = Pages.MapAnon(mm, 3);
        mm.CpuWrite(a, Pages.Filled(4, (int)Pages.Bytes(3)));
        ulong pinned = mm.PageTable.Read(a + Pages.Size).Pfn;
        mm.Memory.Get(pinned); // a GUP pin

        Assert.Equal(2, dev.MigrateToDevice(mm, a, 3));

        Assert.Equal(1, dev.Last.Busy);
        Assert.Equal(0UL, dev.Last.Src[1]);
        Assert.Equal(1, mm.Counters[MmEvent.MigrationBusy]);
        Pte kept = mm.PageTable.Read(a + Pages.Size);
        Assert.True(kept.IsPresent && kept.IsWritable && kept.Pfn == pinned, kept.ToString());
        Assert.Equal(2, mm.Memory.RefCount(pinned));
        Assert.Equal(4, Pages.Read(mm, a + Pages.Size)[7]);
        mm.Memory.Put(pinned);
    }

    [Fact]
    public void APageOfAFileOrOfSharedMemoryStaysInItsPageCache()
    {
        using var mm = new AddressSpace();
        using var dev = new TestDevicePagemap();
        ulong shared = Pages.MapAnon(mm, 2, flags: MapFlags.Shared);
        mm.CpuWrite(shared, [3]);

        Assert.Equal(0, dev.MigrateToDevice(mm, shared, 2));

        Assert.Equal(0UL, dev.Last.Src[1]); // an empty slot of a shared mapping is not collected
        Assert.True(dev.Last.SrcAt(0).IsValid, "a present shmem page is collected and refused at migrate_vma_pages");
        Assert.True(mm.PageTable.Read(shared).IsPresent);
        Assert.Equal(3, Pages.Read(mm, shared)[0]);
        Assert.Equal(0, dev.PagesInUse);
    }

    [Fact]
    public void SetupRefusesArgumentsOutsideTheVmaAndChangesNothing()
    {
        using var mm = new AddressSpace();
        using var other = new AddressSpace();
        using var dev = new TestDevicePagemap();
        ulong a = Pages.MapAnon(mm, 2);
        ulong b = Pages.MapAnon(other, 2);
        mm.CpuWrite(a, [1]);
        var args = new MigrateVma(4);
        Vma foreign = other.SnapshotVmas()[0];
        mm.MmapLock.ReadLock();
        try
        {
            Vma vma = mm.VmaLookup(a)!;
            args.Reset(vma, a, a + Pages.Bytes(3), dev, MigrateSelect.System);
            Assert.Equal(-Errno.EINVAL, mm.MigrateVmaSetup(args).Code);
            args.Reset(vma, a, a, dev, MigrateSelect.System);
            Assert.Equal(-Errno.EINVAL, mm.MigrateVmaSetup(args).Code);
            args.Reset(foreign, b, b + Pages.Size, dev, MigrateSelect.System);
            Assert.Equal(-Errno.EINVAL, mm.MigrateVmaSetup(args).Code);
            args.Reset(vma, a, a + Pages.Size, dev, MigrateSelect.System, faultPage: 5);
            Assert.Equal(-Errno.EINVAL, mm.MigrateVmaSetup(args).Code);
        }
        finally
        {
            mm.MmapLock.ReadUnlock();
        }

        Assert.True(mm.PageTable.Read(a).IsPresent);
        Assert.Equal(0, dev.PagesInUse);
    }

    [Fact]
    public void FinalizeWithoutDestinationsRestoresEveryPage()
    {
        using var mm = new AddressSpace();
        using var dev = new TestDevicePagemap();
        ulong a = Pages.MapAnon(mm, 4);
        mm.CpuWrite(a, Pages.Filled(6, (int)Pages.Bytes(4)));
        Pte before = mm.PageTable.Read(a);
        var args = new MigrateVma(4);
        mm.MmapLock.ReadLock();
        try
        {
            args.Reset(mm.VmaLookup(a)!, a, a + Pages.Bytes(4), dev, MigrateSelect.System);
            mm.MigrateVmaSetup(args).ThrowIfError();
            Assert.Equal(SwapType.MigrationWrite, mm.PageTable.Read(a).Swap);
            Assert.Equal(2, mm.Memory.RefCount(before.Pfn)); // the migration entry and collect's reference
            mm.MigrateVmaPages(args);
            mm.MigrateVmaFinalize(args);
        }
        finally
        {
            mm.MmapLock.ReadUnlock();
        }

        Assert.Equal(before.Pfn, mm.PageTable.Read(a).Pfn);
        Assert.True(mm.PageTable.Read(a).IsWritable);
        Assert.Equal(1, mm.Memory.RefCount(before.Pfn));
        Assert.Equal(6, Pages.Read(mm, a + Pages.Bytes(3))[5]);
    }

    [Fact]
    public void ARestoredPageOfAProtNoneMappingStaysInaccessible()
    {
        using var mm = new AddressSpace();
        using var dev = new TestDevicePagemap();
        ulong a = Pages.MapAnon(mm, 1);
        mm.CpuWrite(a, [5]);
        mm.Mprotect(a, Pages.Size, Prot.None).ThrowIfError();
        var args = new MigrateVma(1);
        mm.MmapLock.ReadLock();
        try
        {
            args.Reset(mm.VmaLookup(a)!, a, a + Pages.Size, dev, MigrateSelect.System);
            mm.MigrateVmaSetup(args).ThrowIfError();
            Assert.Equal(1, args.Cpages);
            mm.MigrateVmaPages(args);
            mm.MigrateVmaFinalize(args); // no destination: the page is restored
        }
        finally
        {
            mm.MmapLock.ReadUnlock();
        }

        Assert.True(mm.PageTable.Read(a).IsProtNone, mm.PageTable.Read(a).ToString());
        Assert.Throws<MemoryFaultException>(() => mm.CpuRead(a, new byte[1]));
    }

    [Fact]
    public void ForkSharesADevicePageReadOnlyAndTheChildFaultsItsOwnCopyBack()
    {
        using var mm = new AddressSpace();
        using var dev = new TestDevicePagemap();
        ulong a = Pages.MapAnon(mm, 1);
        mm.CpuWrite(a, Pages.Filled(7));
        Assert.Equal(1, dev.MigrateToDevice(mm, a, 1));
        Pte device = mm.PageTable.Read(a);

        using AddressSpace child = mm.Fork();

        Assert.Equal(SwapType.DevicePrivateRead, mm.PageTable.Read(a).Swap);
        Assert.Equal(SwapType.DevicePrivateRead, child.PageTable.Read(a).Swap);
        Assert.Equal(2, dev.Pagemap.RefCount(device.Pfn));
        Assert.Contains(child, dev.Pagemap.MappedAddressSpaces());
        child.CpuWrite(a, [8]);
        Assert.Equal(8, Pages.Read(child, a)[0]);
        Assert.Equal(1, dev.Pagemap.RefCount(device.Pfn));
        Assert.Equal(SwapType.DevicePrivateRead, mm.PageTable.Read(a).Swap);
        Assert.Equal(7, Pages.Read(mm, a)[0]);
        Assert.Equal(0, dev.PagesInUse);
    }

    [Fact]
    public void MprotectMakesWritableDevicePrivateEntriesReadOnly()
    {
        using var mm = new AddressSpace();
        using var dev = new TestDevicePagemap();
        ulong a = Pages.MapAnon(mm, 2);
        Assert.Equal(2, dev.MigrateToDevice(mm, a, 2));
        mm.Mprotect(a, Pages.Bytes(2), Prot.Read).ThrowIfError();
        Assert.Equal(SwapType.DevicePrivateRead, mm.PageTable.Read(a).Swap);
        mm.Mprotect(a, Pages.Bytes(2), Prot.ReadWrite).ThrowIfError();
        Assert.Equal(SwapType.DevicePrivateRead, mm.PageTable.Read(a).Swap); // change_pte_range never makes them writable
        mm.CpuWrite(a, [2]);
        Assert.True(mm.PageTable.Read(a).IsWritable);
    }

    [Fact]
    public void UnmappingDevicePrivatePagesFreesThemToTheDevicePool()
    {
        using var mm = new AddressSpace();
        using var dev = new TestDevicePagemap();
        ulong a = Pages.MapAnon(mm, 16);
        mm.CpuWrite(a, Pages.Filled(1, (int)Pages.Bytes(16)));
        Assert.Equal(16, dev.MigrateToDevice(mm, a, 16));
        dev.Pool.PoisonFreedFrames = true;
        mm.Madvise(a, Pages.Bytes(4), Advice.DontNeed).ThrowIfError();
        Assert.Equal(12, dev.PagesInUse);
        mm.Munmap(a, Pages.Bytes(16)).ThrowIfError();
        Assert.Equal(0, dev.PagesInUse);
        Assert.Equal(dev.Pool.Counters[MmEvent.FramesAllocated], dev.Pool.Counters[MmEvent.FramesFreed]);
        Assert.Equal(0, dev.Pool.CanaryViolations);
    }

    [Fact]
    public void AnEmptySlotUnderUserfaultfdMissingIsNotPopulated()
    {
        using var mm = new AddressSpace();
        using var dev = new TestDevicePagemap();
        ulong a = Pages.MapAnon(mm, 2);
        mm.TestRegisterUserfault(a, Pages.Bytes(2), VmFlags.UffdMissing, new NoUserfault());
        Assert.Equal(0, dev.MigrateToDevice(mm, a, 2));
        Assert.True(mm.PageTable.Read(a).IsNone);
        Assert.Equal(0, dev.PagesInUse);
    }

    private sealed class NoUserfault : IUserfaultHook
    {
        public VmFault HandleUserfault(Vma vma, ulong address, ulong pages, FaultFlags flags, UserfaultReason reason) => VmFault.SigBus;

        public IUserfaultHook? OnFork(Vma vma, AddressSpace child) => null;

        public bool OnRemap(Vma vma, ulong from, ulong to, ulong length) => true;

        public void OnRemove(ulong start, ulong end)
        {
        }

        public void OnUnmap(ulong start, ulong end)
        {
        }
    }
}
