namespace MirrorEmu.Workloads;

/// <summary>A slowdown against the baseline, measured and modeled.</summary>
/// <param name="Measured">The median of the per-round ratios of measured times.</param>
/// <param name="Modeled">The ratio of modeled times.</param>
public sealed record SlowdownReport(double? Measured, double? Modeled);
