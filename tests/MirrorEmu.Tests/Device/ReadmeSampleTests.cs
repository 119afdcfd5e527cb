using MirrorEmu.Device;
using MirrorEmu.Mm;
using MirrorEmu.Tests.Helpers;

namespace MirrorEmu.Tests.Device;

/// <summary>The README's device sample compiles, runs and prints what the README says; the README shows these very lines.</summary>
public class ReadmeSampleTests
{
    /// <summary>The sample, verbatim between the markers (the README's "Running a device workload" block).</summary>
    private static void Sample(TextWriter console)
    {
        // README sample begin
        using var mm = new AddressSpace();
        mm.MmapAnonymous(64 * 4096, Prot.ReadWrite, MapFlags.Private, out ulong data).ThrowIfError();
        mm.CpuWriteUInt64(data, 42);                                            // the CPU writes...

        using DeviceLauncher launcher = DeviceLauncher.Create(LauncherKind.Auto); // CUDA if it can reach the frames, else direct
        using var device = new MirrorDevice(mm, launcher);                       // mirrors the whole address space
        var output = new ulong[64 * 512];                                        // one 64-bit element per work item
        device.LaunchRead(data, output, out LaunchReport report).ThrowIfError(); // ...the device reads it in place
        console.WriteLine($"read {output[0]}: {report.FaultsAppended} device faults, {report.Runs} runs, {report.Replays} replays");

        Array.Fill(output, 7UL);
        device.LaunchWrite(data, output, out report).ThrowIfError();             // the device writes...
        console.WriteLine($"CPU reads {mm.CpuReadUInt64(data)}: {report.FaultsAppended} write faults (pages 1-63 were the zero page, read-only)");

        mm.Mprotect(data, 64 * 4096, Prot.Read).ThrowIfError();                  // invalidates the mirror
        KResult r = device.LaunchWrite(data, output, out _);
        console.WriteLine(r.Code == -Errno.EPERM ? "write to read-only memory: -EPERM" : r.ToString());

        var cmd = new DmirrorCmd(data, 64);                                      // lib/test_hmm.c's HMM_DMIRROR_READ
        device.Read(ref cmd, new byte[64 * 4096]).ThrowIfError();
        console.WriteLine($"dmirror read: cpages={cmd.Cpages} faults={cmd.Faults}");
        // README sample end
    }

    /// <summary>The device-memory sample, verbatim between the markers (the README's "Device memory and migration" block).</summary>
    private static void MemorySample(TextWriter console)
    {
        // README memory sample begin
        using var mm = new AddressSpace();
        mm.MmapAnonymous(64 * 4096, Prot.ReadWrite, MapFlags.Private, out ulong data).ThrowIfError();
        for (ulong p = 0; p < 64; p++)
        {
            mm.CpuWriteUInt64(data + (p * 4096), p);                              // page p holds p
        }

        using DeviceLauncher launcher = DeviceLauncher.Create(LauncherKind.Direct);
        using var device = new MirrorDevice(mm, launcher);
        device.MigrateToDevice(data, 64, out ulong moved).ThrowIfError();         // migrate_vma: system → device memory
        console.WriteLine($"moved {moved} pages; the CPU now maps {mm.PageTable.Read(data).Swap} entries");

        var output = new ulong[64 * 512];
        device.LaunchRead(data, output, out LaunchReport report).ThrowIfError();  // kernels reach the device's memory
        console.WriteLine($"device reads {output[512]}: {report.AccessesDevice} accesses to device memory, {report.AccessesSystem} in place, {report.FaultsAppended} faults");

        ulong cpu = mm.CpuReadUInt64(data + 4096);                                // the CPU faults page 1 back (migrate_to_ram)
        console.WriteLine($"CPU reads {cpu}: migrate_to_ram ran {device.Counters[DeviceEvent.MigrateToRamCalls]} time");

        using var second = new MirrorDevice(mm, launcher);                        // another device faults the rest back
        var cmd = new DmirrorCmd(data, 64);
        second.Read(ref cmd, new byte[64 * 4096]).ThrowIfError();
        console.WriteLine($"second device: cpages={cmd.Cpages} faults={cmd.Faults}; the first holds {device.DevicePagesInUse} pages");
        // README memory sample end
    }

    [Fact]
    public void TheMemorySampleRunsAndPrintsWhatTheReadmeShows()
    {
        var console = new StringWriter();
        MemorySample(console);
        Assert.Equal(
            "moved 64 pages; the CPU now maps DevicePrivateWrite entries\n" +
            "device reads 1: 32768 accesses to device memory, 0 in place, 0 faults\n" +
            "CPU reads 1: migrate_to_ram ran 1 time\n" +
            "second device: cpages=64 faults=1; the first holds 0 pages\n",
            console.ToString().ReplaceLineEndings("\n"));
    }

    [Fact]
    public void TheReadmeShowsTheMemorySampleVerbatim()
    {
        string here = File.ReadAllText(Path.Combine(RepoPaths.Root, "tests", "MirrorEmu.Tests", "Device", "ReadmeSampleTests.cs"));
        int begin = here.IndexOf("// README memory sample begin", StringComparison.Ordinal);
        int end = here.IndexOf("// README memory sample end", StringComparison.Ordinal);
        string sample = Readme.Normalize(here[here.IndexOf('\n', begin)..end]); // the lines after the begin marker
        string readme = Readme.Normalize(Readme.Text);
        Assert.True(readme.Contains(sample, StringComparison.Ordinal), "the README does not show the device-memory sample as the test runs it:\n" + sample);
    }

    [Fact]
    public void TheSampleRunsAndPrintsWhatTheReadmeShows()
    {
        var console = new StringWriter();
        Sample(console);
        Assert.Equal(
            "read 42: 64 device faults, 1 runs, 1 replays\n" +
            "CPU reads 7: 63 write faults (pages 1-63 were the zero page, read-only)\n" +
            "write to read-only memory: -EPERM\n" +
            "dmirror read: cpages=64 faults=1\n",
            console.ToString().ReplaceLineEndings("\n"));
    }

    [Fact]
    public void TheReadmeShowsTheSampleVerbatim()
    {
        string here = File.ReadAllText(Path.Combine(RepoPaths.Root, "tests", "MirrorEmu.Tests", "Device", "ReadmeSampleTests.cs"));
        int begin = here.IndexOf("// README sample begin", StringComparison.Ordinal);
        int end = here.IndexOf("// README sample end", StringComparison.Ordinal);
        string sample = Readme.Normalize(here[here.IndexOf('\n', begin)..end]); // the lines after the begin marker
        string readme = Readme.Normalize(Readme.Text);
        Assert.True(readme.Contains(sample, StringComparison.Ordinal), "the README does not show the device sample as the test runs it:\n" + sample);
    }
}
