namespace MirrorEmu.Workloads;

/// <summary>A private anonymous mapping of the scenario (2 MiB aligned), optionally registered with userfaultfd.</summary>
public sealed record ScenarioMapping
{
    /// <summary>Its name, used by steps and assertions.</summary>
    public required string Name { get; init; }

    /// <summary>Its size in pages (1 to 1,048,576).</summary>
    public required int Pages { get; init; }

    /// <summary>The userfaultfd registration (MISSING) and its monitor, or null for a regular mapping.</summary>
    public ScenarioUserfaultfd? Userfaultfd { get; init; }
}
