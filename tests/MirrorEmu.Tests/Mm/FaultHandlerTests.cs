using MirrorEmu.Mm;
using MirrorEmu.Telemetry;
using MirrorEmu.Tests.Helpers;

namespace MirrorEmu.Tests.Mm;

/// <summary>handle_mm_fault: zero page, COW, file and shmem pages, THP, swap, OOM, SIGBUS, the userfault hook.</summary>
public class FaultHandlerTests
{
    [Fact]
    public void ReadFaultOnPrivateAnonMapsTheZeroPageAndWriteReplacesIt()
    {
        using var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, 1);
        Assert.Equal(0, Pages.Read(mm, a)[0]);
        Pte p = mm.PageTable.Read(a);
        Assert.Equal(PhysicalMemory.ZeroPfn, p.Pfn);
        Assert.True(p.IsSpecial);
        Assert.Equal(0, mm.Memory.FramesInUse);
        mm.CpuWrite(a, new byte[] { 42 });
        Pte q = mm.PageTable.Read(a);
        Assert.NotEqual(PhysicalMemory.ZeroPfn, q.Pfn);
        Assert.True(q.IsWritable && q.IsDirty);
        Assert.Equal(1, mm.Counters[MmEvent.ZeroPageMaps]);
        Assert.Equal(1, mm.Counters[MmEvent.CowCopies]);
        Assert.True(mm.Memory.Frame(PhysicalMemory.ZeroPfn).IndexOfAnyExcept((byte)0) < 0, "the zero page was written");
    }

    [Fact]
    public void HandleMmFaultChecksTheVmaAndFlags()
    {
        using var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, 1, Prot.Read);
        mm.MmapLock.ReadLock();
        try
        {
            Vma vma = mm.VmaLookup(a)!;
            Assert.Equal(VmFault.SigSegv, FaultHandler.HandleMmFault(vma, a, FaultFlags.Write));
            Assert.Equal(VmFault.SigSegv, FaultHandler.HandleMmFault(vma, a + Pages.Size, FaultFlags.None));
            Assert.Equal(VmFault.None, FaultHandler.HandleMmFault(vma, a + 123, FaultFlags.Remote));
        }
        finally
        {
            mm.MmapLock.ReadUnlock();
        }
    }

    [Fact]
    public void ExhaustedMemoryGivesOomAndChangesNothing()
    {
        using var mm = new AddressSpace(memoryLimitBytes: 4 * PageGeometry.PageSize);
        ulong a = Pages.MapAnon(mm, 8);
        mm.CpuWrite(a, Pages.Filled(1, 3 * 4096));
        var e = Assert.Throws<MemoryFaultException>(() => mm.CpuWrite(a + 3 * Pages.Size, new byte[] { 1 }));
        Assert.Contains("VM_FAULT_OOM", e.Message);
        Assert.True(mm.PageTable.Read(a + 3 * Pages.Size).IsNone, "a failed fault left an entry behind");
        Assert.Equal(-Errno.ENOMEM, mm.Madvise(a + 3 * Pages.Size, Pages.Size, Advice.PopulateWrite).Code);
        Assert.Equal(1, Pages.Read(mm, a + 2 * Pages.Size)[0]);
        Assert.True(mm.Counters[MmEvent.OomFaults] >= 1);
    }

    [Fact]
    public void SharedFileWritesReachTheFileAndPrivateWritesCopy()
    {
        using var mm = new AddressSpace();
        using var file = new MemFile(mm.Memory, Pages.Bytes(4), "data.bin");
        file.Write(0, Pages.Filled(0x11, 4 * 4096));
        mm.Mmap(0, Pages.Bytes(4), Prot.ReadWrite, MapFlags.Shared, file, 0, out ulong shared).ThrowIfError();
        mm.Mmap(0, Pages.Bytes(2), Prot.ReadWrite, MapFlags.Private, file, Pages.Bytes(2), out ulong priv).ThrowIfError();
        mm.CpuWrite(shared + Pages.Size, Pages.Filled(0x22));
        var back = new byte[4096];
        file.Read(Pages.Size, back);
        Assert.Equal(0x22, back[0]);
        Assert.Equal(0x11, Pages.Read(mm, priv)[0]);
        mm.CpuWrite(shared + 2 * Pages.Size, Pages.Filled(0x33));
        Assert.Equal(0x33, Pages.Read(mm, priv)[5]); // not yet written privately: sees the file
        mm.CpuWrite(priv, Pages.Filled(0x44));
        file.Read(2 * Pages.Size, back);
        Assert.Equal(0x33, back[0]);                  // the private write did not reach the file
        Assert.Equal(0x44, Pages.Read(mm, priv)[0]);
        Assert.True(mm.Counters[MmEvent.CowCopies] >= 1);
    }

    [Fact]
    public void AccessBeyondTheEndOfAFileIsSigbus()
    {
        using var mm = new AddressSpace();
        using var file = new MemFile(mm.Memory, Pages.Bytes(1), "short.bin");
        mm.Mmap(0, Pages.Bytes(2), Prot.Read, MapFlags.Shared, file, 0, out ulong a).ThrowIfError();
        Assert.Equal(0, Pages.Read(mm, a)[0]);
        var e = Assert.Throws<MemoryFaultException>(() => Pages.Read(mm, a + Pages.Size));
        Assert.Equal(Signal.SIGBUS, e.Signal);
        Assert.Equal(-Errno.EFAULT, mm.Madvise(a, Pages.Bytes(2), Advice.PopulateRead).Code);
    }

    [Fact]
    public void SharedAnonymousMemoryIsSharedWithForkChildrenAndFreedWithTheLastMapping()
    {
        using var mem = new PhysicalMemory(64UL << 20);
        var parent = new AddressSpace(mem);
        parent.MmapAnonymous(Pages.Bytes(2), Prot.ReadWrite, MapFlags.Shared, out ulong a).ThrowIfError();
        parent.CpuWrite(a, Pages.Filled(1));
        AddressSpace child = parent.Fork();
        child.CpuWrite(a + 10, new byte[] { 99 });
        Assert.Equal(99, Pages.Read(parent, a)[10]);
        parent.CpuWrite(a + Pages.Size, new byte[] { 7 });
        Assert.Equal(7, Pages.Read(child, a + Pages.Size)[0]);
        parent.Dispose();
        Assert.Equal(99, Pages.Read(child, a)[10]);
        child.Dispose();
        Assert.Equal(0, mem.FramesInUse);
    }

    [Fact]
    public void HugePageVmaGetsATwoMegabyteLeafAndSplitsOnPartialMprotect()
    {
        using var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, 1024);
        Assert.Equal(0UL, a & PageGeometry.PmdMask);
        mm.Madvise(a, Pages.Bytes(1024), Advice.HugePage).ThrowIfError();
        mm.CpuWrite(a + 5 * Pages.Size, Pages.Filled(8));
        Assert.Equal(1, mm.Counters[MmEvent.HugeFaults]);
        Assert.True(mm.PageTable.FindHuge(a).IsHuge);
        Assert.Equal(512, mm.Memory.FramesInUse);
        Assert.Equal(0, Pages.Read(mm, a + 511 * Pages.Size)[0]);
        mm.Mprotect(a + Pages.Size, Pages.Size, Prot.Read).ThrowIfError();
        Assert.True(mm.PageTable.FindHuge(a).IsNone);
        Assert.Equal(1, mm.Counters[MmEvent.HugeSplits]);
        Assert.Equal(8, Pages.Read(mm, a + 5 * Pages.Size)[0]);
        Assert.Throws<MemoryFaultException>(() => mm.CpuWrite(a + Pages.Size, new byte[] { 1 }));
        mm.CpuWrite(a + 2 * Pages.Size, new byte[] { 1 });
        Assert.Equal(512, mm.Memory.FramesInUse);
    }

    /// <summary>Maps 1,024 pages (two 2 MiB spans, the first aligned) with MADV_HUGEPAGE.</summary>
    private static ulong MapHugeEligible(AddressSpace mm)
    {
        ulong a = Pages.MapAnon(mm, 1024);
        Assert.Equal(0UL, a & PageGeometry.PmdMask);
        mm.Madvise(a, Pages.Bytes(1024), Advice.HugePage).ThrowIfError();
        return a;
    }

    [Fact]
    public void ThpReadFaultMapsTheHugeZeroPageReadOnlyAndTheFirstWriteAllocatesAHugePage()
    {
        using var mm = new AddressSpace();
        ulong a = MapHugeEligible(mm);
        Assert.True(Pages.Read(mm, a + Pages.Bytes(300)).AsSpan().IndexOfAnyExcept((byte)0) < 0, "the huge zero page reads as zeros");
        Pte zero = mm.PageTable.FindHuge(a);
        Assert.True(zero.IsHuge && zero.IsSpecial && zero.IsPresent && !zero.IsWritable, $"a THP read fault maps the huge zero page read-only, not {zero}");
        Assert.NotEqual(0UL, mm.Memory.HugeZeroPfn);
        Assert.Equal(mm.Memory.HugeZeroPfn, zero.Pfn);
        Assert.Equal(0, mm.Memory.FramesInUse);
        Assert.Equal(0, mm.Counters[MmEvent.HugeFaults]);

        mm.CpuWrite(a + Pages.Bytes(7), Pages.Filled(9));
        Pte huge = mm.PageTable.FindHuge(a);
        Assert.True(huge.IsHuge && huge.IsWritable && !huge.IsSpecial, $"a write to the huge zero page maps a huge page, not {huge}");
        Assert.NotEqual(mm.Memory.HugeZeroPfn, huge.Pfn);
        Assert.Equal(1, mm.Counters[MmEvent.HugeFaults]);
        Assert.Equal(0, mm.Counters[MmEvent.HugeSplits]);
        Assert.Equal(512, mm.Memory.FramesInUse);
        Assert.Equal(9, Pages.Read(mm, a + Pages.Bytes(7))[100]);
        Assert.Equal(0, Pages.Read(mm, a + Pages.Bytes(8))[0]);
        Assert.True(mm.Memory.Frame(mm.Memory.HugeZeroPfn + 7).IndexOfAnyExcept((byte)0) < 0, "the huge zero page was written");
    }

    [Fact]
    public void AWriteToTheHugeZeroPageWithNoHugePageLeftSplitsItIntoZeroPagesAndCopiesOne()
    {
        // 1,024 frames: the zero page, 511 small frames, and the huge zero page at 512; no second huge page fits.
        using var mm = new AddressSpace(Pages.Bytes(1024));
        ulong a = MapHugeEligible(mm);
        Pages.Read(mm, a);
        Assert.True(mm.PageTable.FindHuge(a).IsSpecial, "the read mapped the huge zero page");
        mm.CpuWrite(a + Pages.Bytes(3), Pages.Filled(4));
        Assert.True(mm.PageTable.FindHuge(a).IsNone, "the huge zero page was split");
        Assert.Equal(1, mm.Counters[MmEvent.HugeSplits]);
        Assert.Equal(0, mm.Counters[MmEvent.HugeFaults]);
        Assert.Equal(1, mm.Memory.FramesInUse);
        Pte other = mm.PageTable.Read(a + Pages.Bytes(100));
        Assert.True(other.IsSpecial && other.Pfn == PhysicalMemory.ZeroPfn && !other.IsHuge, $"a split huge zero page maps the small zero page, not {other}");
        Assert.Equal(4, Pages.Read(mm, a + Pages.Bytes(3))[0]);
        mm.Munmap(a, Pages.Bytes(1024)).ThrowIfError();
        Assert.Equal(0, mm.Memory.FramesInUse);
    }

    [Fact]
    public void WithoutTheHugeZeroPageAThpReadFaultAllocatesAWritableHugePage()
    {
        using var mm = new AddressSpace();
        mm.Memory.UseHugeZeroPage = false;
        ulong a = MapHugeEligible(mm);
        Pages.Read(mm, a);
        Pte huge = mm.PageTable.FindHuge(a);
        Assert.True(huge.IsHuge && huge.IsWritable && !huge.IsSpecial, $"use_zero_page=0: a read fault allocates a huge page, not {huge}");
        Assert.Equal(0UL, mm.Memory.HugeZeroPfn);
        Assert.Equal(512, mm.Memory.FramesInUse);
        Assert.Equal(1, mm.Counters[MmEvent.HugeFaults]);
    }

    [Fact]
    public void TheHugeZeroPageIsSharedByForkKeptReadOnlyByMprotectAndFreesNothingWhenZapped()
    {
        using var mm = new AddressSpace();
        ulong a = MapHugeEligible(mm);
        Pages.Read(mm, a);
        Pages.Read(mm, a + PageGeometry.PmdSize);
        Pte zero = mm.PageTable.FindHuge(a);
        using (AddressSpace child = mm.Fork())
        {
            Assert.Equal(zero, child.PageTable.FindHuge(a));
            child.CpuWrite(a, new byte[] { 5 });
            Assert.Equal(0, Pages.Read(mm, a)[0]);
            Assert.Equal(zero, mm.PageTable.FindHuge(a));
        }

        Assert.Equal(0, mm.Memory.FramesInUse);
        mm.Mprotect(a, PageGeometry.PmdSize, Prot.Read).ThrowIfError();
        mm.Mprotect(a, PageGeometry.PmdSize, Prot.ReadWrite).ThrowIfError();
        Pte after = mm.PageTable.FindHuge(a);
        Assert.True(after.IsSpecial && after.IsHuge && !after.IsWritable, $"mprotect made the huge zero page {after}");
        mm.Mprotect(a, PageGeometry.PmdSize, Prot.None).ThrowIfError();
        Assert.Throws<MemoryFaultException>(() => Pages.Read(mm, a));
        mm.Mprotect(a, PageGeometry.PmdSize, Prot.Read).ThrowIfError();
        Assert.Equal(0, Pages.Read(mm, a + Pages.Bytes(511))[4095]);

        long freed = mm.Counters[MmEvent.FramesFreed];
        mm.Madvise(a, PageGeometry.PmdSize, Advice.DontNeed).ThrowIfError();
        Assert.True(mm.PageTable.FindHuge(a).IsNone, "MADV_DONTNEED dropped the huge zero page");
        mm.Madvise(a + PageGeometry.PmdSize, Pages.Size, Advice.DontNeed).ThrowIfError();
        Assert.True(mm.PageTable.Read(a + PageGeometry.PmdSize + Pages.Size).Pfn == PhysicalMemory.ZeroPfn, "a partial zap splits the huge zero page into zero pages");
        mm.Munmap(a, Pages.Bytes(1024)).ThrowIfError();
        Assert.Equal(freed, mm.Counters[MmEvent.FramesFreed]);
        Assert.Equal(0, mm.Memory.FramesInUse);
        Assert.True(mm.Memory.Frame(mm.Memory.HugeZeroPfn + 511).IndexOfAnyExcept((byte)0) < 0, "the huge zero page was written or freed");
    }

    [Fact]
    public void PageOutWithSwapSwapsAnExclusivePageOutAndTheNextAccessSwapsItInWithItsBytes()
    {
        using var mm = new AddressSpace();
        mm.Memory.SwapEnabled = true;
        ulong a = Pages.MapAnon(mm, 3);
        mm.CpuWrite(a, Pages.Filled(0x77));
        Pages.Read(mm, a + Pages.Size); // the zero page: nothing to swap
        mm.Madvise(a, Pages.Bytes(3), Advice.PageOut).ThrowIfError();
        Pte swapped = mm.PageTable.Read(a);
        Assert.Equal(SwapType.Swap, swapped.Swap);
        Assert.Equal(PhysicalMemory.ZeroPfn, mm.PageTable.Read(a + Pages.Size).Pfn);
        Assert.True(mm.PageTable.Read(a + Pages.Size).IsPresent, "MADV_PAGEOUT left the zero page mapped");
        Assert.Equal(1, mm.Memory.FramesInUse); // the swap cache keeps the frame
        byte[] vec = new byte[3];
        mm.Mincore(a, Pages.Bytes(3), vec).ThrowIfError();
        Assert.Equal(new byte[] { 1, 1, 0 }, vec);

        Assert.Equal(0x77, Pages.Read(mm, a)[4000]);
        Assert.Equal(1, mm.Counters[MmEvent.SwapIns]);
        Assert.True(mm.PageTable.Read(a).IsPresent, "the read swapped the page in");
        mm.CpuWrite(a, new byte[] { 1 });
        Assert.Equal(1, mm.Memory.FramesInUse);
    }

    [Fact]
    public void PageOutWithoutSwapKeepsAnonymousPagesAndUnmapsPageCachePagesMappedOnce()
    {
        using var mm = new AddressSpace();
        using var file = new MemFile(mm.Memory, Pages.Bytes(3));
        file.Write(0, Pages.Filled(0x33, PageGeometry.PageSizeInt * 3));
        ulong a = Pages.MapAnon(mm, 1);
        mm.CpuWrite(a, Pages.Filled(0x11));
        mm.Mmap(0, Pages.Bytes(3), Prot.ReadWrite, MapFlags.Private, file, 0, out ulong f).ThrowIfError();
        using AddressSpace child = mm.Fork();
        mm.CpuWrite(f + Pages.Size, new byte[] { 0x44 }); // a private copy: anonymous
        Pages.Read(mm, f);
        Pages.Read(mm, f + Pages.Bytes(2));
        Pages.Read(child, f + Pages.Bytes(2)); // mapped twice: folio_maybe_mapped_shared keeps it

        mm.Madvise(a, Pages.Size, Advice.PageOut).ThrowIfError();
        mm.Madvise(f, Pages.Bytes(3), Advice.PageOut).ThrowIfError();
        Assert.True(mm.PageTable.Read(a).IsPresent, "without swap an anonymous page stays mapped");
        Assert.True(mm.PageTable.Read(f).IsNone, "a page-cache page mapped once is unmapped");
        Assert.True(mm.PageTable.Read(f + Pages.Size).IsPresent, "a private copy is anonymous and stays mapped");
        Assert.True(mm.PageTable.Read(f + Pages.Bytes(2)).IsPresent, "a page-cache page mapped by a fork child too stays mapped");
        byte[] vec = new byte[3];
        mm.Mincore(f, Pages.Bytes(3), vec).ThrowIfError();
        Assert.Equal(new byte[] { 1, 1, 1 }, vec);
        Assert.Equal(0x33, Pages.Read(mm, f)[100]);
        Assert.Equal(0x44, Pages.Read(mm, f + Pages.Size)[0]);
    }

    [Fact]
    public void PageOutSplitsAHugePageAndMapsTheZeroPageOverItsZeroFilledParts()
    {
        using var mm = new AddressSpace();
        ulong a = MapHugeEligible(mm);
        mm.CpuWrite(a, new byte[] { 1 });
        mm.CpuWrite(a + Pages.Bytes(300), new byte[] { 2 });
        ulong basePfn = mm.PageTable.FindHuge(a).Pfn;
        Pages.Read(mm, a + PageGeometry.PmdSize); // the huge zero page over the second 2 MiB
        Pte zero = mm.PageTable.FindHuge(a + PageGeometry.PmdSize);
        mm.Madvise(a + Pages.Bytes(5), Pages.Size, Advice.PageOut).ThrowIfError();
        mm.Madvise(a + PageGeometry.PmdSize, PageGeometry.PmdSize, Advice.PageOut).ThrowIfError();

        Assert.True(mm.PageTable.FindHuge(a).IsNone, "MADV_PAGEOUT split the huge page");
        Assert.Equal(basePfn, mm.PageTable.Read(a).Pfn);
        Assert.Equal(basePfn + 300, mm.PageTable.Read(a + Pages.Bytes(300)).Pfn);
        Pte part = mm.PageTable.Read(a + Pages.Bytes(5));
        Assert.True(part.IsSpecial && part.Pfn == PhysicalMemory.ZeroPfn, $"a zero-filled part maps the zero page, not {part}");
        Assert.Equal(2, mm.Memory.FramesInUse);
        Assert.Equal(zero, mm.PageTable.FindHuge(a + PageGeometry.PmdSize));
        Assert.Equal(2, Pages.Read(mm, a + Pages.Bytes(300))[0]);
    }

    [Fact]
    public void PoisonedPageIsSigbusAndPopulateReportsEhwpoison()
    {
        using var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, 1);
        mm.CpuWrite(a, Pages.Filled(1));
        Assert.True(mm.TestPoison(a));
        var e = Assert.Throws<MemoryFaultException>(() => Pages.Read(mm, a));
        Assert.Equal(Signal.SIGBUS, e.Signal);
        Assert.Equal(-Errno.EHWPOISON, mm.Madvise(a, Pages.Size, Advice.PopulateRead).Code);
    }

    [Fact]
    public void MigrationEntryResolvesOnceMigrationFinishes()
    {
        using var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, 1);
        mm.CpuWrite(a, Pages.Filled(3));
        Assert.True(mm.TestStartMigration(a));
        int seen = -1;
        var reader = new Thread(() => seen = Pages.Read(mm, a)[0]);
        reader.Start();
        Thread.Sleep(20);
        Assert.True(mm.TestFinishMigration(a));
        Assert.True(reader.Join(10_000), "the access never completed after the migration finished");
        Assert.Equal(3, seen);
    }

    [Fact]
    public void UserfaultRegisteredVmaHandsMissingFaultsToItsHook()
    {
        using var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, 2);
        var hook = new RecordingHook();
        mm.TestRegisterUserfault(a, Pages.Bytes(2), VmFlags.UffdMissing, hook);
        mm.MmapLock.ReadLock();
        try
        {
            Vma vma = mm.VmaLookup(a)!;
            Assert.Equal(VmFault.SigBus, FaultHandler.HandleMmFault(vma, a, FaultFlags.Remote));
            Assert.Equal(VmFault.SigBus, FaultHandler.HandleMmFault(vma, a + 5, FaultFlags.Write | FaultFlags.AllowRetry));
        }
        finally
        {
            mm.MmapLock.ReadUnlock();
        }

        Assert.Equal([(a, UserfaultReason.Missing, FaultFlags.Remote), (a, UserfaultReason.Missing, FaultFlags.Write | FaultFlags.AllowRetry)], hook.Calls);
        Assert.Equal(2, mm.Counters[MmEvent.UserfaultFaults]);
    }

    private sealed class RecordingHook : IUserfaultHook
    {
        public List<(ulong, UserfaultReason, FaultFlags)> Calls { get; } = [];

        public VmFault HandleUserfault(Vma vma, ulong address, ulong pages, FaultFlags flags, UserfaultReason reason)
        {
            Calls.Add((address, reason, flags));
            return VmFault.SigBus;
        }

        public IUserfaultHook? OnFork(Vma vma, AddressSpace child) => null;

        public bool OnRemap(Vma vma, ulong from, ulong to, ulong length) => false;

        public void OnRemove(ulong start, ulong end)
        {
        }

        public void OnUnmap(ulong start, ulong end)
        {
        }
    }
}
