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

    /// <summary>The result the launch must end with: "ok", or an errno name such as "-EFAULT".</summary>
    public string Expect { get; init; } = "ok";

    /// <summary>A storm that runs on a CPU thread while the launch runs (fork or mprotect), or null.</summary>
    public ScenarioStorm? During { get; init; }

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

        if (Expect != "ok" && (!Expect.StartsWith("-E", StringComparison.Ordinal) || Expect.Length < 4))
        {
            return $"expect: '{Expect}' is not \"ok\" nor an errno name such as \"-EFAULT\"";
        }

        return During?.Check(mappings, duringLaunch: true) is { } d ? "during." + d : null;
    }
}
