using MirrorEmu.Hmm;
using MirrorEmu.Mm;
using MirrorEmu.Telemetry;
using MirrorEmu.Tests.Helpers;
using MirrorEmu.Uffd;
using static MirrorEmu.Tests.Helpers.HmmHelpers;

namespace MirrorEmu.Tests.Hmm;

/// <summary>The four userfaultfd fault policies on a 4,096-page userfaultfd VMA with a monitor filling known bytes:
/// the data ends right and the counters match each policy's definition exactly (docs/design.md, "The policies compared").</summary>
public class UffdPolicyTests
{
    private const int PageCount = 4096;
    private const byte Fill = 0xA5;

    private sealed class Setup : IDisposable
    {
        private readonly UffdFixture _uffd;

        public Setup(UffdResolution resolution, int blockPages = 64, Func<AddressSpace, ulong, IUffdFill>? fill = null)
        {
            _uffd = new UffdFixture(PageCount);
            Monitor = new UffdMonitor(Ctx, new UffdMonitorOptions { Fill = fill?.Invoke(Mm, Address) ?? new PatternFill(Fill), Resolution = resolution, BlockPages = blockPages });
            Range = NewRange(Mm, Address, PageCount, HmmPfn.ReqFault | HmmPfn.ReqWrite);
        }

        public AddressSpace Mm => _uffd.Mm;

        public ulong Address => _uffd.Address;

        public Userfaultfd Ctx => _uffd.Ctx;

        public UffdMonitor Monitor { get; }

        public HmmRange Range { get; }

        public void AssertEveryPageHasTheMonitorsBytes()
        {
            for (int i = 0; i < PageCount; i++)
            {
                var p = new HmmPfn(Range.HmmPfns[i]);
                Assert.True(p.IsValid && p.IsWritable, $"page {i} is not valid and writable: {p}");
                Span<byte> frame = Mm.Memory.Frame(p.Pfn);
                Assert.True(frame[0] == Fill && frame[4095] == Fill, $"page {i} (pfn 0x{p.Pfn:x}) does not hold the monitor's bytes");
            }
        }

        public void Dispose()
        {
            Monitor.Dispose();
            _uffd.Dispose();
        }
    }

    [Fact]
    public void UnsupportedFailsWithEfaultAndFaultsNothing()
    {
        using var s = new Setup(UffdResolution.SinglePage);
        s.Range.UffdPolicy = UffdFaultPolicy.Unsupported;
        Assert.Equal(-Errno.EFAULT, DriverLoop(s.Range));
        Assert.Equal(0, s.Ctx.Stats[UffdStat.FaultsQueued]);
        Assert.Equal(0, s.Range.Stats.PagesFaulted);
        Assert.Equal(0, s.Mm.Memory.FramesInUse);
        Assert.Equal(1, s.Ctx.Stats[UffdStat.FaultsSigbus]);
    }

    [Fact]
    public void SinglePageTakesOneRoundTripAndOneEbusyRestartPerPage()
    {
        using var s = new Setup(UffdResolution.SinglePage);
        s.Range.UffdPolicy = UffdFaultPolicy.SinglePage;
        Assert.Equal(0, DriverLoop(s.Range));
        s.AssertEveryPageHasTheMonitorsBytes();
        Assert.Equal(PageCount, s.Range.Stats.RoundTrips);
        Assert.Equal(PageCount, s.Range.Stats.EbusyRestarts);
        Assert.Equal(PageCount, s.Range.Stats.PagesPerRoundTrip.Snapshot()[0]);
        Assert.Equal(PageCount, s.Ctx.Stats[UffdStat.RoundTrips]);
        Assert.Equal(0, s.Range.Stats.EbusyReturns);
        Assert.Equal(1, s.Range.Stats.Calls);
        Assert.Equal(PageCount + 1, s.Range.Stats.Walks);
    }

    [Fact]
    public void BatchedTakesOneRoundTripPerMonitorBatchAndNoEbusy()
    {
        using var s = new Setup(UffdResolution.Block, blockPages: 64);
        s.Range.UffdPolicy = UffdFaultPolicy.Batched;
        Assert.Equal(0, DriverLoop(s.Range));
        s.AssertEveryPageHasTheMonitorsBytes();
        Assert.Equal(PageCount / 64, s.Range.Stats.RoundTrips);
        Assert.Equal(0, s.Range.Stats.EbusyRestarts);
        Assert.Equal(0, s.Range.Stats.EbusyReturns);
        Assert.Equal(PageCount / 64, s.Range.Stats.PagesPerRoundTrip.Snapshot()[6]);
        Assert.Equal(1, s.Range.Stats.Calls);
        Assert.Equal(2, s.Range.Stats.Walks); // one that finds every missing run, one that reports them
    }

    [Fact]
    public void RangeEventTakesOneRoundTripPerMissingRun()
    {
        using var s = new Setup(UffdResolution.WholeRun);
        s.Range.UffdPolicy = UffdFaultPolicy.RangeEvent;
        // Pre-fill three single pages, splitting the range into four missing runs.
        foreach (int page in new[] { 100, 1000, 3000 })
        {
            Assert.Equal(0, s.Ctx.Copy(s.Address + Pages.Bytes(page), Pages.Filled(Fill), UffdCopyMode.None, out _).Code);
        }

        Assert.Equal(0, DriverLoop(s.Range));
        s.AssertEveryPageHasTheMonitorsBytes();
        Assert.Equal(4, s.Range.Stats.RoundTrips);
        Assert.Equal(0, s.Range.Stats.EbusyRestarts);
        Assert.Equal(4, s.Ctx.Stats[UffdStat.RoundTrips]);
        Assert.Equal(PageCount - 3, s.Ctx.Stats[UffdStat.MonitorPages]);
    }

    [Theory]
    [InlineData(UffdFaultPolicy.SinglePage)]
    [InlineData(UffdFaultPolicy.Batched)]
    [InlineData(UffdFaultPolicy.RangeEvent)]
    public void InvalidationsDuringTheCallCauseEbusyAndStillEndWithCorrectData(UffdFaultPolicy policy)
    {
        // Deterministic part: the monitor's first three fills each make the range read-only and writable again
        // (PROTECTION_VMA twice) while the faulting thread waits with the mmap lock dropped, so the notifier sequence
        // moves during the call for sure. Random part: a storm thread keeps doing the same to single pages meanwhile.
        InvalidatingFill? invalidateDuringFill = null;
        using var s = new Setup(
            policy == UffdFaultPolicy.RangeEvent ? UffdResolution.WholeRun : policy == UffdFaultPolicy.Batched ? UffdResolution.Block : UffdResolution.SinglePage,
            fill: (mm, a) => invalidateDuringFill = new InvalidatingFill(mm, a, PageCount, Fill, times: 3));
        s.Range.UffdPolicy = policy;
        int seed = TestSeeds.Get();
        var rng = new Random(seed);
        using var stop = new CancellationTokenSource();
        long storms = 0;
        var storm = new Worker(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                int page = rng.Next(PageCount);
                // A real change each time (Linux raises nothing for an mprotect that changes nothing): executable, then back.
                // Never read-only: a write request that walked the page between the two calls would get -EPERM, as in Linux.
                s.Mm.Mprotect(s.Address + Pages.Bytes(page), Pages.Size, Prot.ReadWrite | Prot.Exec).ThrowIfError();
                s.Mm.Mprotect(s.Address + Pages.Bytes(page), Pages.Size, Prot.ReadWrite).ThrowIfError();
                Interlocked.Increment(ref storms);
                Thread.Sleep(0);
            }
        });
        int rc = DriverLoop(s.Range);
        stop.Cancel();
        Assert.True(storm.Join());
        Assert.Null(storm.Error);
        Assert.Equal(0, rc);
        s.AssertEveryPageHasTheMonitorsBytes();
        Assert.Equal(3, invalidateDuringFill!.Invalidations);
        Assert.True(s.Range.Stats.EbusyReturns >= 1, $"{policy}: an invalidation during the call did not make hmm_range_fault return -EBUSY");
        // Every -EBUSY is followed by another call (so are the successes that read_retry then refused), and the last succeeds.
        Assert.True(s.Range.Stats.Calls >= s.Range.Stats.EbusyReturns + 1, "a -EBUSY was not followed by another call");
        TestContext.Current.TestOutputHelper?.WriteLine($"{policy}: {storms} storm invalidations, {s.Range.Stats.EbusyReturns} -EBUSY returns, {s.Range.Stats.Calls} calls");
    }

    /// <summary>Fills pages with a byte and, on its first few calls, raises an invalidation over the whole range.</summary>
    private sealed class InvalidatingFill(AddressSpace mm, ulong start, int pages, byte value, int times) : IUffdFill
    {
        private int _left = times;

        public int Invalidations { get; private set; }

        public void Fill(ulong address, Span<byte> destination)
        {
            destination.Fill(value);
            if (_left > 0)
            {
                _left--;
                mm.Mprotect(start, Pages.Bytes(pages), Prot.Read).ThrowIfError();
                mm.Mprotect(start, Pages.Bytes(pages), Prot.ReadWrite).ThrowIfError();
                Invalidations++;
            }
        }
    }

    [Fact]
    public void RegularVmaIsPopulatedInBatchWithoutRoundTrips()
    {
        using var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, PageCount);
        HmmRange r = NewRange(mm, a, PageCount, HmmPfn.ReqFault | HmmPfn.ReqWrite);
        Assert.Equal(0, DriverLoop(r));
        Assert.Equal(PageCount, r.Stats.PagesFaulted);
        Assert.Equal(0, r.Stats.RoundTrips);
        Assert.Equal(2, r.Stats.Walks);
        Assert.All(r.HmmPfns, v => Assert.True(new HmmPfn(v).IsWritable));
        Assert.Equal(PageCount, mm.Counters[MmEvent.FaultsAnon]);
    }
}
