using MirrorEmu.Hmm;
using MirrorEmu.Mm;
using MirrorEmu.Notifier;
using MirrorEmu.Telemetry;
using MirrorEmu.Tests.Helpers;
using MirrorEmu.Uffd;
using MirrorEmu.Workloads;
using static MirrorEmu.Tests.Helpers.HmmHelpers;

namespace MirrorEmu.Tests.Hmm;

/// <summary>Every userfaultfd policy over small, odd and unaligned ranges, with monitor blocks larger than the range:
/// the call ends (no livelock), every byte is the monitor's, the counters follow the policy exactly, and nothing is
/// copied outside the registered VMA.</summary>
public class UffdPolicyEdgeTests
{
    /// <summary>A 2 MiB-aligned base, so that page offsets from it are offsets from a block boundary.</summary>
    private const ulong Base = 0x7100_0000_0000UL;

    public static TheoryData<UffdFaultPolicy, int, int, int> Cases()
    {
        var data = new TheoryData<UffdFaultPolicy, int, int, int>();
        foreach (UffdFaultPolicy policy in new[] { UffdFaultPolicy.SinglePage, UffdFaultPolicy.Batched, UffdFaultPolicy.RangeEvent })
        {
            foreach (int pages in new[] { 1, 2, 63, 64, 65, 100, 511, 512, 513 })
            {
                foreach (int offset in new[] { 0, 3, 61 })
                {
                    data.Add(policy, pages, offset, 128);
                }
            }

            data.Add(policy, 65, 7, 1024); // a block much larger than the range
            data.Add(policy, 1, 1, 64);
        }

        return data;
    }

    /// <summary>The driver loop (both variants) ends with -EINTR when cancelled while a fault waits for a monitor that
    /// never answers, long before the fault's own timeout, and leaves no lock held.</summary>
    [Theory]
    [InlineData(UffdFaultPolicy.SinglePage, false)]
    [InlineData(UffdFaultPolicy.Batched, false)]
    [InlineData(UffdFaultPolicy.RangeEvent, false)]
    [InlineData(UffdFaultPolicy.SinglePage, true)]
    [InlineData(UffdFaultPolicy.Batched, true)]
    public async Task ACancelledDriverLoopEndsWithEintrWhileAFaultWaits(UffdFaultPolicy policy, bool unlocked)
    {
        using var mm = new AddressSpace();
        Assert.True(mm.Mmap(Base, Pages.Bytes(8), Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous | MapFlags.Fixed, null, 0, out _).IsOk);
        using var ctx = new Userfaultfd(mm) { FaultTimeoutMs = 60_000 };
        ctx.Api(UffdApi.Version, UffdFeatures.None, out _).ThrowIfError();
        ctx.Register(Base, Pages.Bytes(8), UffdRegisterMode.Missing, out _).ThrowIfError();
        HmmRange range = NewRange(mm, Base, 8, HmmPfn.ReqFault | HmmPfn.ReqWrite);
        range.UffdPolicy = policy;
        var ops = (SeqNotifierOps)range.Notifier.Ops;
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        // Cancel once the fault is queued (no monitor reads it): the loop is then inside the wait.
        var canceller = Task.Run(() =>
        {
            Assert.True(SpinWait.SpinUntil(() => ctx.Stats[UffdStat.FaultsWaited] > 0, 30_000), "no fault reached the context");
            cts.Cancel();
        }, TestContext.Current.CancellationToken);
        KResult r = unlocked
            ? HmmDriverLoop.RunUnlocked(range, ops.DriverLock, 120_000, cancellation: cts.Token)
            : HmmDriverLoop.Run(range, ops.DriverLock, 120_000, cancellation: cts.Token);
        await canceller;
        Assert.Equal(-Errno.EINTR, r.Code);
        Assert.False(mm.MmapLock.IsLocked);
        Assert.False(ops.DriverLock.IsHeldByCurrentThread);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void EveryPolicyFaultsOddRangesCompletelyAndExactly(UffdFaultPolicy policy, int pages, int offsetPages, int blockPages)
    {
        using var mm = new AddressSpace();
        ulong start = Base + Pages.Bytes(offsetPages);
        // A regular VMA right below and right above: a block that spilled over would have to touch them.
        ulong below = start - Pages.Size;
        Assert.True(mm.Mmap(below, Pages.Size, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous | MapFlags.Fixed, null, 0, out _).IsOk);
        Assert.True(mm.Mmap(start, Pages.Bytes(pages + 1), Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous | MapFlags.Fixed, null, 0, out _).IsOk);
        using var ctx = new Userfaultfd(mm) { FaultTimeoutMs = 10_000 };
        ctx.Api(UffdApi.Version, UffdFeatures.None, out _).ThrowIfError();
        ctx.Register(start, Pages.Bytes(pages), UffdRegisterMode.Missing, out _).ThrowIfError();
        var fill = new PatternFill(0x5A);
        using var monitor = new UffdMonitor(ctx, new UffdMonitorOptions
        {
            Fill = fill,
            Resolution = ComparePolicies.MonitorResolution(policy),
            BlockPages = blockPages,
        });
        HmmRange range = NewRange(mm, start, pages, HmmPfn.ReqFault | HmmPfn.ReqWrite);
        range.UffdPolicy = policy;

        int rc = DriverLoop(range, timeoutMs: 20_000);

        Assert.True(rc == 0, $"{policy} over {pages} pages at +{offsetPages} (block {blockPages}) ended with {Errno.Name(rc)}: {monitor.LastError}");
        Assert.Equal(0, monitor.FailedMessages);
        byte[] page = new byte[PageGeometry.PageSizeInt];
        for (int i = 0; i < pages; i++)
        {
            var p = new HmmPfn(range.HmmPfns[i]);
            Assert.True(p.IsValid && p.IsWritable, $"page {i} is not valid and writable: {p}");
            mm.CpuRead(start + Pages.Bytes(i), page);
            Assert.True(Array.TrueForAll(page, b => b == 0x5A), $"page {i} does not hold the monitor's bytes in full");
        }

        Assert.True(mm.PageTable.Read(below).IsNone, "the monitor copied into the VMA below the registered range");
        Assert.True(mm.PageTable.Read(start + Pages.Bytes(pages)).IsNone, "the monitor copied beyond the registered range");
        Assert.Equal(pages, ctx.Stats[UffdStat.PagesCopied]);
        long expectedTrips = policy switch
        {
            UffdFaultPolicy.SinglePage => pages,
            UffdFaultPolicy.Batched => BlocksTouched(offsetPages, pages, blockPages),
            _ => 1,
        };
        Assert.Equal(expectedTrips, range.Stats.RoundTrips);
        Assert.Equal(expectedTrips, ctx.Stats[UffdStat.RoundTrips]);
        Assert.Equal(policy == UffdFaultPolicy.SinglePage ? pages : 0, range.Stats.EbusyRestarts);
        Assert.Equal(pages, range.Stats.PagesFaulted);
    }

    [Fact]
    public void CompareWithOddPageCountsFinishesForEveryPolicy()
    {
        foreach (int pages in new[] { 1, 3, 65, 100 })
        {
            MirrorEmu.Workloads.CompareResult result = MirrorEmu.Workloads.Comparison.Run(
                new MirrorEmu.Workloads.ComparisonOptions { Level = MirrorEmu.Workloads.CompareLevel.Hmm, Pages = pages, MonitorBatch = 128, Repeat = 1 },
                null,
                null,
                TestContext.Current.CancellationToken);
            Assert.Equal(5, result.Rows.Count);
            Assert.All(result.Rows.Where(r => r.Policy != MirrorEmu.Workloads.ComparePolicy.UffdUnsupported), r =>
                Assert.True(r.Error is null && r.Verified && r.Counters.PagesFaulted == pages, $"{pages} pages, {r.Policy}: error {r.Error}, verified {r.Verified}, faulted {r.Counters.PagesFaulted}"));
        }
    }

    /// <summary>How many blockPages-aligned blocks [offset, offset + pages) touches.</summary>
    private static long BlocksTouched(int offset, int pages, int blockPages) =>
        ((offset + pages - 1) / blockPages) - (offset / blockPages) + 1;
}
