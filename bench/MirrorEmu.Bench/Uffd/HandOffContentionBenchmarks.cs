using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using MirrorEmu.Calibration;
using MirrorEmu.Mm;
using MirrorEmu.Uffd;

namespace MirrorEmu.Bench.Uffd;

/// <summary>What else the machine is doing while a hand-off benchmark runs.</summary>
public enum HandOffCondition
{
    /// <summary>Nothing: every processor of the process is free.</summary>
    Idle,
    /// <summary>Every thread of the benchmark process restricted to one processor (sched_setaffinity on each task, as
    /// <c>taskset -c 0</c> or a one-CPU container does): the faulting thread and the monitor share it.</summary>
    OneCore,
    /// <summary>Two busy threads in the process beside the benchmark, on the same processors.</summary>
    Busy2,
    /// <summary>Four busy threads: the processors are oversubscribed three to one.</summary>
    Busy4,
}

/// <summary>
/// Issue 9's contention goal, measured side by side in one run per condition: the emulator's single-page
/// userfaultfd hand-off (a populate of a registered range, one monitor round trip per page) against the host
/// kernel's own (<see cref="KernelUffdSinglePage"/>, the baseline: the ratio column is emulator / kernel), idle,
/// on one processor, and with busy threads beside it. <see cref="BlockingPingPong"/> is two threads waking each
/// other with no spinning at all: what a wake costs on this machine (two per round trip). One command gives every
/// condition: <c>--filter '*HandOffContention*'</c>.
/// </summary>
[BenchmarkCategory(BenchCategories.Uffd)]
public class HandOffContentionBenchmarks
{
    public const int PageCount = 1024;
    private const ulong Bytes = (ulong)PageCount * PageGeometry.PageSize;

    private readonly List<Thread> _busy = [];
    private volatile bool _stop;
    private AddressSpace _mm = null!;
    private ulong _single;
    private Userfaultfd _ctx = null!;
    private UffdMonitor _monitor = null!;
    private nint _kernelMap;
    private nint _kernelRange;
    private LinuxUffd _kernel = null!;
    private PingPonger _events = null!;
    private PingPonger _futex = null!;

    [Params(HandOffCondition.Idle, HandOffCondition.OneCore, HandOffCondition.Busy2, HandOffCondition.Busy4)]
    public HandOffCondition Condition { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        Apply(Condition);
        _mm = new AddressSpace(memoryLimitBytes: 256UL << 20);
        _mm.MmapAnonymous(Bytes, Prot.ReadWrite, MapFlags.Private, out _single).ThrowIfError();
        _ctx = new Userfaultfd(_mm);
        _ctx.Api(UffdApi.Version, UffdFeatures.None, out _).ThrowIfError();
        _ctx.Register(_single, Bytes, UffdRegisterMode.Missing, out _).ThrowIfError();
        _monitor = new UffdMonitor(_ctx, new UffdMonitorOptions { Fill = new PatternFill(1), Resolution = UffdResolution.SinglePage });
        _kernelMap = LinuxUffd.MapAnonymous((nuint)Bytes);
        _kernelRange = _kernelMap;
        _kernel = LinuxUffd.TryOpen(_kernelRange, (nuint)Bytes, 1, 1, out string why) ?? throw new PlatformNotSupportedException(why);
        _events = new PingPonger(new EventSignal(0), new EventSignal(0), "ponger");
        _futex = new PingPonger(new FutexSignal(), new FutexSignal(), "futex-ponger");
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _stop = true;
        _events.Dispose();
        _futex.Dispose();
        foreach (Thread t in _busy)
        {
            t.Join();
        }

        _monitor.Dispose();
        _ctx.Dispose();
        _mm.Dispose();
        _kernel.Dispose();
        LinuxUffd.Unmap(_kernelMap, (nuint)Bytes);
    }

    [IterationSetup]
    public void Empty()
    {
        _mm.Madvise(_single, Bytes, Advice.DontNeed).ThrowIfError();
        if (LinuxUffd.DontNeed(_kernelRange, (nuint)Bytes) != 0)
        {
            throw new InvalidOperationException("MADV_DONTNEED of the kernel range failed");
        }
    }

    /// <summary>The host kernel: one UFFDIO_COPY + wake per page, monitor thread blocking in poll(2).</summary>
    [Benchmark(Baseline = true, OperationsPerInvoke = PageCount)]
    public int KernelUffdSinglePage()
    {
        int rc = LinuxUffd.PopulateWrite(_kernelRange, (nuint)Bytes);
        _kernel.ThrowIfMonitorFailed();
        return rc == 0 ? rc : throw new InvalidOperationException($"MADV_POPULATE_WRITE failed: {rc}");
    }

    /// <summary>The emulator: MADV_POPULATE_WRITE of a userfaultfd range whose monitor answers one page per message.</summary>
    [Benchmark(OperationsPerInvoke = PageCount)]
    public KResult EmulatorSinglePageHandOff() => _mm.Madvise(_single, Bytes, Advice.PopulateWrite).ThrowIfErrorAndReturn();

    /// <summary>Two threads waking each other through the hand-off's own futex signal (Uffd/HandOffSignal) with no polling:
    /// one round trip is two sleeps and two wakes, what a wake costs on this machine.</summary>
    [Benchmark(OperationsPerInvoke = PageCount)]
    public int FutexPingPong() => _futex.RoundTrips(PageCount);

    /// <summary>Two threads waking each other through ManualResetEventSlim with no spinning: one round trip is two wakes
    /// through the runtime's monitor (which spins on its lock when the runtime believes it has several processors).</summary>
    [Benchmark(OperationsPerInvoke = PageCount)]
    public int BlockingPingPong() => _events.RoundTrips(PageCount);

    private void Apply(HandOffCondition condition)
    {
        switch (condition)
        {
            case HandOffCondition.OneCore:
                Affinity.RestrictProcessToOneCpu();
                break;
            case HandOffCondition.Busy2:
            case HandOffCondition.Busy4:
                for (int i = 0; i < (condition == HandOffCondition.Busy2 ? 2 : 4); i++)
                {
                    var t = new Thread(() =>
                    {
                        long x = 0;
                        while (!_stop)
                        {
                            x++;
                        }

                        GC.KeepAlive(x);
                    }) { IsBackground = true, Name = $"busy-{i}" };
                    t.Start();
                    _busy.Add(t);
                }

                break;
        }
    }
}

/// <summary>Linux thread affinity for benchmark conditions.</summary>
internal static partial class Affinity
{
    /// <summary>Restricts every thread of this process (and so every thread it starts later) to the lowest processor
    /// the calling thread may run on.</summary>
    public static unsafe void RestrictProcessToOneCpu()
    {
        ulong* mask = stackalloc ulong[16];
        if (SchedGetAffinity(0, 16 * sizeof(ulong), mask) != 0)
        {
            throw new PlatformNotSupportedException($"sched_getaffinity failed: errno {Marshal.GetLastPInvokeError()}");
        }

        int cpu = 0;
        while (cpu < 1024 && (mask[cpu / 64] & (1UL << (cpu % 64))) == 0)
        {
            cpu++;
        }

        ulong* one = stackalloc ulong[16];
        one[cpu / 64] = 1UL << (cpu % 64);
        foreach (string task in Directory.EnumerateDirectories("/proc/self/task"))
        {
            int tid = int.Parse(Path.GetFileName(task), System.Globalization.CultureInfo.InvariantCulture);
            _ = SchedSetAffinity(tid, 16 * sizeof(ulong), one); // a task that exited meanwhile is fine
        }
    }

    [LibraryImport("libc", EntryPoint = "sched_getaffinity", SetLastError = true)]
    private static unsafe partial int SchedGetAffinity(int pid, nuint size, ulong* mask);

    [LibraryImport("libc", EntryPoint = "sched_setaffinity", SetLastError = true)]
    private static unsafe partial int SchedSetAffinity(int pid, nuint size, ulong* mask);
}

internal static class KResultBenchExtensions
{
    /// <summary>Throws on an error (a benchmark must not time a failure), else returns the result.</summary>
    public static KResult ThrowIfErrorAndReturn(this KResult r)
    {
        r.ThrowIfError();
        return r;
    }
}
