namespace MirrorEmu.Workloads;

/// <summary>A CPU-side invalidation storm over a mapping: <see cref="Count"/> times "mprotect" (read-write → read-write-exec
/// → read-write: two invalidations that never deny the device), "fork" (fork a child and drop it: the parent's pages are
/// write-protected for copy-on-write), or "dontneed" (MADV_DONTNEED: the pages go; not during a launch, since what the
/// launch wrote would then depend on timing).</summary>
public sealed record ScenarioStorm
{
    /// <summary>The mapping; during a launch, the launch's when omitted.</summary>
    public string? Mapping { get; init; }

    /// <summary>mprotect, fork or dontneed.</summary>
    public required string Op { get; init; }

    /// <summary>How many times (1 to 100,000).</summary>
    public int Count { get; init; } = 1;

    /// <summary>The first bad value, as "field: why", or null.</summary>
    internal string? Check(ISet<string> mappings, bool duringLaunch)
    {
        if (Op is not "mprotect" and not "fork" and not "dontneed")
        {
            return $"op: '{Op}' is not one of mprotect, fork, dontneed";
        }

        if (duringLaunch && Op == "dontneed")
        {
            return "op: dontneed cannot run during a launch (what the launch wrote would depend on timing)";
        }

        if (Mapping is null ? !duringLaunch : !mappings.Contains(Mapping))
        {
            return Mapping is null ? "mapping: name the mapping" : $"mapping: no mapping named '{Mapping}'";
        }

        return Count is < 1 or > 100_000 ? $"count: {Count} must be between 1 and 100000" : null;
    }
}
