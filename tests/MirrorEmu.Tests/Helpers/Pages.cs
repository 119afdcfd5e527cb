using MirrorEmu.Mm;

namespace MirrorEmu.Tests.Helpers;

/// <summary>Small helpers for page-sized test data.</summary>
public static class Pages
{
    public const ulong Size = PageGeometry.PageSize;

    public static ulong Bytes(int pages) => (ulong)pages * PageGeometry.PageSize;

    public static byte[] Filled(byte value, int length = PageGeometry.PageSizeInt)
    {
        var b = new byte[length];
        Array.Fill(b, value);
        return b;
    }

    public static byte[] Read(AddressSpace mm, ulong address, int length = PageGeometry.PageSizeInt)
    {
        var b = new byte[length];
        mm.CpuRead(address, b);
        return b;
    }

    /// <summary>Maps private anonymous memory and returns its address; fails the test on error.</summary>
    public static ulong MapAnon(AddressSpace mm, int pages, Prot prot = Prot.ReadWrite, MapFlags flags = MapFlags.Private)
    {
        KResult r = mm.MmapAnonymous(Bytes(pages), prot, flags, out ulong addr);
        Assert.True(r.IsOk, r.ToString());
        return addr;
    }
}
