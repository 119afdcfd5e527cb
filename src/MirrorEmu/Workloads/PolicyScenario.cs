using MirrorEmu.Hmm;
using MirrorEmu.Mm;
using MirrorEmu.Notifier;

namespace MirrorEmu.Workloads;

/// <summary>
/// One scenario of the policy comparison: a fresh private anonymous range in its own address space,
/// registered with userfaultfd (MISSING) and served by a monitor thread when a policy is given
/// (SinglePage: a page per event; Batched: an aligned block; RangeEvent: the whole run), and an
/// <see cref="HmmRange"/> over it that requests every page writable.
/// </summary>
public sealed class PolicyScenario : IDisposable
{
    private readonly MonitoredRange? _uffd;
    private readonly SeqNotifierOps _ops = new();

    /// <summary>Sets the scenario up.</summary>
    /// <param name="memory">The frame pool the address space draws on.</param>
    /// <param name="pages">Pages in the range.</param>
    /// <param name="policy">The userfaultfd policy, or null for a regular VMA.</param>
    /// <param name="fill">The byte the monitor fills pages with.</param>
    /// <param name="monitorBatch">Block size for Batched, in pages (a power of two).</param>
    public PolicyScenario(PhysicalMemory memory, int pages, UffdFaultPolicy? policy, byte fill, int monitorBatch)
    {
        ulong bytes = (ulong)pages * PageGeometry.PageSize;
        Mm = new AddressSpace(memory);
        Mm.MmapAnonymous(bytes, Prot.ReadWrite, MapFlags.Private, out ulong start).ThrowIfError();
        Policy = policy;
        Fill = policy is null ? (byte)0 : fill;
        if (policy is { } p)
        {
            _uffd = new MonitoredRange(Mm, start, bytes, ComparePolicies.MonitorResolution(p), fill, monitorBatch);
        }

        var notifier = new MmuIntervalNotifier(_ops);
        Mm.Notifiers.Insert(notifier, start, bytes).ThrowIfError();
        Range = new HmmRange(Mm, notifier, start, start + bytes)
        {
            DefaultFlags = HmmPfn.ReqFault | HmmPfn.ReqWrite,
            UffdPolicy = policy ?? UffdFaultPolicy.SinglePage,
        };
    }

    /// <summary>The address space.</summary>
    public AddressSpace Mm { get; }

    /// <summary>The userfaultfd context and monitor, or null for the regular VMA.</summary>
    public MonitoredRange? Userfault => _uffd;

    /// <summary>The range faulted.</summary>
    public HmmRange Range { get; }

    /// <summary>The policy, or null for the regular VMA.</summary>
    public UffdFaultPolicy? Policy { get; }

    /// <summary>The byte every page should hold after a fault (0 for the regular VMA).</summary>
    public byte Fill { get; }

    /// <summary>The driver loop over the whole range.</summary>
    /// <returns>0 or hmm_range_fault's error.</returns>
    public KResult Fault(CancellationToken cancellation = default) => HmmDriverLoop.Run(Range, _ops.DriverLock, 60_000, cancellation: cancellation);

    /// <summary>MADV_DONTNEED over the range, so it can be faulted again.</summary>
    public void Empty() => Mm.Madvise(Range.Start, Range.End - Range.Start, Advice.DontNeed).ThrowIfError();

    /// <summary>True when every page is valid, writable and holds <see cref="Fill"/> in every byte.</summary>
    public bool Verify()
    {
        foreach (ulong word in Range.HmmPfns)
        {
            var p = new HmmPfn(word);
            if (!p.IsValid || !p.IsWritable || Mm.Memory.Frame(p.Pfn).IndexOfAnyExcept(Fill) >= 0)
            {
                return false;
            }
        }

        return true;
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        _uffd?.Dispose();
        Mm.Dispose();
    }
}
