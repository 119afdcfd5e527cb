using MirrorEmu.Mm;
using MirrorEmu.Notifier;
using MirrorEmu.Telemetry;

namespace MirrorEmu.Hmm;

/// <summary>
/// struct hmm_range (include/linux/hmm.h): the notifier and its sequence,
/// the half-open [Start, End), the pfn array (input requests and outputs), the default flags, the
/// pfn-flags mask and the device-private owner; plus MirrorEmu's choices of fault extent and
/// userfaultfd policy, and the statistics its calls add up.
/// </summary>
public sealed class HmmRange
{
    /// <summary>Creates a range over <paramref name="mm"/>; <see cref="HmmPfns"/> gets one word per page.</summary>
    /// <param name="mm">The address space walked (notifier->mm).</param>
    /// <param name="notifier">An interval notifier covering [start, end), inserted in <paramref name="mm"/>'s subscriptions.</param>
    /// <param name="start">Page-aligned start.</param>
    /// <param name="end">Page-aligned half-open end, greater than start.</param>
    /// <exception cref="ArgumentException">Unaligned or empty range, naming the values in hex.</exception>
    public HmmRange(AddressSpace mm, MmuIntervalNotifier notifier, ulong start, ulong end)
    {
        if (!PageGeometry.IsPageAligned(start) || !PageGeometry.IsPageAligned(end) || end <= start || end > PageGeometry.AddressSpaceSize)
        {
            throw new ArgumentException($"range [0x{start:X16}, 0x{end:X16}) must be page aligned, non-empty and inside the address space", nameof(start));
        }

        ulong pages = (end - start) >> PageGeometry.PageShift;
        if (pages > int.MaxValue)
        {
            throw new ArgumentException($"range [0x{start:X16}, 0x{end:X16}) has more than 2^31 pages", nameof(end));
        }

        Mm = mm;
        Notifier = notifier;
        Start = start;
        End = end;
        HmmPfns = new ulong[pages];
    }

    /// <summary>The address space.</summary>
    public AddressSpace Mm { get; }

    /// <summary>range->notifier.</summary>
    public MmuIntervalNotifier Notifier { get; }

    /// <summary>range->notifier_seq: set from <see cref="MmuIntervalNotifier.ReadBegin"/> before each call.</summary>
    public ulong NotifierSeq { get; set; }

    /// <summary>First address.</summary>
    public ulong Start { get; }

    /// <summary>Half-open end.</summary>
    public ulong End { get; }

    /// <summary>Pages in the range.</summary>
    public int PageCount => HmmPfns.Length;

    /// <summary>range->hmm_pfns: per page, the request on input and the result on output.</summary>
    public ulong[] HmmPfns { get; }

    /// <summary>range->default_flags: request bits applied to every page.</summary>
    public ulong DefaultFlags { get; set; }

    /// <summary>range->pfn_flags_mask: which per-page input bits are honoured.</summary>
    public ulong PfnFlagsMask { get; set; }

    /// <summary>range->dev_private_owner: device-private pages of this owner are reported, not faulted.</summary>
    public object? DevPrivateOwner { get; set; }

    /// <summary>Which pages a fault covers.</summary>
    public FaultExtent Extent { get; set; } = FaultExtent.Kernel;

    /// <summary>How long one page may go without becoming valid before hmm_range_fault gives up with -EBUSY naming it,
    /// in milliseconds (a monitor that never fills it, a migration that never ends). Default
    /// <see cref="HmmFault.DefaultTimeoutMs"/>, as the kernel's HMM_RANGE_DEFAULT_TIMEOUT bounds a driver's retries.</summary>
    public int TimeoutMs { get; set; } = HmmFault.DefaultTimeoutMs;

    /// <summary>How pages of userfaultfd (MISSING) VMAs are faulted.</summary>
    public UffdFaultPolicy UffdPolicy { get; set; } = UffdFaultPolicy.SinglePage;

    /// <summary>What the calls on this range did, added up (reset it for per-call figures).</summary>
    public HmmFaultStats Stats { get; } = new();

    /// <summary>Why the last call failed (set with its error code), or null.</summary>
    internal string? FailReason { get; set; }

    /// <summary>Scratch list of runs to fault, reused across calls so a walk allocates nothing.</summary>
    internal List<FaultRun> Runs { get; } = [];

    /// <summary>The page index of <paramref name="address"/> in <see cref="HmmPfns"/>.</summary>
    /// <param name="address">An address inside the range.</param>
    public int IndexOf(ulong address) => (int)((address - Start) >> PageGeometry.PageShift);
}

/// <summary>A run of pages the walk decided to fault: [Start, End) in one VMA, with the fault bits required.</summary>
internal readonly record struct FaultRun(ulong Start, ulong End, NeedFault Required, Vma Vma);

/// <summary>Counters of hmm_range_fault calls on one range: the one place they are counted. A range is used by one
/// thread at a time, so they are plain fields.</summary>
public sealed class HmmFaultStats
{
    /// <summary>hmm_range_fault calls.</summary>
    public long Calls { get; internal set; }

    /// <summary>Walk passes over the page tables (the first, and each re-walk).</summary>
    public long Walks { get; internal set; }

    /// <summary>Walk restarts because the fault path dropped the mmap lock and returned -EBUSY (the SinglePage policy), or
    /// because the VMAs changed while it was dropped.</summary>
    public long EbusyRestarts { get; internal set; }

    /// <summary>Calls that returned -EBUSY to the caller because the notifier sequence moved.</summary>
    public long EbusyReturns { get; internal set; }

    /// <summary>Pages the fault path made present (or writable).</summary>
    public long PagesFaulted { get; internal set; }

    /// <summary>userfaultfd round trips: faults that went to the monitor and back (the lock was dropped and retaken).</summary>
    public long RoundTrips { get; internal set; }

    /// <summary>mmap lock drops by the fault path.</summary>
    public long LockDrops { get; internal set; }

    /// <summary>mmap lock retakes by the fault path.</summary>
    public long LockRetakes { get; internal set; }

    /// <summary>Runs of pages handed to the fault path.</summary>
    public long FaultRuns { get; internal set; }

    /// <summary>Round trips by the pages each made valid, bucketed by powers of two.</summary>
    public PowerOfTwoHistogram PagesPerRoundTrip { get; } = new();

    /// <summary>Sets every counter to zero.</summary>
    public void Reset()
    {
        Calls = Walks = EbusyRestarts = EbusyReturns = PagesFaulted = RoundTrips = LockDrops = LockRetakes = FaultRuns = 0;
        PagesPerRoundTrip.Clear();
    }

    internal void CountRoundTrip(long pages)
    {
        RoundTrips++;
        PagesPerRoundTrip.Add(pages);
    }
}
