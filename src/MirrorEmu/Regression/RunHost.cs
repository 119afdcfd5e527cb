using System.Globalization;
using MirrorEmu.Telemetry;

namespace MirrorEmu.Regression;

/// <summary>
/// The machine a run's figures were taken on and how busy it was: the load averages of /proc/loadavg (as uptime(1) prints
/// them) at the start and the end, against the processors available. A run on a busy host is marked beside every timing
/// it gave, never compared silently.
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

    /// <summary>True when fewer than one core was free at the start or the end (the 1-minute load above cores - 1): a
    /// timing then measures the neighbours as much as the code.</summary>
    public bool Busy { get; init; }

    /// <summary>The .NET runtime.</summary>
    public string Runtime { get; init; } = string.Empty;

    /// <summary>The 1-minute load average now, or null where /proc/loadavg cannot be read.</summary>
    public static double? CurrentLoad()
    {
        try
        {
            string[] f = File.ReadAllText("/proc/loadavg").Split(' ', StringSplitOptions.RemoveEmptyEntries);
            return f.Length > 0 && double.TryParse(f[0], NumberStyles.Float, CultureInfo.InvariantCulture, out double one) ? one : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>This machine, with the loads given.</summary>
    /// <param name="loadAtStart">The 1-minute load when the run started.</param>
    /// <param name="loadAtEnd">The 1-minute load when it ended.</param>
    public static RunHost Here(double? loadAtStart, double? loadAtEnd)
    {
        int cores = LinuxAffinity.TryCount(out int n) ? n : Environment.ProcessorCount;
        return new RunHost
        {
            Machine = Environment.MachineName,
            Cores = cores,
            LoadAtStart = loadAtStart,
            LoadAtEnd = loadAtEnd,
            Busy = IsBusy(loadAtStart, cores) || IsBusy(loadAtEnd, cores),
            Runtime = MachineInfo.Runtime,
        };
    }

    /// <summary>"load 1.20 → 3.40 on 2 cores (busy)".</summary>
    public string Describe() =>
        LoadAtStart is null && LoadAtEnd is null
            ? $"load unknown on {Cores} cores"
            : string.Create(CultureInfo.InvariantCulture, $"load {Format(LoadAtStart)} → {Format(LoadAtEnd)} on {Cores} cores{(Busy ? " (busy)" : string.Empty)}");

    private static bool IsBusy(double? load, int cores) => load is { } l && cores - l < 1.0;

    private static string Format(double? load) => load is { } l ? l.ToString("F2", CultureInfo.InvariantCulture) : "?";
}
