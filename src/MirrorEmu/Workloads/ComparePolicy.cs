using MirrorEmu.Hmm;
using MirrorEmu.Uffd;

namespace MirrorEmu.Workloads;

/// <summary>The rows of <c>mirroremu compare</c>: a regular VMA, and a VMA registered with userfaultfd (MISSING) under
/// each of hmm_range_fault's four policies (docs/design.md, "The policies compared").</summary>
public enum ComparePolicy
{
    /// <summary>A regular private anonymous VMA: hmm_range_fault faults its pages in batch. The baseline.</summary>
    Regular,

    /// <summary><see cref="UffdFaultPolicy.Unsupported"/>: the kernel before the 2026 patch; the fault fails with -EFAULT.</summary>
    UffdUnsupported,

    /// <summary><see cref="UffdFaultPolicy.SinglePage"/>: the patch; one round trip and one walk restart per page.</summary>
    UffdSingle,

    /// <summary><see cref="UffdFaultPolicy.Batched"/>: one round trip per monitor block.</summary>
    UffdBatched,

    /// <summary><see cref="UffdFaultPolicy.RangeEvent"/>: one round trip per missing run.</summary>
    UffdRange,
}

/// <summary>Names and mappings of <see cref="ComparePolicy"/>.</summary>
public static class ComparePolicies
{
    /// <summary>Every policy, the baseline first.</summary>
    public static IReadOnlyList<ComparePolicy> All { get; } = Enum.GetValues<ComparePolicy>();

    /// <summary>The names, comma-separated, for messages.</summary>
    public static string NameList { get; } = string.Join(", ", All.Select(p => p.Name()));

    /// <summary>The name a user types and a report prints: regular, uffd-unsupported, uffd-single, uffd-batched, uffd-range.</summary>
    /// <param name="policy">The policy.</param>
    public static string Name(this ComparePolicy policy) => policy switch
    {
        ComparePolicy.Regular => "regular",
        ComparePolicy.UffdUnsupported => "uffd-unsupported",
        ComparePolicy.UffdSingle => "uffd-single",
        ComparePolicy.UffdBatched => "uffd-batched",
        ComparePolicy.UffdRange => "uffd-range",
        _ => throw new ArgumentOutOfRangeException(nameof(policy), $"policy={(int)policy} is not a ComparePolicy"),
    };

    /// <summary>Parses a name (case-insensitive).</summary>
    /// <param name="name">The name.</param>
    /// <param name="policy">The policy.</param>
    /// <returns>True when it is one.</returns>
    public static bool TryParse(string name, out ComparePolicy policy)
    {
        foreach (ComparePolicy p in All)
        {
            if (string.Equals(p.Name(), name.Trim(), StringComparison.OrdinalIgnoreCase))
            {
                policy = p;
                return true;
            }
        }

        policy = default;
        return false;
    }

    /// <summary>hmm_range_fault's userfaultfd policy, or null for the regular VMA.</summary>
    /// <param name="policy">The policy.</param>
    public static UffdFaultPolicy? ToUffd(this ComparePolicy policy) => policy switch
    {
        ComparePolicy.UffdUnsupported => UffdFaultPolicy.Unsupported,
        ComparePolicy.UffdSingle => UffdFaultPolicy.SinglePage,
        ComparePolicy.UffdBatched => UffdFaultPolicy.Batched,
        ComparePolicy.UffdRange => UffdFaultPolicy.RangeEvent,
        _ => null,
    };

    /// <summary>How the monitor resolves a fault under <paramref name="policy"/>: a page (SinglePage, and Unsupported, whose
    /// faults never reach it), an aligned block (Batched), or the whole run the message names (RangeEvent).</summary>
    /// <param name="policy">The userfaultfd policy.</param>
    public static UffdResolution MonitorResolution(UffdFaultPolicy policy) => policy switch
    {
        UffdFaultPolicy.Batched => UffdResolution.Block,
        UffdFaultPolicy.RangeEvent => UffdResolution.WholeRun,
        _ => UffdResolution.SinglePage,
    };

    /// <summary>The error a policy is expected to end with: -EFAULT for <see cref="ComparePolicy.UffdUnsupported"/>
    /// (handle_userfault answers VM_FAULT_SIGBUS without FAULT_FLAG_ALLOW_RETRY), none for the others.</summary>
    /// <param name="policy">The policy.</param>
    public static int ExpectedErrno(this ComparePolicy policy) => policy == ComparePolicy.UffdUnsupported ? Errno.EFAULT : 0;
}
