using MirrorEmu.Hmm;
using MirrorEmu.Mm;
using MirrorEmu.Notifier;
using MirrorEmu.Tests.Helpers;
using static MirrorEmu.Tests.Helpers.HmmHelpers;

namespace MirrorEmu.Tests.Hmm;

/// <summary>hmm_range_fault's flag algebra, outputs and errors.</summary>
public class RangeFaultTests
{
    [Fact]
    public void SnapshotWithoutRequestsNeverFaultsAndReportsEachState()
    {
        using var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, 4);
        mm.CpuWrite(a, new byte[] { 1 });                 // page 0 present, writable
        Pages.Read(mm, a + Pages.Size);                   // page 1 zero page
        mm.CpuWrite(a + Pages.Bytes(2), new byte[] { 1 });
        mm.Mprotect(a + Pages.Bytes(2), Pages.Size, Prot.Read).ThrowIfError(); // page 2 present, read-only
        HmmRange r = NewRange(mm, a, 4, defaultFlags: 0);
        long faults = mm.Counters[Telemetry.MmEvent.Faults];
        Assert.Equal(0, FaultOnce(r));
        Assert.Equal(faults, mm.Counters[Telemetry.MmEvent.Faults]);
        var p = r.HmmPfns.Select(v => new HmmPfn(v)).ToArray();
        Assert.True(p[0].IsValid && p[0].IsWritable);
        Assert.Equal(mm.PageTable.Read(a).Pfn, p[0].Pfn);
        Assert.True(p[1].IsValid && !p[1].IsWritable);
        Assert.Equal(PhysicalMemory.ZeroPfn, p[1].Pfn);
        Assert.True(p[2].IsValid && !p[2].IsWritable);
        Assert.Equal(0UL, r.HmmPfns[3]); // none: 0, faultable later
    }

    [Fact]
    public void RequestAlgebraHonoursMaskAndDefault()
    {
        using var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, 4);
        HmmRange r = NewRange(mm, a, 4, defaultFlags: 0, mask: HmmPfn.ReqFault | HmmPfn.ReqWrite);
        r.Extent = FaultExtent.Precise; // the kernel extent would fault the whole hole from its start
        r.HmmPfns[1] = HmmPfn.ReqFault;
        r.HmmPfns[2] = HmmPfn.ReqFault | HmmPfn.ReqWrite;
        r.HmmPfns[3] = HmmPfn.ReqWrite; // REQ_WRITE without REQ_FAULT does nothing
        Assert.Equal(0, DriverLoop(r));
        Assert.Equal(0UL, r.HmmPfns[0]);
        Assert.True(new HmmPfn(r.HmmPfns[1]).IsValid && new HmmPfn(r.HmmPfns[1]).Pfn == PhysicalMemory.ZeroPfn);
        Assert.True(new HmmPfn(r.HmmPfns[2]).IsWritable);
        Assert.Equal(0UL, r.HmmPfns[3]);
        Assert.True(mm.PageTable.Read(a).IsNone, "page 0 had no request and must not be faulted");
    }

    [Fact]
    public void MaskedOutRequestBitsAreIgnored()
    {
        using var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, 2);
        HmmRange r = NewRange(mm, a, 2, defaultFlags: 0, mask: 0);
        r.HmmPfns[0] = HmmPfn.ReqFault | HmmPfn.ReqWrite;
        Assert.Equal(0, FaultOnce(r));
        Assert.Equal(0UL, r.HmmPfns[0]);
        Assert.True(mm.PageTable.Read(a).IsNone);
    }

    [Fact]
    public void StickyBitsSurviveAndOtherBitsAreReplaced()
    {
        using var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, 2);
        mm.CpuWrite(a, new byte[] { 1 });
        HmmRange r = NewRange(mm, a, 2, defaultFlags: 0);
        r.HmmPfns[0] = HmmPfn.DmaMapped | HmmPfn.Error | 0x1234;
        r.HmmPfns[1] = HmmPfn.P2pDma | HmmPfn.P2pDmaBus | HmmPfn.Write | HmmPfn.OrderBitsFor(3);
        Assert.Equal(0, FaultOnce(r));
        Assert.Equal(HmmPfn.DmaMapped | HmmPfn.Valid | HmmPfn.Write | mm.PageTable.Read(a).Pfn, r.HmmPfns[0]);
        Assert.Equal(HmmPfn.P2pDma | HmmPfn.P2pDmaBus, r.HmmPfns[1]);
    }

    [Fact]
    public void HolesBetweenVmasAreErrorOrEfault()
    {
        using var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, 4);
        mm.Munmap(a + Pages.Size, Pages.Size).ThrowIfError();
        HmmRange snap = NewRange(mm, a, 4, defaultFlags: 0);
        Assert.Equal(0, FaultOnce(snap));
        Assert.Equal(HmmPfn.Error, snap.HmmPfns[1]);
        HmmRange fault = NewRange(mm, a, 4);
        Assert.Equal(-Errno.EFAULT, DriverLoop(fault));
        Assert.True(new HmmPfn(fault.HmmPfns[0]).IsValid, "entries below last are outputs");
        Assert.Equal(0UL, fault.HmmPfns[2]);                 // and the rest untouched inputs
    }

    [Fact]
    public void IoAndPfnmapAreErrorOrEfaultAndMixedMapPfnsAreError()
    {
        using var mm = new AddressSpace();
        mm.MmapPfn(Pages.Bytes(2), Prot.ReadWrite, VmFlags.Io | VmFlags.PfnMap, 0x100000, out ulong io).ThrowIfError();
        HmmRange snap = NewRange(mm, io, 2, defaultFlags: 0);
        Assert.Equal(0, FaultOnce(snap));
        Assert.All(snap.HmmPfns, v => Assert.Equal(HmmPfn.Error, v));
        Assert.Equal(-Errno.EFAULT, DriverLoop(NewRange(mm, io, 2)));
        mm.MmapPfn(Pages.Bytes(2), Prot.ReadWrite, VmFlags.MixedMap, 0x200000, out ulong mixed).ThrowIfError();
        HmmRange m = NewRange(mm, mixed, 2, defaultFlags: 0);
        Assert.Equal(0, FaultOnce(m));
        Assert.All(m.HmmPfns, v => Assert.Equal(HmmPfn.Error, v));
        Assert.Equal(-Errno.EFAULT, DriverLoop(NewRange(mm, mixed, 2)));
    }

    [Fact]
    public void ProtNoneVmaIsErrorOrEfault()
    {
        using var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, 2, Prot.None);
        HmmRange snap = NewRange(mm, a, 2, defaultFlags: 0);
        Assert.Equal(0, FaultOnce(snap));
        Assert.Equal(HmmPfn.Error, snap.HmmPfns[0]);
        Assert.Equal(-Errno.EFAULT, DriverLoop(NewRange(mm, a, 2)));
    }

    [Fact]
    public void WriteRequestOnReadOnlyVmaIsEpermBeforeAnyFault()
    {
        using var mm = new AddressSpace();
        ulong rw = Pages.MapAnon(mm, 2);
        mm.Mmap(rw + Pages.Bytes(2), Pages.Bytes(2), Prot.Read, MapFlags.Private | MapFlags.Anonymous | MapFlags.FixedNoReplace, null, 0, out _).ThrowIfError();
        HmmRange r = NewRange(mm, rw, 4, defaultFlags: HmmPfn.ReqFault | HmmPfn.ReqWrite);
        long faults = mm.Counters[Telemetry.MmEvent.Faults];
        Assert.Equal(-Errno.EPERM, FaultOnce(r));
        Assert.Equal(faults, mm.Counters[Telemetry.MmEvent.Faults]);
        Assert.All(r.HmmPfns, v => Assert.Equal(0UL, v)); // nothing stored either: every page needed a fault
    }

    [Fact]
    public void MovedSequenceReturnsEbusyBeforeTouchingAnyEntry()
    {
        using var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, 4);
        mm.CpuWrite(a, new byte[] { 1 });
        HmmRange r = NewRange(mm, a, 4, defaultFlags: 0);
        r.NotifierSeq = r.Notifier.ReadBegin(1000, TestContext.Current.CancellationToken);
        mm.Mprotect(a + Pages.Size, Pages.Size, Prot.Read).ThrowIfError(); // invalidates the range
        Array.Fill(r.HmmPfns, 0xABCDUL);
        mm.MmapLock.ReadLock();
        try
        {
            Assert.Equal(-Errno.EBUSY, HmmFault.RangeFault(r).Code);
        }
        finally
        {
            mm.MmapLock.ReadUnlock();
        }

        Assert.All(r.HmmPfns, v => Assert.Equal(0xABCDUL, v));
    }

    [Fact]
    public void CowWriteFaultRestartsTheCallerWithEbusyOnce()
    {
        using var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, 1);
        Pages.Read(mm, a); // zero page: a write request must COW it, which invalidates (CLEAR)
        HmmRange r = NewRange(mm, a, 1, defaultFlags: HmmPfn.ReqFault | HmmPfn.ReqWrite);
        Assert.Equal(-Errno.EBUSY, FaultOnce(r));
        Assert.Equal(0, FaultOnce(r));
        Assert.True(new HmmPfn(r.HmmPfns[0]).IsWritable);
        Assert.NotEqual(PhysicalMemory.ZeroPfn, new HmmPfn(r.HmmPfns[0]).Pfn);
    }

    [Fact]
    public void HugePmdReportsOrderNineOnEveryPage()
    {
        using var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, 1024);
        mm.Madvise(a, Pages.Bytes(1024), Advice.HugePage).ThrowIfError();
        mm.CpuWrite(a, new byte[] { 1 });
        HmmRange r = NewRange(mm, a + Pages.Bytes(10), 20, defaultFlags: 0);
        Assert.Equal(0, FaultOnce(r));
        ulong basePfn = mm.PageTable.FindHuge(a).Pfn;
        for (int i = 0; i < 20; i++)
        {
            var p = new HmmPfn(r.HmmPfns[i]);
            Assert.Equal(9, p.Order);
            Assert.True(p.IsValid && p.IsWritable);
            Assert.Equal(basePfn + 10 + (ulong)i, p.Pfn);
        }
    }

    [Fact]
    public void SwapAndMigrationEntriesAreZeroInSnapshotsAndFaultedOnRequest()
    {
        using var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, 2);
        mm.CpuWrite(a, Pages.Filled(5, 2 * 4096));
        Assert.True(mm.TestSwapOut(a));
        Assert.True(mm.TestStartMigration(a + Pages.Size));
        HmmRange snap = NewRange(mm, a, 2, defaultFlags: 0);
        Assert.Equal(0, FaultOnce(snap));
        Assert.Equal(new ulong[] { 0, 0 }, snap.HmmPfns);
        Assert.True(mm.TestFinishMigration(a + Pages.Size));
        HmmRange r = NewRange(mm, a, 2);
        Assert.Equal(0, DriverLoop(r));
        Assert.True(new HmmPfn(r.HmmPfns[0]).IsValid);
        Assert.Equal(5, Pages.Read(mm, a)[0]);
    }

    [Fact]
    public void OwnedDevicePrivatePagesAreReportedAndForeignOnesAreZero()
    {
        using var mm = new AddressSpace();
        var owner = new object();
        mm.DevicePagemap = new Pagemap(owner);
        ulong a = Pages.MapAnon(mm, 2);
        Assert.True(mm.TestInstall(a, Pte.SwapEntry(SwapType.DevicePrivateWrite, 0x777)));
        HmmRange mine = NewRange(mm, a, 1, defaultFlags: HmmPfn.ReqFault);
        mine.DevPrivateOwner = owner;
        Assert.Equal(0, FaultOnce(mine));
        Assert.Equal(HmmPfn.Valid | HmmPfn.Write | 0x777, mine.HmmPfns[0]);
        HmmRange foreign = NewRange(mm, a, 1, defaultFlags: 0);
        foreign.DevPrivateOwner = new object();
        Assert.Equal(0, FaultOnce(foreign));
        Assert.Equal(0UL, foreign.HmmPfns[0]);
    }

    [Fact]
    public void PoisonedPageIsEfaultWhenRequested()
    {
        using var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, 1);
        mm.CpuWrite(a, new byte[] { 1 });
        Assert.True(mm.TestPoison(a));
        Assert.Equal(-Errno.EFAULT, DriverLoop(NewRange(mm, a, 1)));
    }

    [Theory]
    [InlineData(FaultExtent.Kernel)]
    [InlineData(FaultExtent.Precise)]
    public void FaultExtentDecidesWhichPagesAreFaulted(FaultExtent extent)
    {
        using var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, 16);
        ulong b = Pages.MapAnon(mm, 1024); // 2 MiB aligned, in a PMD span of its own
        mm.CpuWrite(a, new byte[] { 1 }); // a leaf table exists for a; b is one hole
        foreach (ulong start in new[] { a, b })
        {
            HmmRange r = NewRange(mm, start, 16, defaultFlags: 0, mask: HmmPfn.ReqFault);
            r.Extent = extent;
            r.HmmPfns[3] = HmmPfn.ReqFault;
            r.HmmPfns[9] = HmmPfn.ReqFault;
            Assert.Equal(0, DriverLoop(r));
            Assert.True(new HmmPfn(r.HmmPfns[3]).IsValid && new HmmPfn(r.HmmPfns[9]).IsValid);
        }

        int Mapped(ulong start) => Enumerable.Range(0, 16).Count(i => !mm.PageTable.Read(start + Pages.Bytes(i)).IsNone);

        // Kernel: PTE level, from the first needing page to the chunk end (3..15, plus page 0 touched before);
        // a hole, the whole hole from its start. Precise: only pages 3 and 9.
        Assert.Equal(extent == FaultExtent.Kernel ? 14 : 3, Mapped(a));
        Assert.Equal(extent == FaultExtent.Kernel ? 16 : 2, Mapped(b));
    }

    [Fact]
    public void PartialOutputInvariantHoldsOnError()
    {
        using var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, 8);
        mm.CpuWrite(a, Pages.Filled(1, 3 * 4096));
        mm.Munmap(a + Pages.Bytes(5), Pages.Size).ThrowIfError();
        HmmRange r = NewRange(mm, a, 8, defaultFlags: 0, mask: HmmPfn.ReqFault);
        const ulong marker = HmmPfn.DmaMapped | 0x55;
        for (int i = 0; i < 8; i++)
        {
            r.HmmPfns[i] = marker;
        }

        r.HmmPfns[5] |= HmmPfn.ReqFault; // the hole needs a fault: -EFAULT there
        Assert.Equal(-Errno.EFAULT, DriverLoop(r));
        for (int i = 0; i < 5; i++)
        {
            Assert.True((r.HmmPfns[i] & HmmPfn.DmaMapped) != 0, "sticky bit lost");
            Assert.NotEqual(marker, r.HmmPfns[i]); // an output
        }

        Assert.Equal(marker | HmmPfn.ReqFault, r.HmmPfns[5]);
        Assert.Equal(marker, r.HmmPfns[6]);
    }

    [Fact]
    public void UnlockedVariantTakesTheLockAndHonoursCancellation()
    {
        using var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, 4);
        HmmRange r = NewRange(mm, a, 4);
        Assert.Equal(0, HmmFault.RangeFaultUnlocked(r, HmmFault.DefaultTimeoutMs, TestContext.Current.CancellationToken).Code);
        Assert.All(r.HmmPfns, v => Assert.True(new HmmPfn(v).IsValid));
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        Assert.Equal(-Errno.EINTR, HmmFault.RangeFaultUnlocked(r, 0, cts.Token).Code);
        Assert.False(mm.MmapLock.IsLocked);
    }

    private sealed class Pagemap(object owner) : IDevicePagemapOwner
    {
        public object Owner => owner;

        public VmFault MigrateToRam(Vma vma, ulong address, Pte entry) => VmFault.SigBus;
    }
}
