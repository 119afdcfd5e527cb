namespace MirrorEmu.Telemetry;

/// <summary>The machine a report's figures were taken on, as the JSON reports of <c>mirroremu compare</c> and
/// <c>mirroremu calibrate</c> carry it (README "JSON output").</summary>
public sealed record MachineReport
{
    /// <summary>Processors available to the process.</summary>
    public int Cores { get; init; }

    /// <summary>The instruction set and its widest hardware vector ("X64 AVX-512").</summary>
    public string Isa { get; init; } = string.Empty;

    /// <summary>The load averages when the run started.</summary>
    public LoadReport Load { get; init; } = new(null, null, null);

    /// <summary>Cores not taken by the 1-minute load when the run started.</summary>
    public double FreeCores { get; init; }

    /// <summary>The 1-minute load average when the run ended (null where unknown).</summary>
    public double? LoadAtEnd { get; init; }

    /// <summary>True when the machine was busy at the start or the end (fewer than one free core): ratios that involve the
    /// userfaultfd hand-off are not meaningful then.</summary>
    public bool Busy { get; init; }

    /// <summary>The operating-system kernel's release ("6.18.44").</summary>
    public string KernelVersion { get; init; } = string.Empty;

    /// <summary>The .NET runtime.</summary>
    public string Runtime { get; init; } = string.Empty;

    /// <summary>The accelerator the device ran on (the launcher's description), or null where no device ran.</summary>
    public string? Accelerator { get; init; }

    /// <summary>Builds the report of this machine.</summary>
    /// <param name="atStart">The load when the run started.</param>
    /// <param name="atEnd">The load when it ended, or null when it has not.</param>
    /// <param name="accelerator">The accelerator's description, or null.</param>
    public static MachineReport Create(HostLoad atStart, HostLoad? atEnd, string? accelerator) => new()
    {
        Cores = atStart.Cores,
        Isa = MachineInfo.Isa,
        Load = atStart.IsKnown ? new LoadReport(atStart.OneMinute, atStart.FiveMinutes, atStart.FifteenMinutes) : new LoadReport(null, null, null),
        FreeCores = Math.Round(atStart.FreeCores, 2),
        LoadAtEnd = atEnd is { IsKnown: true } end ? end.OneMinute : null,
        Busy = atStart.IsBusy || (atEnd?.IsBusy ?? false),
        KernelVersion = MachineInfo.KernelVersion,
        Runtime = MachineInfo.Runtime,
        Accelerator = accelerator,
    };
}
