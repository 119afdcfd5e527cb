using MirrorEmu.Mm;
using MirrorEmu.Tests.Helpers;

namespace MirrorEmu.Tests.Mm;

/// <summary>msync and mincore (AddressSpace.Sync.cs).</summary>
public class AddressSpaceSyncTests
{
    [Fact]
    public void MsyncChecksItsArgumentsAndTheRange()
    {
        using var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, 2);
        Assert.True(mm.Msync(a, Pages.Bytes(2), MsyncFlags.Sync).IsOk);
        Assert.Equal(-Errno.EINVAL, mm.Msync(a, Pages.Size, MsyncFlags.Sync | MsyncFlags.Async).Code);
        Assert.Equal(-Errno.EINVAL, mm.Msync(a + 1, Pages.Size, MsyncFlags.Sync).Code);
        Assert.Equal(-Errno.ENOMEM, mm.Msync(a, Pages.Bytes(3), MsyncFlags.Sync).Code);
        mm.Mlock(a, Pages.Size).ThrowIfError();
        Assert.Equal(-Errno.EBUSY, mm.Msync(a, Pages.Size, MsyncFlags.Invalidate).Code);
    }

    [Fact]
    public void MincoreReportsMappedAnonymousPagesAndCachedFilePages()
    {
        using var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, 3);
        mm.CpuWrite(a + Pages.Size, Pages.Filled(1));
        byte[] vec = new byte[3];
        Assert.True(mm.Mincore(a, Pages.Bytes(3), vec).IsOk);
        Assert.Equal(new byte[] { 0, 1, 0 }, vec);
        using var file = new MemFile(mm.Memory, Pages.Bytes(2));
        file.Write(Pages.Size, Pages.Filled(2));
        mm.Mmap(0, Pages.Bytes(2), Prot.Read, MapFlags.Shared, file, 0, out ulong f).ThrowIfError();
        Assert.True(mm.Mincore(f, Pages.Bytes(2), vec).IsOk);
        Assert.Equal(new byte[] { 0, 1 }, vec[..2]);
        Assert.Equal(-Errno.ENOMEM, mm.Mincore(a, Pages.Bytes(4), new byte[4]).Code);
        Assert.Equal(-Errno.EFAULT, mm.Mincore(a, Pages.Bytes(3), new byte[2]).Code);
    }
}
