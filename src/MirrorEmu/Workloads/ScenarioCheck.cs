namespace MirrorEmu.Workloads;

/// <summary>One check of a scenario.</summary>
/// <param name="What">What was checked, in words.</param>
/// <param name="Passed">Whether it held.</param>
/// <param name="Detail">The value found, or why it failed.</param>
public sealed record ScenarioCheck(string What, bool Passed, string Detail);
