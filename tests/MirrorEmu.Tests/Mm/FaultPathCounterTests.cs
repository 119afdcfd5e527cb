using MirrorEmu.Hmm;
using MirrorEmu.Mm;
using MirrorEmu.Telemetry;
using MirrorEmu.Tests.Helpers;
using MirrorEmu.Uffd;
using static MirrorEmu.Tests.Helpers.HmmHelpers;

namespace MirrorEmu.Tests.Mm;

/// <summary>One fault path: whichever caller faults a page in (a CPU access, populate, hmm_range_fault under each
/// userfaultfd policy), it goes through handle_mm_fault and the same counters move the same way.</summary>
public class FaultPathCounterTests
{
    private const int PageCount = 40;

    public enum Path
    {
        CpuWrite,
        PopulateWrite,
        HmmSinglePage,
        HmmBatched,
        HmmRangeEvent,
    }

    [Theory]
    [InlineData(Path.CpuWrite)]
    [InlineData(Path.PopulateWrite)]
    [InlineData(Path.HmmSinglePage)]
    [InlineData(Path.HmmBatched)]
    [InlineData(Path.HmmRangeEvent)]
    public void EveryUserfaultFaultIsCountedOnceWhicheverPathRaisedIt(Path path)
    {
        using var f = new UffdFixture(PageCount);
        using var monitor = new UffdMonitor(f.Ctx, new UffdMonitorOptions
        {
            Fill = new PatternFill(0x77),
            Resolution = path == Path.HmmRangeEvent ? UffdResolution.WholeRun : UffdResolution.SinglePage,
        });
        FaultIn(f.Mm, f.Address, path);

        long messages = f.Ctx.Stats[UffdStat.FaultsQueued];
        Assert.Equal(path == Path.HmmRangeEvent ? 1 : PageCount, messages);
        Assert.Equal(messages, f.Mm.Counters[MmEvent.UserfaultFaults]); // every message came from a counted userfault
        Assert.Equal(messages, f.Mm.Counters[MmEvent.Faults]); // and every userfault from a counted handle_mm_fault
        Assert.Equal(messages, f.Mm.Counters[MmEvent.LockDrops]);
        Assert.Equal(PageCount, f.Ctx.Stats[UffdStat.PagesCopied]);
        Assert.Equal(0, f.Mm.Counters[MmEvent.ErrorFaults]);
        for (int i = 0; i < PageCount; i++)
        {
            Assert.Equal(0x77, Pages.Read(f.Mm, f.Address + Pages.Bytes(i))[4095]);
        }
    }

    [Theory]
    [InlineData(Path.CpuWrite)]
    [InlineData(Path.PopulateWrite)]
    [InlineData(Path.HmmBatched)]
    public void EveryRegularPageIsCountedAsOneAnonymousFaultWhicheverPathFaultedIt(Path path)
    {
        using var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, PageCount);
        FaultIn(mm, a, path);
        Assert.Equal(PageCount, mm.Counters[MmEvent.FaultsAnon]);
        Assert.Equal(PageCount, mm.Counters[MmEvent.FramesAllocated]);
        Assert.Equal(0, mm.Counters[MmEvent.InstallRaces]);
        Assert.Equal(PageCount, mm.Memory.FramesInUse);
    }

    private static void FaultIn(AddressSpace mm, ulong a, Path path)
    {
        switch (path)
        {
            case Path.CpuWrite:
                for (int i = 0; i < PageCount; i++)
                {
                    mm.CpuWriteUInt64(a + Pages.Bytes(i) + 8, 0x7777_7777_7777_7777);
                }

                break;
            case Path.PopulateWrite:
                Assert.True(mm.Madvise(a, Pages.Bytes(PageCount), Advice.PopulateWrite).IsOk);
                break;
            default:
                HmmRange range = NewRange(mm, a, PageCount, HmmPfn.ReqFault | HmmPfn.ReqWrite);
                range.UffdPolicy = path switch
                {
                    Path.HmmSinglePage => UffdFaultPolicy.SinglePage,
                    Path.HmmRangeEvent => UffdFaultPolicy.RangeEvent,
                    _ => UffdFaultPolicy.Batched,
                };
                Assert.Equal(0, DriverLoop(range));
                break;
        }
    }
}
