using MirrorEmu.Mm;
using MirrorEmu.Tests.Helpers;

namespace MirrorEmu.Tests.Mm;

/// <summary>MemFile's size changes and hole punching, seen through mappings in several address spaces.</summary>
public class MemFileTests
{
    [Fact]
    public void TruncateUnmapsPagesBeyondTheEndEverywhereSoTheyFaultWithSigbus()
    {
        using var mem = new PhysicalMemory(64UL << 20);
        using var file = new MemFile(mem, Pages.Bytes(4));
        using var mm = new AddressSpace(mem);
        mm.Mmap(0, Pages.Bytes(4), Prot.ReadWrite, MapFlags.Shared, file, 0, out ulong shared).ThrowIfError();
        mm.Mmap(0, Pages.Bytes(4), Prot.ReadWrite, MapFlags.Private, file, 0, out ulong priv).ThrowIfError();
        mm.CpuWrite(shared, Pages.Filled(1, 4 * 4096));
        mm.CpuWrite(priv + Pages.Bytes(3), Pages.Filled(2)); // a private copy beyond the new end
        Assert.True(file.Truncate(Pages.Size + 100).IsOk);
        Assert.Equal(2UL, file.PageCount);
        Assert.Equal(1, Pages.Read(mm, shared + Pages.Size)[99]);
        Assert.Equal(0, Pages.Read(mm, shared + Pages.Size)[100]); // the tail of the last page is zeroed
        MemoryFaultException e = Assert.Throws<MemoryFaultException>(() => Pages.Read(mm, priv + Pages.Bytes(3)));
        Assert.Equal(Signal.SIGBUS, e.Signal);
        Assert.True(file.Truncate(Pages.Bytes(4)).IsOk);
        Assert.Equal(0, Pages.Read(mm, shared + Pages.Bytes(3))[0]);
        Assert.Equal(-Errno.EFBIG, file.Truncate(ulong.MaxValue).Code);
    }

    [Fact]
    public void PunchHoleDropsTheFilesPagesButNotPrivateCopies()
    {
        using var mem = new PhysicalMemory(64UL << 20);
        using var file = new MemFile(mem, Pages.Bytes(2));
        file.Write(0, Pages.Filled(5, 2 * 4096));
        using var mm = new AddressSpace(mem);
        mm.Mmap(0, Pages.Bytes(2), Prot.ReadWrite, MapFlags.Private, file, 0, out ulong priv).ThrowIfError();
        mm.CpuWrite(priv, Pages.Filled(6));
        Assert.Equal(5, Pages.Read(mm, priv + Pages.Size)[0]);
        file.PunchHole(0, 2);
        Assert.Equal(0, file.CachedPages);
        Assert.Equal(6, Pages.Read(mm, priv)[0]);
        Assert.Equal(0, Pages.Read(mm, priv + Pages.Size)[0]);
    }
}
