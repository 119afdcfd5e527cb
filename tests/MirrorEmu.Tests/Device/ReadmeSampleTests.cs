using MirrorEmu.Device;
using MirrorEmu.Mm;

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
        string here = File.ReadAllText(Path.Combine(RepositoryRoot(), "tests", "MirrorEmu.Tests", "Device", "ReadmeSampleTests.cs"));
        int begin = here.IndexOf("// README sample begin", StringComparison.Ordinal);
        int end = here.IndexOf("// README sample end", StringComparison.Ordinal);
        string sample = Normalize(here[begin..end].Split('\n').Skip(1));
        string readme = Normalize(File.ReadAllText(Path.Combine(RepositoryRoot(), "README.md")).Split('\n'));
        Assert.True(readme.Contains(sample, StringComparison.Ordinal), "the README does not show the device sample as the test runs it:\n" + sample);
    }

    /// <summary>The lines trimmed, empty ones dropped, joined with newlines.</summary>
    private static string Normalize(IEnumerable<string> lines) => string.Join('\n', lines.Select(l => l.Trim()).Where(l => l.Length > 0));

    private static string RepositoryRoot()
    {
        for (DirectoryInfo? d = new(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            if (File.Exists(Path.Combine(d.FullName, "MirrorEmu.sln")))
            {
                return d.FullName;
            }
        }

        throw new InvalidOperationException($"no MirrorEmu.sln above {AppContext.BaseDirectory}");
    }
}
