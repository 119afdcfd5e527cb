using MirrorEmu.Calibration;
using MirrorEmu.Tests.Helpers;

namespace MirrorEmu.Tests.Differential;

/// <summary>
/// The differential test against the host kernel (docs/design.md, invariant 6): seeded operation sequences
/// run on the real kernel (in a forked server process) and on the emulator, compared after every
/// step. Every divergence must be one <see cref="KnownDivergences"/> explains. CI runs
/// <see cref="DefaultSequences"/> sequences; MIRROREMU_DIFF_SEQUENCES runs more, MIRROREMU_SEED
/// changes the seed, MIRROREMU_DIFF_UFFD=0 leaves userfaultfd out. Skipped, with the reason, off
/// Linux x86-64, without root, or when the window cannot be reserved.
/// </summary>
[Trait("Category", "Kernel")]
public class KernelDifferentialTests
{
    /// <summary>Sequences a default run checks.</summary>
    public const int DefaultSequences = 300;

    /// <summary>Operations per sequence.</summary>
    public const int SequenceLength = 24;

    private const int TimeoutMs = 5000;

    [Fact]
    public void SeededSequencesBehaveOnTheEmulatorAsOnTheHostKernel()
    {
        int seed = TestSeeds.Get();
        int count = TestKnobs.Count("MIRROREMU_DIFF_SEQUENCES", DefaultSequences);
        using LinuxMmProcess server = StartServer(out bool withUffd);
        if (Environment.GetEnvironmentVariable("MIRROREMU_DIFF_UFFD") == "0")
        {
            withUffd = false;
            TestContext.Current.TestOutputHelper?.WriteLine("MIRROREMU_DIFF_UFFD=0: sequences run without userfaultfd operations");
        }

        var runner = new DiffRunner(server, LinuxMm.KernelRelease());
        for (int i = 0; i < count; i++)
        {
            int s = seed + i;
            runner.Run(new DiffGenerator(s).Sequence(SequenceLength, withUffd), s, out string? failure);
            Assert.SkipWhen(failure is not null, $"the host window could not be set up: {failure}");
        }

        Finish(runner);
    }

    [Fact]
    public void TheIssuesReproductionsBehaveOnTheEmulatorAsOnTheHostKernel()
    {
        using LinuxMmProcess server = StartServer(out bool withUffd);
        var runner = new DiffRunner(server, LinuxMm.KernelRelease());
        int index = 0;
        foreach (DiffOp[] ops in DiffReproductions.All(withUffd))
        {
            runner.Run(ops, -(++index), out string? failure);
            Assert.SkipWhen(failure is not null, $"the host window could not be set up: {failure}");
        }

        Finish(runner);
    }

    private static LinuxMmProcess StartServer(out bool withUffd)
    {
        Assert.SkipUnless(LinuxMm.IsSupported(out string why), why);
        Assert.SkipUnless(Environment.IsPrivilegedProcess, "the differential test needs root: /proc/<pid>/map_files (shared anonymous pages) and UFFD_FEATURE_EVENT_FORK need CAP_SYS_ADMIN and CAP_SYS_PTRACE");
        LinuxMmProcess server = HostServer.SpawnOrSkip(DiffWindow.Scratch, DiffWindow.ScratchPages);
        using (LinuxMmProcess probe = server.ForkInto(DiffWindow.Scratch, 2, TimeoutMs))
        {
            long fd = probe.Call(LinuxMm.SysUserfaultfd, 0x80800, 0, 0, 0, 0, 0, TimeoutMs).Result;
            withUffd = fd >= 0;
            if (!withUffd)
            {
                TestContext.Current.TestOutputHelper?.WriteLine($"userfaultfd(2) failed with {DiffFormat.Rc(fd)}: sequences run without userfaultfd operations");
            }
        }

        TestContext.Current.TestOutputHelper?.WriteLine($"host kernel {LinuxMm.KernelRelease()}");
        return server;
    }

    private static void Finish(DiffRunner runner)
    {
        string report = runner.Report();
        TestContext.Current.TestOutputHelper?.WriteLine(report);
        Assert.True(runner.Distinct.All(f => f.Known is not null), "the emulator diverged from the host kernel where no known difference explains it:\n" + report);
    }
}
