using System.Runtime.Intrinsics;
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

    [Fact]
    public void IsZeroPageAsksForPresentSpecialAndTheZeroPfnOnly()
    {
        Pte z = Pte.Special(PhysicalMemory.ZeroPfn);
        Assert.True(z.IsZeroPage);
        Assert.True(new Pte(z.Value | Pte.WriteBit | Pte.NxBit | Pte.HugeBit | Pte.SoftDirtyBit | Pte.UffdWpBit).IsZeroPage, "is_zero_pfn looks at the pfn only");
        Assert.False(Pte.Special(7).IsZeroPage, "a special entry of another pfn");
        Assert.False(Pte.Present(PhysicalMemory.ZeroPfn, writable: false).IsZeroPage, "not special");
        Assert.False(z.WithProtNone().IsZeroPage, "not present");
    }

    [Fact]
    public void VectorAccessorsMatchTheScalarOnes()
    {
        ulong[] words = [0, Pte.Present(0x1234, true).Value, Pte.Present(Pte.MaxPfn, false).Value, Pte.Special(9).Value | Pte.NxBit, ulong.MaxValue, Pte.SwapEntry(SwapType.Swap, 77).Value, 1, 2];
        Vector512<ulong> v = Vector512.Create(words);
        Vector512<ulong> pfns = Pte.Pfns(v);
        Vector512<ulong> present = Pte.MoveBit(v, Pte.PresentShift, 63);
        Vector512<ulong> write = Pte.MoveBit(v, Pte.WriteShift, 62);
        for (int i = 0; i < words.Length; i++)
        {
            var p = new Pte(words[i]);
            Assert.Equal(p.Pfn, pfns[i]);
            Assert.Equal(p.IsPresent ? 1UL << 63 : 0, present[i]);
            Assert.Equal(p.IsWritable ? 1UL << 62 : 0, write[i]);
        }
    }
}
