using MirrorEmu.Mm;
using MirrorEmu.Notifier;
using MirrorEmu.Tests.Helpers;

namespace MirrorEmu.Tests.Notifier;

/// <summary>Every Mm operation raises the event Linux raises, over the range it covers (a recording subscriber over everything).</summary>
public class MmNotifierEventTests
{
    [Fact]
    public void MunmapRaisesUnmapOverTheUnmappedVmas()
    {
        using var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, 8);
        NotifierRecorder rec = NotifierRecorder.Watch(mm);
        mm.Munmap(a + Pages.Size, Pages.Bytes(2)).ThrowIfError();
        Assert.Equal([new NotifierRange(a + Pages.Size, a + Pages.Bytes(3), NotifierEvent.Unmap)], rec.Calls);
    }

    [Fact]
    public void MremapMoveRaisesUnmapOverTheOldRange()
    {
        using var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, 4);
        NotifierRecorder rec = NotifierRecorder.Watch(mm);
        mm.Mremap(a, Pages.Bytes(4), Pages.Bytes(4), MremapFlags.MayMove | MremapFlags.Fixed, 0x5000_0000, out _).ThrowIfError();
        Assert.Contains(new NotifierRange(a, a + Pages.Bytes(4), NotifierEvent.Unmap), rec.Calls);
    }

    [Fact]
    public void AWriteToTheHugeZeroPageRaisesClearOverItsTwoMegabytes()
    {
        using var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, 1024);
        mm.Madvise(a, Pages.Bytes(1024), Advice.HugePage).ThrowIfError();
        Pages.Read(mm, a + Pages.Bytes(3));
        NotifierRecorder rec = NotifierRecorder.Watch(mm);
        mm.CpuWrite(a + Pages.Bytes(3), new byte[] { 1 });
        Assert.Equal([new NotifierRange(a, a + PageGeometry.PmdSize, NotifierEvent.Clear)], rec.Calls);
    }

    [Fact]
    public void MprotectRaisesProtectionVma()
    {
        using var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, 4);
        NotifierRecorder rec = NotifierRecorder.Watch(mm);
        mm.Mprotect(a, Pages.Bytes(2), Prot.Read).ThrowIfError();
        Assert.Equal([new NotifierRange(a, a + Pages.Bytes(2), NotifierEvent.ProtectionVma)], rec.Calls);
    }

    [Fact]
    public void DontNeedRaisesClear()
    {
        using var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, 4);
        NotifierRecorder rec = NotifierRecorder.Watch(mm);
        mm.Madvise(a, Pages.Bytes(4), Advice.DontNeed).ThrowIfError();
        Assert.Equal([new NotifierRange(a, a + Pages.Bytes(4), NotifierEvent.Clear)], rec.Calls);
    }

    [Fact]
    public void CowBreakAndZeroPageReplacementRaiseClearOverThePage()
    {
        using var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, 2);
        Pages.Read(mm, a); // zero page mapped
        NotifierRecorder rec = NotifierRecorder.Watch(mm);
        mm.CpuWrite(a, new byte[] { 1 });
        Assert.Equal([new NotifierRange(a, a + Pages.Size, NotifierEvent.Clear)], rec.Calls);
        rec.Calls.Clear();
        mm.CpuWrite(a + Pages.Size, new byte[] { 1 }); // fresh anonymous page: nothing was mapped, nothing to invalidate
        Assert.Empty(rec.Calls);
    }

    [Fact]
    public void ForkWriteProtectsPrivatePagesWithProtectionPageAndCowBreaksClear()
    {
        using var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, 3);
        mm.CpuWrite(a, Pages.Filled(1, 3 * 4096));
        mm.MmapAnonymous(Pages.Size, Prot.ReadWrite, MapFlags.Shared, out _).ThrowIfError();
        NotifierRecorder rec = NotifierRecorder.Watch(mm);
        using AddressSpace child = mm.Fork();
        Assert.Equal([new NotifierRange(a, a + Pages.Bytes(3), NotifierEvent.ProtectionPage)], rec.Calls);
        rec.Calls.Clear();
        mm.CpuWrite(a + Pages.Size, new byte[] { 2 });
        Assert.Equal([new NotifierRange(a + Pages.Size, a + Pages.Bytes(2), NotifierEvent.Clear)], rec.Calls);
        Assert.Equal(1, Pages.Read(child, a + Pages.Size)[0]);
    }

    [Fact]
    public void TeardownRaisesReleaseOverEverything()
    {
        var mm = new AddressSpace();
        Pages.MapAnon(mm, 1);
        NotifierRecorder rec = NotifierRecorder.Watch(mm);
        mm.Dispose();
        Assert.Equal([new NotifierRange(0, ulong.MaxValue, NotifierEvent.Release)], rec.Calls);
    }

    [Fact]
    public void DeviceExclusiveRestoreRaisesExclusive()
    {
        using var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, 1);
        mm.CpuWrite(a, new byte[] { 5 });
        ulong pfn = mm.PageTable.Read(a).Pfn;
        Assert.True(mm.TestReplaceForExclusive(a, pfn));
        NotifierRecorder rec = NotifierRecorder.Watch(mm);
        Assert.Equal(5, Pages.Read(mm, a)[0]);
        Assert.Equal([new NotifierRange(a, a + Pages.Size, NotifierEvent.Exclusive)], rec.Calls);
    }

    [Fact]
    public void EventCountersCountEveryInvalidationByKind()
    {
        using var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, 4);
        mm.Mprotect(a, Pages.Size, Prot.Read).ThrowIfError();
        mm.Munmap(a, Pages.Bytes(4)).ThrowIfError();
        Assert.Equal(1, mm.Notifiers.Events[NotifierEvent.ProtectionVma]);
        Assert.Equal(1, mm.Notifiers.Events[NotifierEvent.Unmap]);
    }
}
