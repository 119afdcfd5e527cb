namespace MirrorEmu.Workloads;

/// <summary>One step: exactly one of <see cref="Launch"/> and <see cref="Storm"/>.</summary>
public sealed record ScenarioStep
{
    /// <summary>A device launch.</summary>
    public ScenarioLaunch? Launch { get; init; }

    /// <summary>A CPU-side invalidation storm.</summary>
    public ScenarioStorm? Storm { get; init; }

    /// <summary>The first bad value, as "path: why", or null.</summary>
    internal string? Check(ISet<string> mappings)
    {
        if ((Launch is null) == (Storm is null))
        {
            return "launch/storm: a step is exactly one of launch and storm";
        }

        return Launch?.Check(mappings) is { } l ? "launch." + l
            : Storm?.Check(mappings, duringLaunch: false) is { } s ? "storm." + s
            : null;
    }
}
