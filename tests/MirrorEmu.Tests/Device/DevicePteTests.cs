using MirrorEmu.Hmm;
using MirrorEmu.Kernels;
using MirrorEmu.Mm;

namespace MirrorEmu.Tests.Device;

/// <summary>The device PTE word and the device geometry: fields round-trip, the layout line holds, and the kernels'
/// geometry is the CPU's.</summary>
public class DevicePteTests
{
    [Fact]
    public void TheDeviceGeometryIsTheCpusGeometry()
    {
        Assert.Equal(PageGeometry.PageShift, DeviceGeometry.PageShift);
        Assert.Equal(PageGeometry.LevelBits, DeviceGeometry.LevelBits);
        Assert.Equal(PageGeometry.Levels, DeviceGeometry.Levels);
        Assert.Equal(PageGeometry.VaBits, DeviceGeometry.VaBits);
        Assert.Equal(PageGeometry.PmdOrder, DeviceGeometry.PmdOrder);
        Assert.Equal(PageGeometry.AddressSpaceSize, DeviceGeometry.AddressSpaceSize);
        Assert.Equal(HmmPfn.OrderShift, DevicePte.OrderShift);
        Assert.Equal(HmmPfn.OrderBits, DevicePte.OrderBits);
    }

    [Theory]
    [InlineData(0UL, false, 0)]
    [InlineData(1UL, true, 0)]
    [InlineData(0x1F_FFFF_FFFF_FFFFUL, true, 9)]
    [InlineData(0x200UL, false, 9)]
    public void ASystemFrameLeafKeepsEveryField(ulong pfn, bool writable, int order)
    {
        var pte = DevicePte.SystemFrame(pfn, writable, order);
        Assert.True(pte.IsValid);
        Assert.False(pte.IsTable);
        Assert.Equal(writable, pte.IsWritable);
        Assert.Equal(order, pte.Order);
        Assert.Equal(pfn, pte.Frame);
        Assert.Equal(DeviceFrameKind.System, pte.Kind);
        Assert.Equal(!writable, pte.WithWritable(false) == pte);
        Assert.True(pte.WithWritable(true).IsWritable);
    }

    [Fact]
    public void TheFieldsSitWhereTheLayoutLineSays()
    {
        // [63 VALID][62 WRITE][61 ATOMIC][60..59 kind][58 reserved][57..53 order][52..0 frame]
        Assert.Equal(1UL << 63, DevicePte.ValidBit);
        Assert.Equal(1UL << 62, DevicePte.WriteBit);
        Assert.Equal(1UL << 61, DevicePte.AtomicBit);
        Assert.Equal(0b11UL << 59, DevicePte.KindMask);
        Assert.Equal(0b11111UL << 53, DevicePte.OrderMask);
        Assert.Equal((1UL << 53) - 1, DevicePte.FrameMask);
        Assert.Equal(0UL, DevicePte.ValidBit & DevicePte.WriteBit & DevicePte.AtomicBit & DevicePte.KindMask & DevicePte.OrderMask & DevicePte.FrameMask);
        Assert.Equal((1UL << 63) | (2UL << 59) | 7, DevicePte.TableEntry(7).Value);
    }

    [Fact]
    public void PageOfAHugeLeafIsThePagesFrame()
    {
        var huge = DevicePte.SystemFrame(0x400, true, DeviceGeometry.PmdOrder);
        Assert.Equal(0x400UL + 511, huge.PageOf(0x1234_5FFFUL).Frame);
        Assert.Equal(0x400UL, huge.PageOf(0x1234_5E00UL).Frame);
        var page = DevicePte.SystemFrame(77, false);
        Assert.Equal(page, page.PageOf(0xABCDEFUL));
    }

    [Fact]
    public void ToStringNamesTheFrameAndTheBits()
    {
        Assert.Equal("pfn=0x1a2b V W order=9", DevicePte.SystemFrame(0x1a2b, true, 9).ToString());
        Assert.Equal("table=0x3 V", DevicePte.TableEntry(3).ToString());
        Assert.Equal("none", DevicePte.None.ToString());
    }
}
