using MirrorEmu.Mm;
using MirrorEmu.Notifier;
using MirrorEmu.Tests.Helpers;

namespace MirrorEmu.Tests.Mm;

/// <summary>make_device_exclusive (mm/rmap.c, Linux 6.15+) and its device-exclusive entries: what it refuses, the EXCLUSIVE
/// events on the way in and out, and what a CPU access, fork and mprotect do to such an entry.</summary>
public sealed class DeviceExclusiveTests
{
    private static KResult MakeExclusive(AddressSpace mm, ulong va, object? owner, out ulong pfn)
    {
        mm.MmapLock.ReadLock();
        try
        {
            return mm.MakeDeviceExclusive(va, owner, out pfn);
        }
        finally
        {
            mm.MmapLock.ReadUnlock();
        }
    }

    [Fact]
    public void AnUntouchedPageIsFaultedInWritableThenHeldByTheDevice()
    {
        using var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, 1);
        NotifierRecorder rec = NotifierRecorder.Watch(mm);
        var owner = new object();

        Assert.True(MakeExclusive(mm, a, owner, out ulong pfn).IsOk);

        Pte pte = mm.PageTable.Read(a);
        Assert.Equal(SwapType.DeviceExclusive, pte.Swap);
        Assert.Equal(pfn, pte.Pfn);
        Assert.NotEqual(PhysicalMemory.ZeroPfn, pfn);
        Assert.Equal(1, mm.Memory.RefCount(pfn));
        Assert.Equal(new NotifierRange(a, a + Pages.Size, NotifierEvent.Exclusive, owner), rec.Calls[^1]);
    }

    [Fact]
    public void ACpuWriteRestoresThePageAndRaisesExclusive()
    {
        using var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, 1);
        mm.CpuWrite(a, [41]);
        Assert.True(MakeExclusive(mm, a, null, out ulong pfn).IsOk);
        NotifierRecorder rec = NotifierRecorder.Watch(mm);

        mm.CpuWrite(a, [42]);

        Pte pte = mm.PageTable.Read(a);
        Assert.True(pte.IsPresent && pte.IsWritable && pte.Pfn == pfn, pte.ToString());
        Assert.Equal(42, Pages.Read(mm, a)[0]);
        Assert.Equal([new NotifierRange(a, a + Pages.Size, NotifierEvent.Exclusive)], rec.Calls);
    }

    [Fact]
    public void ReadOnlySharedAndUnmappedMemoryIsRefused()
    {
        using var mm = new AddressSpace();
        ulong ro = Pages.MapAnon(mm, 1, Prot.Read);
        ulong shared = Pages.MapAnon(mm, 1, flags: MapFlags.Shared);
        Assert.Equal(-Errno.EFAULT, MakeExclusive(mm, ro, null, out _).Code);
        Assert.Equal(-Errno.EOPNOTSUPP, MakeExclusive(mm, shared, null, out _).Code);
        Assert.Equal(-Errno.EFAULT, MakeExclusive(mm, 0x10000, null, out _).Code);
        Assert.True(mm.PageTable.Read(ro).IsNone);
        Assert.True(mm.PageTable.Read(shared).IsPresent, "the write fault made the shmem page present; nothing else changed");
    }

    [Fact]
    public void ForkRestoresTheEntryAndBothSidesCopyOnWrite()
    {
        // hmm.exclusive_cow: EXCLUSIVE, fork; parent and child each increment and see i + 1.
        using var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, 2);
        mm.CpuWriteUInt64(a, 10);
        mm.CpuWriteUInt64(a + Pages.Size, 20);
        Assert.True(MakeExclusive(mm, a, null, out ulong pfn).IsOk);
        Assert.True(MakeExclusive(mm, a + Pages.Size, null, out _).IsOk);

        using AddressSpace child = mm.Fork();

        Pte parent = mm.PageTable.Read(a);
        Assert.True(parent.IsPresent && !parent.IsWritable && parent.Pfn == pfn, parent.ToString());
        Assert.Equal(2, mm.Memory.RefCount(pfn));
        foreach (AddressSpace space in new[] { mm, child })
        {
            space.CpuWriteUInt64(a, space.CpuReadUInt64(a) + 1);
            space.CpuWriteUInt64(a + Pages.Size, space.CpuReadUInt64(a + Pages.Size) + 1);
        }

        Assert.Equal(11UL, mm.CpuReadUInt64(a));
        Assert.Equal(11UL, child.CpuReadUInt64(a));
        Assert.Equal(21UL, mm.CpuReadUInt64(a + Pages.Size));
        Assert.Equal(21UL, child.CpuReadUInt64(a + Pages.Size));
    }

    [Fact]
    public void MprotectKeepsTheEntryAndTheRestoredPageFollowsTheNewProtection()
    {
        using var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, 1);
        Assert.True(MakeExclusive(mm, a, null, out _).IsOk);
        mm.Mprotect(a, Pages.Size, Prot.Read).ThrowIfError();
        Assert.Equal(SwapType.DeviceExclusive, mm.PageTable.Read(a).Swap);
        Assert.Equal(0, Pages.Read(mm, a)[0]);
        Assert.False(mm.PageTable.Read(a).IsWritable);
        Assert.Throws<MemoryFaultException>(() => mm.CpuWrite(a, [1]));
    }
}
