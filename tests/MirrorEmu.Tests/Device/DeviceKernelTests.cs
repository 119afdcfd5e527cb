using MirrorEmu.Device;
using MirrorEmu.Mm;
using MirrorEmu.Notifier;
using MirrorEmu.Tests.Helpers;
using static MirrorEmu.Tests.Helpers.DeviceHelpers;

namespace MirrorEmu.Tests.Device;

/// <summary>
/// The kernels through a device, per launcher: every kernel exact at boundary sizes and unaligned starts, coherence
/// with the CPU both ways without invalidations, the same results and counters as the direct launcher on the same
/// workload, each replay policy's exact counters, a full fault buffer, and launch errors (bad arguments, -EPERM,
/// -EBUSY, cancellation) that name what went wrong.
/// </summary>
public abstract class DeviceKernelTests(LauncherFixture fixture)
{
    private CancellationToken Token => TestContext.Current.CancellationToken;

    /// <summary>Element counts on the boundaries of a page (512 elements) and of the 64-bit masks.</summary>
    public static TheoryData<int, int> ElementCounts()
    {
        var data = new TheoryData<int, int>();
        foreach (int n in new[] { 1, 31, 32, 33, 63, 64, 65, 511, 512, 513, 1025, 4097 })
        {
            data.Add(n, 0);
            data.Add(n, PageElements - 3); // starts 3 elements before a page boundary
        }

        return data;
    }

    /// <summary>Page spans on the boundaries of a leaf block (512 pages) and of the masks.</summary>
    public static TheoryData<int> PageSpans() => [1, 31, 32, 33, 63, 64, 65, 511, 512, 513, 1025];

    [Theory]
    [MemberData(nameof(ElementCounts))]
    public void ReadWriteAndCopyAreExactAtBoundaryCountsAndUnalignedStarts(int elements, int startElement)
    {
        using var mm = new AddressSpace();
        int pages = ((startElement + elements) / PageElements) + 3; // a guard page before, one after
        ulong src = Pages.MapAnon(mm, pages) + Pages.Size + ((ulong)startElement * sizeof(ulong));
        ulong dst = Pages.MapAnon(mm, pages) + Pages.Size + ((ulong)startElement * sizeof(ulong));
        using MirrorDevice dev = NewDevice(mm, fixture.Launcher);
        var values = new ulong[elements];
        for (int i = 0; i < elements; i++)
        {
            values[i] = ((ulong)elements << 32) | (uint)i;
        }

        Ok(dev.LaunchWrite(src, values, out LaunchReport write, Token));
        Assert.Equal(values, CpuElements(mm, src, elements));
        Assert.Equal(elements, write.Items);
        Assert.Equal(0UL, mm.CpuReadUInt64(src - sizeof(ulong)) | mm.CpuReadUInt64(src + ((ulong)elements * sizeof(ulong)))); // neighbours untouched

        var read = new ulong[elements];
        Ok(dev.LaunchRead(src, read, out _, Token));
        Assert.Equal(values, read);

        Ok(dev.LaunchCopy(src, dst, elements, out LaunchReport copy, Token));
        Assert.Equal(values, CpuElements(mm, dst, elements));
        int spanned = (int)(((dst + ((ulong)elements * sizeof(ulong)) - 1) >> PageGeometry.PageShift) - (dst >> PageGeometry.PageShift) + 1);
        Assert.Equal(spanned, copy.PagesMapped); // the source was mapped by the write; the destination's pages once each
    }

    [Theory]
    [MemberData(nameof(PageSpans))]
    public void GatherScatterAndAtomicAddReachEveryPageOfASpan(int pages)
    {
        using var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, pages);
        long elements = (long)pages * PageElements;
        int seed = TestSeeds.Get();
        var rng = new Random(seed);
        int[] indices = [.. Enumerable.Range(0, pages).Select(p => (p * PageElements) + rng.Next(PageElements))];
        ulong[] values = [.. indices.Select(i => (ulong)i * 11)];
        using MirrorDevice dev = NewDevice(mm, fixture.Launcher);

        Ok(dev.LaunchScatter(a, elements, indices, values, out LaunchReport scatter, Token));
        Assert.Equal(pages, scatter.PagesMapped);
        foreach (int i in indices)
        {
            Assert.Equal((ulong)i * 11, mm.CpuReadUInt64(a + ((ulong)i * sizeof(ulong))));
        }

        var gathered = new ulong[pages];
        Ok(dev.LaunchGather(a, elements, indices, gathered, out LaunchReport gather, Token));
        Assert.Equal(values, gathered);
        Assert.Equal(0, gather.FaultsAppended);

        // A histogram: 3P work items each add 1 to one of three counters on the span's first and last pages.
        int[] bins = [0, 1, (int)elements - 1];
        int[] hits = [.. Enumerable.Range(0, 3 * pages).Select(k => bins[k % 3])];
        ulong[] before = [.. bins.Select(i => mm.CpuReadUInt64(a + ((ulong)i * sizeof(ulong))))];
        Ok(dev.LaunchAtomicAdd(a, elements, hits, 1, out _, Token));
        for (int k = 0; k < bins.Length; k++)
        {
            Assert.Equal(before[k] + (ulong)pages, mm.CpuReadUInt64(a + ((ulong)bins[k] * sizeof(ulong))));
        }
    }

    [Fact]
    public void ACpuWriteIsSeenByTheNextDeviceReadWithoutAnInvalidation()
    {
        using var mm = new AddressSpace();
        int pages = fixture.BufferPages;
        ulong a = Pages.MapAnon(mm, pages);
        mm.CpuWrite(a, Pattern(pages, k => (ulong)k));
        using MirrorDevice dev = NewDevice(mm, fixture.Launcher);
        var out1 = new ulong[pages * PageElements];
        Ok(dev.LaunchRead(a, out1, out _, Token));
        long invalidations = dev.Counters[DeviceEvent.Invalidations];

        byte[] next = Pattern(pages, k => (ulong)k + 1_000_000);
        mm.CpuWrite(a, next);
        var out2 = new ulong[pages * PageElements];
        Ok(dev.LaunchRead(a, out2, out LaunchReport second, Token));
        Assert.Equal(Elements(next), out2);
        Assert.Equal(0, second.FaultsAppended);
        Assert.Equal(invalidations, dev.Counters[DeviceEvent.Invalidations]);
    }

    [Fact]
    public void ADeviceWriteIsSeenByTheNextCpuReadWithoutAnInvalidation()
    {
        using var mm = new AddressSpace();
        int pages = fixture.BufferPages;
        ulong a = Pages.MapAnon(mm, pages);
        using MirrorDevice dev = NewDevice(mm, fixture.Launcher);
        Ok(dev.LaunchWrite(a, new ulong[pages * PageElements], out _, Token));
        long invalidations = dev.Counters[DeviceEvent.Invalidations];
        ulong[] values = Elements(Pattern(pages, k => ~(ulong)k));
        Ok(dev.LaunchWrite(a, values, out LaunchReport second, Token));
        Assert.Equal(values, CpuElements(mm, a, values.Length));
        Assert.Equal(0, second.FaultsAppended);
        Assert.Equal(invalidations, dev.Counters[DeviceEvent.Invalidations]);
    }

    [Fact]
    public void InterleavedCpuAndDeviceAccessesAgreeWithoutAnInvalidation()
    {
        using var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, 4);
        using MirrorDevice dev = NewDevice(mm, fixture.Launcher);
        Ok(dev.LaunchWrite(a, new ulong[4 * PageElements], out _, Token));
        long invalidations = dev.Counters[DeviceEvent.Invalidations];
        long appended = dev.Counters[DeviceEvent.FaultsAppended];
        var one = new ulong[1];
        for (ulong step = 1; step <= 50; step++)
        {
            ulong va = a + ((step * 1031 % (4 * PageElements)) * sizeof(ulong));
            mm.CpuWriteUInt64(va, step);                       // CPU write → device read
            Ok(dev.LaunchRead(va, one, out _, Token));
            Assert.Equal(step, one[0]);
            one[0] = step * 3;                                 // device write → CPU read
            Ok(dev.LaunchWrite(va, one, out _, Token));
            Assert.Equal(step * 3, mm.CpuReadUInt64(va));
        }

        Assert.Equal(invalidations, dev.Counters[DeviceEvent.Invalidations]);
        Assert.Equal(appended, dev.Counters[DeviceEvent.FaultsAppended]);
    }

    [Fact]
    public void ResultsAndCountersMatchTheDirectLauncherOnTheSameWorkload()
    {
        (List<LaunchReport> mine, byte[] memory) = RunWorkload(fixture.Launcher);
        using var direct = new DirectLauncher();
        (List<LaunchReport> reference, byte[] referenceMemory) = RunWorkload(direct);
        Assert.Equal(reference.Count, mine.Count);
        for (int i = 0; i < mine.Count; i++)
        {
            Assert.True(reference[i].WithoutTime() == mine[i].WithoutTime(), $"launch {i}: {fixture.Kind} counted {mine[i].WithoutTime()} but direct counted {reference[i].WithoutTime()}");
        }

        Assert.Equal(referenceMemory, memory);
    }

    /// <summary>Every kernel once over fresh, mapped, write-protected, discarded and copied memory.</summary>
    private (List<LaunchReport> Reports, byte[] Memory) RunWorkload(DeviceLauncher launcher)
    {
        int pages = Math.Min(fixture.BufferPages, 64);
        int n = pages * PageElements;
        using var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, 2 * pages);
        ulong b = a + Pages.Bytes(pages);
        using MirrorDevice dev = NewDevice(mm, launcher, new DeviceOptions { FaultBatchSize = 8, ReplayPolicy = ReplayPolicy.Batch });
        var rng = new Random(4242);
        var reports = new List<LaunchReport>();
        ulong[] values = [.. Enumerable.Range(0, n).Select(i => (ulong)rng.NextInt64())];
        int[] idx = [.. Enumerable.Range(0, n / 4).Select(_ => rng.Next(n))];
        var output = new ulong[n];
        var gathered = new ulong[idx.Length];

        Ok(dev.LaunchWrite(a, values, out LaunchReport r, Token));
        reports.Add(r);
        Ok(dev.LaunchRead(a, output, out r, Token));
        reports.Add(r);
        Ok(dev.LaunchGather(a, n, idx, gathered, out r, Token));
        reports.Add(r);
        Ok(dev.LaunchAtomicAdd(b, n, idx, 5, out r, Token));
        reports.Add(r);
        Ok(mm.Mprotect(a, Pages.Bytes(pages / 2), Prot.Read));
        Ok(dev.LaunchRead(a, output, out r, Token));
        reports.Add(r);
        Ok(mm.Mprotect(a, Pages.Bytes(pages / 2), Prot.ReadWrite));
        Ok(dev.LaunchScatter(a, n, idx, gathered, out r, Token));
        reports.Add(r);
        Ok(mm.Madvise(b, Pages.Bytes(pages / 4), Advice.DontNeed));
        Ok(dev.LaunchCopy(b, a, n, out r, Token));
        reports.Add(r);
        Ok(dev.LaunchRead(a, output, out r, Token));
        reports.Add(r);
        return (reports, Pages.Read(mm, a, (int)Pages.Bytes(2 * pages)));
    }

    [Theory]
    [InlineData(ReplayPolicy.Once, 1, 0, 0)]
    [InlineData(ReplayPolicy.Batch, 4, 6, 0)]
    [InlineData(ReplayPolicy.Block, 4, 6, 0)]
    [InlineData(ReplayPolicy.BatchFlush, 4, 0, 6)]
    public void EachReplayPolicyReplaysAndCountsExactlyAsDefined(ReplayPolicy policy, int replays, int duplicateQuarters, int flushedQuarters)
    {
        // A fresh 2 MiB-aligned buffer of P pages read once with batches of P/4 pages: four batches, one run each. Under
        // Once one replay; under Batch and Block (a batch lies in one 2 MiB block) a replay after each batch, whose
        // work items on pages still pending fault again (3P/4 + P/2 + P/4 duplicates); under BatchFlush the same
        // replays, but the pending entries are flushed first (no duplicates, 6P/4 flushed).
        int p = fixture.BufferPages;
        using var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, Math.Max(p, 512));
        Assert.Equal(0UL, a & PageGeometry.PmdMask);
        using MirrorDevice dev = NewDevice(mm, fixture.Launcher, new DeviceOptions { FaultBatchSize = p / 4, ReplayPolicy = policy });
        var output = new ulong[p * PageElements];
        Ok(dev.LaunchRead(a, output, out LaunchReport r, Token));

        int refaultedPages = replays == 1 ? 0 : (3 * p / 4) + (p / 2) + (p / 4);
        Assert.Equal(replays, r.Replays);
        Assert.Equal(replays + 1, r.Passes);
        Assert.Equal(4, r.Batches);
        Assert.Equal(4, r.Runs);
        Assert.Equal(p, r.PagesMapped);
        Assert.Equal(p + refaultedPages, r.FaultsAppended);
        Assert.Equal((long)(p + refaultedPages) * PageElements, r.ItemsReplayed);
        Assert.Equal(duplicateQuarters * p / 4, r.FaultsDuplicate);
        Assert.Equal(flushedQuarters * p / 4, r.FaultsFlushed);
        Assert.Equal(1, r.ServiceEntries);
        Assert.Equal(0, r.FaultsDropped);
    }

    [Fact]
    public void AFullFaultBufferDropsAppendsThatTheReplaysRaiseAgain()
    {
        // A buffer of P/4 entries: each pass keeps P/4 of the pages that miss and drops the rest; four rounds map all.
        int p = fixture.BufferPages;
        using var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, p);
        using MirrorDevice dev = NewDevice(mm, fixture.Launcher, new DeviceOptions { FaultBufferEntries = p / 4, ReplayPolicy = ReplayPolicy.Once });
        var values = new ulong[p * PageElements];
        Array.Fill(values, 0xC0FFEEUL);
        Ok(dev.LaunchWrite(a, values, out LaunchReport r, Token));
        Assert.Equal(values, CpuElements(mm, a, values.Length));
        Assert.Equal(p, r.FaultsAppended);
        Assert.Equal((3 * p / 4) + (p / 2) + (p / 4), r.FaultsDropped);
        Assert.Equal(5, r.Passes);
        Assert.Equal(4, r.Batches);
        Assert.Equal(p, r.PagesMapped);
    }

    [Fact]
    public void BadLaunchArgumentsFailWithEinvalNamingTheFieldAndRunNothing()
    {
        using var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, 2);
        using MirrorDevice dev = NewDevice(mm, fixture.Launcher);
        var two = new ulong[2];
        AssertEinval(dev.LaunchRead(a + 4, two, out _, Token), "srcVa=0x");
        AssertEinval(dev.LaunchWrite(PageGeometry.AddressSpaceSize - 8, two, out _, Token), "runs past the 48-bit address space");
        AssertEinval(dev.LaunchGather(a, 16, [1, 2, 3], two, out _, Token), "indices.Length=3");
        AssertEinval(dev.LaunchScatter(a, 16, [1, 16], two, out _, Token), "indices[1]=16 is outside [0, 16)");
        AssertEinval(dev.LaunchAtomicAdd(a, 16, [-1], 1, out _, Token), "indices[0]=-1");
        AssertEinval(dev.LaunchCopy(a, a + 8, (long)int.MaxValue + 1, out _, Token), "elements=2147483648");
        Assert.Equal(0, dev.Counters[DeviceEvent.Launches]);
        Assert.Equal(0, mm.Memory.FramesInUse);
        Assert.Equal([0UL, 0UL], two);
    }

    private static void AssertEinval(KResult r, string text)
    {
        Assert.Equal(-Errno.EINVAL, r.Code);
        Assert.Contains(text, r.Message);
    }

    [Fact]
    public void AWriteToReadOnlyMemoryEndsTheLaunchWithEpermNamingTheAddressAndTheWorkItem()
    {
        using var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, 2);
        Ok(mm.Mprotect(a + Pages.Size, Pages.Size, Prot.Read));
        using MirrorDevice dev = NewDevice(mm, fixture.Launcher);
        KResult r = dev.LaunchWrite(a, new ulong[2 * PageElements], out LaunchReport report, Token);
        Assert.Equal(-Errno.EPERM, r.Code);
        Assert.Contains($"0x{a + Pages.Size:X16}", r.Message);
        int item = int.Parse(System.Text.RegularExpressions.Regex.Match(r.Message!, @"work item (\d+)").Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(item, PageElements, (2 * PageElements) - 1); // one of the work items that write the read-only page
        Assert.Equal(1, dev.Counters[DeviceEvent.LaunchErrors]);
        Assert.Equal(1, report.Runs);
    }

    [Fact]
    public void ARangeThatKeepsChangingEndsTheLaunchWithEbusyAndNeverAWrongPage()
    {
        // An invalidation held open keeps read_begin waiting: the run's 50 ms budget runs out → -EBUSY; after it ends, the
        // same launch maps the right pages.
        using var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, 2);
        mm.CpuWrite(a, Pattern(2, k => (ulong)k));
        using MirrorDevice dev = NewDevice(mm, fixture.Launcher, new DeviceOptions { FaultTimeoutMs = 50 });
        var range = new NotifierRange(a, a + Pages.Bytes(2), NotifierEvent.Clear);
        Assert.Equal(0, mm.Notifiers.InvalidateRangeStart(range));
        var output = new ulong[2 * PageElements];
        KResult r;
        try
        {
            r = dev.LaunchRead(a, output, out _, Token);
        }
        finally
        {
            mm.Notifiers.InvalidateRangeEnd(range);
        }

        Assert.Equal(-Errno.EBUSY, r.Code);
        Assert.Contains($"0x{a:X16}", r.Message);
        Assert.False(dev.Lookup(a).IsValid, "a page was mapped under a running invalidation");
        Ok(dev.LaunchRead(a, output, out _, Token));
        Assert.Equal(Elements(Pattern(2, k => (ulong)k)), output);
    }

    [Fact]
    public void ACancelledLaunchEndsWithEintr()
    {
        using var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, 1);
        using MirrorDevice dev = NewDevice(mm, fixture.Launcher);
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        KResult r = dev.LaunchRead(a, new ulong[PageElements], out _, cancelled.Token);
        Assert.Equal(-Errno.EINTR, r.Code);
    }

    [Fact]
    public void ALaunchCancelledWhileItsFaultWaitsForTheMmapLockEndsWithEintrBeforeTheTimeout()
    {
        using var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, 1);
        using MirrorDevice dev = NewDevice(mm, fixture.Launcher, new DeviceOptions { FaultTimeoutMs = 20_000 });
        using var cancel = new CancellationTokenSource();
        KResult r = default;
        var sw = System.Diagnostics.Stopwatch.StartNew();
        mm.MmapLock.WriteLock(); // the fault's driver loop (a regular VMA: the locked one) waits for the read lock
        try
        {
            var launch = new Thread(() => r = dev.LaunchRead(a, new ulong[PageElements], out _, cancel.Token));
            launch.Start();
            Thread.Sleep(200);
            cancel.Cancel();
            Assert.True(launch.Join(10_000), "the cancelled launch did not end within 10 s (its fault timeout is 20 s)");
        }
        finally
        {
            mm.MmapLock.WriteUnlock();
        }

        Assert.Equal(-Errno.EINTR, r.Code);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(10), $"ended after {sw.Elapsed.TotalMilliseconds:F0} ms");
    }
}

/// <summary>Kernel tests on ILGPU's CPU accelerator.</summary>
public sealed class CpuDeviceKernelTests(CpuLauncherFixture fixture) : DeviceKernelTests(fixture), IClassFixture<CpuLauncherFixture>;

/// <summary>Kernel tests on the direct launcher.</summary>
public sealed class DirectDeviceKernelTests(DirectLauncherFixture fixture) : DeviceKernelTests(fixture), IClassFixture<DirectLauncherFixture>;

/// <summary>Kernel tests on CUDA (skipped without a GPU that can address host frames).</summary>
public sealed class CudaDeviceKernelTests(CudaLauncherFixture fixture) : DeviceKernelTests(fixture), IClassFixture<CudaLauncherFixture>;

/// <summary>Kernel tests on OpenCL (skipped: ILGPU's OpenCL cannot address host frames in place).</summary>
public sealed class OpenClDeviceKernelTests(OpenClLauncherFixture fixture) : DeviceKernelTests(fixture), IClassFixture<OpenClLauncherFixture>;
