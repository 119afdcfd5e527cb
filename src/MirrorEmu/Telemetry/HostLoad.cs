using System.Globalization;

namespace MirrorEmu.Telemetry;

/// <summary>
/// How busy this machine is: the load averages of /proc/loadavg (runnable and uninterruptible tasks, averaged over 1, 5
/// and 15 minutes, as uptime(1) prints them) against the processors this process may run on. A timing taken while other
/// work holds the processors measures the neighbours as much as the code; a report states the load beside every figure
/// and warns when the machine is busy.
/// </summary>
/// <param name="OneMinute">The 1-minute load average, or NaN where unknown (not Linux).</param>
/// <param name="FiveMinutes">The 5-minute load average, or NaN.</param>
/// <param name="FifteenMinutes">The 15-minute load average, or NaN.</param>
/// <param name="Cores">Processors available to this process (its affinity mask).</param>
public readonly record struct HostLoad(double OneMinute, double FiveMinutes, double FifteenMinutes, int Cores)
{
    /// <summary>Fewer free cores than this and the machine counts as busy: a userfaultfd hand-off needs the faulting thread
    /// and the monitor thread running at once, so below one free core they take turns with the neighbours.</summary>
    public const double BusyBelowFreeCores = 1.0;

    /// <summary>Whether the load averages could be read.</summary>
    public bool IsKnown => !double.IsNaN(OneMinute);

    /// <summary>Cores not taken by the 1-minute load: <see cref="Cores"/> less <see cref="OneMinute"/>, at least 0; all of
    /// them where the load is unknown.</summary>
    public double FreeCores => IsKnown ? Math.Max(0, Cores - OneMinute) : Cores;

    /// <summary>True when fewer than <see cref="BusyBelowFreeCores"/> cores are free.</summary>
    public bool IsBusy => IsKnown && FreeCores < BusyBelowFreeCores;

    /// <summary>Reads the load now.</summary>
    public static HostLoad Current() => Parse(SystemFile.Read("/proc/loadavg"), AvailableCores());

    /// <summary>Parses the first three fields of a /proc/loadavg line ("0.52 0.58 0.59 1/123 4567").</summary>
    /// <param name="loadavg">The line, or null where the file could not be read.</param>
    /// <param name="cores">Processors available.</param>
    public static HostLoad Parse(string? loadavg, int cores)
    {
        string[] f = (loadavg ?? string.Empty).Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return f.Length >= 3
            && double.TryParse(f[0], NumberStyles.Float, CultureInfo.InvariantCulture, out double one)
            && double.TryParse(f[1], NumberStyles.Float, CultureInfo.InvariantCulture, out double five)
            && double.TryParse(f[2], NumberStyles.Float, CultureInfo.InvariantCulture, out double fifteen)
            ? new HostLoad(one, five, fifteen, cores)
            : new HostLoad(double.NaN, double.NaN, double.NaN, cores);
    }

    /// <summary>Processors in this thread's affinity mask where Linux says, else <see cref="Environment.ProcessorCount"/>.</summary>
    public static int AvailableCores() => LinuxAffinity.TryCount(out int n) ? n : Environment.ProcessorCount;

    /// <summary>One line: "load 0.52 0.58 0.59 on 2 cores (1.5 free)", or "load unknown on 2 cores".</summary>
    public string Describe() => IsKnown
        ? string.Create(CultureInfo.InvariantCulture, $"load {OneMinute:F2} {FiveMinutes:F2} {FifteenMinutes:F2} on {Cores} cores ({FreeCores:F1} free)")
        : $"load unknown on {Cores} cores";
}
