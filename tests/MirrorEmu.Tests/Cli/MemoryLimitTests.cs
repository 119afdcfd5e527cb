using System.Diagnostics;
using MirrorEmu.Mm;
using MirrorEmu.Telemetry;
using MirrorEmu.Tests.Helpers;

namespace MirrorEmu.Tests.Cli;

/// <summary>Running out of memory is a clear error: a run that needs more than the machine (and its limits) allows is
/// refused before it starts with one line that says how much it needs, a run that fits runs under the same limit, and an
/// allocation the host refuses after all becomes VM_FAULT_OOM / -ENOMEM inside the emulator.</summary>
public class MemoryLimitTests
{
    /// <summary>An address-space limit (ulimit -v, KiB) under which the .NET runtime starts but leaves well under 1 GiB.</summary>
    private const int LimitKib = 4_000_000;

    [Fact]
    public void CompareThatNeedsMoreThanTheAddressSpaceLimitIsRefusedWithOneLine()
    {
        (int code, string stdout, string stderr) = RunLimited("compare --pages 262144");
        Assert.Equal(2, code);
        Assert.Equal(string.Empty, stdout);
        string line = Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Matches(@"^mirroremu: --pages=262144 needs about 1\.\d\d GiB of memory, but only \d+\.\d\d GiB is available here \(limited by the address-space limit", line);
    }

    [Fact]
    public void FootprintThatNeedsMoreThanTheLimitIsRefusedWithOneLine()
    {
        (int code, _, string stderr) = RunLimited("footprint --mapping-gib 4 --touched-pages 524288");
        Assert.Equal(2, code);
        Assert.Contains("--touched-pages=524288 needs about", stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void ARunThatFitsUnderTheLimitCompletes()
    {
        (int code, string stdout, string stderr) = RunLimited("compare --pages 4096 --policies uffd-batched --repeat 2 --calibration none");
        Assert.True(code == 0, stderr);
        Assert.Contains("verified", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void AMappingBeyondTheAddressSpaceIsBadInputNotAStackTrace()
    {
        var o = new StringWriter();
        var e = new StringWriter();
        Assert.Equal(2, MirrorEmu.Cli.CliApp.Run(["footprint", "--mapping-gib", "131072"], o, e));
        // Refused by the option's range, which is what the address space maps (FootprintCliTests), not by mmap after it.
        Assert.StartsWith($"mirroremu: --mapping-gib: '131072' is not a whole number from 1 to {MirrorEmu.Workloads.FootprintProbe.MaxMappingGib}", e.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void TheBudgetNamesItsLimitAndLeavesAMargin()
    {
        MemoryBudget b = MemoryBudget.Current();
        Assert.True(b.AvailableBytes > 0, b.ToString());
        Assert.True(b.PhysicalBytes > b.AvailableBytes, "the margin for the runtime was not kept");
        Assert.False(string.IsNullOrEmpty(b.LimitedBy));
    }

    [Fact]
    public void AHostThatRefusesMemoryMakesTheFaultOomNotACrash()
    {
        using var mm = new AddressSpace();
        ulong a = Pages.MapAnon(mm, PhysicalMemory.ChunkFrames + 16);
        mm.Memory.FailChunkAllocationsForTest = true;
        // The first chunk exists (the zero page lives there): its frames can still be had.
        mm.CpuWrite(a, [1]);
        KResult populate = mm.Madvise(a, Pages.Bytes(PhysicalMemory.ChunkFrames + 16), Advice.PopulateWrite);
        Assert.Equal(-Errno.ENOMEM, populate.Code);
        var e = Assert.Throws<MemoryFaultException>(() => mm.CpuWrite(a + Pages.Bytes(PhysicalMemory.ChunkFrames + 8), [2]));
        Assert.Equal(Signal.SIGBUS, e.Signal);
        Assert.Contains("VM_FAULT_OOM", e.Message, StringComparison.Ordinal);
        Assert.True(mm.Counters[MmEvent.HostAllocationFailures] > 0);
        mm.Memory.FailChunkAllocationsForTest = false;
        mm.CpuWrite(a + Pages.Bytes(PhysicalMemory.ChunkFrames + 8), [2]); // and it recovers when memory is back
    }

    /// <summary>Runs the CLI in a child process under <c>ulimit -v</c>.</summary>
    private static (int Code, string Out, string Err) RunLimited(string arguments)
    {
        Assert.SkipUnless(OperatingSystem.IsLinux() && File.Exists("/bin/sh"), "needs Linux and /bin/sh for ulimit -v");
        using Process child = ChildProcess.Start("/bin/sh", ["-c", $"ulimit -v {LimitKib} && exec \"{ChildProcess.Dotnet}\" \"{ChildProcess.Cli}\" {arguments}"]);
        Task<string> stdout = child.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
        Task<string> stderr = child.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        Assert.True(child.WaitForExit(120_000), "the child did not finish in 120 s");
        return (child.ExitCode, stdout.Result, stderr.Result);
    }
}
