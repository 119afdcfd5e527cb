namespace MirrorEmu.Telemetry;

/// <summary>The 1-, 5- and 15-minute load averages as a report states them.</summary>
/// <param name="OneMinute">1-minute load average (null where unknown).</param>
/// <param name="FiveMinutes">5-minute load average.</param>
/// <param name="FifteenMinutes">15-minute load average.</param>
public sealed record LoadReport(double? OneMinute, double? FiveMinutes, double? FifteenMinutes);
