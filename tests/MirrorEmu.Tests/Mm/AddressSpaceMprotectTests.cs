using MirrorEmu.Mm;
using MirrorEmu.Tests.Helpers;

namespace MirrorEmu.Tests.Mm;

/// <summary>madvise's advices and their effects (AddressSpace.Mprotect.cs), as Linux 6.18 has them.</summary>
public class AddressSpaceMprotectTests
{
    [Fact]
    public void MadviseAppliesToTheMappedPartsAndReportsAHoleAtTheEnd()
    {
        using var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, 4);
        mm.Munmap(a + Pages.Size, Pages.Size).ThrowIfError();
        Assert.Equal(-Errno.ENOMEM, mm.Madvise(a, Pages.Bytes(4), Advice.HugePage).Code);
        Assert.All(mm.SnapshotVmas(), v => Assert.True((v.Flags & VmFlags.HugePage) != 0, $"{v} lacks VM_HUGEPAGE"));
        Assert.Equal(-Errno.EINVAL, mm.Madvise(a, Pages.Size, (Advice)5).Code);
        Assert.Equal(-Errno.EINVAL, mm.Madvise(a + 1, 0, (Advice)99).Code); // an unknown advice fails first
        Assert.Equal(-Errno.EINVAL, mm.Madvise(ulong.MaxValue - 4095, Pages.Bytes(2), Advice.Normal).Code); // the end wraps
    }

    [Fact]
    public void PopulateStopsAtTheFirstVmaItCannotFaultAndNeedsTheAccess()
    {
        using var mm = new AddressSpace();
        ulong writeOnly = Pages.MapAnon(mm, 2, Prot.Write);
        Assert.Equal(-Errno.EINVAL, mm.Madvise(writeOnly, Pages.Bytes(2), Advice.PopulateRead).Code);
        ulong execOnly = Pages.MapAnon(mm, 2, Prot.Exec);
        Assert.Equal(-Errno.EINVAL, mm.Madvise(execOnly, Pages.Bytes(2), Advice.PopulateRead).Code);
        ulong none = Pages.MapAnon(mm, 1, Prot.None);
        Assert.Equal(-Errno.EINVAL, mm.Madvise(none, Pages.Size, Advice.PopulateWrite).Code);
    }

    [Fact]
    public void FlagAdvicesSplitAndMergeAndRefuseWhereLinuxDoes()
    {
        using var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, 4);
        foreach ((Advice advice, VmFlags flag) in (ReadOnlySpan<(Advice, VmFlags)>)[(Advice.Sequential, VmFlags.SeqRead), (Advice.Random, VmFlags.RandRead),
            (Advice.DontFork, VmFlags.DontCopy), (Advice.DontDump, VmFlags.DontDump), (Advice.WipeOnFork, VmFlags.WipeOnFork)])
        {
            Assert.True(mm.Madvise(a + Pages.Size, Pages.Size, advice).IsOk);
            Assert.Equal(3, mm.VmaCount);
            Assert.Equal(flag, mm.SnapshotVmas()[1].Flags & flag);
        }

        foreach (Advice undo in (ReadOnlySpan<Advice>)[Advice.Normal, Advice.DoFork, Advice.DoDump, Advice.KeepOnFork])
        {
            Assert.True(mm.Madvise(a + Pages.Size, Pages.Size, undo).IsOk);
        }

        Assert.Equal(1, mm.VmaCount);
        ulong shared = Pages.MapAnon(mm, 1, flags: MapFlags.Shared);
        Assert.Equal(-Errno.EINVAL, mm.Madvise(shared, Pages.Size, Advice.WipeOnFork).Code);
        Assert.Equal(-Errno.EINVAL, mm.Madvise(shared, Pages.Size, Advice.Free).Code);
        foreach (Advice noop in (ReadOnlySpan<Advice>)[Advice.WillNeed, Advice.Cold, Advice.PageOut])
        {
            Assert.True(mm.Madvise(a, Pages.Bytes(4), noop).IsOk);
        }
    }

    [Fact]
    public void WipeOnForkGivesTheChildZerosAndDontForkGivesItNothing()
    {
        using var mm = new AddressSpace();
        ulong wipe = Pages.MapAnon(mm, 1);
        ulong skip = Pages.MapAnon(mm, 1);
        mm.CpuWrite(wipe, Pages.Filled(5));
        mm.CpuWrite(skip, Pages.Filled(6));
        mm.Madvise(wipe, Pages.Size, Advice.WipeOnFork).ThrowIfError();
        mm.Madvise(skip, Pages.Size, Advice.DontFork).ThrowIfError();
        using AddressSpace child = mm.Fork();
        Assert.Equal(0, Pages.Read(child, wipe)[0]);
        Assert.Throws<MemoryFaultException>(() => Pages.Read(child, skip));
        Assert.Equal(5, Pages.Read(mm, wipe)[0]);
    }

    [Fact]
    public void FreeKeepsTheContentsAndDontNeedRefusesLockedMemory()
    {
        using var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, 2);
        mm.CpuWrite(a, Pages.Filled(3));
        Assert.True(mm.Madvise(a, Pages.Bytes(2), Advice.Free).IsOk);
        Assert.Equal(3, Pages.Read(mm, a)[0]); // nothing reclaims lazily freed pages here
        mm.Mlock(a, Pages.Bytes(2)).ThrowIfError();
        Assert.Equal(-Errno.EINVAL, mm.Madvise(a, Pages.Size, Advice.DontNeed).Code);
        Assert.True(mm.Madvise(a, Pages.Size, Advice.DontNeedLocked).IsOk);
        Assert.Equal(0, Pages.Read(mm, a)[0]);
    }

    [Fact]
    public void GuardRegionsSurviveDontNeedAndForkAndGoWithGuardRemoveOrMunmap()
    {
        using var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, 4);
        mm.CpuWrite(a, Pages.Filled(1, 4 * 4096));
        Assert.True(mm.Madvise(a + Pages.Size, Pages.Bytes(2), Advice.GuardInstall).IsOk);
        Assert.Equal(SwapType.Guard, mm.PageTable.Read(a + Pages.Size).Swap);
        Assert.Equal(1, Pages.Read(mm, a)[0]);
        Assert.Throws<MemoryFaultException>(() => Pages.Read(mm, a + Pages.Size));
        Assert.True(mm.Madvise(a, Pages.Bytes(4), Advice.DontNeed).IsOk);
        Assert.Equal(SwapType.Guard, mm.PageTable.Read(a + Pages.Size).Swap);
        using (AddressSpace child = mm.Fork())
        {
            Assert.Equal(SwapType.Guard, child.PageTable.Read(a + Pages.Bytes(2)).Swap);
        }

        Assert.True(mm.Madvise(a + Pages.Size, Pages.Size, Advice.GuardRemove).IsOk);
        Assert.Equal(0, Pages.Read(mm, a + Pages.Size)[0]);
        mm.Mlock(a, Pages.Size).ThrowIfError();
        Assert.Equal(-Errno.EINVAL, mm.Madvise(a, Pages.Size, Advice.GuardInstall).Code);
        mm.Munmap(a, Pages.Bytes(4)).ThrowIfError();
        Assert.True(mm.PageTable.Read(a + Pages.Bytes(2)).IsNone);
    }

    [Fact]
    public void RemovePunchesAHoleEveryMapperOfTheSharedObjectSees()
    {
        using var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, 2, flags: MapFlags.Shared);
        mm.CpuWrite(a, Pages.Filled(8, 2 * 4096));
        using AddressSpace child = mm.Fork();
        Assert.True(mm.Madvise(a, Pages.Size, Advice.Remove).IsOk);
        Assert.Equal(0, Pages.Read(child, a)[0]);
        Assert.Equal(8, Pages.Read(child, a + Pages.Size)[0]);
        ulong priv = Pages.MapAnon(mm, 1);
        Assert.Equal(-Errno.EINVAL, mm.Madvise(priv, Pages.Size, Advice.Remove).Code);
    }
}
