namespace MirrorEmu.Workloads;

/// <summary>Where a comparison faults the range.</summary>
public enum CompareLevel
{
    /// <summary>A device kernel faults it through the fault buffer, the driver, hmm_range_fault and the policy.</summary>
    Device,

    /// <summary>The driver loop calls hmm_range_fault over the whole range, with no device (the 4/7 comparison).</summary>
    Hmm,
}
