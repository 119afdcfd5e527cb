using MirrorEmu.Mm;
using MirrorEmu.Tests.Helpers;

namespace MirrorEmu.Tests.Mm;

/// <summary>mlock2/munlock (AddressSpace.Lock.cs).</summary>
public class AddressSpaceLockTests
{
    [Fact]
    public void MlockMarksAndPopulatesAndMunlockUndoes()
    {
        using var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, 4);
        Assert.True(mm.Mlock(a + Pages.Size + 5, Pages.Size).IsOk); // rounded to pages 1..2
        IReadOnlyList<Vma> vmas = mm.SnapshotVmas();
        Assert.Equal(3, vmas.Count);
        Assert.Equal(VmFlags.Locked, vmas[1].Flags & VmFlags.LockedMask);
        Assert.True(mm.PageTable.Read(a + Pages.Bytes(2)).IsWritable, "mlock populates private writable memory writable");
        Assert.True(mm.Munlock(a, Pages.Bytes(4)).IsOk);
        Assert.Equal(1, mm.VmaCount);
    }

    [Fact]
    public void MlockOnFaultDoesNotPopulateAndHolesAndBadFlagsAreErrors()
    {
        using var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, 2);
        Assert.True(mm.Mlock(a, Pages.Bytes(2), MlockFlags.OnFault).IsOk);
        Assert.True(mm.PageTable.Read(a).IsNone);
        Assert.Equal(VmFlags.LockedMask, mm.SnapshotVmas()[0].Flags & VmFlags.LockedMask);
        Assert.Equal(-Errno.EINVAL, mm.Mlock(a, Pages.Size, (MlockFlags)2).Code);
        Assert.Equal(-Errno.ENOMEM, mm.Mlock(a, Pages.Bytes(3)).Code);
        ulong none = Pages.MapAnon(mm, 1, Prot.None);
        Assert.Equal(-Errno.ENOMEM, mm.Mlock(none, Pages.Size).Code); // marked, but a PROT_NONE page cannot be populated
    }
}
