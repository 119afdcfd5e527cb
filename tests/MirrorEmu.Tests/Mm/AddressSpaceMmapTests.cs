using MirrorEmu.Mm;
using MirrorEmu.Tests.Helpers;

namespace MirrorEmu.Tests.Mm;

/// <summary>mmap/munmap/mprotect/madvise/mremap argument checking and VMA bookkeeping, against the man pages.</summary>
public class AddressSpaceMmapTests
{
    [Theory]
    [InlineData(0UL, (int)MapFlags.Private, Errno.EINVAL)]                               // zero length
    [InlineData(4096UL, (int)(MapFlags.Private | MapFlags.Shared), Errno.EINVAL)]       // both: MAP_SHARED_VALIDATE, files only
    [InlineData(4096UL, 0, Errno.EINVAL)]                                               // neither
    [InlineData(4096UL, (int)MapFlags.TypeMask, Errno.EINVAL)]                         // no such type
    [InlineData(ulong.MaxValue, (int)MapFlags.Private, Errno.ENOMEM)]                   // overflowing length
    public void BadMmapArgumentsFailWithTheManPageErrno(ulong length, int flags, int errno)
    {
        using var mm = new AddressSpace();
        KResult r = mm.Mmap(0, length, Prot.ReadWrite, (MapFlags)flags | MapFlags.Anonymous, null, 0, out _);

        Assert.Equal(-errno, r.Code);
        Assert.False(string.IsNullOrEmpty(r.Message));
        Assert.Equal(0, mm.VmaCount);
    }

    [Fact]
    public void FixedMappingChecksAlignmentRangeAndNoReplace()
    {
        using var mm = new AddressSpace();
        Assert.Equal(-Errno.EINVAL, mm.Mmap(0x10001000 + 1, 4096, Prot.Read, MapFlags.Private | MapFlags.Anonymous | MapFlags.Fixed, null, 0, out _).Code);
        Assert.Equal(-Errno.EPERM, mm.Mmap(0x1000, 4096, Prot.Read, MapFlags.Private | MapFlags.Anonymous | MapFlags.Fixed, null, 0, out _).Code);
        KResult beyond = mm.Mmap(PageGeometry.AddressSpaceSize - 4096, 8192, Prot.Read, MapFlags.Private | MapFlags.Anonymous | MapFlags.Fixed, null, 0, out _);
        Assert.Equal(-Errno.ENOMEM, beyond.Code);
        Assert.Contains("0x0000FFFFFFFFF000", beyond.Message);
        Assert.True(mm.Mmap(0x10000000, 8192, Prot.Read, MapFlags.Private | MapFlags.Anonymous | MapFlags.Fixed, null, 0, out ulong a).IsOk);
        Assert.Equal(0x10000000UL, a);
        Assert.Equal(-Errno.EEXIST, mm.Mmap(0x10001000, 4096, Prot.Read, MapFlags.Private | MapFlags.Anonymous | MapFlags.FixedNoReplace, null, 0, out _).Code);
        Assert.Equal(1, mm.VmaCount);
    }

    [Fact]
    public void FixedMappingReplacesWhatWasThere()
    {
        using var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, 4);
        mm.CpuWrite(a + Pages.Size, Pages.Filled(7));
        Assert.True(mm.Mmap(a + Pages.Size, Pages.Size, Prot.Read, MapFlags.Private | MapFlags.Anonymous | MapFlags.Fixed, null, 0, out _).IsOk);
        Assert.Equal(0, Pages.Read(mm, a + Pages.Size)[0]);
        Assert.Equal(3, mm.VmaCount);
    }

    [Fact]
    public void FindVmaReturnsTheFirstVmaEndingAboveTheAddress()
    {
        using var mm = new AddressSpace();
        ulong low = 0x2000_0000;
        ulong high = 0x3000_0000;
        mm.Mmap(low, 4096, Prot.Read, MapFlags.Private | MapFlags.Anonymous | MapFlags.Fixed, null, 0, out _).ThrowIfError();
        mm.Mmap(high, 4096, Prot.Read, MapFlags.Private | MapFlags.Anonymous | MapFlags.Fixed, null, 0, out _).ThrowIfError();
        mm.MmapLock.ReadLock();
        try
        {
            Assert.Equal(low, mm.FindVma(0)!.Start);
            Assert.Equal(high, mm.FindVma(low + 4096)!.Start); // in the hole: the next one
            Assert.Null(mm.VmaLookup(low + 4096));
            Assert.Null(mm.FindVma(high + 4096));
        }
        finally
        {
            mm.MmapLock.ReadUnlock();
        }
    }

    [Fact]
    public void MunmapSplitsAndHolesAreNotAnError()
    {
        using var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, 8);
        mm.CpuWrite(a, Pages.Filled(1, 8 * 4096));
        Assert.True(mm.Munmap(a + 2 * Pages.Size, 2 * Pages.Size).IsOk);
        Assert.Equal(2, mm.VmaCount);
        Assert.True(mm.Munmap(a + 2 * Pages.Size, 2 * Pages.Size).IsOk); // now a hole
        Assert.Equal(-Errno.EINVAL, mm.Munmap(a + 1, 4096).Code);
        Assert.Equal(-Errno.EINVAL, mm.Munmap(a, 0).Code);
        Assert.Equal(-Errno.EINVAL, mm.Munmap(a, ulong.MaxValue - 10).Code);
        Assert.Equal(1, Pages.Read(mm, a + 5 * Pages.Size)[0]);
        Assert.Equal(6, mm.Memory.FramesInUse);
        Assert.Throws<MemoryFaultException>(() => Pages.Read(mm, a + 2 * Pages.Size));
    }

    [Fact]
    public void MprotectSplitsThenMergesBack()
    {
        using var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, 6);
        Assert.True(mm.Mprotect(a + Pages.Size, Pages.Size, Prot.Read).IsOk);
        Assert.Equal(3, mm.VmaCount);
        Assert.True(mm.Mprotect(a + Pages.Size, Pages.Size, Prot.ReadWrite).IsOk);
        Assert.Equal(1, mm.VmaCount);
    }

    [Fact]
    public void UnknownMapFlagsAndProtBitsAreIgnoredAsLinuxDoes()
    {
        using var mm = new AddressSpace();
        Assert.True(mm.Mmap(0, 4096, Prot.ReadWrite | (Prot)0x10, MapFlags.Private | MapFlags.Anonymous | (MapFlags)0x40000000, null, 0, out ulong a).IsOk);
        Assert.Equal(Prot.ReadWrite, mm.SnapshotVmas()[0].Prot);
        using var file = new MemFile(mm.Memory, 4096);
        Assert.Equal(-Errno.EOPNOTSUPP, mm.Mmap(0x2000_0000, 4096, Prot.Read, MapFlags.SharedValidate | MapFlags.FixedNoReplace, file, 0, out _).Code);
        Assert.True(mm.Mmap(0, 4096, Prot.Read, MapFlags.SharedValidate, file, 0, out _).IsOk);
        Assert.Equal(-Errno.EOVERFLOW, mm.Mmap(0, 4096, Prot.Read, MapFlags.Private, file, 1UL << 63, out _).Code);
        Assert.True(mm.Mmap(a + 0x800, 4096, Prot.Read, MapFlags.Private | MapFlags.Anonymous, file, 0, out ulong b).IsOk, "MAP_ANONYMOUS ignores the file");
        Assert.NotEqual(a, b); // the hint, rounded down, was taken
        Assert.Equal(-Errno.EINVAL, mm.Mmap(0, 4096, Prot.Read, MapFlags.Private | MapFlags.Anonymous, null, 100, out _).Code);
        Assert.Equal(-Errno.ENOMEM, mm.Mmap(0, MemFile.MaxSizeBytes + 4096, Prot.Read, MapFlags.Shared | MapFlags.Anonymous, null, 0, out _).Code);
    }

    [Fact]
    public void MappingsEndAtTheTopOfTheUserAddressSpace()
    {
        using var mm = new AddressSpace();
        ulong top = PageGeometry.TaskSize;
        Assert.Equal(-Errno.ENOMEM, mm.Mmap(top, 4096, Prot.Read, MapFlags.Private | MapFlags.Anonymous | MapFlags.Fixed, null, 0, out _).Code);
        Assert.True(mm.Mmap(top - 4096, 4096, Prot.Read, MapFlags.Private | MapFlags.Anonymous | MapFlags.Fixed, null, 0, out _).IsOk);
        Assert.Equal(-Errno.EINVAL, mm.Munmap(top + 4096, 4096).Code);
        Assert.Equal(-Errno.ENOMEM, mm.Mremap(top - 4096, 4096, 8192, MremapFlags.None, 0, out _).Code);
        Assert.Equal(-Errno.EINVAL, mm.Mremap(top - 4096, 4096, 4096, MremapFlags.MayMove | MremapFlags.Fixed, top, out _).Code);
    }

    [Fact]
    public void MprotectOverAHoleChangesTheMappedPrefixThenFailsWithEnomem()
    {
        using var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, 4);
        mm.Munmap(a + Pages.Size, Pages.Size).ThrowIfError();
        KResult r = mm.Mprotect(a, 4 * Pages.Size, Prot.Read);
        Assert.Equal(-Errno.ENOMEM, r.Code);
        IReadOnlyList<Vma> vmas = mm.SnapshotVmas();
        Assert.Equal(Prot.Read, vmas[0].Prot);
        Assert.Equal(Prot.ReadWrite, vmas[1].Prot);
        Assert.Equal(-Errno.EINVAL, mm.Mprotect(a + 3, 4096, Prot.Read).Code);
        Assert.Equal(-Errno.EINVAL, mm.Mprotect(a, 4096, (Prot)0x40).Code);
        Assert.Equal(0, mm.Mprotect(a, 0, Prot.GrowsDown).Code); // length 0 first
        Assert.Equal(-Errno.ENOMEM, mm.Mprotect(a, ulong.MaxValue, Prot.Read).Code); // wraps
        Assert.Equal(-Errno.EINVAL, mm.Mprotect(a, 4096, Prot.Read | Prot.GrowsDown).Code); // not a VM_GROWSDOWN mapping
        Assert.Equal(-Errno.ENOMEM, mm.Mprotect(a + Pages.Size, 4096, Prot.Read | Prot.GrowsDown).Code); // a hole
        Assert.True(mm.Mprotect(a, 4096, Prot.Read | Prot.Sem).IsOk);
    }

    [Fact]
    public void MprotectReadOnlyMakesWritesSegfaultAndKeepsData()
    {
        using var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, 2);
        mm.CpuWrite(a, Pages.Filled(9));
        mm.Mprotect(a, Pages.Size, Prot.Read).ThrowIfError();
        var e = Assert.Throws<MemoryFaultException>(() => mm.CpuWrite(a + 8, new byte[] { 1 }));
        Assert.Equal(Signal.SIGSEGV, e.Signal);
        Assert.Contains($"0x{a + 8:X16}", e.Message);
        Assert.Equal(9, Pages.Read(mm, a)[100]);
        mm.Mprotect(a, Pages.Size, Prot.None).ThrowIfError();
        Assert.Throws<MemoryFaultException>(() => Pages.Read(mm, a));
        Assert.True(mm.PageTable.Read(a).IsProtNone, "PROT_NONE must make present entries protnone");
        mm.Mprotect(a, Pages.Size, Prot.ReadWrite).ThrowIfError();
        Assert.Equal(9, Pages.Read(mm, a)[100]);
        mm.CpuWrite(a, new byte[] { 3 });
        Assert.Equal(3, Pages.Read(mm, a)[0]);
    }

    [Fact]
    public void MadviseDontNeedZeroesPrivateAnonymousMemory()
    {
        using var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, 4);
        mm.CpuWrite(a, Pages.Filled(5, 4 * 4096));
        Assert.Equal(4, mm.Memory.FramesInUse);
        Assert.True(mm.Madvise(a, 2 * Pages.Size, Advice.DontNeed).IsOk);
        Assert.Equal(2, mm.Memory.FramesInUse);
        Assert.Equal(0, Pages.Read(mm, a)[0]);
        Assert.Equal(5, Pages.Read(mm, a + 3 * Pages.Size)[0]);
        Assert.Equal(-Errno.EINVAL, mm.Madvise(a, Pages.Size, (Advice)999).Code);
        Assert.Equal(-Errno.ENOMEM, mm.Madvise(a + 4 * Pages.Size, Pages.Size, Advice.DontNeed).Code);
    }

    [Fact]
    public void MadvisePopulateWriteFillsEveryPageAndChecksPermissions()
    {
        using var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, 100);
        Assert.True(mm.Madvise(a, Pages.Bytes(100), Advice.PopulateWrite).IsOk);
        Assert.Equal(100, mm.Memory.FramesInUse);
        for (int i = 0; i < 100; i++)
        {
            Pte p = mm.PageTable.Read(a + Pages.Bytes(i));
            Assert.True(p.IsPresent && p.IsWritable, $"page {i} not populated writable: {p}");
        }

        ulong ro = Pages.MapAnon(mm, 2, Prot.Read);
        Assert.Equal(-Errno.EINVAL, mm.Madvise(ro, Pages.Bytes(2), Advice.PopulateWrite).Code);
        Assert.True(mm.Madvise(ro, Pages.Bytes(2), Advice.PopulateRead).IsOk);
        Assert.True(mm.PageTable.Read(ro).IsSpecial, "a read populate of anonymous memory maps the zero page");
    }

    [Fact]
    public void MapPopulatePrefaultsPrivateWritableMappings()
    {
        using var mm = new AddressSpace();
        Assert.True(mm.MmapAnonymous(Pages.Bytes(10), Prot.ReadWrite, MapFlags.Private | MapFlags.Populate, out ulong a).IsOk);
        Assert.Equal(10, mm.Memory.FramesInUse);
        Assert.True(mm.PageTable.Read(a + Pages.Bytes(9)).IsWritable);
    }

    [Fact]
    public void MremapGrowsInPlaceOrMovesKeepingData()
    {
        using var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, 2);
        mm.CpuWrite(a, Pages.Filled(4, 2 * 4096));
        Assert.True(mm.Mremap(a, Pages.Bytes(2), Pages.Bytes(4), MremapFlags.None, 0, out ulong same).IsOk);
        Assert.Equal(a, same);
        Assert.Equal(0, Pages.Read(mm, a + 3 * Pages.Size)[0]);
        ulong blocker = a + Pages.Bytes(4);
        mm.Mmap(blocker, Pages.Size, Prot.Read, MapFlags.Private | MapFlags.Anonymous | MapFlags.Fixed, null, 0, out _).ThrowIfError();
        Assert.Equal(-Errno.ENOMEM, mm.Mremap(a, Pages.Bytes(4), Pages.Bytes(8), MremapFlags.None, 0, out _).Code);
        Assert.True(mm.Mremap(a, Pages.Bytes(4), Pages.Bytes(8), MremapFlags.MayMove, 0, out ulong moved).IsOk);
        Assert.NotEqual(a, moved);
        Assert.Equal(4, Pages.Read(mm, moved + Pages.Size)[10]);
        Assert.Throws<MemoryFaultException>(() => Pages.Read(mm, a));
        Assert.Equal(2, mm.Memory.FramesInUse); // the frames moved, none copied
        Assert.Equal(-Errno.EFAULT, mm.Mremap(a, Pages.Size, Pages.Size, MremapFlags.MayMove, 0, out _).Code);
        Assert.Equal(-Errno.EINVAL, mm.Mremap(moved, Pages.Size, 0, MremapFlags.MayMove, 0, out _).Code);
    }

    [Fact]
    public void SameSizeFixedMremapMovesSeveralVmasAndTheirGaps()
    {
        using var mm = new AddressSpace();
        const ulong At = 0x1000_0000;
        const ulong To = 0x2000_0000;
        Map(mm, At, 2, Prot.ReadWrite);
        Map(mm, At + Pages.Bytes(2), 2, Prot.Read);
        Map(mm, At + Pages.Bytes(5), 1, Prot.ReadWrite);
        mm.CpuWrite(At, Pages.Filled(7));
        Assert.True(mm.Mremap(At, Pages.Bytes(6), Pages.Bytes(6), MremapFlags.MayMove | MremapFlags.Fixed, To, out ulong moved).IsOk);
        Assert.Equal(To, moved);
        IReadOnlyList<Vma> vmas = mm.SnapshotVmas();
        Assert.Equal([(To, To + Pages.Bytes(2)), (To + Pages.Bytes(2), To + Pages.Bytes(4)), (To + Pages.Bytes(5), To + Pages.Bytes(6))], vmas.Select(v => (v.Start, v.End)));
        Assert.Equal(7, Pages.Read(mm, To)[0]);
        Assert.Equal(-Errno.EFAULT, mm.Mremap(To + Pages.Bytes(4), Pages.Bytes(2), Pages.Bytes(2), MremapFlags.MayMove | MremapFlags.Fixed, At, out _).Code); // a hole at the start
    }

    [Fact]
    public void MremapShrinkCrossesVmaEndsAndSameSizeInPlaceDoesNothing()
    {
        using var mm = new AddressSpace();
        const ulong At = 0x1000_0000;
        Map(mm, At, 2, Prot.ReadWrite);
        Map(mm, At + Pages.Bytes(2), 2, Prot.Read);
        Assert.True(mm.Mremap(At, Pages.Bytes(4), Pages.Bytes(4), MremapFlags.None, 0, out ulong same).IsOk);
        Assert.Equal(At, same);
        Assert.Equal(2, mm.VmaCount);
        Assert.True(mm.Mremap(At, Pages.Bytes(4), Pages.Size, MremapFlags.None, 0, out _).IsOk);
        Assert.Equal([(At, At + Pages.Size)], mm.SnapshotVmas().Select(v => (v.Start, v.End)));
        Assert.Equal(-Errno.EINVAL, mm.Mremap(At, 1UL << 47, Pages.Size, MremapFlags.None, 0, out _).Code); // the shrink's munmap refuses it
    }

    [Fact]
    public void MremapOldSizeZeroDuplicatesSharedMappingsOnly()
    {
        using var mm = new AddressSpace();
        ulong priv = Pages.MapAnon(mm, 2);
        Assert.Equal(-Errno.EINVAL, mm.Mremap(priv, 0, Pages.Bytes(2), MremapFlags.MayMove, 0, out _).Code);
        ulong shared = Pages.MapAnon(mm, 2, flags: MapFlags.Shared);
        mm.CpuWrite(shared, Pages.Filled(3));
        Assert.True(mm.Mremap(shared, 0, Pages.Bytes(2), MremapFlags.MayMove, 0, out ulong second).IsOk);
        Assert.NotEqual(shared, second);
        Assert.Equal(3, Pages.Read(mm, second)[0]);
        mm.CpuWrite(second, Pages.Filled(4));
        Assert.Equal(4, Pages.Read(mm, shared)[0]);
        Assert.True(mm.Mremap(shared, ulong.MaxValue, Pages.Bytes(2), MremapFlags.MayMove, 0, out _).IsOk, "old_size 2^64-1 rounds to 0");
    }

    [Fact]
    public void MremapArgumentChecksComeInTheKernelsOrder()
    {
        using var mm = new AddressSpace();
        const ulong Hole = 0x3000_0000;
        Assert.Equal(-Errno.EINVAL, mm.Mremap(Hole, Pages.Size, 0, MremapFlags.MayMove, 0, out _).Code); // new size before the VMA
        Assert.Equal(-Errno.EFAULT, mm.Mremap(Hole, Pages.Size, Pages.Size, MremapFlags.MayMove, 0, out _).Code);
        Assert.Equal(-Errno.EINVAL, mm.Mremap(Hole, Pages.Size, Pages.Bytes(2), MremapFlags.DontUnmap | MremapFlags.MayMove, 0, out _).Code);
        Assert.Equal(-Errno.EINVAL, mm.Mremap(Hole, Pages.Size, Pages.Size, (MremapFlags)8, 0, out _).Code);
    }

    [Fact]
    public void MremapDontUnmapMovesThePagesAndLeavesTheOldRangeMappedAndEmpty()
    {
        using var mm = new AddressSpace();
        const ulong At = 0x1000_0000;
        const ulong To = 0x2000_0000;
        Map(mm, At, 2, Prot.ReadWrite);
        mm.CpuWrite(At, Pages.Filled(9, 2 * 4096));
        Assert.True(mm.Mremap(At, Pages.Bytes(2), Pages.Bytes(2), MremapFlags.MayMove | MremapFlags.Fixed | MremapFlags.DontUnmap, To, out _).IsOk);
        Assert.Equal(9, Pages.Read(mm, To)[0]);
        Assert.Equal(0, Pages.Read(mm, At)[0]);
        Assert.Equal(2, mm.VmaCount);
    }

    [Fact]
    public void AMovedVmaThatNeverHeldAPageMergesAtItsDestination()
    {
        using var mm = new AddressSpace();
        const ulong At = 0x1000_0000;
        const ulong To = 0x2000_0000;
        Map(mm, To - Pages.Bytes(2), 2, Prot.ReadWrite);
        Map(mm, At, 2, Prot.ReadWrite);
        Assert.True(mm.Mremap(At, Pages.Bytes(2), Pages.Bytes(2), MremapFlags.MayMove | MremapFlags.Fixed, To, out _).IsOk);
        Assert.Equal([(To - Pages.Bytes(2), To + Pages.Bytes(2))], mm.SnapshotVmas().Select(v => (v.Start, v.End)));
        Assert.True(mm.Mremap(To - Pages.Bytes(2), Pages.Bytes(4), Pages.Bytes(6), MremapFlags.None, 0, out _).IsOk, "a later grow in place");
    }

    [Fact]
    public void SeparatelyWrittenVmasKeepTheirOwnAnonVmaAndDoNotMerge()
    {
        using var mm = new AddressSpace();
        const ulong At = 0x1000_0000;
        Map(mm, At, 1, Prot.ReadWrite);
        mm.CpuWrite(At, Pages.Filled(1));
        Map(mm, At + Pages.Bytes(2), 1, Prot.ReadWrite);
        mm.CpuWrite(At + Pages.Bytes(2), Pages.Filled(2));
        Map(mm, At + Pages.Size, 1, Prot.ReadWrite);
        Assert.Equal([(At, At + Pages.Bytes(2)), (At + Pages.Bytes(2), At + Pages.Bytes(3))], mm.SnapshotVmas().Select(v => (v.Start, v.End)));
    }

    [Fact]
    public void AWrittenVmaMadeReadOnlyKeepsVmAccountAndDoesNotMergeWithAFreshReadOnlyOne()
    {
        using var mm = new AddressSpace();
        const ulong At = 0x1000_0000;
        Map(mm, At, 1, Prot.ReadWrite);
        mm.CpuWrite(At, Pages.Filled(1));
        mm.Mprotect(At, Pages.Size, Prot.Read).ThrowIfError();
        Map(mm, At + Pages.Size, 1, Prot.Read);
        Assert.Equal(2, mm.VmaCount);
        Assert.Equal(VmFlags.Account, mm.SnapshotVmas()[0].Flags & VmFlags.Account);

        // Never written: mprotect drops VM_ACCOUNT, so it merges.
        Map(mm, At + Pages.Bytes(4), 1, Prot.ReadWrite);
        mm.Mprotect(At + Pages.Bytes(4), Pages.Size, Prot.Read).ThrowIfError();
        Map(mm, At + Pages.Bytes(5), 1, Prot.Read);
        Assert.Equal(3, mm.VmaCount);
    }

    [Fact]
    public void MapFlagsBecomeTheirVmaFlags()
    {
        using var mm = new AddressSpace();
        ulong stack = Pages.MapAnon(mm, 1, flags: MapFlags.Private | MapFlags.Stack);
        ulong noreserve = Pages.MapAnon(mm, 1, flags: MapFlags.Private | MapFlags.NoReserve);
        ulong locked = Pages.MapAnon(mm, 2, flags: MapFlags.Private | MapFlags.Locked);
        IReadOnlyList<Vma> vmas = mm.SnapshotVmas();
        Assert.True((vmas.Single(v => v.Start == stack).Flags & VmFlags.NoHugePage) != 0, "MAP_STACK is VM_NOHUGEPAGE");
        Assert.Equal(VmFlags.NoReserve, vmas.Single(v => v.Start == noreserve).Flags & (VmFlags.NoReserve | VmFlags.Account));
        Assert.True((vmas.Single(v => v.Start == locked).Flags & VmFlags.Locked) != 0);
        Assert.True(mm.PageTable.Read(locked + Pages.Size).IsPresent, "MAP_LOCKED populates");
    }

    private static void Map(AddressSpace mm, ulong at, int pages, Prot prot) =>
        mm.Mmap(at, Pages.Bytes(pages), prot, MapFlags.Private | MapFlags.Anonymous | MapFlags.Fixed, null, 0, out _).ThrowIfError();

    [Fact]
    public void DisposeGivesEveryFrameBack()
    {
        using var mem = new PhysicalMemory(64UL << 20);
        var mm = new AddressSpace(mem);
        ulong a = Pages.MapAnon(mm, 50);
        mm.CpuWrite(a, Pages.Filled(1, 50 * 4096));
        mm.MmapAnonymous(Pages.Bytes(3), Prot.ReadWrite, MapFlags.Shared, out ulong s).ThrowIfError();
        mm.CpuWrite(s, Pages.Filled(2, 3 * 4096));
        Assert.Equal(53, mem.FramesInUse);
        mm.Dispose();
        Assert.Equal(0, mem.FramesInUse);
    }
}
