using System.Runtime.InteropServices;
using MirrorEmu.Calibration;
using MirrorEmu.Tests.Helpers;

namespace MirrorEmu.Tests.Calibration;

/// <summary>The host-kernel syscall server the differential test runs on: its syscalls, forks, and the
/// copy command that reports SIGSEGV/SIGBUS instead of dying. Skipped where the host is not Linux x86-64.</summary>
[Trait("Category", "Kernel")]
public class LinuxMmTests
{
    private const ulong Scratch = 0x3E00_0000_0000;
    private const ulong Area = 0x3E00_1000_0000;
    private const int Timeout = 5000;

    [Fact]
    public void ServerMapsWritesAndReadsBackThroughItsCopyCommand()
    {
        using LinuxMmProcess server = SpawnOrSkip();
        using LinuxMmProcess p = server.ForkInto(Scratch, 2, Timeout);
        Assert.Equal((long)Area, p.Call(LinuxMm.SysMmap, (long)Area, 2 * LinuxMm.PageSize, 3, 0x100022, -1, 0, Timeout).Result);

        byte[] data = [1, 2, 3, 4, 5];
        p.WriteMemory(Scratch, data);
        LinuxMmProcess.Reply w = p.Call(LinuxMm.CmdCopy, (long)Area + 100, (long)Scratch, data.Length, 0, 0, 0, Timeout);
        Assert.Equal(new LinuxMmProcess.Reply(0, 0, 0), w);
        byte[] back = new byte[5];
        p.ReadMemory(Area + 100, back);
        Assert.Equal(data, back);

        // Read-only: the write faults with SIGSEGV at the first byte, and the server lives on.
        Assert.Equal(0, p.Call(LinuxMm.SysMprotect, (long)Area + LinuxMm.PageSize, LinuxMm.PageSize, 1, 0, 0, 0, Timeout).Result);
        LinuxMmProcess.Reply f = p.Call(LinuxMm.CmdCopy, (long)Area + LinuxMm.PageSize - 2, (long)Scratch, data.Length, 0, 0, 0, Timeout);
        Assert.Equal(new LinuxMmProcess.Reply(3, 11, Area + LinuxMm.PageSize), f);
        Assert.Equal(0, p.Call(LinuxMm.SysMunmap, (long)Area, 2 * LinuxMm.PageSize, 0, 0, 0, 0, Timeout).Result);
    }

    [Fact]
    public void ForkedServerHasItsOwnCopyOfPrivateMemory()
    {
        using LinuxMmProcess server = SpawnOrSkip();
        using LinuxMmProcess parent = server.ForkInto(Scratch, 2, Timeout);
        Assert.Equal((long)Area, parent.Call(LinuxMm.SysMmap, (long)Area, LinuxMm.PageSize, 3, 0x100022, -1, 0, Timeout).Result);
        parent.WriteMemory(Area, [7]);
        using LinuxMmProcess child = parent.ForkInto(Scratch, 2, Timeout);
        parent.WriteMemory(Area, [8]);
        byte[] b = new byte[1];
        child.ReadMemory(Area, b);
        Assert.Equal(7, b[0]);
        Assert.Contains(child.ReadMaps(), m => m.Start == Area);
        Assert.True(child.ReadMaps().Count < 10, "the server shed the runtime's mappings: " + string.Join("; ", child.ReadMaps().Select(m => $"{m.Start:x}-{m.End:x} {m.Name}")));
    }

    [Fact]
    public void ACommandThatNeverCompletesIsKilledAtTheTimeout()
    {
        using LinuxMmProcess server = SpawnOrSkip();
        using LinuxMmProcess p = server.ForkInto(Scratch, 2, Timeout);
        Assert.Throws<TimeoutException>(() => p.Call(34, 0, 0, 0, 0, 0, 0, 200)); // pause(2)
        Assert.True(p.IsDead);
        _ = Marshal.GetLastPInvokeError();
    }

    [Fact]
    public unsafe void DisposingTwiceLeavesADescriptorOpenedSinceAlone()
    {
        LinuxMmProcess server = SpawnOrSkip();
        int[] held = server.Descriptors;
        server.Dispose();

        // New pipes take the lowest free numbers, the server's among them (unless another thread takes them first).
        const int Pipes = 4;
        int* fds = stackalloc int[2 * Pipes];
        for (int i = 0; i < Pipes; i++)
        {
            Assert.Equal(0, LinuxMm.Pipe2(fds + (2 * i), 0x80000));
        }

        try
        {
            bool reused = false;
            for (int i = 0; i < 2 * Pipes; i++)
            {
                reused |= held.Contains(fds[i]);
            }

            Assert.SkipUnless(reused, $"other threads took descriptors {string.Join(",", held)} first (pipes got {string.Join(",", Enumerable.Range(0, 2 * Pipes).Select(i => fds[i]))})");
            server.Dispose();
            for (int i = 0; i < Pipes; i++)
            {
                byte b = (byte)(42 + i), back = 0;
                Assert.Equal(1, (long)LinuxMm.Write(fds[(2 * i) + 1], &b, 1));
                Assert.Equal(1, (long)LinuxMm.Read(fds[2 * i], &back, 1));
                Assert.Equal(b, back);
            }
        }
        finally
        {
            for (int i = 0; i < 2 * Pipes; i++)
            {
                _ = LinuxMm.Close(fds[i]);
            }
        }
    }

    /// <summary>Starts the base server, or skips the test with the reason (not Linux x86-64, window taken).</summary>
    private static LinuxMmProcess SpawnOrSkip() => HostServer.SpawnOrSkip(Scratch, 4);
}
