namespace MirrorEmu.Workloads;

/// <summary>What a scenario did: a line per step, and every check with its verdict (each launch's expected result, each
/// storm's success, each assertion).</summary>
/// <param name="Steps">One line per step, as it ran.</param>
/// <param name="Checks">Every check, in order.</param>
public sealed record ScenarioOutcome(IReadOnlyList<string> Steps, IReadOnlyList<ScenarioCheck> Checks)
{
    /// <summary>True when every check passed.</summary>
    public bool Passed => Checks.All(c => c.Passed);
}
