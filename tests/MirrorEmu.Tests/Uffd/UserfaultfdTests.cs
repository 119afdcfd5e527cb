using MirrorEmu.Mm;
using MirrorEmu.Telemetry;
using MirrorEmu.Tests.Helpers;
using MirrorEmu.Uffd;

namespace MirrorEmu.Tests.Uffd;

/// <summary>userfaultfd, in the shapes of the kernel's uffd selftests: handshake, registration, faults, resolutions, events, monitors.</summary>
public class UserfaultfdTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public void MissingFaultIsResolvedByCopyFromTheMonitorThread()
    {
        using var f = new UffdFixture();
        using var monitor = new UffdMonitor(f.Ctx, new UffdMonitorOptions { Fill = new PatternFill(0xAB) });
        byte[] page = Pages.Read(f.Mm, f.Address + Pages.Size);
        Assert.All(page, b => Assert.Equal(0xAB, b));
        Assert.Equal(1, f.Ctx.Stats[UffdStat.FaultsQueued]);
        Assert.Equal(1, f.Ctx.Stats[UffdStat.RoundTrips]);
        Assert.Equal(1, f.Ctx.Stats[UffdStat.PagesCopied]);
        Assert.Equal(1, f.Ctx.Stats[UffdStat.Wakeups]);
        Assert.Equal(1, f.Mm.Counters[MmEvent.LockDrops]);
        Assert.True(f.Mm.PageTable.Read(f.Address + Pages.Size).IsWritable);
        Assert.True(f.Mm.PageTable.Read(f.Address).IsNone, "only the faulting page was resolved");
    }

    [Fact]
    public void CopyOverAMappedPageIsEexistWithThePartialCount()
    {
        using var f = new UffdFixture();
        Assert.Equal(0, f.Ctx.Copy(f.Address + Pages.Size, Pages.Filled(1), UffdCopyMode.None, out ulong one));
        Assert.Equal(Pages.Size, one);
        Assert.Equal(-Errno.EEXIST, f.Ctx.Copy(f.Address, Pages.Filled(2, 3 * 4096), UffdCopyMode.None, out ulong copied));
        Assert.Equal(Pages.Size, copied);
        Assert.Equal(2, Pages.Read(f.Mm, f.Address)[0]);
        Assert.Equal(1, Pages.Read(f.Mm, f.Address + Pages.Size)[0]);
        Assert.True(f.Mm.PageTable.Read(f.Address + 2 * Pages.Size).IsNone);
        Assert.Equal(1, f.Ctx.Stats[UffdStat.ResolveEexist]);
        Assert.Equal(2, f.Mm.Memory.FramesInUse); // the frames not used went back
    }

    [Fact]
    public void CopyChecksAlignmentModeAndRegistration()
    {
        using var f = new UffdFixture(4);
        Assert.Equal(-Errno.EINVAL, f.Ctx.Copy(f.Address + 1, Pages.Filled(0), UffdCopyMode.None, out _));
        Assert.Equal(-Errno.EINVAL, f.Ctx.Copy(f.Address, new byte[100], UffdCopyMode.None, out _));
        Assert.Equal(-Errno.EINVAL, f.Ctx.Copy(f.Address, Pages.Filled(0), (UffdCopyMode)8, out _));
        Assert.Equal(-Errno.EINVAL, f.Ctx.Copy(f.Address, Pages.Filled(0), UffdCopyMode.WriteProtect, out _)); // not WP-registered
        Assert.Equal(-Errno.ENOENT, f.Ctx.Copy(f.Address + Pages.Bytes(4), Pages.Filled(0), UffdCopyMode.None, out _));
    }

    [Fact]
    public void ZeroPageMapsTheZeroPage()
    {
        using var f = new UffdFixture();
        Assert.Equal(0, f.Ctx.ZeroPage(f.Address, Pages.Bytes(2), UffdCopyMode.None, out ulong zeroed));
        Assert.Equal(Pages.Bytes(2), zeroed);
        Assert.Equal(PhysicalMemory.ZeroPfn, f.Mm.PageTable.Read(f.Address).Pfn);
        Assert.Equal(0, Pages.Read(f.Mm, f.Address + Pages.Size)[7]);
        Assert.Equal(0, f.Mm.Memory.FramesInUse);
    }

    [Fact]
    public void WriteProtectFaultBlocksUntilUnprotected()
    {
        using var f = new UffdFixture(4, UffdFeatures.PagefaultFlagWp, UffdRegisterMode.Missing | UffdRegisterMode.WriteProtect);
        Assert.Equal(0, f.Ctx.Copy(f.Address, Pages.Filled(3), UffdCopyMode.None, out _));
        Assert.Equal(0, f.Ctx.WriteProtect(f.Address, Pages.Size, protect: true));
        Assert.True(f.Mm.PageTable.Read(f.Address).IsUffdWp);
        var writer = new Worker(() => f.Mm.CpuWrite(f.Address + 5, new byte[] { 9 }));
        var msgs = new UffdMsg[4];
        Assert.Equal(0, f.Ctx.Read(msgs, out int n, 5000, Ct));
        Assert.Equal(UffdEventType.Pagefault, msgs[0].Event);
        Assert.Equal(UffdPagefaultFlags.Write | UffdPagefaultFlags.WriteProtect, msgs[0].Flags);
        Assert.False(writer.Join(50), "the write went through a write-protected page");
        Assert.Equal(0, f.Ctx.WriteProtect(f.Address, Pages.Size, protect: false));
        Assert.True(writer.Join(), "the writer was not woken by un-protecting");
        Assert.Null(writer.Error);
        Assert.Equal(9, Pages.Read(f.Mm, f.Address)[5]);
        Assert.Equal(3, Pages.Read(f.Mm, f.Address)[0]);
    }

    [Fact]
    public void MinorFaultIsResolvedByContinue()
    {
        var mm = new AddressSpace();
        using var file = new MemFile(mm.Memory, Pages.Bytes(4), "shm");
        file.Write(Pages.Size, Pages.Filled(0x5C));
        mm.Mmap(0, Pages.Bytes(4), Prot.ReadWrite, MapFlags.Shared, file, 0, out ulong a).ThrowIfError();
        using var ctx = new Userfaultfd(mm);
        ctx.Api(UffdApi.Version, UffdFeatures.MinorShmem, out _).ThrowIfError();
        Assert.True(ctx.Register(a, Pages.Bytes(4), UffdRegisterMode.Minor, out UffdIoctls ioctls).IsOk);
        Assert.True((ioctls & UffdIoctls.Continue) != 0);
        var reader = new Worker(() => Assert.Equal(0x5C, Pages.Read(mm, a + Pages.Size)[100]));
        var msgs = new UffdMsg[1];
        Assert.Equal(0, ctx.Read(msgs, out _, 5000, Ct));
        Assert.Equal(UffdPagefaultFlags.Minor, msgs[0].Flags);
        Assert.Equal(0, ctx.Continue(a + Pages.Size, Pages.Size, UffdCopyMode.None, out ulong mapped));
        Assert.Equal(Pages.Size, mapped);
        Assert.True(reader.Join());
        Assert.Null(reader.Error);
        Assert.Equal(-Errno.EFAULT, ctx.Continue(a + Pages.Bytes(2), Pages.Size, UffdCopyMode.None, out _)); // not in the page cache
        ctx.Dispose();
        mm.Dispose();
    }

    [Fact]
    public void ForkEventGivesTheChildItsOwnContext()
    {
        using var f = new UffdFixture(4, UffdFeatures.EventFork);
        Assert.Equal(0, f.Ctx.Copy(f.Address, Pages.Filled(7), UffdCopyMode.None, out _));
        using AddressSpace child = f.Mm.Fork();
        var msgs = new UffdMsg[4];
        Assert.Equal(0, f.Ctx.Read(msgs, out int n, 0, Ct));
        Assert.Equal(1, n);
        Assert.Equal(UffdEventType.Fork, msgs[0].Event);
        Userfaultfd childCtx = msgs[0].Child!;
        Assert.Same(child, childCtx.Mm);
        Assert.Equal(7, Pages.Read(child, f.Address)[0]); // inherited page
        using (new UffdMonitor(childCtx, new UffdMonitorOptions { Fill = new PatternFill(0x42) }))
        {
            Assert.Equal(0x42, Pages.Read(child, f.Address + Pages.Size)[0]);
        }

        Assert.Equal(1, childCtx.Stats[UffdStat.RoundTrips]);
        Assert.Equal(0, f.Ctx.Stats[UffdStat.RoundTrips]);
        childCtx.Dispose();
    }

    [Fact]
    public void WithoutEventForkTheChildLosesTheRegistration()
    {
        using var f = new UffdFixture(2);
        using AddressSpace child = f.Mm.Fork();
        Assert.Equal(0, Pages.Read(child, f.Address)[0]); // an ordinary zero-page fault, no message
        Assert.Equal(0, f.Ctx.Stats[UffdStat.FaultsQueued]);
    }

    [Fact]
    public void TwoThreadsFaultingOnePageAreBothWokenByOneCopy()
    {
        using var f = new UffdFixture();
        var a = new Worker(() => Assert.Equal(0x11, Pages.Read(f.Mm, f.Address)[0]));
        var b = new Worker(() => Assert.Equal(0x11, Pages.Read(f.Mm, f.Address + 64, 64)[0]));
        var msgs = new UffdMsg[4];
        int got = 0;
        while (got < 2)
        {
            Assert.Equal(0, f.Ctx.Read(msgs.AsSpan(got), out int n, 5000, Ct));
            got += n;
        }

        Assert.Equal(msgs[0].Address, msgs[1].Address);
        Assert.Equal(0, f.Ctx.Copy(f.Address, Pages.Filled(0x11), UffdCopyMode.None, out _));
        Assert.True(a.Join() && b.Join(), "one COPY must wake both waiters");
        Assert.Null(a.Error);
        Assert.Null(b.Error);
        Assert.Equal(2, f.Ctx.Stats[UffdStat.Wakeups]);
    }

    [Fact]
    public void FaultWithoutAllowRetryGetsSigbus()
    {
        using var f = new UffdFixture();
        f.Mm.MmapLock.ReadLock();
        try
        {
            Vma vma = f.Mm.VmaLookup(f.Address)!;
            Assert.Equal(VmFault.SigBus, FaultHandler.HandleMmFault(vma, f.Address, FaultFlags.Remote | FaultFlags.Write));
            Assert.True(f.Mm.MmapLock.IsReadLocked, "SIGBUS must return with the lock held");
        }
        finally
        {
            f.Mm.MmapLock.ReadUnlock();
        }

        Assert.Equal(0, f.Ctx.Stats[UffdStat.FaultsQueued]);
        Assert.Equal(1, f.Ctx.Stats[UffdStat.FaultsSigbus]);
    }

    [Fact]
    public void RetryNowaitQueuesWithoutDroppingTheLock()
    {
        using var f = new UffdFixture();
        f.Mm.MmapLock.ReadLock();
        try
        {
            Vma vma = f.Mm.VmaLookup(f.Address)!;
            Assert.Equal(VmFault.Retry, FaultHandler.HandleMmFault(vma, f.Address, FaultFlags.AllowRetry | FaultFlags.RetryNoWait));
            Assert.True(f.Mm.MmapLock.IsReadLocked);
        }
        finally
        {
            f.Mm.MmapLock.ReadUnlock();
        }

        var msgs = new UffdMsg[2];
        Assert.Equal(0, f.Ctx.Read(msgs, out int n, 0, Ct));
        Assert.Equal(1, n);
        Assert.Equal(f.Address, msgs[0].Address);
    }

    [Fact]
    public void SigbusFeatureAnswersFaultsAtOnce()
    {
        using var f = new UffdFixture(2, UffdFeatures.SigBus);
        var e = Assert.Throws<MemoryFaultException>(() => Pages.Read(f.Mm, f.Address));
        Assert.Equal(Signal.SIGBUS, e.Signal);
    }

    [Fact]
    public void MonitorThatGoesAwayFailsEveryWaiterWithoutAHang()
    {
        using var f = new UffdFixture();
        var workers = Enumerable.Range(0, 3).Select(i => new Worker(() => Pages.Read(f.Mm, f.Address + Pages.Bytes(i)))).ToArray();
        SpinWait.SpinUntil(() => f.Ctx.Stats[UffdStat.FaultsQueued] == 3, 5000);
        var monitor = new UffdMonitor(f.Ctx, new UffdMonitorOptions { Fill = new SlowFill() });
        monitor.Dispose();
        foreach (Worker w in workers)
        {
            Assert.True(w.Join(5000), "a waiter hung after its monitor went away");
            Assert.True(w.Error is MemoryFaultException { Signal: Signal.SIGBUS } || w.Error is null, $"unexpected {w.Error}");
        }

        Assert.Throws<MemoryFaultException>(() => Pages.Read(f.Mm, f.Address + Pages.Bytes(5)));
    }

    [Fact]
    public void WaiterWithNoMonitorTimesOutWithSigbus()
    {
        using var f = new UffdFixture();
        f.Ctx.FaultTimeoutMs = 100;
        var e = Assert.Throws<MemoryFaultException>(() => Pages.Read(f.Mm, f.Address));
        Assert.Equal(Signal.SIGBUS, e.Signal);
        Assert.Equal(1, f.Ctx.Stats[UffdStat.FaultTimeouts]);
        Assert.False(f.Mm.MmapLock.IsLocked);
    }

    [Fact]
    public void ClosingTheUserfaultfdLetsWaitersFaultNormally()
    {
        using var f = new UffdFixture();
        var w = new Worker(() => Assert.Equal(0, Pages.Read(f.Mm, f.Address)[0]));
        SpinWait.SpinUntil(() => f.Ctx.Stats[UffdStat.FaultsQueued] == 1, 5000);
        f.Ctx.Dispose();
        Assert.True(w.Join(), "release did not wake the waiter");
        Assert.Null(w.Error);
        Assert.Null(f.Mm.SnapshotVmas()[0].Userfault);
    }

    [Fact]
    public void FatalSignalEndsAKillableWait()
    {
        using var f = new UffdFixture();
        using var cts = new CancellationTokenSource();
        var w = new Worker(() =>
        {
            using (CurrentTask.Enter(cts.Token))
            {
                Pages.Read(f.Mm, f.Address);
            }
        });
        SpinWait.SpinUntil(() => f.Ctx.Stats[UffdStat.FaultsQueued] == 1, 5000);
        cts.Cancel();
        Assert.True(w.Join(5000));
        Assert.Equal(Signal.SIGKILL, Assert.IsType<MemoryFaultException>(w.Error).Signal);
    }

    [Fact]
    public void CopyRacingMunmapGetsAnErrorAndLosesNothing()
    {
        int seed = TestSeeds.Get();
        var rng = new Random(seed);
        for (int round = 0; round < 20; round++)
        {
            using var f = new UffdFixture(256);
            int rc = 0;
            ulong total = 0;
            var copier = new Worker(() =>
            {
                for (int i = 0; i < 256 && rc == 0; i += 8)
                {
                    rc = f.Ctx.Copy(f.Address + Pages.Bytes(i), Pages.Filled((byte)i, 8 * 4096), UffdCopyMode.None, out ulong c);
                    total += c;
                }
            });
            Thread.SpinWait(rng.Next(0, 20_000));
            Assert.True(f.Mm.Munmap(f.Address, Pages.Bytes(256)).IsOk);
            Assert.True(copier.Join());
            Assert.Null(copier.Error);
            Assert.True(rc is 0 or -Errno.ENOENT, $"round {round}: copy ended with {Errno.Name(rc)}");
            Assert.True(total <= Pages.Bytes(256));
            Assert.Equal(0, f.Mm.Memory.FramesInUse); // every copied frame was freed by the unmap, none leaked
        }
    }

    [Fact]
    public void NonCooperativeEventsAreDeliveredAndHoldOffResolutions()
    {
        using var f = new UffdFixture(8, UffdFeatures.EventRemap | UffdFeatures.EventRemove | UffdFeatures.EventUnmap);
        Assert.Equal(0, f.Ctx.Copy(f.Address, Pages.Filled(1, 2 * 4096), UffdCopyMode.None, out _));
        f.Mm.Madvise(f.Address, Pages.Bytes(2), Advice.DontNeed).ThrowIfError();
        Assert.Equal(1, f.Ctx.MmapChanging);
        Assert.Equal(-Errno.EAGAIN, f.Ctx.Copy(f.Address, Pages.Filled(1), UffdCopyMode.None, out _));
        f.Mm.Mremap(f.Address, Pages.Bytes(4), Pages.Bytes(4), MremapFlags.MayMove | MremapFlags.Fixed, 0x6000_0000, out _).ThrowIfError();
        f.Mm.Munmap(f.Address + Pages.Bytes(6), Pages.Size).ThrowIfError();
        var msgs = new UffdMsg[8];
        Assert.Equal(0, f.Ctx.Read(msgs, out int n, 0, Ct));
        Assert.Equal(4, n);
        Assert.Equal(new UffdMsg(UffdEventType.Remove, f.Address, Arg: f.Address + Pages.Bytes(2)), msgs[0]);
        Assert.Equal(new UffdMsg(UffdEventType.Remap, f.Address, RunLength: Pages.Bytes(4), Arg: 0x6000_0000), msgs[1]);
        // Linux unmaps the moved range after REMAP, and a registered VMA there raises UNMAP too (the differential test checks it).
        Assert.Equal(new UffdMsg(UffdEventType.Unmap, f.Address, Arg: f.Address + Pages.Bytes(4)), msgs[2]);
        Assert.Equal(new UffdMsg(UffdEventType.Unmap, f.Address + Pages.Bytes(6), Arg: f.Address + Pages.Bytes(7)), msgs[3]);
        Assert.Equal(0, f.Ctx.MmapChanging);
        Assert.Equal(0, f.Ctx.Copy(0x6000_0000, Pages.Filled(1), UffdCopyMode.None, out _)); // the moved VMA kept its registration
    }

    [Fact]
    public void HandshakeAndRegistrationErrorsFollowTheKernel()
    {
        using var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, 4);
        using var ctx = new Userfaultfd(mm);
        Assert.Equal(-Errno.EINVAL, ctx.Register(a, Pages.Size, UffdRegisterMode.Missing, out _).Code); // before the API
        Assert.Equal(-Errno.EINVAL, ctx.Api(0xAB, UffdFeatures.None, out _).Code);
        Assert.Equal(-Errno.EINVAL, ctx.Api(UffdApi.Version, (UffdFeatures)(1UL << 40), out _).Code);
        Assert.True(ctx.Api(UffdApi.Version, UffdFeatures.ThreadId, out UffdFeatures supported).IsOk);
        Assert.Equal(UffdFeatures.Supported, supported);
        Assert.Equal(-Errno.EINVAL, ctx.Api(UffdApi.Version, UffdFeatures.None, out _).Code);
        Assert.Equal(-Errno.EINVAL, ctx.Register(a + 1, Pages.Size, UffdRegisterMode.Missing, out _).Code);
        Assert.Equal(-Errno.EINVAL, ctx.Register(a, 0, UffdRegisterMode.Missing, out _).Code);
        Assert.Equal(-Errno.EINVAL, ctx.Register(a, Pages.Size, UffdRegisterMode.None, out _).Code);
        Assert.Equal(-Errno.EINVAL, ctx.Register(a + Pages.Bytes(8), Pages.Size, UffdRegisterMode.Missing, out _).Code);
        Assert.Equal(-Errno.EINVAL, ctx.Register(a, Pages.Size, UffdRegisterMode.Minor, out _).Code); // anonymous
        Assert.True(ctx.Register(a, Pages.Bytes(2), UffdRegisterMode.Missing, out UffdIoctls ioctls).IsOk);
        Assert.Equal(UffdIoctls.Wake | UffdIoctls.Copy | UffdIoctls.ZeroPage | UffdIoctls.Move | UffdIoctls.WriteProtect, ioctls);
        Assert.Equal(2, mm.VmaCount); // split at the registration's end
        using var other = new Userfaultfd(mm);
        other.Api(UffdApi.Version, UffdFeatures.None, out _).ThrowIfError();
        Assert.Equal(-Errno.EBUSY, other.Register(a, Pages.Bytes(4), UffdRegisterMode.Missing, out _).Code);
        Assert.True(ctx.Unregister(a, Pages.Bytes(2)).IsOk);
        Assert.Equal(1, mm.VmaCount); // merged back
    }

    [Fact]
    public void ThreadIdFeatureNamesTheFaultingThread()
    {
        using var f = new UffdFixture(2, UffdFeatures.ThreadId);
        int tid = 0;
        var w = new Worker(() =>
        {
            tid = Environment.CurrentManagedThreadId;
            Pages.Read(f.Mm, f.Address);
        });
        var msgs = new UffdMsg[1];
        Assert.Equal(0, f.Ctx.Read(msgs, out _, 5000, Ct));
        Assert.Equal(0, f.Ctx.ZeroPage(f.Address, Pages.Size, UffdCopyMode.None, out _));
        Assert.True(w.Join());
        Assert.Equal(tid, msgs[0].ThreadId);
    }

    [Fact]
    public void MoveTakesThePageWithoutCopying()
    {
        using var f = new UffdFixture(4, UffdFeatures.Move);
        ulong src = Pages.MapAnon(f.Mm, 2);
        f.Mm.CpuWrite(src, Pages.Filled(0x3C));
        ulong pfn = f.Mm.PageTable.Read(src).Pfn;
        Assert.Equal(0, f.Ctx.Move(f.Address, src, Pages.Size, UffdCopyMode.None, out ulong moved));
        Assert.Equal(Pages.Size, moved);
        Assert.Equal(pfn, f.Mm.PageTable.Read(f.Address).Pfn);
        Assert.True(f.Mm.PageTable.Read(src).IsNone);
        Assert.Equal(0x3C, Pages.Read(f.Mm, f.Address)[9]);
        Assert.Equal(-Errno.ENOENT, f.Ctx.Move(f.Address + Pages.Size, src + Pages.Size, Pages.Size, UffdCopyMode.None, out _));
        Assert.Equal(0, f.Ctx.Move(f.Address + Pages.Size, src + Pages.Size, Pages.Size, Userfaultfd.MoveAllowSrcHoles, out _));
    }

    [Fact]
    public void WpUnpopulatedMakesTheFirstWriteOfAnEmptyPageFault()
    {
        using var f = new UffdFixture(2, UffdFeatures.WpUnpopulated, UffdRegisterMode.WriteProtect);
        Assert.Equal(0, f.Ctx.WriteProtect(f.Address, Pages.Size, protect: true));
        Assert.Equal(SwapType.Marker, f.Mm.PageTable.Read(f.Address).Swap);
        var w = new Worker(() => f.Mm.CpuWrite(f.Address, new byte[] { 4 }));
        var msgs = new UffdMsg[1];
        Assert.Equal(0, f.Ctx.Read(msgs, out _, 5000, Ct));
        Assert.Equal(UffdPagefaultFlags.Write | UffdPagefaultFlags.WriteProtect, msgs[0].Flags);
        Assert.Equal(0, f.Ctx.WriteProtect(f.Address, Pages.Size, protect: false));
        Assert.True(w.Join());
        Assert.Null(w.Error);
        Assert.Equal(4, Pages.Read(f.Mm, f.Address)[0]);
    }

    [Fact]
    public void BlockResolutionFillsTheAlignedBlockInOneRoundTrip()
    {
        using var f = new UffdFixture(256);
        using var monitor = new UffdMonitor(f.Ctx, new UffdMonitorOptions { Fill = new SnapshotFill(f.Address, Enumerable.Range(0, 256 * 4096).Select(i => (byte)(i >> 12)).ToArray()), Resolution = UffdResolution.Block, BlockPages = 64 });
        for (int i = 0; i < 256; i++)
        {
            Assert.Equal((byte)i, Pages.Read(f.Mm, f.Address + Pages.Bytes(i))[17]);
        }

        Assert.Equal(4, f.Ctx.Stats[UffdStat.RoundTrips]);
        Assert.Equal(256, f.Ctx.Stats[UffdStat.MonitorPages]);
        Assert.Equal(4, monitor.PagesPerRoundTripHistogram[6]); // 64 pages: bucket [64, 128)
    }

    private sealed class SlowFill : IUffdFill
    {
        public void Fill(ulong address, Span<byte> destination) => Thread.Sleep(10);
    }
}
