using BenchmarkDotNet.Attributes;
using MirrorEmu.Calibration;

namespace MirrorEmu.Bench.Uffd;

/// <summary>
/// The host kernel's own userfaultfd, measured the way <see cref="UffdRoundTripBenchmarks"/> measures the
/// emulator's: 4,096 fresh pages per invocation (MADV_DONTNEED empties them again), MADV_POPULATE_WRITE
/// of a plain range as the baseline, and populates of registered ranges whose monitor thread answers
/// each fault with one UFFDIO_COPY (DONTWAKE) and one UFFDIO_WAKE of 1 or 64 pages. Needs Linux and
/// permission for userfaultfd(2) (root, or vm.unprivileged_userfaultfd=1).
/// </summary>
[BenchmarkCategory(BenchCategories.Uffd)]
public class KernelUffdBenchmarks
{
    public const int PageCount = UffdRoundTripBenchmarks.PageCount;

    private static readonly nuint s_bytes = (nuint)(PageCount * LinuxUffd.PageSize);
    private static readonly nuint s_align = (nuint)(64 * LinuxUffd.PageSize);

    private readonly List<(nint Start, nuint Length)> _maps = [];
    private nint _regular;
    private nint _single;
    private nint _block;
    private LinuxUffd _singleUffd = null!;
    private LinuxUffd _blockUffd = null!;

    [GlobalSetup]
    public void Setup()
    {
        _regular = MapAligned();
        _single = MapAligned();
        _block = MapAligned();
        _singleUffd = LinuxUffd.TryOpen(_single, s_bytes, 1, 1, out string why) ?? throw new PlatformNotSupportedException(why);
        _blockUffd = LinuxUffd.TryOpen(_block, s_bytes, 64, 2, out why) ?? throw new PlatformNotSupportedException(why);
    }

    // A range that starts on a 64-page boundary, so a 64-page block never straddles its edges.
    private nint MapAligned()
    {
        nuint length = s_bytes + s_align;
        nint raw = LinuxUffd.MapAnonymous(length);
        _maps.Add((raw, length));
        return (nint)(((nuint)raw + s_align - 1) & ~(s_align - 1));
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _singleUffd.Dispose();
        _blockUffd.Dispose();
        foreach ((nint start, nuint length) in _maps)
        {
            LinuxUffd.Unmap(start, length);
        }
    }

    [IterationSetup]
    public void Empty()
    {
        Check(LinuxUffd.DontNeed(_regular, s_bytes));
        Check(LinuxUffd.DontNeed(_single, s_bytes));
        Check(LinuxUffd.DontNeed(_block, s_bytes));
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = PageCount)]
    public int KernelPopulate() => Check(LinuxUffd.PopulateWrite(_regular, s_bytes));

    /// <summary>One UFFDIO_COPY per page: 4,096 round trips through the kernel.</summary>
    [Benchmark(OperationsPerInvoke = PageCount)]
    public int KernelUffdSinglePage() => Check(LinuxUffd.PopulateWrite(_single, s_bytes));

    /// <summary>One UFFDIO_COPY of the aligned 64-page block around each fault: 64 round trips.</summary>
    [Benchmark(OperationsPerInvoke = PageCount)]
    public int KernelUffdBlock64() => Check(LinuxUffd.PopulateWrite(_block, s_bytes));

    private int Check(int rc)
    {
        _singleUffd?.ThrowIfMonitorFailed();
        _blockUffd?.ThrowIfMonitorFailed();
        return rc == 0 ? rc : throw new InvalidOperationException($"madvise failed: {rc}");
    }
}
