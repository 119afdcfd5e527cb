using MirrorEmu.Device;
using MirrorEmu.Hmm;
using MirrorEmu.Mm;
using MirrorEmu.Telemetry;
using MirrorEmu.Tests.Helpers;
using MirrorEmu.Uffd;
using MirrorEmu.Workloads;
using static MirrorEmu.Tests.Helpers.DeviceHelpers;

namespace MirrorEmu.Tests.Device;

/// <summary>
/// Device faults in a userfaultfd range, per launcher and per 4/7 policy: the driver services such runs with
/// hmm_range_fault_unlocked so the policy applies unchanged; the device reads the monitor's bytes, and the round trips
/// and walk restarts are exactly each policy's (docs/design.md, "The policies compared").
/// </summary>
public abstract class DeviceUffdTests(LauncherFixture fixture)
{
    private const byte Fill = 0xA5;

    private sealed class Setup : IDisposable
    {
        private readonly UffdFixture _uffd;

        public Setup(int pages, UffdFaultPolicy policy, DeviceLauncher launcher)
        {
            _uffd = new UffdFixture(Math.Max(pages, 1 << PageGeometry.PmdOrder)); // 2 MiB aligned, so monitor blocks line up
            Monitor = new UffdMonitor(Ctx, new UffdMonitorOptions { Fill = new PatternFill(Fill), Resolution = ComparePolicies.MonitorResolution(policy), BlockPages = 64 });
            Device = NewDevice(Mm, launcher, new DeviceOptions { UffdPolicy = policy, Name = $"uffd {policy} device" });
        }

        public AddressSpace Mm => _uffd.Mm;

        public ulong Address => _uffd.Address;

        public Userfaultfd Ctx => _uffd.Ctx;

        public UffdMonitor Monitor { get; }

        public MirrorDevice Device { get; }

        public bool MonitorStopped { get; private set; }

        public void StopMonitor()
        {
            Monitor.Dispose();
            MonitorStopped = true;
        }

        public void Dispose()
        {
            Device.Dispose();
            if (!MonitorStopped)
            {
                Monitor.Dispose();
            }

            _uffd.Dispose();
        }
    }

    [Theory]
    [InlineData(UffdFaultPolicy.SinglePage)]
    [InlineData(UffdFaultPolicy.Batched)]
    [InlineData(UffdFaultPolicy.RangeEvent)]
    public void TheDeviceReadsTheMonitorsBytesWithEachPolicysExactRoundTrips(UffdFaultPolicy policy)
    {
        int p = fixture.BufferPages;
        using var s = new Setup(p, policy, fixture.Launcher);
        var output = new ulong[p * PageElements];
        Ok(s.Device.LaunchRead(s.Address, output, out LaunchReport report, TestContext.Current.CancellationToken));
        Assert.All(output, v => Assert.Equal(0xA5A5_A5A5_A5A5_A5A5UL, v));

        int runs = (p + 255) / 256; // batches of 256 pages, one run each
        long expected = policy switch
        {
            UffdFaultPolicy.SinglePage => p,             // one round trip per page
            UffdFaultPolicy.Batched => (p + 63) / 64,    // one per 64-page monitor block
            _ => runs,                                   // one per missing run
        };
        Assert.Equal(runs, report.Runs);
        Assert.Equal(runs, s.Device.Counters[DeviceEvent.RunsUnlocked]);
        Assert.Equal(expected, s.Device.Counters[DeviceEvent.HmmRoundTrips]);
        Assert.Equal(expected, s.Ctx.Stats[UffdStat.RoundTrips]);
        Assert.Equal(policy == UffdFaultPolicy.SinglePage ? p : 0, s.Device.Counters[DeviceEvent.HmmEbusyRestarts]);
        Assert.Equal(p, report.PagesMapped);
        Assert.Equal(1, report.ServiceEntries);
    }

    [Fact]
    public void UnsupportedEndsTheLaunchWithEfaultNamingTheAddress()
    {
        using var s = new Setup(4, UffdFaultPolicy.Unsupported, fixture.Launcher);
        KResult r = s.Device.LaunchRead(s.Address, new ulong[4 * PageElements], out _, TestContext.Current.CancellationToken);
        Assert.Equal(-Errno.EFAULT, r.Code);
        Assert.Contains($"0x{s.Address:X16}", r.Message);
        Assert.True(s.Ctx.Stats[UffdStat.FaultsSigbus] >= 1);
        Assert.Equal(0, s.Ctx.Stats[UffdStat.RoundTrips]);
        Assert.Equal(0, s.Device.Table.ValidEntries);
    }

    [Fact]
    public void ADeadMonitorEndsTheLaunchWithEfaultNamingTheAddressNotAHang()
    {
        using var s = new Setup(4, UffdFaultPolicy.Batched, fixture.Launcher);
        s.StopMonitor(); // later faults in the range answer SIGBUS
        KResult r = s.Device.LaunchRead(s.Address, new ulong[4 * PageElements], out _, TestContext.Current.CancellationToken);
        Assert.Equal(-Errno.EFAULT, r.Code);
        Assert.Contains($"0x{s.Address:X16}", r.Message);
        Assert.True(s.Ctx.Stats[UffdStat.FaultsSigbus] >= 1);
    }

    [Fact]
    public void ADeviceWriteToAUserfaultfdRangeLandsAfterTheMonitorsFill()
    {
        using var s = new Setup(4, UffdFaultPolicy.Batched, fixture.Launcher);
        Ok(s.Device.LaunchWrite(s.Address + 8, [1UL, 2UL], out _, TestContext.Current.CancellationToken));
        Assert.Equal(0xA5A5_A5A5_A5A5_A5A5UL, s.Mm.CpuReadUInt64(s.Address));
        Assert.Equal(1UL, s.Mm.CpuReadUInt64(s.Address + 8));
        Assert.Equal(2UL, s.Mm.CpuReadUInt64(s.Address + 16));
    }
}

/// <summary>userfaultfd ranges on ILGPU's CPU accelerator.</summary>
public sealed class CpuDeviceUffdTests(CpuLauncherFixture fixture) : DeviceUffdTests(fixture), IClassFixture<CpuLauncherFixture>;

/// <summary>userfaultfd ranges on the direct launcher.</summary>
public sealed class DirectDeviceUffdTests(DirectLauncherFixture fixture) : DeviceUffdTests(fixture), IClassFixture<DirectLauncherFixture>;

/// <summary>userfaultfd ranges on CUDA (skipped without a GPU that can address host frames).</summary>
public sealed class CudaDeviceUffdTests(CudaLauncherFixture fixture) : DeviceUffdTests(fixture), IClassFixture<CudaLauncherFixture>;

/// <summary>userfaultfd ranges on OpenCL (skipped: ILGPU's OpenCL cannot address host frames in place).</summary>
public sealed class OpenClDeviceUffdTests(OpenClLauncherFixture fixture) : DeviceUffdTests(fixture), IClassFixture<OpenClLauncherFixture>;
