using MirrorEmu.Device;

namespace MirrorEmu.Workloads;

/// <summary>The names of the replay policies as the command line and scenario files write them: once, batch-flush,
/// batch, block.</summary>
public static class ReplayPolicies
{
    /// <summary>The names, for messages and help.</summary>
    public static IReadOnlyList<string> Names { get; } = ["once", "batch-flush", "batch", "block"];

    /// <summary>The name of <paramref name="replay"/>.</summary>
    /// <param name="replay">The policy.</param>
    public static string Name(ReplayPolicy replay) => replay == ReplayPolicy.BatchFlush ? "batch-flush" : replay.ToString().ToLowerInvariant();

    /// <summary>Parses a name (case-insensitive).</summary>
    /// <param name="name">The name.</param>
    /// <param name="replay">The policy.</param>
    /// <returns>True when it is one.</returns>
    public static bool TryParse(string name, out ReplayPolicy replay)
    {
        foreach (ReplayPolicy r in Enum.GetValues<ReplayPolicy>())
        {
            if (string.Equals(Name(r), name, StringComparison.OrdinalIgnoreCase))
            {
                replay = r;
                return true;
            }
        }

        replay = default;
        return false;
    }
}
