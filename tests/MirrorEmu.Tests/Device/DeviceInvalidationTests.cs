using MirrorEmu.Device;
using MirrorEmu.Mm;
using MirrorEmu.Notifier;
using MirrorEmu.Tests.Helpers;
using static MirrorEmu.Tests.Helpers.DeviceHelpers;

namespace MirrorEmu.Tests.Device;

/// <summary>
/// The device's interval-notifier callback, per launcher (docs/design.md, invariant 1): every change to the CPU page table
/// clears the device's entries before the PTEs change, a running launch delays an invalidation by one slice only, a
/// non-blockable invalidation that would wait answers -EAGAIN, the device's own MIGRATE events are ignored, and
/// teardown and fork leave no stale mapping.
/// </summary>
public abstract class DeviceInvalidationTests(LauncherFixture fixture)
{
    private CancellationToken Token => TestContext.Current.CancellationToken;

    private static MirrorDevice Mirrored(AddressSpace mm, DeviceLauncher launcher, ulong a, int pages, DeviceOptions? options = null)
    {
        MirrorDevice dev = NewDevice(mm, launcher, options);
        Ok(dev.LaunchRead(a, new ulong[pages * PageElements], out _, TestContext.Current.CancellationToken));
        Assert.Equal(pages, dev.Table.ValidEntries);
        return dev;
    }

    [Fact]
    public void MunmapClearsTheMirrorSoTheNextDeviceAccessFaultsAndFails()
    {
        using var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, 8);
        using MirrorDevice dev = Mirrored(mm, fixture.Launcher, a, 8);
        Ok(mm.Munmap(a + Pages.Bytes(2), Pages.Bytes(4)));
        for (int p = 0; p < 8; p++)
        {
            Assert.True(dev.Lookup(a + Pages.Bytes(p)).IsValid == p is < 2 or >= 6, $"page {p}: the device mapped a page inside an invalidated range, or lost one outside it");
        }

        Assert.Equal(4, dev.Counters[DeviceEvent.EntriesCleared]);
        KResult r = dev.LaunchRead(a, new ulong[8 * PageElements], out _, Token);
        Assert.Equal(-Errno.EFAULT, r.Code);
        Assert.Contains($"0x{a + Pages.Bytes(2):X16}", r.Message);
    }

    [Fact]
    public void DontNeedZapsTheMirrorAndTheDeviceThenReadsZeros()
    {
        using var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, 4);
        mm.CpuWrite(a, Pattern(4, k => (ulong)k + 1));
        using MirrorDevice dev = Mirrored(mm, fixture.Launcher, a, 4);
        Ok(mm.Madvise(a, Pages.Bytes(4), Advice.DontNeed));
        Assert.Equal(0, dev.Table.ValidEntries);
        var output = new ulong[4 * PageElements];
        Ok(dev.LaunchRead(a, output, out LaunchReport r, Token));
        Assert.All(output, v => Assert.Equal(0UL, v));
        Assert.Equal(4, r.PagesMapped);
    }

    [Fact]
    public void MprotectReadOnlyStopsDeviceWritesUntilWritableAgain()
    {
        using var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, 2);
        using MirrorDevice dev = NewDevice(mm, fixture.Launcher);
        Ok(dev.LaunchWrite(a, new ulong[2 * PageElements], out _, Token));
        Assert.True(dev.Lookup(a).IsWritable);
        Ok(mm.Mprotect(a, Pages.Bytes(2), Prot.Read));
        Assert.False(dev.Lookup(a).IsValid, "a write-protected page stayed writable on the device");
        Assert.Equal(-Errno.EPERM, dev.LaunchWrite(a, [1UL], out _, Token).Code);
        Ok(mm.Mprotect(a, Pages.Bytes(2), Prot.ReadWrite));
        Ok(dev.LaunchWrite(a, [7UL], out _, Token));
        Assert.Equal(7UL, mm.CpuReadUInt64(a));
    }

    [Fact]
    public void ANonBlockableInvalidationWhileTheDriverLockIsHeldAnswersEagainAndClearsNothing()
    {
        using var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, 2);
        using MirrorDevice dev = Mirrored(mm, fixture.Launcher, a, 2);
        var range = new NotifierRange(a, a + Pages.Bytes(2), NotifierEvent.Clear, Blockable: false);
        int rc = 0;
        using (dev.DriverLock.Hold()) // what a slice in flight holds
        {
            var other = new Worker(() => rc = mm.Notifiers.InvalidateRangeStart(range));
            Assert.True(other.Join(), "a non-blockable invalidation waited");
            Assert.Null(other.Error);
        }

        Assert.Equal(-Errno.EAGAIN, rc);
        Assert.Equal(1, dev.Counters[DeviceEvent.InvalidationsRefused]);
        Assert.Equal(2, dev.Table.ValidEntries);

        // Without the lock held the same invalidation goes through.
        Assert.Equal(0, mm.Notifiers.InvalidateRangeStart(range));
        mm.Notifiers.InvalidateRangeEnd(range);
        Assert.Equal(0, dev.Table.ValidEntries);
    }

    [Fact]
    public void MigrateEventsOfThisDeviceAreIgnoredAndOthersClear()
    {
        using var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, 2);
        using MirrorDevice dev = Mirrored(mm, fixture.Launcher, a, 2);
        var own = new NotifierRange(a, a + Pages.Bytes(2), NotifierEvent.Migrate, Owner: dev);
        Assert.Equal(0, mm.Notifiers.InvalidateRangeStart(own));
        mm.Notifiers.InvalidateRangeEnd(own);
        Assert.Equal(2, dev.Table.ValidEntries);
        Assert.Equal(1, dev.Counters[DeviceEvent.InvalidationsIgnored]);

        var foreign = own with { Owner = new object() };
        Assert.Equal(0, mm.Notifiers.InvalidateRangeStart(foreign));
        mm.Notifiers.InvalidateRangeEnd(foreign);
        Assert.Equal(0, dev.Table.ValidEntries);
    }

    [Fact]
    public void TearingTheAddressSpaceDownClearsTheWholeMirror()
    {
        var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, 3);
        ulong b = Pages.MapAnon(mm, 3);
        using MirrorDevice dev = Mirrored(mm, fixture.Launcher, a, 3);
        Ok(dev.LaunchRead(b, new ulong[3 * PageElements], out _, Token));
        mm.Dispose();
        Assert.Equal(0, dev.Table.ValidEntries);
        Assert.Equal(0, dev.Table.LeafBlocks);
    }

    [Fact]
    public void ForkClearsWriteProtectedPagesSoADeviceWriteBreaksCow()
    {
        using var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, 2);
        using MirrorDevice dev = NewDevice(mm, fixture.Launcher);
        Ok(dev.LaunchWrite(a, [1UL, 2UL], out _, Token));
        using AddressSpace child = mm.Fork();
        Assert.False(dev.Lookup(a).IsValid, "fork left the parent's device able to write a COW page in place");
        Ok(dev.LaunchWrite(a, [3UL], out _, Token));
        Assert.Equal(3UL, mm.CpuReadUInt64(a));
        Assert.Equal(1UL, child.CpuReadUInt64(a));
        Assert.Equal(2UL, child.CpuReadUInt64(a + 8));
    }

    [Fact]
    public void AnInvalidationDuringALaunchWaitsForOneSliceNotTheWholeLaunch()
    {
        // A launch of many small slices; an mprotect (PROTECTION_VMA over a page the launch does not touch) lands while
        // it runs. It must return while the launch is still running, and its latency is recorded as during a launch.
        using var mm = new AddressSpace();
        int pages = fixture.BufferPages;
        ulong a = Pages.MapAnon(mm, pages + 1);
        ulong other = a + Pages.Bytes(pages);
        var options = new DeviceOptions { SliceItems = 256 };
        using MirrorDevice dev = Mirrored(mm, fixture.Launcher, a, pages, options);
        var output = new ulong[pages * PageElements];
        bool overlapped = false;
        for (int attempt = 0; attempt < 20 && !overlapped; attempt++)
        {
            using var started = new ManualResetEventSlim();
            KResult launched = default;
            var launcher = new Worker(() =>
            {
                started.Set();
                launched = dev.LaunchRead(a, output, out _, TestContext.Current.CancellationToken);
            });
            Assert.True(started.Wait(10_000, Token));
            SpinWait.SpinUntil(() => dev.LaunchesRunning > 0, 1000);
            Ok(mm.Mprotect(other, Pages.Size, Prot.Read));
            overlapped = dev.LaunchesRunning > 0; // the invalidation returned while the launch still ran
            Ok(mm.Mprotect(other, Pages.Size, Prot.ReadWrite));
            Assert.True(launcher.Join(), "the launch hung");
            Assert.Null(launcher.Error);
            Ok(launched);
        }

        Assert.True(overlapped, "no invalidation ever completed while a launch of many slices was running");
        Assert.True(dev.Counters[DeviceEvent.InvalidationsDuringLaunch] > 0);
        Assert.NotNull(dev.InvalidationLatencyDuringLaunch.Percentile(0.99));
        Assert.True(dev.Counters[DeviceEvent.Slices] >= pages * PageElements / 256);
    }
}

/// <summary>Invalidation tests on ILGPU's CPU accelerator.</summary>
public sealed class CpuDeviceInvalidationTests(CpuLauncherFixture fixture) : DeviceInvalidationTests(fixture), IClassFixture<CpuLauncherFixture>;

/// <summary>Invalidation tests on the direct launcher.</summary>
public sealed class DirectDeviceInvalidationTests(DirectLauncherFixture fixture) : DeviceInvalidationTests(fixture), IClassFixture<DirectLauncherFixture>;

/// <summary>Invalidation tests on CUDA (skipped without a GPU that can address host frames).</summary>
public sealed class CudaDeviceInvalidationTests(CudaLauncherFixture fixture) : DeviceInvalidationTests(fixture), IClassFixture<CudaLauncherFixture>;

/// <summary>Invalidation tests on OpenCL (skipped: ILGPU's OpenCL cannot address host frames in place).</summary>
public sealed class OpenClDeviceInvalidationTests(OpenClLauncherFixture fixture) : DeviceInvalidationTests(fixture), IClassFixture<OpenClLauncherFixture>;
