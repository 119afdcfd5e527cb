namespace MirrorEmu.Workloads;

/// <summary>Where a comparison is: trials done of the trials planned (the plan grows once the first round says how many
/// rounds fit the time budget), and what runs now.</summary>
/// <param name="Done">Trials done.</param>
/// <param name="Total">Trials planned.</param>
/// <param name="Now">What runs now ("round 3/12: uffd-batched").</param>
public readonly record struct CompareProgress(int Done, int Total, string Now);
