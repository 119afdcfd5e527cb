using MirrorEmu.Mm;
using MirrorEmu.Telemetry;

namespace MirrorEmu.Tests.Mm;

/// <summary>Frames: allocation, reference counts, reuse, the limit and the zero page.</summary>
public class PhysicalMemoryTests
{
    [Fact]
    public void FramesHoldRealBytesAndAreReusedAfterTheLastPut()
    {
        using var mem = new PhysicalMemory(16 * PageGeometry.PageSize);
        Assert.True(mem.TryAllocate(out ulong a));
        Assert.NotEqual(PhysicalMemory.ZeroPfn, a);
        mem.Frame(a).Fill(0x5A);
        Assert.Equal(0x5A, mem.Frame(a)[4095]);
        mem.Get(a);
        Assert.Equal(2, mem.RefCount(a));
        mem.Put(a);
        Assert.Equal(1, mem.FramesInUse);
        mem.Put(a);
        Assert.Equal(0, mem.FramesInUse);
        Assert.True(mem.TryAllocate(out ulong b));
        Assert.Equal(a, b);
        Assert.Equal(1, mem.Counters[MmEvent.FramesFreed]);
    }

    [Fact]
    public void TheLimitStopsAllocationWithoutSideEffects()
    {
        using var mem = new PhysicalMemory(4 * PageGeometry.PageSize);
        Span<ulong> pfns = stackalloc ulong[8];
        Assert.Equal(3, mem.TryAllocateBatch(pfns)); // the zero page takes the fourth frame
        Assert.False(mem.TryAllocate(out _));
        Assert.Equal(3, mem.FramesInUse);
    }

    [Fact]
    public void HugeAllocationIsAlignedAndContiguous()
    {
        using var mem = new PhysicalMemory(4096 * PageGeometry.PageSize);
        Assert.True(mem.TryAllocate(out _));
        Assert.True(mem.TryAllocateHuge(out ulong basePfn));
        Assert.Equal(0UL, basePfn % 512);
        Assert.Equal(1, mem.RefCount(basePfn + 511));
        // the frames skipped for alignment went to the free list and are handed out next
        Assert.True(mem.TryAllocate(out ulong next));
        Assert.True(next < basePfn);
    }

    [Fact]
    public void ZeroPageIsZeroAndNeverCounted()
    {
        using var mem = new PhysicalMemory(8 * PageGeometry.PageSize);
        Assert.True(mem.Frame(PhysicalMemory.ZeroPfn).IndexOfAnyExcept((byte)0) < 0);
        mem.Get(PhysicalMemory.ZeroPfn);
        mem.Put(PhysicalMemory.ZeroPfn);
        mem.Put(PhysicalMemory.ZeroPfn);
        Assert.Equal(0, mem.FramesInUse);
    }

    [Fact]
    public void BadLimitIsRejectedNamingTheValueInHex()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new PhysicalMemory(12345));
        Assert.Contains("0x3039", e.Message);
    }
}
