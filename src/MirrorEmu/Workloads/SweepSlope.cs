namespace MirrorEmu.Workloads;

/// <summary>The log-log slope of one policy's total time against pages.</summary>
/// <param name="Policy">The policy's name.</param>
/// <param name="Slope">The slope.</param>
/// <param name="WithinGoal">Within 0.9–1.1.</param>
public sealed record SweepSlope(string Policy, double Slope, bool WithinGoal);
