using System.Diagnostics;
using MirrorEmu.Device;
using MirrorEmu.Mm;
using MirrorEmu.Tests.Helpers;

namespace MirrorEmu.Tests.Device;

public class SmokeTests
{
    [Theory]
    [InlineData(LauncherKind.Direct)]
    [InlineData(LauncherKind.Cpu)]
    public void ReadSmoke(LauncherKind kind)
    {
        Assert.True(DeviceLauncher.TryCreate(kind, out DeviceLauncher? launcher, out string reason), reason);
        using (launcher)
        {
            using var mm = new AddressSpace();
            int pages = 64;
            ulong a = Pages.MapAnon(mm, pages);
            for (int i = 0; i < pages; i++)
            {
                mm.CpuWriteUInt64(a + Pages.Bytes(i), (ulong)i + 1);
            }

            using var dev = new MirrorDevice(mm, launcher);
            var output = new ulong[pages * 512];
            var sw = Stopwatch.StartNew();
            KResult r = dev.LaunchRead(a, output, out LaunchReport rep, TestContext.Current.CancellationToken);
            TestContext.Current.TestOutputHelper!.WriteLine($"{kind}: {r} {rep} {sw.Elapsed.TotalMilliseconds} ms");
            Assert.True(r.IsOk, r.ToString());
            for (int i = 0; i < pages; i++)
            {
                Assert.Equal((ulong)i + 1, output[i * 512]);
            }

            sw.Restart();
            r = dev.LaunchRead(a, output, out rep, TestContext.Current.CancellationToken);
            TestContext.Current.TestOutputHelper!.WriteLine($"{kind} warm: {r} {rep} {sw.Elapsed.TotalMilliseconds} ms");
        }
    }
}
