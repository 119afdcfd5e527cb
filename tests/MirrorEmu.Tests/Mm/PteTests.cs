using MirrorEmu.Mm;

namespace MirrorEmu.Tests.Mm;

/// <summary>The PTE word's layout and its With… transitions.</summary>
public class PteTests
{
    [Fact]
    public void PresentEntryKeepsPfnAndPermission()
    {
        Pte p = Pte.Present(0xABCDE, writable: true);
        Assert.True(p.IsPresent);
        Assert.True(p.IsMapped);
        Assert.True(p.IsWritable);
        Assert.True(p.IsDirty);
        Assert.Equal(0xABCDEUL, p.Pfn);
        Assert.Equal(SwapType.None, p.Swap);
        Assert.Equal(0xABCDEUL << PageGeometry.PageShift, p.Value & Pte.PfnMask);
    }

    [Fact]
    public void ProtNoneIsMappedButNotPresentAndRoundTrips()
    {
        Pte p = Pte.Present(7, writable: true);
        Pte none = p.WithProtNone();
        Assert.False(none.IsPresent);
        Assert.True(none.IsProtNone);
        Assert.True(none.IsMapped);
        Assert.Equal(SwapType.None, none.Swap);
        Assert.Equal(p, none.WithPresent());
    }

    [Theory]
    [InlineData(SwapType.Swap)]
    [InlineData(SwapType.MigrationWrite)]
    [InlineData(SwapType.DevicePrivateRead)]
    [InlineData(SwapType.DeviceExclusive)]
    [InlineData(SwapType.Marker)]
    [InlineData(SwapType.Poisoned)]
    public void SwapEntriesDecodeTheirTypeAndOffset(SwapType type)
    {
        Pte e = Pte.SwapEntry(type, Pte.MaxPfn);
        Assert.False(e.IsMapped);
        Assert.False(e.IsNone);
        Assert.Equal(type, e.Swap);
        Assert.Equal(Pte.MaxPfn, e.Pfn);
        Assert.Equal(type == SwapType.Marker, e.IsNoneMostly);
    }

    [Fact]
    public void ZeroPageEntryIsSpecialAndReadOnly()
    {
        Pte z = Pte.Special(PhysicalMemory.ZeroPfn);
        Assert.True(z.IsPresent);
        Assert.True(z.IsSpecial);
        Assert.False(z.IsWritable);
        Assert.Equal("pfn=0x0 P SPECIAL", z.ToString());
    }

    [Fact]
    public void GeometryIsDerivedFromBitCounts()
    {
        Assert.Equal(48, PageGeometry.VaBits);
        Assert.Equal(4096UL, PageGeometry.PageSize);
        Assert.Equal(512, PageGeometry.LevelEntries);
        Assert.Equal(2UL << 20, PageGeometry.PmdSize);
        ulong va = (3UL << 39) | (5UL << 30) | (7UL << 21) | (11UL << 12) | 0x123;
        Assert.Equal(3, PageGeometry.Index(va, 3));
        Assert.Equal(5, PageGeometry.Index(va, 2));
        Assert.Equal(7, PageGeometry.Index(va, 1));
        Assert.Equal(11, PageGeometry.Index(va, 0));
    }
}
