namespace MirrorEmu.Workloads;

/// <summary>A device launch: the atomic-add kernel runs a workload over a mapping (one work item per access, each adding
/// <see cref="Add"/> to one 8-byte element of its page), optionally while a storm runs on a CPU thread.</summary>
public sealed record ScenarioLaunch
{
    /// <summary>The mapping.</summary>
    public required string Mapping { get; init; }

    /// <summary>The workload: seq, random, stride:N, zipf:S or sparse:P.</summary>
    public string Workload { get; init; } = "seq";

    /// <summary>What each work item adds.</summary>
    public ulong Add { get; init; } = 1;

    /// <summary>The result the launch must end with: "ok", or an errno name such as "-EFAULT" (<see cref="Accepted"/>).</summary>
    public string Expect { get; init; } = "ok";

    /// <summary>A storm that runs on a CPU thread while the launch runs (fork or mprotect), or null.</summary>
    public ScenarioStorm? During { get; init; }

    /// <summary>What <see cref="Expect"/> may be: "ok" and the negated name of every errno MirrorEmu returns. A name
    /// outside these can never match a result, so a typo would run the whole scenario only to fail its check.</summary>
    public static IReadOnlyList<string> Accepted { get; } = ["ok", .. Errno.Known.Select(e => Errno.Name(-e))];

    /// <summary>The parsed workload.</summary>
    public Workload ParsedWorkload => Workloads.Workload.TryParse(Workload, out Workload? w, out _) ? w! : Workloads.Workload.Seq;

    /// <summary>The first bad value, as "field: why", or null.</summary>
    internal string? Check(ISet<string> mappings)
    {
        if (!mappings.Contains(Mapping))
        {
            return $"mapping: no mapping named '{Mapping}'";
        }

        if (!Workloads.Workload.TryParse(Workload, out _, out string? error))
        {
            return $"workload: {error}";
        }

        if (!Accepted.Contains(Expect, StringComparer.Ordinal))
        {
            return $"expect: '{Expect}' is not one of {string.Join(", ", Accepted)}";
        }

        return During?.Check(mappings, duringLaunch: true) is { } d ? "during." + d : null;
    }
}
