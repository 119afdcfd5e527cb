using System.Globalization;
using MirrorEmu.Telemetry;

namespace MirrorEmu.Regression;

/// <summary>
/// The machine a run's figures were taken on and how busy it was: the 1-minute load average (<see cref="HostLoad"/>) at
/// the start and the end, against the processors available. A run on a busy host is marked beside every timing it gave,
/// never compared silently.
/// </summary>
public sealed record RunHost
{
    /// <summary>The host's name.</summary>
    public string Machine { get; init; } = string.Empty;

    /// <summary>Processors available to the process.</summary>
    public int Cores { get; init; }

    /// <summary>The 1-minute load average at the start (null where unknown).</summary>
    public double? LoadAtStart { get; init; }

    /// <summary>The 1-minute load average at the end (null where unknown).</summary>
    public double? LoadAtEnd { get; init; }

    /// <summary>True when the host was busy at the start or the end (<see cref="HostLoad.IsBusy"/>: fewer than one core
    /// free): a timing then measures the neighbours as much as the code.</summary>
    public bool Busy { get; init; }

    /// <summary>The .NET runtime.</summary>
    public string Runtime { get; init; } = string.Empty;

    /// <summary>This machine, with the loads read when the run started and when it ended.</summary>
    /// <param name="atStart">The load when the run started.</param>
    /// <param name="atEnd">The load when it ended.</param>
    public static RunHost Here(HostLoad atStart, HostLoad atEnd) => new()
    {
        Machine = Environment.MachineName,
        Cores = atStart.Cores,
        LoadAtStart = atStart.IsKnown ? atStart.OneMinute : null,
        LoadAtEnd = atEnd.IsKnown ? atEnd.OneMinute : null,
        Busy = atStart.IsBusy || atEnd.IsBusy,
        Runtime = MachineInfo.Runtime,
    };

    /// <summary>"load 1.20 → 3.40 on 2 cores (busy)".</summary>
    public string Describe() =>
        LoadAtStart is null && LoadAtEnd is null
            ? $"load unknown on {Cores} cores"
            : string.Create(CultureInfo.InvariantCulture, $"load {Format(LoadAtStart)} → {Format(LoadAtEnd)} on {Cores} cores{(Busy ? " (busy)" : string.Empty)}");

    private static string Format(double? load) => load is { } l ? l.ToString("F2", CultureInfo.InvariantCulture) : "?";
}
