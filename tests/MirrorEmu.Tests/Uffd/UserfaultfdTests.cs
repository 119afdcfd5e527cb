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
    public void CopyThatStopsAtAMappedPageIsEagainWithThePartialCount()
    {
        // Linux 6.18 (measured on the host): copy=4096 and -EAGAIN for a copy stopped by a mapped page after one page;
        // copy=-EEXIST and -EEXIST when the first page is mapped.
        using var f = new UffdFixture();
        Assert.Equal(0, f.Ctx.Copy(f.Address + Pages.Size, Pages.Filled(1), UffdCopyMode.None, out ulong one).Code);
        Assert.Equal(Pages.Size, one);
        KResult partial = f.Ctx.Copy(f.Address, Pages.Filled(2, 3 * 4096), UffdCopyMode.None, out ulong copied);
        Assert.Equal(-Errno.EAGAIN, partial.Code);
        Assert.Equal(Pages.Size, copied);
        Assert.Contains("did 0x1000 of 0x3000 bytes", partial.Message, StringComparison.Ordinal);
        Assert.Equal(-Errno.EEXIST, f.Ctx.Copy(f.Address + Pages.Size, Pages.Filled(3), UffdCopyMode.None, out ulong none).Code);
        Assert.Equal(0UL, none);
        Assert.Equal(2, Pages.Read(f.Mm, f.Address)[0]);
        Assert.Equal(1, Pages.Read(f.Mm, f.Address + Pages.Size)[0]);
        Assert.True(f.Mm.PageTable.Read(f.Address + 2 * Pages.Size).IsNone);
        Assert.Equal(2, f.Ctx.Stats[UffdStat.ResolveEexist]);
        Assert.Equal(2, f.Mm.Memory.FramesInUse); // the frames not used went back
    }

    [Fact]
    public void CopyIntoAPrivateFileMappingStopsWithEfaultAtTheFileEnd()
    {
        // Linux 6.18 (the differential test, sequence 10450 of MIRROREMU_SEED=7777): mfill_atomic_install_pte checks the
        // page against i_size before it looks at the entry, so a copy beyond a private file mapping's end is -EFAULT.
        using var mm = new AddressSpace();
        using var file = new MemFile(mm.Memory, Pages.Bytes(2));
        mm.Mmap(0, Pages.Bytes(4), Prot.Read, MapFlags.Private, file, 0, out ulong a).ThrowIfError();
        using var ctx = new Userfaultfd(mm);
        ctx.Api(UffdApi.Version, UffdFeatures.None, out _).ThrowIfError();
        ctx.Register(a, Pages.Bytes(4), UffdRegisterMode.Missing, out _).ThrowIfError();
        KResult partial = ctx.Copy(a + Pages.Size, Pages.Filled(3, 2 * 4096), UffdCopyMode.None, out ulong copied);
        Assert.Equal(-Errno.EAGAIN, partial.Code);
        Assert.Equal(Pages.Size, copied);
        Assert.Equal(-Errno.EFAULT, ctx.Copy(a + Pages.Bytes(2), Pages.Filled(4), UffdCopyMode.None, out ulong none).Code);
        Assert.Equal(0UL, none);
        Assert.True(mm.PageTable.Read(a + Pages.Bytes(2)).IsNone, "a page beyond the end of the file was filled");
        Assert.Equal(3, Pages.Read(mm, a + Pages.Size)[0]);
    }

    [Fact]
    public void WriteProtectStopsAtTheFirstVmaNotInWpModeAfterProtectingTheVmasBefore()
    {
        // Linux 6.18 (the differential test, sequence 101116 of MIRROREMU_SEED=100000): mwriteprotect_range protects VMA by
        // VMA and answers -ENOENT at the first one not registered in WP mode, leaving the ones before it protected.
        using var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, 4);
        mm.CpuWrite(a, Pages.Filled(1, 4 * 4096));
        using var ctx = new Userfaultfd(mm);
        ctx.Api(UffdApi.Version, UffdFeatures.None, out _).ThrowIfError();
        ctx.Register(a, Pages.Bytes(2), UffdRegisterMode.Missing | UffdRegisterMode.WriteProtect, out _).ThrowIfError();
        Assert.Equal(-Errno.ENOENT, ctx.WriteProtect(a, Pages.Bytes(4), UffdWriteProtectMode.WriteProtect).Code);
        Assert.True(mm.PageTable.Read(a).IsUffdWp && mm.PageTable.Read(a + Pages.Size).IsUffdWp, "the registered VMA before the unregistered one was not protected");
        Assert.False(mm.PageTable.Read(a + Pages.Bytes(2)).IsUffdWp, "a page of the unregistered VMA was protected");
    }

    [Fact]
    public void ContinueMapsCachedShmemPagesInAnyRegistrationModeAndIsEfaultForOthers()
    {
        // Linux 6.18 (the differential test, sequences 601036 and 501322): mfill_atomic asks only for shmem; a page not in
        // the page cache is -EFAULT, one beyond the file's end -EINVAL (shmem_get_folio), and anonymous memory -EINVAL.
        using var mm = new AddressSpace();
        using var file = new MemFile(mm.Memory, Pages.Bytes(3));
        file.Write(0, Pages.Filled(6));
        mm.Mmap(0, Pages.Bytes(4), Prot.ReadWrite, MapFlags.Shared, file, 0, out ulong a).ThrowIfError();
        ulong anon = Pages.MapAnon(mm, 1);
        using var ctx = new Userfaultfd(mm);
        ctx.Api(UffdApi.Version, UffdFeatures.MissingShmem, out _).ThrowIfError();
        ctx.Register(a, Pages.Bytes(4), UffdRegisterMode.Missing, out _).ThrowIfError();
        ctx.Register(anon, Pages.Size, UffdRegisterMode.Missing, out _).ThrowIfError();
        Assert.Equal(0, ctx.Continue(a, Pages.Size, UffdCopyMode.None, out ulong mapped).Code);
        Assert.Equal(Pages.Size, mapped);
        Assert.Equal(6, Pages.Read(mm, a)[0]);
        Assert.Equal(-Errno.EFAULT, ctx.Continue(a + Pages.Size, Pages.Size, UffdCopyMode.None, out _).Code);
        Assert.Equal(-Errno.EINVAL, ctx.Continue(a + Pages.Bytes(3), Pages.Size, UffdCopyMode.None, out _).Code);
        Assert.Equal(-Errno.EINVAL, ctx.Continue(anon, Pages.Size, UffdCopyMode.None, out _).Code);
    }

    [Fact]
    public void AnyContextOfTheAddressSpaceMayFillARegisteredVmaButNotAnUnregisteredOne()
    {
        // Linux 6.18 (the differential test, sequence 802154 of MIRROREMU_SEED=800000): find_dst_vma asks only that the VMA
        // be registered, with whichever context; UFFDIO_COPY through a second context of the same process fills it.
        using var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, 2);
        using var owner = new Userfaultfd(mm);
        using var other = new Userfaultfd(mm);
        owner.Api(UffdApi.Version, UffdFeatures.None, out _).ThrowIfError();
        other.Api(UffdApi.Version, UffdFeatures.None, out _).ThrowIfError();
        owner.Register(a, Pages.Size, UffdRegisterMode.Missing, out _).ThrowIfError();
        Assert.Equal(0, other.Copy(a, Pages.Filled(8), UffdCopyMode.None, out ulong copied).Code);
        Assert.Equal(Pages.Size, copied);
        Assert.Equal(8, Pages.Read(mm, a)[0]);
        Assert.Equal(-Errno.ENOENT, other.Copy(a + Pages.Size, Pages.Filled(9), UffdCopyMode.None, out _).Code);
    }

    [Fact]
    public void CopyAcrossTwoRegisteredVmasIsEnoentAndCopiesNothing()
    {
        // Linux 6.18: the destination must lie in one VMA (uffd_mfill_lock's validation), else -ENOENT with nothing copied.
        using var f = new UffdFixture(4);
        Assert.True(f.Mm.Mprotect(f.Address + Pages.Bytes(2), Pages.Bytes(2), Prot.Read | Prot.Write | Prot.Exec).IsOk);
        Assert.Equal(2, f.Mm.VmaCount);
        Assert.Equal(-Errno.ENOENT, f.Ctx.Copy(f.Address + Pages.Size, Pages.Filled(7, 2 * 4096), UffdCopyMode.None, out ulong copied).Code);
        Assert.Equal(0UL, copied);
        Assert.True(f.Mm.PageTable.Read(f.Address + Pages.Size).IsNone, "a page of the first VMA was filled");
        Assert.Equal(0, f.Mm.Memory.FramesInUse);
    }

    [Fact]
    public void CopyChecksAlignmentModeAndRegistration()
    {
        using var f = new UffdFixture(4);
        Assert.Equal(-Errno.EINVAL, f.Ctx.Copy(f.Address + 1, Pages.Filled(0), UffdCopyMode.None, out _).Code);
        Assert.Equal(-Errno.EINVAL, f.Ctx.Copy(f.Address, new byte[100], UffdCopyMode.None, out _).Code);
        Assert.Equal(-Errno.EINVAL, f.Ctx.Copy(f.Address, Pages.Filled(0), (UffdCopyMode)8, out _).Code);
        Assert.Equal(-Errno.EINVAL, f.Ctx.Copy(f.Address, Pages.Filled(0), UffdCopyMode.WriteProtect, out _).Code); // not WP-registered
        Assert.Equal(-Errno.ENOENT, f.Ctx.Copy(f.Address + Pages.Bytes(4), Pages.Filled(0), UffdCopyMode.None, out _).Code);
    }

    [Fact]
    public void ZeroPageMapsTheZeroPage()
    {
        using var f = new UffdFixture();
        Assert.Equal(0, f.Ctx.ZeroPage(f.Address, Pages.Bytes(2), UffdCopyMode.None, out ulong zeroed).Code);
        Assert.Equal(Pages.Bytes(2), zeroed);
        for (int i = 0; i < 2; i++)
        {
            Pte pte = f.Mm.PageTable.Read(f.Address + Pages.Bytes(i));
            Assert.True(pte.IsPresent && pte.IsSpecial && !pte.IsWritable, $"page {i}: {pte} is not the read-only special zero-page entry");
            Assert.Equal(PhysicalMemory.ZeroPfn, pte.Pfn);
        }

        Assert.Equal(0, Pages.Read(f.Mm, f.Address + Pages.Size)[7]);
        Assert.Equal(0, f.Mm.Memory.FramesInUse);
        f.Mm.CpuWrite(f.Address, [5]); // a write breaks away from the zero page into a private frame
        Assert.NotEqual(PhysicalMemory.ZeroPfn, f.Mm.PageTable.Read(f.Address).Pfn);
        Assert.Equal(0, Pages.Read(f.Mm, f.Address + Pages.Size)[0]);
    }

    [Fact]
    public void PoisonMakesAnAccessFailWithSigbus()
    {
        using var f = new UffdFixture(2, UffdFeatures.Poison);
        Assert.Equal(0, f.Ctx.Poison(f.Address, Pages.Size, UffdCopyMode.None, out ulong marked).Code);
        Assert.Equal(Pages.Size, marked);
        Assert.Equal(SwapType.Poisoned, f.Mm.PageTable.Read(f.Address).Swap);
        var e = Assert.Throws<MemoryFaultException>(() => Pages.Read(f.Mm, f.Address));
        Assert.Equal(Signal.SIGBUS, e.Signal);
        Assert.Contains("poison", e.Message, StringComparison.Ordinal);
        Assert.Equal(-Errno.EEXIST, f.Ctx.Poison(f.Address, Pages.Size, UffdCopyMode.None, out _).Code);
        Assert.Equal(-Errno.EINVAL, f.Ctx.Poison(f.Address + Pages.Size, Pages.Size, UffdCopyMode.WriteProtect, out _).Code);
    }

    [Fact]
    public void WriteProtectFaultBlocksUntilUnprotected()
    {
        using var f = new UffdFixture(4, UffdFeatures.PagefaultFlagWp, UffdRegisterMode.Missing | UffdRegisterMode.WriteProtect);
        Assert.Equal(0, f.Ctx.Copy(f.Address, Pages.Filled(3), UffdCopyMode.None, out _).Code);
        Assert.Equal(0, f.Ctx.WriteProtect(f.Address, Pages.Size, UffdWriteProtectMode.WriteProtect).Code);
        Assert.True(f.Mm.PageTable.Read(f.Address).IsUffdWp);
        var writer = new Worker(() => f.Mm.CpuWrite(f.Address + 5, new byte[] { 9 }));
        var msgs = new UffdMsg[4];
        Assert.Equal(0, f.Ctx.Read(msgs, out int n, 5000, Ct).Code);
        Assert.Equal(UffdEventType.Pagefault, msgs[0].Event);
        Assert.Equal(UffdPagefaultFlags.Write | UffdPagefaultFlags.WriteProtect, msgs[0].Flags);
        Assert.False(writer.Join(50), "the write went through a write-protected page");
        Assert.Equal(0, f.Ctx.WriteProtect(f.Address, Pages.Size, UffdWriteProtectMode.None).Code);
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
        Assert.Equal(0, ctx.Read(msgs, out _, 5000, Ct).Code);
        Assert.Equal(UffdPagefaultFlags.Minor, msgs[0].Flags);
        Assert.Equal(0, ctx.Continue(a + Pages.Size, Pages.Size, UffdCopyMode.None, out ulong mapped).Code);
        Assert.Equal(Pages.Size, mapped);
        Assert.True(reader.Join());
        Assert.Null(reader.Error);
        Assert.Equal(-Errno.EFAULT, ctx.Continue(a + Pages.Bytes(2), Pages.Size, UffdCopyMode.None, out _).Code); // not in the page cache
        ctx.Dispose();
        mm.Dispose();
    }

    [Fact]
    public void ForkEventGivesTheChildItsOwnContext()
    {
        using var f = new UffdFixture(4, UffdFeatures.EventFork);
        Assert.Equal(0, f.Ctx.Copy(f.Address, Pages.Filled(7), UffdCopyMode.None, out _).Code);
        using AddressSpace child = f.Mm.Fork();
        var msgs = new UffdMsg[4];
        Assert.Equal(0, f.Ctx.Read(msgs, out int n, 0, Ct).Code);
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
            Assert.Equal(0, f.Ctx.Read(msgs.AsSpan(got), out int n, 5000, Ct).Code);
            got += n;
        }

        Assert.Equal(msgs[0].Address, msgs[1].Address);
        Assert.Equal(0, f.Ctx.Copy(f.Address, Pages.Filled(0x11), UffdCopyMode.None, out _).Code);
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
    public void RetryNowaitAnswersRetryWithoutAMessageAndKeepsTheLock()
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

        // The kernel's handle_userfault returns VM_FAULT_RETRY for FAULT_FLAG_RETRY_NOWAIT before it queues anything.
        var msgs = new UffdMsg[2];
        Assert.Equal(-Errno.EAGAIN, f.Ctx.Read(msgs, out int n, 0, Ct).Code);
        Assert.Equal(0, n);
        Assert.Equal(0, f.Ctx.Stats[UffdStat.FaultsQueued]);
    }

    [Fact]
    public void SigbusFeatureAnswersFaultsAtOnce()
    {
        using var f = new UffdFixture(2, UffdFeatures.SigBus);
        var e = Assert.Throws<MemoryFaultException>(() => Pages.Read(f.Mm, f.Address));
        Assert.Equal(Signal.SIGBUS, e.Signal);
    }

    [Fact]
    public void MonitorThatCrashesFailsEveryWaiterWithSigbusWithoutAHang()
    {
        using var f = new UffdFixture();
        var workers = Enumerable.Range(0, 3).Select(i => new Worker(() => Pages.Read(f.Mm, f.Address + Pages.Bytes(i)))).ToArray();
        Assert.True(SpinWait.SpinUntil(() => f.Ctx.Stats[UffdStat.FaultsQueued] == 3, 5000), "the three faults never reached the queue");
        using var monitor = new UffdMonitor(f.Ctx, new UffdMonitorOptions { Fill = new ThrowingFill() });
        foreach (Worker w in workers)
        {
            Assert.True(w.Join(5000), "a waiter hung after its monitor died");
            Assert.Equal(Signal.SIGBUS, Assert.IsType<MemoryFaultException>(w.Error).Signal);
        }

        Assert.IsType<InvalidOperationException>(monitor.Failure);
        Assert.Equal(Signal.SIGBUS, Assert.Throws<MemoryFaultException>(() => Pages.Read(f.Mm, f.Address + Pages.Bytes(5))).Signal);
        Assert.All(Enumerable.Range(0, 3), i => Assert.True(f.Mm.PageTable.Read(f.Address + Pages.Bytes(i)).IsNone));
    }

    [Fact]
    public void DisposedMonitorMakesLaterFaultsSigbusAtOnce()
    {
        using var f = new UffdFixture();
        new UffdMonitor(f.Ctx).Dispose();
        var e = Assert.Throws<MemoryFaultException>(() => Pages.Read(f.Mm, f.Address));
        Assert.Equal(Signal.SIGBUS, e.Signal);
        Assert.Equal(0, f.Ctx.Stats[UffdStat.FaultsQueued]); // answered before any message was queued
        Assert.Equal(1, f.Ctx.Stats[UffdStat.FaultsSigbus]);
    }

    [Fact]
    public void ANewMonitorTakesOverFromADisposedOne()
    {
        using var f = new UffdFixture();
        var first = new UffdMonitor(f.Ctx);
        first.Dispose();
        first.Dispose(); // twice is harmless
        Assert.Equal(Signal.SIGBUS, Assert.Throws<MemoryFaultException>(() => Pages.Read(f.Mm, f.Address)).Signal);
        using var second = new UffdMonitor(f.Ctx, new UffdMonitorOptions { Fill = new PatternFill(0x6D) });
        Assert.Equal(0x6D, Pages.Read(f.Mm, f.Address)[0]); // served again
        Assert.Equal(1, f.Ctx.Stats[UffdStat.RoundTrips]);
    }

    [Fact]
    public void MonitorWhoseCopiesAlwaysFailEndsTheFaultWithSigbusAndSaysWhy()
    {
        // The pool has room for the page tables' zero page and one frame, which the first write takes:
        // every UFFDIO_COPY after that fails with -ENOMEM.
        using var mm = new AddressSpace(memoryLimitBytes: 2 * Pages.Size);
        ulong other = Pages.MapAnon(mm, 1);
        mm.CpuWrite(other, [1]);
        ulong a = Pages.MapAnon(mm, 4);
        using var ctx = new Userfaultfd(mm) { FaultTimeoutMs = 20_000 };
        ctx.Api(UffdApi.Version, UffdFeatures.None, out _).ThrowIfError();
        ctx.Register(a, Pages.Bytes(4), UffdRegisterMode.Missing, out _).ThrowIfError();
        using var monitor = new UffdMonitor(ctx, new UffdMonitorOptions { Fill = new PatternFill(3) });
        var started = System.Diagnostics.Stopwatch.StartNew();
        var e = Assert.Throws<MemoryFaultException>(() => Pages.Read(mm, a + Pages.Size));
        Assert.Equal(Signal.SIGBUS, e.Signal);
        Assert.True(started.ElapsedMilliseconds < 10_000, $"the failure took {started.ElapsedMilliseconds} ms to surface");
        Assert.Equal(1, monitor.FailedMessages);
        Assert.Contains("-ENOMEM", monitor.LastError, StringComparison.Ordinal);
        Assert.Equal(1, ctx.Stats[UffdStat.ResolveFailures]);
        Assert.Equal(1, ctx.Stats[UffdStat.FaultsQueued]); // one message, no retry loop
    }

    [Fact]
    public void MonitorThatWakesWithoutFillingEndsInSigbusAfterTheRetryLimit()
    {
        // A buggy monitor: it answers every message with UFFDIO_WAKE and fills nothing. The kernel would let the
        // thread fault for ever; the emulator gives up once the page made no progress for FaultRetryTimeoutMs.
        using var f = new UffdFixture();
        f.Mm.FaultRetryTimeoutMs = 200;
        using var stop = new CancellationTokenSource();
        var waker = new Worker(() =>
        {
            var msgs = new UffdMsg[8];
            while (!stop.IsCancellationRequested)
            {
                if (f.Ctx.Read(msgs, out int n, 20, stop.Token).IsOk)
                {
                    for (int i = 0; i < n; i++)
                    {
                        f.Ctx.Wake(msgs[i].Address, Pages.Size);
                    }
                }
            }
        });
        var e = Assert.Throws<MemoryFaultException>(() => Pages.Read(f.Mm, f.Address));
        stop.Cancel();
        Assert.True(waker.Join());
        Assert.Equal(Signal.SIGBUS, e.Signal);
        Assert.Contains("made no progress", e.Message, StringComparison.Ordinal);
        Assert.True(f.Ctx.Stats[UffdStat.FaultsQueued] > 1, "the fault was not retried at all");
        Assert.True(f.Mm.Counters[MmEvent.FaultRetries] > 0);
    }

    [Fact]
    public void FaultTimeoutAcceptsInfiniteAndRejectsNegativeValues()
    {
        using var f = new UffdFixture();
        f.Ctx.FaultTimeoutMs = Timeout.Infinite;
        Assert.Equal(Timeout.Infinite, f.Ctx.FaultTimeoutMs);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => f.Ctx.FaultTimeoutMs = -2);
        Assert.Contains("FaultTimeoutMs=-2", e.Message, StringComparison.Ordinal);
        Assert.Equal(Timeout.Infinite, f.Ctx.FaultTimeoutMs);
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
        Assert.True(SpinWait.SpinUntil(() => f.Ctx.Stats[UffdStat.FaultsQueued] == 1, 5000), "the fault never reached the queue");
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
        Assert.True(SpinWait.SpinUntil(() => f.Ctx.Stats[UffdStat.FaultsQueued] == 1, 5000), "the fault never reached the queue");
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
                    rc = f.Ctx.Copy(f.Address + Pages.Bytes(i), Pages.Filled((byte)i, 8 * 4096), UffdCopyMode.None, out ulong c).Code;
                    total += c;
                }
            });
            Thread.SpinWait(rng.Next(0, 20_000));
            Assert.True(f.Mm.Munmap(f.Address, Pages.Bytes(256)).IsOk);
            Assert.True(copier.Join());
            Assert.Null(copier.Error);
            Assert.True(rc is 0 or -Errno.ENOENT or -Errno.EAGAIN, $"round {round}: copy ended with {Errno.Name(rc)}");
            Assert.True(total <= Pages.Bytes(256));
            Assert.Equal(0, f.Mm.Memory.FramesInUse); // every copied frame was freed by the unmap, none leaked
        }
    }

    [Fact]
    public void NonCooperativeEventsAreDeliveredAndHoldOffResolutions()
    {
        using var f = new UffdFixture(8, UffdFeatures.EventRemap | UffdFeatures.EventRemove | UffdFeatures.EventUnmap);
        Assert.Equal(0, f.Ctx.Copy(f.Address, Pages.Filled(1, 2 * 4096), UffdCopyMode.None, out _).Code);
        f.Mm.Madvise(f.Address, Pages.Bytes(2), Advice.DontNeed).ThrowIfError();
        Assert.Equal(1, f.Ctx.MmapChanging);
        Assert.Equal(-Errno.EAGAIN, f.Ctx.Copy(f.Address, Pages.Filled(1), UffdCopyMode.None, out _).Code);
        f.Mm.Mremap(f.Address, Pages.Bytes(4), Pages.Bytes(4), MremapFlags.MayMove | MremapFlags.Fixed, 0x6000_0000, out _).ThrowIfError();
        f.Mm.Munmap(f.Address + Pages.Bytes(6), Pages.Size).ThrowIfError();
        var msgs = new UffdMsg[8];
        Assert.Equal(0, f.Ctx.Read(msgs, out int n, 0, Ct).Code);
        Assert.Equal(4, n);
        Assert.Equal(new UffdMsg(UffdEventType.Remove, f.Address, Arg: f.Address + Pages.Bytes(2)), msgs[0]);
        Assert.Equal(new UffdMsg(UffdEventType.Remap, f.Address, Arg: 0x6000_0000, Length: Pages.Bytes(4)), msgs[1]);
        // Linux unmaps the moved range after REMAP, and a registered VMA there raises UNMAP too (the differential test checks it).
        Assert.Equal(new UffdMsg(UffdEventType.Unmap, f.Address, Arg: f.Address + Pages.Bytes(4)), msgs[2]);
        Assert.Equal(new UffdMsg(UffdEventType.Unmap, f.Address + Pages.Bytes(6), Arg: f.Address + Pages.Bytes(7)), msgs[3]);
        Assert.Equal(0, f.Ctx.MmapChanging);
        Assert.Equal(0, f.Ctx.Copy(0x6000_0000, Pages.Filled(1), UffdCopyMode.None, out _).Code); // the moved VMA kept its registration
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
        Assert.Equal(0x13CUL, (ulong)ioctls); // Linux 6.18: WAKE | COPY | ZEROPAGE | MOVE | POISON
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
        Assert.Equal(0, f.Ctx.Read(msgs, out _, 5000, Ct).Code);
        Assert.Equal(0, f.Ctx.ZeroPage(f.Address, Pages.Size, UffdCopyMode.None, out _).Code);
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
        Assert.Equal(0, f.Ctx.Move(f.Address, src, Pages.Size, UffdMoveMode.None, out ulong moved).Code);
        Assert.Equal(Pages.Size, moved);
        Assert.Equal(pfn, f.Mm.PageTable.Read(f.Address).Pfn);
        Assert.True(f.Mm.PageTable.Read(src).IsNone);
        Assert.Equal(0x3C, Pages.Read(f.Mm, f.Address)[9]);
        Assert.Equal(-Errno.ENOENT, f.Ctx.Move(f.Address + Pages.Size, src + Pages.Size, Pages.Size, UffdMoveMode.None, out _).Code);
        Assert.Equal(0, f.Ctx.Move(f.Address + Pages.Size, src + Pages.Size, Pages.Size, UffdMoveMode.AllowSrcHoles, out _).Code);
    }

    [Fact]
    public void WpUnpopulatedMakesTheFirstWriteOfAnEmptyPageFault()
    {
        using var f = new UffdFixture(2, UffdFeatures.WpUnpopulated, UffdRegisterMode.WriteProtect);
        Assert.Equal(0, f.Ctx.WriteProtect(f.Address, Pages.Size, UffdWriteProtectMode.WriteProtect).Code);
        Assert.Equal(SwapType.Marker, f.Mm.PageTable.Read(f.Address).Swap);
        var w = new Worker(() => f.Mm.CpuWrite(f.Address, new byte[] { 4 }));
        var msgs = new UffdMsg[1];
        Assert.Equal(0, f.Ctx.Read(msgs, out _, 5000, Ct).Code);
        Assert.Equal(UffdPagefaultFlags.Write | UffdPagefaultFlags.WriteProtect, msgs[0].Flags);
        Assert.Equal(0, f.Ctx.WriteProtect(f.Address, Pages.Size, UffdWriteProtectMode.None).Code);
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
        Assert.Equal(4, monitor.PagesPerRoundTrip.Snapshot()[6]); // 64 pages: bucket [64, 128)
    }

    [Fact]
    public void RegisterReportsEachIoctlOnlyForItsOwnMode()
    {
        // Values measured on the host (Linux 6.18): anon MISSING 0x13c, anon WP or MISSING|WP 0x17c, shmem MINOR 0x1bc.
        using var mm = new AddressSpace();
        ulong anon = Pages.MapAnon(mm, 4);
        ulong shm = Pages.MapAnon(mm, 4, flags: MapFlags.Shared);
        using var ctx = new Userfaultfd(mm);
        ctx.Api(UffdApi.Version, UffdFeatures.MissingShmem | UffdFeatures.MinorShmem | UffdFeatures.PagefaultFlagWp, out _).ThrowIfError();
        Assert.True(ctx.Register(anon, Pages.Bytes(4), UffdRegisterMode.WriteProtect, out UffdIoctls wp).IsOk);
        Assert.Equal(0x17CUL, (ulong)wp);
        Assert.True(ctx.Unregister(anon, Pages.Bytes(4)).IsOk);
        Assert.True(ctx.Register(anon, Pages.Bytes(4), UffdRegisterMode.Missing | UffdRegisterMode.WriteProtect, out UffdIoctls both).IsOk);
        Assert.Equal(0x17CUL, (ulong)both);
        Assert.True(ctx.Register(shm, Pages.Bytes(4), UffdRegisterMode.Missing, out UffdIoctls shmMissing).IsOk);
        Assert.Equal(0x13CUL, (ulong)shmMissing); // no CONTINUE without MINOR, even on shmem
        Assert.True(ctx.Unregister(shm, Pages.Bytes(4)).IsOk);
        Assert.True(ctx.Register(shm, Pages.Bytes(4), UffdRegisterMode.Minor, out UffdIoctls minor).IsOk);
        Assert.Equal(0x1BCUL, (ulong)minor);
    }

    [Fact]
    public void WriteProtectWithBothWpAndDontwakeIsEinval()
    {
        using var f = new UffdFixture(2, UffdFeatures.PagefaultFlagWp, UffdRegisterMode.WriteProtect);
        KResult r = f.Ctx.WriteProtect(f.Address, Pages.Size, UffdWriteProtectMode.WriteProtect | UffdWriteProtectMode.DontWake);
        Assert.Equal(-Errno.EINVAL, r.Code); // Linux 6.18: mode_wp && mode_dontwake → -EINVAL
        Assert.Contains("mode=0x3", r.Message, StringComparison.Ordinal);
        Assert.Equal(-Errno.EINVAL, f.Ctx.WriteProtect(f.Address, Pages.Size, (UffdWriteProtectMode)4).Code);
        Assert.Equal(0, f.Ctx.WriteProtect(f.Address, Pages.Size, UffdWriteProtectMode.DontWake).Code);
    }

    private sealed class ThrowingFill : IUffdFill
    {
        public void Fill(ulong address, Span<byte> destination) => throw new InvalidOperationException($"fill failed at 0x{address:X}");
    }
}
