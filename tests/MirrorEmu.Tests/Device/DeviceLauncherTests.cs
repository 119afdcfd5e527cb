using MirrorEmu.Device;
using MirrorEmu.Mm;
using MirrorEmu.Tests.Helpers;
using static MirrorEmu.Tests.Helpers.DeviceHelpers;

namespace MirrorEmu.Tests.Device;

/// <summary>Launcher selection and refusal: auto picks a GPU that can address host frames or else the direct launcher,
/// a launcher that cannot reach the frames in place says why in one line, and bad options name the field.</summary>
public class DeviceLauncherTests
{
    [Fact]
    public void AutoPicksCudaWhereItCanAddressFramesElseDirect()
    {
        bool cuda = DeviceLauncher.TryCreate(LauncherKind.Cuda, out DeviceLauncher? gpu, out string why);
        gpu?.Dispose();
        Assert.True(DeviceLauncher.TryCreate(LauncherKind.Auto, out DeviceLauncher? auto, out string reason), reason);
        using (auto)
        {
            Assert.Equal(cuda ? LauncherKind.Cuda : LauncherKind.Direct, auto.Kind);
            TestContext.Current.TestOutputHelper?.WriteLine($"auto: {auto.Description}{(cuda ? string.Empty : $" (cuda: {why})")}");
        }
    }

    [Fact]
    public void OpenClSaysInOneLineWhyItIsNotUsed()
    {
        Assert.False(DeviceLauncher.TryCreate(LauncherKind.OpenCL, out DeviceLauncher? launcher, out string reason));
        Assert.Null(launcher);
        Assert.DoesNotContain('\n', reason);
        Assert.Matches("no OpenCL device|cannot address the frames in place", reason);
        var e = Assert.Throws<NotSupportedException>(() => DeviceLauncher.Create(LauncherKind.OpenCL));
        Assert.Contains(reason, e.Message);
    }

    [Theory]
    [InlineData(LauncherKind.Direct)]
    [InlineData(LauncherKind.Cpu)]
    public void AChunkedArenaIsRefusedNamingTheArenaNotCopied(LauncherKind kind)
    {
        using var memory = new PhysicalMemory(256UL << 20, arena: FrameArenaKind.Chunked);
        using var mm = new AddressSpace(memory);
        using DeviceLauncher launcher = DeviceLauncher.Create(kind);
        var e = Assert.Throws<NotSupportedException>(() => new MirrorDevice(mm, launcher));
        Assert.Contains("non-contiguous arena", e.Message);
        Assert.Contains("FrameArenaKind.Reserved", e.Message);
        Assert.Equal(0, mm.Notifiers.Count);
    }

    [Fact]
    public void BadOptionsAreRefusedNamingTheField()
    {
        using var mm = new AddressSpace();
        using var launcher = new DirectLauncher();
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new MirrorDevice(mm, launcher, new DeviceOptions { FaultBatchSize = 0 }));
        Assert.Contains("DeviceOptions.FaultBatchSize=0", e.Message);
        e = Assert.Throws<ArgumentOutOfRangeException>(() => new MirrorDevice(mm, launcher, new DeviceOptions { ReplayPolicy = (ReplayPolicy)9 }));
        Assert.Contains("ReplayPolicy=9", e.Message);
        Assert.Equal(0, mm.Notifiers.Count);
    }

    [Fact]
    public void ADisposedDeviceUnsubscribesAndRefusesWork()
    {
        using var mm = new AddressSpace();
        using var launcher = new DirectLauncher();
        ulong a = Pages.MapAnon(mm, 1);
        MirrorDevice dev = NewDevice(mm, launcher);
        Assert.Equal(1, mm.Notifiers.Count);
        Ok(dev.LaunchRead(a, new ulong[4], out _, TestContext.Current.CancellationToken));
        dev.Dispose();
        Assert.Equal(0, mm.Notifiers.Count);
        Assert.Throws<ObjectDisposedException>(() => dev.LaunchRead(a, new ulong[4], out _, TestContext.Current.CancellationToken));
        Ok(mm.Munmap(a, Pages.Size)); // no callback into the disposed device
    }
}
